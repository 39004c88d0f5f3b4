"""Compiled-model cache of the OpenVINO backend, kept in the artifact directory.

Compiling an ONNX graph for the CPU (reading it, converting it, choosing kernels) takes longer
than loading a compiled blob. ``compile_entry`` stores ``CompiledModel.export_model()`` under
``<artifacts>/openvino_cache/`` and imports it on the next activation. A blob is reused only
for the same OpenVINO version, the same ONNX file (its manifest sha256, verified before use), the
same compile configuration, the same input shapes (dynamic, or the static window shape the
artifact's calibration checked, ``runtime.backends.openvino``) and the same CPU instruction sets
(``cpu_isa_fingerprint``); anything else compiles anew. Blobs of another ONNX file or OpenVINO
version are removed; blobs of other settings, shapes or CPUs stay, so machines with different
CPUs that share an artifact directory each keep their own. Each blob has a JSON sidecar with
its key and its own sha256, so a truncated or altered blob is detected and recompiled instead
of being deserialised.

A read-only artifact directory only costs speed: the model is compiled every time, with a
warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.backends.cpu_isa import cpu_isa_fingerprint
from runtime.errors import ArtifactError
from runtime.manifest import Manifest, sha256_file

log = logging.getLogger("runtime.backends")

CACHE_DIR = "openvino_cache"
DEVICE = "CPU"


@dataclass(frozen=True)
class CacheKey:
    """What a compiled blob depends on."""

    file: str  # the artifact's file name in the manifest
    onnx_sha256: str
    openvino: str  # openvino.__version__
    config: tuple[tuple[str, str], ...]  # sorted compile properties
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # static input shapes; () = dynamic
    cpu: str = ""  # cpu_isa_fingerprint()

    @property
    def stem(self) -> str:
        version = re.sub(r"[^0-9A-Za-z.]+", "_", self.openvino.split("-")[0])
        config = hashlib.sha256(repr(self.config).encode()).hexdigest()[:8]
        stem = f"{Path(self.file).stem}.ov{version}.{self.onnx_sha256[:16]}.{config}"
        if self.shapes:
            stem += ".static" + hashlib.sha256(repr(self.shapes).encode()).hexdigest()[:8]
        return stem + ".cpu" + hashlib.sha256(self.cpu.encode()).hexdigest()[:8]

    def as_dict(self) -> dict:
        return {"file": self.file, "onnx_sha256": self.onnx_sha256, "openvino": self.openvino,
                "config": dict(self.config),
                "shapes": {name: list(shape) for name, shape in self.shapes}, "cpu": self.cpu}


def cache_key(entry: dict, openvino_version: str, config: dict,
              shapes: dict[str, list[int]] | None = None, cpu: str | None = None) -> CacheKey:
    """The key of ``entry`` compiled with ``config`` for ``shapes`` on ``cpu`` (default: this
    machine's ``cpu_isa_fingerprint()``)."""
    return CacheKey(entry["file"], entry["sha256"], openvino_version,
                    tuple(sorted((k, str(v)) for k, v in config.items())),
                    tuple(sorted((k, tuple(int(d) for d in v)) for k, v in (shapes or {}).items())),
                    cpu_isa_fingerprint() if cpu is None else cpu)


def read_model(core, path: Path, shapes: dict[str, list[int]] | None = None):
    """The ONNX graph at ``path`` as an OpenVINO model, its inputs named in ``shapes`` (name ->
    shape) made static before compiling; the others keep their dimensions."""
    return make_static(core.read_model(str(path)), shapes)


def make_static(model, shapes: dict[str, list[int]] | None):
    """``model`` with its inputs named in ``shapes`` reshaped to them (``Model.reshape``)."""
    if shapes:
        model.reshape({name: list(shape) for name, shape in shapes.items()})
    return model


def blob_paths(directory: Path, key: CacheKey) -> tuple[Path, Path]:
    """(blob, sidecar JSON) of ``key`` in ``directory/openvino_cache``."""
    base = directory / CACHE_DIR / key.stem
    return base.with_name(base.name + ".blob"), base.with_name(base.name + ".json")


def openvino_cannot_run(manifest: Manifest) -> str:
    """Why OpenVINO cannot run the artifact's graph, with the fix, from its manifest ("" =
    nothing known); used by ``compile_entry``'s error and by ``--backend auto``. VisTR exported
    with ``--deform-conv onnx`` uses the ONNX DeformConv op, which OpenVINO's ONNX frontend does
    not convert (2026.4.1: "No conversion rule found for operations: DeformConv-19"; measured,
    docs/notes/lab-notebook.md)."""
    if manifest.data.get("model_extra", {}).get("deform_conv") == "onnx":
        return ("the ONNX DeformConv op (--deform-conv onnx) has no OpenVINO conversion; "
                "re-export with --deform-conv grid_sample (the default) for OpenVINO")
    return ""


def compile_entry(core, manifest: Manifest, entry: dict, config: dict, *,
                  use_cache: bool = True, shapes: dict[str, list[int]] | None = None):
    """A ``CompiledModel`` of the manifest ``entry`` on the CPU and how it was obtained
    (``"cache"``, ``"compiled"``, ``"compiled, not cached"`` or ``"compiled, cache off"``).
    ``shapes``: input name -> static shape to compile for (None: the graph's dynamic shapes).

    The ONNX file's sha256 is checked first (``Manifest.verified_path``), cache or not."""
    import openvino

    path = manifest.verified_path(entry)
    key = cache_key(entry, openvino.__version__, config, shapes)
    blob, sidecar = blob_paths(manifest.directory, key)
    if use_cache:
        compiled = _import_blob(core, blob, sidecar, key, config)
        if compiled is not None:
            return compiled, "cache"
    log.info("Compiling %s (%.1f MB) with OpenVINO %s%s ...", path.name,
             path.stat().st_size / 1e6, key.openvino, f" for shapes {shapes}" if shapes else "")
    start = time.perf_counter()
    model = _read(core, manifest, path, shapes)
    try:
        compiled = core.compile_model(model, DEVICE, config)
    except Exception as err:  # OpenVINO raises untyped RuntimeErrors for unreadable graphs
        raise _compile_error(manifest, path, err) from err
    log.info("Compiled in %.2f s", time.perf_counter() - start)
    if not use_cache:
        return compiled, "compiled, cache off"
    return compiled, "compiled" if _store_blob(compiled, blob, sidecar, key) else \
        "compiled, not cached"


def _read(core, manifest: Manifest, path: Path, shapes: dict | None):
    """``read_model`` with the ArtifactErrors ``compile_entry`` promises."""
    try:
        model = core.read_model(str(path))
    except Exception as err:  # OpenVINO raises untyped RuntimeErrors for unreadable graphs
        raise _compile_error(manifest, path, err) from err
    try:
        return make_static(model, shapes)
    except Exception as err:  # OpenVINO's shape inference raises untyped errors
        raise ArtifactError(
            f"{path.name} cannot be compiled for the static shapes {shapes} that its manifest "
            f"entry records (openvino_static): {' '.join(str(err).split())}; the entry does not "
            "belong to this graph: calibrate it again (python -m calibration ... "
            "--check-backend openvino)") from err


def _compile_error(manifest: Manifest, path: Path, err: Exception) -> ArtifactError:
    detail = " ".join(str(err).split())
    why = openvino_cannot_run(manifest)
    if why:
        return ArtifactError(f"OpenVINO cannot compile {path}: {why} ({detail}); or use "
                             "--backend onnxruntime")
    return ArtifactError(f"OpenVINO cannot compile {path} ({detail}); the file is corrupt, was "
                         "written by an incompatible exporter (re-export it), or uses an "
                         "operator OpenVINO lacks (use --backend onnxruntime)")


def _import_blob(core, blob: Path, sidecar: Path, key: CacheKey, config: dict):
    """The cached model of ``key``, or None when there is none or it does not check out."""
    if not (blob.is_file() and sidecar.is_file()):
        return None
    try:
        meta = json.loads(sidecar.read_text())
        if meta.get("key") != key.as_dict():
            # same file name, other key: a sidecar an older visdeploy wrote (no "shapes"); not
            # damage, so no warning
            log.info("the OpenVINO cache %s was written for another key; compiling again", blob)
            _remove(blob, sidecar)
            return None
        if meta.get("blob_sha256") != sha256_file(blob):
            raise ValueError("the blob does not match its sidecar")
        # The same properties as at compile time: an f32 blob imported without the f32
        # precision hint ran at the CPU's default (bf16) and crashed (openvino 2026.4.1).
        return core.import_model(blob.read_bytes(), DEVICE, config)
    except Exception as err:
        log.warning("ignoring the OpenVINO cache %s (%s); compiling again", blob, err)
        _remove(blob, sidecar)
        return None


def _store_blob(compiled, blob: Path, sidecar: Path, key: CacheKey) -> bool:
    """Write the blob and its sidecar atomically; drop stale blobs of the same file."""
    try:
        blob.parent.mkdir(exist_ok=True)
        data = compiled.export_model()
        data = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
        tmp = blob.with_name(blob.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, blob)
        meta = {"key": key.as_dict(), "blob_sha256": hashlib.sha256(data).hexdigest()}
        tmp = sidecar.with_name(sidecar.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, sidecar)
    except OSError as err:
        log.warning("cannot write the OpenVINO cache in %s (%s); the model will be compiled on "
                    "every start", blob.parent, err)
        return False
    _prune(blob.parent, key)
    return True


def _prune(directory: Path, key: CacheKey) -> None:
    """Remove blobs of ``key.file`` built from another ONNX file or another OpenVINO version, or
    keyed in an older format (whose names the current keys never reach)."""
    fields = set(key.as_dict())
    for sidecar in directory.glob("*.json"):
        try:
            old = json.loads(sidecar.read_text())["key"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if old.get("file") == key.file and (set(old) != fields or (
                old.get("onnx_sha256"), old.get("openvino")) != (key.onnx_sha256, key.openvino)):
            _remove(sidecar.with_suffix(".blob"), sidecar)


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
