"""Start-up of the multi-stream command line (runtime.multi_cli), in refusal order, cheapest
first: settings; stream names; output paths against each other and the artifact files; the
sources (each one's first frame decodes); output paths against the source files; the
per-stream folders and outputs (writable, temporary files creatable, codec probed; nothing is
written yet); the manifest and the model. Whatever was opened is closed on the way out, and
folders it created are removed again while still empty.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.errors import SinkError
from runtime.multi_cli import OUTPUT_FILES, check_settings, output_kinds, stream_outputs
from runtime.stream_cli import artifact_files
from runtime.stream_names import check_names, unique_names


def setup(args: argparse.Namespace):
    """-> (``MultiStreamPipeline``, stream name -> ``SinkGroup``), or a setup error."""
    from runtime.sinks import check_output_paths
    from runtime.sources import ReconnectPolicy, open_source

    check_settings(args)
    names = (check_names(args.names.split(","), len(args.sources)) if args.names
             else unique_names(args.sources))
    outputs = stream_outputs(args, names)
    paths = _path_flags(outputs)
    _check_out_dir(Path(args.out_dir))
    check_output_paths(paths, protected=artifact_files(args.artifacts))
    sources, sinks, created = {}, {}, []
    try:
        for name, spec in zip(names, args.sources, strict=True):
            sources[name] = open_source(spec, fps=args.fps,
                                        reconnect=ReconnectPolicy(max_attempts=args.reconnect))
        check_output_paths(paths, sources=[f for s in sources.values() for f in s.files])
        created = _make_folders(Path(args.out_dir), outputs)
        num_classes = _num_classes(args.artifacts)
        for index, (name, files) in enumerate(outputs.items()):
            sinks[name] = {}  # filled one by one, so a failure closes the ones already open
            _open_sinks(args, files, sinks[name], num_classes=num_classes, video_id=index + 1,
                        fps=args.fps or sources[name].fps)
        multi = _load(args, sources)
    except BaseException:
        for opened in sinks.values():
            for sink in opened.values():
                sink.close()  # nothing was written: earlier outputs stay as they were
        for source in sources.values():
            source.close()
        _remove_empty(created)
        raise
    from runtime.sinks import SinkGroup

    return multi, {name: SinkGroup(opened) for name, opened in sinks.items()}


def _path_flags(outputs: dict[str, dict[str, Path]]) -> dict[str, list[Path]]:
    """Label -> the files an output writes (the YTVIS JSON also its temporary file)."""
    from runtime.sinks import temp_path

    flags = {}
    for name, files in outputs.items():
        for kind, path in files.items():
            flags[f"--out-dir ({name} {kind})"] = [path] + (
                [temp_path(path)] if kind == "results" else [])
    return flags


def _check_out_dir(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise SinkError(f"--out-dir {root} is a file; give a folder (it is created if missing)")


def _make_folders(root: Path, outputs: dict[str, dict[str, Path]]) -> list[Path]:
    """Create ``root`` and a folder per stream; return the folders this call created."""
    created = []
    for folder in [root, *(root / name for name in outputs)]:
        if folder.is_dir():
            continue
        try:
            folder.mkdir(parents=True)
        except OSError as err:
            _remove_empty(created)
            raise SinkError(f"cannot create the output folder {folder}: "
                            f"{err.strerror or err}; choose a writable --out-dir") from err
        created.append(folder)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()  # only while empty
        except OSError:
            pass


def _num_classes(artifacts: str) -> int:
    from runtime.manifest import load_manifest

    return len(load_manifest(artifacts).classes)


def _open_sinks(args, files: dict[str, Path], into: dict, *, num_classes: int, video_id: int,
                fps: float) -> None:
    """Open a stream's outputs into ``into`` (label -> sink), in the order they are written."""
    from runtime.sinks import JsonlEventSink, OverlayVideoSink, YtvisJsonSink

    for kind in OUTPUT_FILES:
        if kind not in files:
            continue
        path = files[kind]
        if kind == "overlay":
            into[f"{kind} {path}"] = OverlayVideoSink(path, fps=fps, fourcc=args.fourcc)
        elif kind == "results":
            into[f"{kind} {path}"] = YtvisJsonSink(path, num_classes=num_classes,
                                                   video_id=video_id, mode=args.mode)
        else:
            into[f"{kind} {path}"] = JsonlEventSink(path)


def _load(args: argparse.Namespace, sources: dict):
    from runtime.multistream import MultiStreamPipeline
    from runtime.serving.client_options import chosen_backend

    return MultiStreamPipeline(
        args.artifacts, sources, close_sources=True, backend=chosen_backend(args),
        device=args.device,
        precision=args.precision, window=args.window, stride=args.stride, mode=args.mode,
        overlap=args.overlap, score_threshold=args.score, size_change=args.on_size_change,
        keep_images="overlay" in output_kinds(args), threads=args.threads, stages=args.stages,
        tracker=args.tracker, max_batch=args.max_batch,
        max_batch_wait_ms=args.max_batch_wait_ms, max_frames=args.max_frames)
