"""``python bench/vistr_backbone_probe.py CHECKPOINT``: ``bench/backbone_probe.py --model vistr``
(the command of the VisTR sessions in docs/notes/lab-notebook.md)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backbone_probe import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--model", "vistr", *sys.argv[1:]]))
