"""Output paths of one run: none may be an input (the source, an artifact) or another output.

Checked before anything is opened for writing. Files are compared after resolving symlinks,
and by device and inode when both exist (hard links), so an alias cannot slip through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from runtime.errors import SinkError


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (symlinks resolved; hard links by inode)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return Path(os.path.realpath(a)) == Path(os.path.realpath(b))


def _files(value: Path | str | Sequence[Path | str]) -> list[Path]:
    return [Path(value)] if isinstance(value, (str, Path)) else [Path(v) for v in value]


def check_output_paths(outputs: Mapping[str, Path | str | Sequence[Path | str]], *,
                       sources: Iterable[Path] = (), protected: Iterable[Path] = ()) -> None:
    """Raise ``SinkError`` unless every output file is distinct from the ``sources`` files,
    the ``protected`` files (the artifact directory) and the files of the other outputs.

    ``outputs``: option name -> the file it writes, or every file it writes (the output first,
    then e.g. its temporary file).
    """
    named = [(flag, i, path) for flag, value in outputs.items()
             for i, path in enumerate(_files(value))]
    sources, protected = list(sources), list(protected)
    for flag, i, path in named:
        if i:
            continue  # a temporary file is never a source; it is compared with other outputs
        for source in sources:
            if same_file(path, source):
                raise SinkError(f"{flag} {path} is the source {source} (same file): writing it "
                                "would destroy the input; choose another output name")
        for artifact in protected:
            if same_file(path, artifact):
                raise SinkError(f"{flag} {path} is {artifact}, a file of the artifact directory; "
                                "writing it would destroy the model; choose another output name")
    for a, (flag_a, i_a, path_a) in enumerate(named):
        for flag_b, i_b, path_b in named[a + 1:]:
            if flag_a != flag_b and same_file(path_a, path_b):
                flag, index = (flag_b, i_b) if i_b else (flag_a, i_a)
                raise SinkError(f"{flag_a} and {flag_b} write the same file "
                                f"{_describe(flag, index, path_a, outputs)}: they would "
                                "overwrite each other; give each output its own file")


def _describe(flag: str, index: int, path: Path, outputs: Mapping) -> str:
    if index == 0:
        return str(path)
    return f"{path} (the temporary file of {flag} {_files(outputs[flag])[0]})"
