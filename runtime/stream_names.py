"""Stream names for multi-stream runs: derived from each SOURCE, unique, filesystem-safe.

A name is a folder name under ``--out-dir`` and the stream id of ``MultiStreamPipeline``:

    clips/front.mp4          -> front          (a file's stem)
    frames/cam2/             -> cam2           (a folder's name)
    "shots/*.jpg"            -> shots          (a glob's folder)
    0, "0", "camera0"        -> camera0
    rtsp://user:pw@10.0.0.5:554/live/ch1 -> 10.0.0.5_554_live_ch1 (credentials never appear)

Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; a name never starts
with ``.`` and has at most ``MAX_LENGTH`` characters. Repeats get ``-2``, ``-3`` ... in source
order, compared without case (case-insensitive file systems).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from runtime.errors import ConfigError

MAX_LENGTH = 64
SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def stream_name(spec) -> str:
    """The filesystem-safe name of one SOURCE spec (an int, a str/Path, or an open source)."""
    if hasattr(spec, "description"):  # an open FrameSource
        spec = _spec_of(spec)
    if isinstance(spec, int):
        return f"camera{spec}"
    text = str(spec)
    camera = re.fullmatch(r"(?:camera)?(\d+)", text)
    if camera and not Path(text).exists():
        return f"camera{int(camera.group(1))}"
    return _safe(_from_text(text))


def _spec_of(source):
    """What an open source was opened from: a camera index or URL, a video, a folder."""
    for attr in ("target", "path"):
        value = getattr(source, attr, None)
        if value is not None:
            return value
    paths = getattr(source, "paths", None)
    if paths:
        return paths[0] if len(paths) == 1 else paths[0].parent
    return source.description


def _from_text(text: str) -> str:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f"_{parts.port}" if parts.port else ""
        return host + port + parts.path.replace("/", "_")
    if any(ch in text for ch in "*?["):
        text = re.split(r"[*?\[]", text, maxsplit=1)[0] or "glob"
    path = Path(text.rstrip("/\\") or text)
    return path.stem if path.suffix and not path.is_dir() else path.name


def _safe(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text[:MAX_LENGTH].rstrip(".") or "stream"


def unique_names(specs: Sequence) -> list[str]:
    """``stream_name`` of each spec, made unique with ``-2``, ``-3`` ... in order."""
    names, taken = [], set()
    for spec in specs:
        base = stream_name(spec)
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = f"{base[:MAX_LENGTH - len(str(n)) - 1]}-{n}"
        taken.add(name.lower())
        names.append(name)
    return names


def check_names(names: Sequence[str], count: int) -> list[str]:
    """Names given by the user (``--names``): ``count`` of them, each filesystem-safe and
    unique; ``ConfigError`` naming the problem otherwise."""
    names = list(names)
    if len(names) != count:
        raise ConfigError(f"--names gives {len(names)} name(s) for {count} source(s); give one "
                          "per source, in order (e.g. --names front,back)")
    for name in names:
        if not SAFE.fullmatch(name) or len(name) > MAX_LENGTH:
            raise ConfigError(f"stream name {name!r} is not a safe folder name: use up to "
                              f"{MAX_LENGTH} letters, digits, '.', '_' or '-', not starting "
                              "with '.'")
    lowered = [n.lower() for n in names]
    repeated = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if repeated:
        raise ConfigError(f"stream names must be unique (also ignoring case); repeated: "
                          f"{', '.join(repeated)}")
    return names
