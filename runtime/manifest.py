"""Read, validate and write the artifact manifest (docs/contract.md §2); verify artifact checksums.

The runtime is driven by ``manifest.json`` alone. This module is torch-free: the exporter writes
manifests through ``write_manifest`` so both sides share one schema.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST_FORMAT = "visdeploy.manifest/1"
MANIFEST_NAME = "manifest.json"
ARTIFACT_KINDS = ("onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
STAGES = ("frame", "clip")  # two-stage artifacts (docs/contract.md): frames -> features -> outputs
FRAMES, CONTENT_HW = "frames", "content_hw"
# Inputs an artifact may declare besides per-stage features; absent "inputs" means ["frames"]
# (manifests written before content_hw existed).
CONTRACT_INPUTS = (FRAMES, CONTENT_HW)


class ManifestError(ValueError):
    """manifest.json is missing, unreadable or does not follow the schema."""


class ArtifactError(RuntimeError):
    """An artifact named by the manifest is missing, truncated or fails its sha256 check."""


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def _require(data: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in data:
        raise ManifestError(f"manifest: missing field {where}{key}")
    if not isinstance(data[key], kind):
        raise ManifestError(f"manifest: field {where}{key} must be {kind}, got {type(data[key]).__name__}")
    return data[key]


def _check_range(rng: dict, where: str) -> None:
    for k in ("min", "opt", "max"):
        _require(rng, k, int, where)
    if not 1 <= rng["min"] <= rng["opt"] <= rng["max"]:
        raise ManifestError(f"manifest: {where} needs 1 <= min <= opt <= max, got {rng}")


def validate_manifest(data: dict) -> None:
    """Raise ``ManifestError`` naming the first field that breaks the schema (docs/contract.md §2)."""
    if not isinstance(data, dict):
        raise ManifestError("manifest: top level must be a JSON object")
    if data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"manifest: format must be {MANIFEST_FORMAT!r}, got {data.get('format')!r}")
    _require(data, "model", str, "")
    _require(data, "preset", str, "")
    classes = _require(data, "classes", list, "")
    if not classes or not all(isinstance(c, str) for c in classes):
        raise ManifestError("manifest: classes must be a non-empty list of names")
    inp = _require(data, "input", dict, "")
    for key in ("height", "width"):
        size = _require(inp, key, int, "input.")
        if size <= 0 or size % 32:
            raise ManifestError(f"manifest: input.{key} must be a positive multiple of 32, got {size}")
    _check_range(_require(inp, "frames", dict, "input."), "input.frames")
    _check_range(_require(inp, "batch", dict, "input."), "input.batch")
    for key in ("mean", "std"):
        vals = _require(inp, key, list, "input.")
        if len(vals) != 3:
            raise ManifestError(f"manifest: input.{key} must hold 3 numbers (RGB)")
    out = _require(data, "outputs", dict, "")
    _require(out, "K", int, "outputs.")
    _require(out, "embedding_dim", int, "outputs.")
    window = _require(data, "window", dict, "")
    length, stride = _require(window, "length", int, "window."), _require(window, "stride", int, "window.")
    if not 1 <= stride < length or length > inp["frames"]["max"]:
        raise ManifestError(f"manifest: window needs 1 <= stride < length <= frames.max, got {window}")
    for i, entry in enumerate(_require(data, "artifacts", list, "")):
        where = f"artifacts[{i}]."
        _require(entry, "file", str, where)
        if _require(entry, "kind", str, where) not in ARTIFACT_KINDS:
            raise ManifestError(f"manifest: {where}kind must be one of {ARTIFACT_KINDS}")
        if _require(entry, "precision", str, where) not in PRECISIONS:
            raise ManifestError(f"manifest: {where}precision must be one of {PRECISIONS}")
        sha = _require(entry, "sha256", str, where)
        if len(sha) != 64:
            raise ManifestError(f"manifest: {where}sha256 must be 64 hex characters")
        if "inputs" in entry and "stage" not in entry:
            names = _require(entry, "inputs", list, where)
            if not names or names[0] != FRAMES or not set(names) <= set(CONTRACT_INPUTS):
                raise ManifestError(f"manifest: {where}inputs must be {list(CONTRACT_INPUTS)} or "
                                    f"[{FRAMES!r}], got {names!r}")
        if "stage" in entry:
            if entry["stage"] not in STAGES:
                raise ManifestError(f"manifest: {where}stage must be one of {STAGES}, got {entry['stage']!r}")
            for key in ("inputs", "outputs"):
                names = _require(entry, key, list, where)
                if not names or not all(isinstance(n, str) for n in names):
                    raise ManifestError(f"manifest: {where}{key} must be a non-empty list of tensor names")


@dataclass(frozen=True)
class Manifest:
    """A validated manifest and the directory it was read from. ``data`` is the JSON dict."""

    directory: Path
    data: dict

    @property
    def model(self) -> str:
        return self.data["model"]

    @property
    def classes(self) -> list[str]:
        return list(self.data["classes"])

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.data["input"]["height"], self.data["input"]["width"]

    @property
    def frames_range(self) -> tuple[int, int, int]:
        rng = self.data["input"]["frames"]
        return rng["min"], rng["opt"], rng["max"]

    @property
    def batch_range(self) -> tuple[int, int, int]:
        rng = self.data["input"]["batch"]
        return rng["min"], rng["opt"], rng["max"]

    @property
    def fixed_frames(self) -> bool:
        """True when T is static (VisTR): short windows are padded cyclically to frames.max."""
        return self.frames_range[0] == self.frames_range[2]

    @property
    def pasted_mask_cells(self) -> int | None:
        """Cells across a box of the masks the model pastes into its boxes (TeViT's M x M mask
        grid), None for whole-frame masks: parity comparisons of two runtimes' outputs give a
        box-edge pixel the error its box explains (``export.parity.mask_box_allowance``)."""
        return self.data["outputs"].get("pasted_mask_cells")

    @property
    def window_frames(self) -> int:
        """T of the engine input for a full window, the shape the runtime feeds by default: the
        fixed T of a fixed-T artifact (VisTR), else the window length."""
        return self.frames_range[2] if self.fixed_frames else self.window[0]

    @property
    def window(self) -> tuple[int, int]:
        return self.data["window"]["length"], self.data["window"]["stride"]

    @property
    def mean(self) -> list[float]:
        return list(self.data["input"]["mean"])

    def check_input_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ``ManifestError`` unless ``shape`` is (B, T, H, W, 3) within the manifest's ranges."""
        h, w = self.input_hw
        if len(shape) != 5 or tuple(shape[2:]) != (h, w, 3):
            raise ManifestError(f"frames must be (B, T, {h}, {w}, 3) for {self.model}, got {tuple(shape)}")
        for axis, (lo, _, hi), what in ((0, self.batch_range, "B"), (1, self.frames_range, "T")):
            if not lo <= shape[axis] <= hi:
                raise ManifestError(
                    f"{what}={shape[axis]} is outside the range [{lo}, {hi}] this artifact was "
                    f"exported for; use windows of {lo}..{hi} frames or re-export with a wider range"
                )

    def artifact(self, kind: str = "onnx", precision: str = "fp32", stage: str | None = None) -> dict:
        """The artifact entry of ``kind``/``precision`` — the whole model, or one ``stage`` of a
        two-stage export; ``ArtifactError`` lists what exists."""
        for entry in self.data["artifacts"]:
            if entry["kind"] == kind and entry["precision"] == precision and entry.get("stage") == stage:
                return entry
        have = ", ".join(f"{e['kind']}/{e['precision']}" + (f"/{e['stage']} stage" if "stage" in e else "")
                         for e in self.data["artifacts"]) or "none"
        what = f"{kind} artifact at {precision}" + (f" for the {stage} stage" if stage else "")
        raise ArtifactError(
            f"{self.directory}: no {what} (have: {have}); build it first "
            f"(make export / python -m calibration / python -m export.tensorrt)"
        )

    @staticmethod
    def entry_inputs(entry: dict) -> list[str]:
        """The graph inputs an artifact entry declares (``["frames"]`` when it lists none)."""
        return list(entry.get("inputs", [FRAMES]))

    def declares_content_hw(self, kind: str = "onnx", precision: str = "fp32") -> bool:
        """Whether the ``kind``/``precision`` model (or its clip stage) takes ``content_hw``."""
        entries = [e for e in self.data["artifacts"] if e["kind"] == kind and e["precision"] == precision]
        return any(CONTENT_HW in self.entry_inputs(e) for e in entries)

    def has_stages(self, kind: str = "onnx", precision: str = "fp32") -> bool:
        """Whether a frame stage and a clip stage of ``kind``/``precision`` are listed."""
        listed = {e.get("stage") for e in self.data["artifacts"]
                  if e["kind"] == kind and e["precision"] == precision}
        return set(STAGES) <= listed

    def verified_path(self, entry: dict) -> Path:
        """Path of ``entry``'s file after checking it exists and matches its sha256."""
        path = self.directory / entry["file"]
        if not path.is_file():
            raise ArtifactError(f"artifact missing: {path}; re-export with `make export`")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise ArtifactError(
                f"sha256 mismatch for {path} (manifest {entry['sha256'][:12]}…, file {actual[:12]}…): "
                "the file is truncated or was replaced; re-export with `make export`"
            )
        return path


def load_manifest(directory: str | Path) -> Manifest:
    """Read and validate ``directory/manifest.json``."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"no {MANIFEST_NAME} in {directory}; export the model first, e.g. `make export MODEL=tevit`"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f"cannot read {path}: {err}") from err
    validate_manifest(data)
    return Manifest(directory=directory, data=data)


def write_manifest(directory: str | Path, data: dict) -> Path:
    """Validate ``data`` and write it as ``directory/manifest.json`` (pretty-printed)."""
    validate_manifest(data)
    path = Path(directory) / MANIFEST_NAME
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
