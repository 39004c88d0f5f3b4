"""Write a Triton model repository for an artifact directory (docs/serving.md).

    REPOSITORY/NAME/config.pbtxt        Triton's model configuration (export/triton/config.py)
    REPOSITORY/NAME/manifest.json       the artifact's manifest, byte for byte: clients point
                                        --artifacts here (windows, letterbox, classes)
    REPOSITORY/NAME/1/...               version 1: per kind
      python       model.py + manifest.json + the ONNX files it runs (runtime.serving.python_model)
      onnxruntime  model.onnx (the one-graph model at the chosen precision)
      tensorrt     the plans of that precision, one per GPU (cc_model_filenames)

The python kind runs in Triton's Python backend with visdeploy's own onnxruntime backends
(two-stage artifacts keep their per-frame feature cache inside the server); the onnxruntime and
tensorrt kinds are for NVIDIA's Triton images on GPU servers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from export.triton.config import (
    KINDS,
    BatchingOptions,
    ServedShape,
    model_config_text,
    onnxruntime_extra,
    tensorrt_extra,
)
from runtime.manifest import MANIFEST_NAME, STAGES, Manifest, sha256_file
from runtime.manifest import ArtifactError as ManifestArtifactError
from runtime.serving import MANIFEST_SHA_PARAMETER

VERSION = "1"
PYTHON_MODEL = '''"""Triton Python-backend model written by `python -m export.triton`: runs the artifact in
this folder with visdeploy's runtime backends (runtime/serving/python_model.py). The server's
Python needs visdeploy (no extras), numpy<2 and onnxruntime: `make serve-env` in a clone."""

try:
    from runtime.serving.python_model import TritonPythonModel  # noqa: F401
except ImportError as err:
    raise ImportError(
        f"{err}: the Triton server's Python environment lacks visdeploy's runtime; install it "
        "there with `pip install --no-deps visdeploy 'numpy<2' onnxruntime` (in a clone: make "
        "serve-env)") from err
'''


class RepositoryError(ValueError):
    """The artifact cannot be written as the requested Triton model (what is missing, and how
    to make it)."""


@dataclass(frozen=True)
class RepositoryRequest:
    """What to write: model ``name`` (default: the manifest's model), ``kind`` (python,
    onnxruntime, tensorrt), the artifact ``precision``, batching/instances, and for the python
    kind the onnxruntime ``device`` and ``threads`` inside the server."""

    kind: str = "python"
    name: str | None = None
    precision: str = "fp32"
    batching: BatchingOptions = BatchingOptions()
    device: str = "auto"
    threads: int = 0
    overwrite: bool = False


def write_repository(manifest: Manifest, repository: str | Path,
                     request: RepositoryRequest) -> Path:
    """Write ``repository/<name>/`` for ``manifest``; return that model folder."""
    if request.kind not in KINDS:
        raise RepositoryError(f"--kind must be one of {', '.join(KINDS)}; got {request.kind!r}")
    name = request.name or manifest.model
    folder = Path(repository) / name
    if folder.exists() and any(folder.iterdir()) and not request.overwrite:
        raise RepositoryError(f"{folder} exists and is not empty; pass --overwrite to replace "
                              "it, or --name for another model name")
    writer = {"python": _python_files, "onnxruntime": _onnxruntime_files,
              "tensorrt": _tensorrt_files}[request.kind]
    files, shape, extra, parameters = writer(manifest, request)
    parameters[MANIFEST_SHA_PARAMETER] = sha256_file(manifest.directory / MANIFEST_NAME)
    header = (f"{name}: {manifest.model} ({manifest.data['preset']}), {request.precision}, "
              f"written by python -m export.triton --kind {request.kind} from\n"
              f"{manifest.directory.resolve()}. Triton has no authentication: "
              "bind it to trusted networks (docs/serving.md).")
    text = model_config_text(manifest, name=name, kind=request.kind, shape=shape,
                             options=request.batching, parameters=parameters, extra=extra,
                             header=header)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / VERSION).mkdir(parents=True)
    (folder / "config.pbtxt").write_text(text)
    shutil.copyfile(manifest.directory / MANIFEST_NAME, folder / MANIFEST_NAME)
    for target, source in files.items():
        if isinstance(source, str):
            (folder / VERSION / target).write_text(source)
        else:
            shutil.copyfile(source, folder / VERSION / target)
    return folder


def _onnx_entries(manifest: Manifest, precision: str, *, stages: bool) -> list[dict]:
    """The ONNX entries the model runs: the one graph, or (``stages``) frame + clip stages."""
    wanted = [(s,) for s in STAGES] if stages else [(None,)]
    try:
        return [manifest.artifact("onnx", precision, stage=s[0]) for s in wanted]
    except ManifestArtifactError as err:
        raise RepositoryError(f"{err}") from err


def _shape(manifest: Manifest, inputs: list[str], max_batch: int | None = None) -> ServedShape:
    t_min, _, t_max = manifest.frames_range
    return ServedShape(max_batch=max_batch or manifest.batch_range[2],
                       frames=t_max if t_min == t_max else None, inputs=tuple(inputs))


def _python_files(manifest: Manifest, request: RepositoryRequest):
    stages = manifest.has_stages("onnx", request.precision)
    entries = _onnx_entries(manifest, request.precision, stages=stages)
    files: dict[str, object] = {"model.py": PYTHON_MODEL,
                                MANIFEST_NAME: manifest.directory / MANIFEST_NAME}
    for entry in entries:
        files[entry["file"]] = manifest.verified_path(entry)
    inputs = manifest.entry_inputs(entries[-1])
    contract = ["frames"] + (["content_hw"] if "content_hw" in inputs else [])
    length = manifest.window[0]
    parameters = {"precision": request.precision, "device": request.device,
                  "threads": str(request.threads), "stages": "two" if stages else "one",
                  # two-stage: features of 2 windows per stream, for max-batch streams
                  "feature_cache_frames": str(2 * length * manifest.batch_range[2])}
    return files, _shape(manifest, contract), "", parameters


def _onnxruntime_files(manifest: Manifest, request: RepositoryRequest):
    entry = _onnx_entries(manifest, request.precision, stages=False)[0]
    files = {"model.onnx": manifest.verified_path(entry)}
    return files, _shape(manifest, manifest.entry_inputs(entry)), onnxruntime_extra(), {}


def _tensorrt_files(manifest: Manifest, request: RepositoryRequest):
    plans = [e for e in manifest.data["artifacts"] if e["kind"] == "tensorrt"
             and e["precision"] == request.precision and "stage" not in e]
    if not plans:
        raise RepositoryError(
            f"{manifest.directory}: no one-graph TensorRT plan at {request.precision} in the "
            "manifest; build one on the serving GPU with the TensorRT version of the Triton image "
            f"(python -m export.tensorrt {manifest.directory} --precision {request.precision}), "
            "or write --kind onnxruntime / python")
    by_cc = {}
    for entry in plans:
        cc = entry["compute_capability"]
        if cc in by_cc:
            raise RepositoryError(f"two {request.precision} plans for compute capability {cc} "
                                  f"({by_cc[cc]['file']}, {entry['file']}); keep one")
        by_cc[cc] = entry
    files = {e["file"]: manifest.verified_path(e) for e in plans}
    shape = _shape(manifest, manifest.entry_inputs(plans[0]),
                   max_batch=min(_profile_max(e, axis=0) for e in plans))
    t_ranges = {(_profile_value(e, "min", 1), _profile_value(e, "max", 1)) for e in plans}
    if len(t_ranges) == 1 and len({*next(iter(t_ranges))}) == 1:
        shape = ServedShape(shape.max_batch, next(iter(t_ranges))[0], shape.inputs)
    extra = tensorrt_extra({cc: e["file"] for cc, e in by_cc.items()})
    if len(plans) == 1:
        extra = f'default_model_filename: "{plans[0]["file"]}"\n' + extra
    return files, shape, extra, {}


def _profile_value(entry: dict, key: str, axis: int) -> int:
    return entry["profiles"][0]["frames"][key][axis]


def _profile_max(entry: dict, axis: int) -> int:
    return _profile_value(entry, "max", axis)
