"""Export a model into an artifact directory: ONNX, graph checks, parity, manifest (phase-logged)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from export.graph_checks import check_graph
from export.manifest import artifact_entry, build_manifest
from export.onnx_export import DEFAULT_OPSET, ExportError, export_onnx, model_inputs
from export.parity import DEFAULT_CASES, ParityReport, check_parity
from export.two_stage import TwoStageExport, TwoStageSession, export_two_stage, supports_two_stage
from models import build_model
from runtime.manifest import write_manifest

log = logging.getLogger("visdeploy.export")
REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
RANDOM_INIT_SEED = 0
DEFAULT_ROI_ALIGN = "onnx"  # TeViT's RoIAlign as the ONNX RoiAlign op (issue 21 item 6)


@dataclass
class ExportResult:
    """What ``export_artifacts`` produced."""

    directory: Path
    model: torch.nn.Module
    onnx_path: Path
    manifest: dict
    graph: dict
    parity: ParityReport
    two_stage: TwoStageExport | None = None
    two_stage_parity: ParityReport | None = None


def default_checkpoint(name: str, preset: str) -> Path | None:
    """The repository's trained checkpoint for ``name``/``preset`` (``checkpoints/``), if any."""
    path = CHECKPOINT_DIR / f"{name}_{preset}.pth"
    return path if path.is_file() else None


class _Phase:
    """Logs ``<what>…`` then ``<what> finished in X s (N s since the export started)``; while it
    runs, a spinner with the elapsed time (a line every 30 s off a terminal) when INFO logging is
    on, as in ``python -m export``."""

    def __init__(self, what: str, started: float | None = None):
        from runtime.progress import Spinner

        self.what, self.started = what, started
        self.spinner = Spinner(what, enabled=log.isEnabledFor(logging.INFO))

    def __enter__(self):
        log.info("%s…", self.what)
        self.start = time.perf_counter()
        self.spinner.__enter__()
        return self

    def __exit__(self, *exc):
        self.spinner.__exit__(*exc)
        if exc[0] is None:
            now = time.perf_counter()
            total = f" ({now - self.started:.0f} s since the export started)" if self.started else ""
            log.info("%s finished in %.1f s%s", self.what, now - self.start, total)


def _use_deform_conv(model: torch.nn.Module, name: str, form: str | None, opset: int) -> int:
    """Apply ``--deform-conv`` (models with a deformable conv: VisTR); the opset to export at."""
    if form is None:
        return opset
    from models.vistr.deform_conv import ONNX_FORM_OPSET, use_deform_conv

    if not use_deform_conv(model, form):
        raise ExportError(f"--deform-conv applies to models with a deformable conv (VisTR), "
                          f"not {name}")
    if form == "onnx" and opset < ONNX_FORM_OPSET:
        log.info("the ONNX DeformConv op needs opset %d: exporting at opset %d instead of %d",
                 ONNX_FORM_OPSET, ONNX_FORM_OPSET, opset)
        return ONNX_FORM_OPSET
    return opset


def export_artifacts(
    name: str,
    preset: str,
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    trust_checkpoint: bool = False,
    opset: int = DEFAULT_OPSET,
    parity_cases: tuple[tuple[int, int], ...] = DEFAULT_CASES,
    two_stage: bool | None = None,
    roi_align: str | None = None,
    input_hw: tuple[int, int] | None = None,
    deform_conv: str | None = None,
) -> ExportResult:
    """Build ``name``/``preset``, export ``model.onnx`` into ``out_dir``, check it, write the manifest.

    ``two_stage`` (default: whenever the model has a per-frame stage, i.e. IFC) also exports
    ``frame_stage.onnx`` + ``clip_stage.onnx`` (docs/contract.md §1), checks their graphs and their composed
    parity, and lists them in the manifest with ``stage``, ``inputs`` and ``outputs``; the runtime
    then computes each frame's features once across overlapping windows.

    ``roi_align`` (TeViT only): ``onnx`` (default: the standard ONNX RoiAlign op, 2.9x eager on
    onnxruntime CPU for msgshift where the GridSample form is 0.56x, docs/notes/lab-notebook.md; TensorRT
    builds it with its ROIAlign_TRT plugin, plugins/), ``onnx_gathered`` (the same op on each
    RoI's own FPN level only, via NonZero/ScatterND: faster on the CPU runtimes, docs/benchmarks.md;
    its data-dependent shapes are not checked with TensorRT engines here) or ``grid_sample`` (pure
    tensor ops, for runtimes without RoiAlign); recorded in the manifest's ``model_extra.roi_align``.

    ``deform_conv`` (VisTR only): ``grid_sample`` (default; GridSample + MatMul, the 9 taps in as few calls as its memory
    budget allows, opset 18) or
    ``onnx`` (the ONNX DeformConv op, which needs opset 19: the export is raised to it; TensorRT
    >= 10.1 builds it with its ModulatedDeformConv2d plugin); recorded in
    ``model_extra.deform_conv``.

    ``input_hw`` replaces the preset's input size (multiples of 32), e.g. to match a camera's
    aspect ratio so that no letterbox padding is needed.

    Without ``checkpoint`` the repository's checkpoint is used when one exists; otherwise a seeded
    random init, with a warning that outputs are meaningless. Raises ``ParityError`` (nothing is
    written to the manifest) when onnxruntime and PyTorch disagree beyond tolerance.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    checkpoint = checkpoint or default_checkpoint(name, preset)
    if checkpoint is None:
        log.warning("no checkpoint for %s/%s: exporting a seeded random init — outputs are "
                    "meaningless (pass --checkpoint PATH for real weights)", name, preset)
    torch.manual_seed(RANDOM_INIT_SEED)
    with _Phase(started=started, what=f"Building {name}/{preset}"):
        model = build_model(name, preset, checkpoint, trust_checkpoint=trust_checkpoint,
                            input_hw=input_hw)
    if roi_align is not None and not hasattr(model, "use_roi_align"):
        raise ExportError(f"--roi-align applies to models with RoIAlign (TeViT), not {name}")
    if hasattr(model, "use_roi_align"):
        model.use_roi_align(roi_align or DEFAULT_ROI_ALIGN)
    opset = _use_deform_conv(model, name, deform_conv, opset)
    out_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused checkpoint leaves no folder
    manifest_path = out_dir / "manifest.json"
    manifest_path.unlink(missing_ok=True)  # never leave a manifest that describes an old file
    onnx_path = out_dir / "model.onnx"
    with _Phase(started=started, what=f"Exporting ONNX (dynamo, opset {opset}) to {onnx_path}"):
        export_onnx(model, onnx_path, opset=opset)
    with _Phase(started=started, what="Checking graph (onnx.checker full, shape inference, domains)"):
        graph = check_graph(onnx_path, inputs=model_inputs(model))
    with _Phase(started=started, what=f"Parity onnxruntime vs PyTorch at (B, T) = {list(parity_cases)}"):
        parity = check_parity(model, onnx_path, cases=parity_cases)
    entries = [artifact_entry(out_dir, onnx_path.name, kind="onnx", precision="fp32", opset=graph["opset"],
                              inputs=model_inputs(model))]
    stages, stage_parity = None, None
    if two_stage is None:
        two_stage = supports_two_stage(model)
    if two_stage:
        with _Phase(started=started, what="Exporting the frame and clip stages"):
            stages = export_two_stage(model, out_dir, opset=opset)
        with _Phase(started=started, what="Checking the stage graphs"):
            features = list(stages.feature_names)
            check_graph(stages.frame_path, outputs=features)
            check_graph(stages.clip_path, inputs=list(stages.clip_inputs))
        with _Phase(started=started, what=f"Parity of frame + clip stages vs PyTorch at (B, T) = {list(parity_cases)}"):
            stage_parity = check_parity(model, stages.clip_path, cases=parity_cases,
                                        session=TwoStageSession(stages))
        entries += stages.manifest_stages(opset=graph["opset"])
    manifest = build_manifest(model, out_dir, entries, checkpoint=str(checkpoint) if checkpoint else None,
                              parity=parity.as_manifest())
    if stage_parity is not None:
        manifest["parity"]["onnxruntime_two_stage"] = stage_parity.as_manifest()
    write_manifest(out_dir, manifest)
    return ExportResult(out_dir, model, onnx_path, manifest, graph, parity, stages, stage_parity)
