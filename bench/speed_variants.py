"""The variants bench/speed.py times for one model: the export, its FP16/INT8 graphs, and a
callable per (runtime, precision, form).

``prepare_model`` exports ``name``/``preset`` at an input size into a work directory (reused
when its manifest is there), calibrates FP16 and ModelOpt INT8 with ``calibration`` (the
project's keep-lists and parity/AP budget) and, when nncf is installed, writes NNCF's INT8 graph
into a sibling directory (``-nncf``) checked against the same budget. ``open_runners`` opens
PyTorch eager, onnxruntime and OpenVINO on every graph that exists; each runner maps one
``Windows`` (batch 1) to the contract outputs.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from calibration.calibrate import CalibrationOptions, calibrate_artifacts
from export.artifacts import export_artifacts
from models import build_model
from runtime.backends import open_backend
from runtime.manifest import load_manifest

STAGED = {"one": "", "two": " two-stage"}
STATIC = " static"  # label suffix of an OpenVINO runner compiled for the window's static shape


@dataclass
class Prepared:
    """A model's artifact directories and what happened while making them."""

    name: str
    preset: str
    directory: Path
    nncf_directory: Path | None = None
    notes: list[str] = field(default_factory=list)
    # engine -> budget measurement (``measured_on``: the runtime it ran on)
    int8_checks: dict[str, dict] = field(default_factory=dict)


def export_dir(workdir: Path, name: str, preset: str, hw: tuple[int, int], form) -> Path:
    """``form``: the export form that changes the graph (TeViT's RoIAlign, VisTR's deformable
    conv), part of the name so two forms never share a directory."""
    return workdir / f"{name}-{preset}-{hw[0]}x{hw[1]}{'-' + form if form else ''}"


def export_forms(name: str, args) -> dict[str, str]:
    """``export_artifacts`` keyword arguments of the form options that apply to ``name``."""
    if name == "tevit":
        return {"roi_align": args.roi_align}
    if name == "vistr" and getattr(args, "deform_conv", None):
        return {"deform_conv": args.deform_conv}
    return {}


def prepare_model(name: str, preset: str, hw: tuple[int, int], workdir: Path, args) -> Prepared:
    forms = export_forms(name, args)
    directory = export_dir(workdir, name, preset, hw, next(iter(forms.values()), None))
    if not (directory / "manifest.json").is_file():
        start = time.perf_counter()
        export_artifacts(name, preset, directory, input_hw=hw, parity_cases=((1, 2),), **forms)
        print(f"[{name}/{preset}] exported in {time.perf_counter() - start:.0f} s", flush=True)
    prepared = Prepared(name, preset, directory)
    have = {e["precision"] for e in load_manifest(directory).data["artifacts"]}
    options = CalibrationOptions(windows=args.calib_windows, eval_windows=args.eval_windows,
                                 ap_data=args.ap_data, ap_videos=args.ap_videos,
                                 ap_tracker=ap_tracker(name, args.ap_tracker),
                                 check_backend=args.check_backend, threads=args.threads,
                                 progress=False)
    for precision in calibrations_to_make(args.precisions, args.int8_engines, have):
        try:
            section = calibrate_artifacts(directory, precision=precision, data=args.calib_data,
                                          options=options)
            if precision == "int8":
                prepared.int8_checks["modelopt"] = _measured(section)
        except Exception as err:  # a failed conversion is a table note, not the end of the run
            prepared.notes.append(f"{precision} calibration failed: {err}")
    report = directory / "calibration_report.json"
    if "int8" in have and report.is_file():
        prepared.int8_checks["modelopt"] = _measured(json.loads(report.read_text())["int8"])
    if "int8" in args.precisions and "nncf" in args.int8_engines:
        prepare_nncf(prepared, args, options)
    return prepared


def ap_tracker(name: str, choice: str) -> str:
    """The tracker the AP budget streams with: ``auto`` is the model's deployed one (IFC runs
    near-online with its official linking, T=5 S=1; the others use the default tracker)."""
    if choice != "auto":
        return choice
    return "ifc-official" if name == "ifc" else "default"


def _measured(section: dict) -> dict:
    """A calibration report section's final budget measurement with the runtime it ran on
    (reports written before ``check_backend`` existed were measured on onnxruntime)."""
    measured = {**section["final"],
                "measured_on": section["check"].get("backend") or "onnxruntime"}
    if "openvino_static" in section:
        measured["openvino_static"] = section["openvino_static"]
    return measured


def calibrations_to_make(precisions, int8_engines, have) -> list[str]:
    """The ``python -m calibration`` precisions still to make: FP16 and ModelOpt's INT8 (the
    calibration's own engine) when asked for and not in the manifest yet; ``--int8-engines
    nncf`` alone makes only NNCF's INT8 graph (``prepare_nncf``)."""
    return [p for p in ("fp16", "int8") if p in precisions and p not in have
            and (p != "int8" or "modelopt" in int8_engines)]


def prepare_nncf(prepared: Prepared, args, options: CalibrationOptions) -> None:
    """``<directory>-nncf``: the FP32 export plus NNCF's ``model.int8.onnx``, quantized on the
    calibration windows ModelOpt gets and held to the same budget (``nncf_fallback``)."""
    from calibration.calibrate import calibration_job, openvino_static_check
    from calibration.graph import select
    from calibration.nncf_int8 import nncf_method, quantize_nncf
    from calibration.openvino_static import manifest_fields
    from calibration.report import onnx_entry, update_manifest

    target = prepared.directory.with_name(prepared.directory.name + "-nncf")
    manifest = load_manifest(prepared.directory)
    fp32 = manifest.artifact("onnx", "fp32")
    method = nncf_method(overflow_fix=args.nncf_overflow_fix)
    if not _has_int8(target, method):
        job = calibration_job(prepared.directory, args.calib_data, options)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copyfile(prepared.directory / fp32["file"], target / fp32["file"])
        (target / "manifest.json").write_text(
            json.dumps(dict(manifest.data, artifacts=[fp32]), indent=2) + "\n")
        exclude = set().union(*select(job.infos, list(job.keep.int8_exclude)).values())
        try:
            result = quantize_nncf(target / fp32["file"], target / "model.int8.onnx",
                                   list(job.calib.windows.feeds(manifest.entry_inputs(fp32))),
                                   exclude=exclude, overflow_fix=args.nncf_overflow_fix)
            prepared.int8_checks["nncf"] = {**nncf_fallback(job, target / "model.int8.onnx"),
                                            "measured_on": options.check_backend}
            # the same static-shape check calibration makes (calibration/openvino_static.py)
            static = openvino_static_check(job, target / "model.int8.onnx")
        except Exception as err:  # a failed quantizer or check is a table note, not the end
            prepared.notes.append(f"NNCF INT8 failed: {' '.join(str(err).split())[:300]}")
            return
        if static:
            prepared.int8_checks["nncf"]["openvino_static"] = static
        update_manifest(target, onnx_entry(target, "model.int8.onnx", precision="int8",
                                           calibration=nncf_record(result, job.check,
                                                                   prepared.int8_checks["nncf"]),
                                           **manifest_fields(static)))
    prepared.nncf_directory = target
    entry = load_manifest(target).artifact("onnx", "int8")
    prepared.int8_checks.setdefault("nncf", entry["calibration"].get("final", {}))


def nncf_record(result, check, final: dict) -> dict:
    """The manifest entry's ``calibration`` record of NNCF's graph: the fields
    ``calibration.report.manifest_summary`` gives calibration's own graphs (tool, check, value,
    verdict, where it was measured) with NNCF's settings and the final measurement."""
    from calibration.report import check_record, checked_on

    described = check_record(check)
    return {"tool": "nncf", **result.as_dict(), "check": described.get("kind"),
            **checked_on(described), "value": final.get("value"),
            "within_budget": final.get("within_budget"), "final": final}


def _has_int8(directory: Path, method: str) -> bool:
    """Whether ``directory`` has an INT8 graph made with ``method`` (a workdir's NNCF graph of
    other settings is made again)."""
    return (directory / "manifest.json").is_file() and any(
        e["precision"] == "int8" and (e.get("calibration") or {}).get("method") == method
        for e in load_manifest(directory).data["artifacts"])


def nncf_fallback(job, path: Path) -> dict:
    """The project's budget fallback on NNCF's graph: blocks go back to FP32, the most
    sensitive first, until ``job.check`` holds (as calibration does for ModelOpt's graph).
    Rewrites ``path``; returns the final measurement with the one before the fallback."""
    import onnx

    from calibration.nncf_int8 import only_qdq_added
    from calibration.qdq import quantized_nodes
    from calibration.sensitivity import block_sensitivity, fallback

    qmodel = onnx.load(str(path))
    quantized = quantized_nodes(qmodel)
    before = job.check.measure(qmodel)
    if before.within_budget or not only_qdq_added(job.fp32, qmodel):
        return {**before.as_dict(), "before_fallback": before.value, "blocks_back_to_fp32": 0}
    rows = block_sensitivity(qmodel, job.fp32, job.infos, quantized, job.ranker,
                             depth=job.options.block_depth or job.keep.block_depth,
                             progress=False)
    model, record = fallback(qmodel, job.fp32, quantized, rows, job.check)
    onnx.save(model, str(path))
    return {**record.final.as_dict(), "before_fallback": before.value,
            "blocks_back_to_fp32": len(record.excluded),
            "blocks_readmitted": len(record.readmitted), "fp32_blocks": record.excluded,
            "int8_nodes": f"{len(quantized_nodes(model))} of {len(quantized)}"}


def eager_model(name: str, preset: str, hw: tuple[int, int] | None):
    """The eager model the export was made from: the repository checkpoint for trained presets,
    else the exporter's seeded init, at input size ``hw`` (None = the preset's)."""
    from export.artifacts import RANDOM_INIT_SEED, default_checkpoint

    torch.manual_seed(RANDOM_INIT_SEED)
    return build_model(name, preset, default_checkpoint(name, preset), input_hw=hw)


# TeViT's eager baseline pools each RoI on its own FPN level, as the official code does
# (mmdet SingleRoIExtractor.forward, mmdet/models/roi_heads/roi_extractors/
# single_level_roi_extractor.py: `for i in range(num_levels): inds = target_lvls == i ...`).
# The fixed-shape export forms pool every RoI on every level, 4x the work: an eager run in
# those forms is not what a PyTorch user runs (msgshift 384x640: 9.7 s a window vs 5.3 s).
EAGER_TEVIT_ROI_ALIGN = "onnx_gathered"


def eager_runner(name: str, preset: str, hw: tuple[int, int]):
    """PyTorch eager of the exported model (TeViT: RoIAlign per level, EAGER_TEVIT_ROI_ALIGN)."""
    model = eager_model(name, preset, hw)
    if name == "tevit":
        model.use_roi_align(EAGER_TEVIT_ROI_ALIGN)

    def run(window):
        with torch.inference_mode():
            out = model(torch.from_numpy(window.frames), torch.from_numpy(window.content_hw))
        return {k: v.numpy() for k, v in out.items()}

    return run


def open_runners(prepared: Prepared, hw: tuple[int, int], args) -> dict[str, object]:
    """{label: runner(window) -> outputs}; backends are activated here (compiled, cached)."""
    runners = {"PyTorch eager fp32": eager_runner(prepared.name, prepared.preset, hw)}
    sources = [("", prepared.directory)]
    if prepared.nncf_directory is not None:
        sources.append((" (NNCF)", prepared.nncf_directory))
    for backend in args.backends:
        for suffix, directory in sources:
            manifest = load_manifest(directory)
            have = {e["precision"] for e in manifest.data["artifacts"] if "stage" not in e}
            for precision in [p for p in args.precisions if p in have]:
                if suffix and precision != "int8":
                    continue
                forms = ["one", "two"] if manifest.has_stages("onnx", precision) else ["one"]
                for form in forms:
                    label = f"{backend} {precision}{suffix}{STAGED[form]}"
                    # onnxruntime's workers must not spin between runs: they would take the
                    # cores from the runner that comes next (runtime/backends/onnxrt.py)
                    quiet = {"spin_wait": False} if backend == "onnxruntime" else {}
                    engine = open_backend(manifest, backend, device="cpu", precision=precision,
                                          threads=args.threads, stages=form, **quiet).activate()
                    if getattr(engine, "static_shapes", None):
                        # a static compile recorded by the calibration: time it and the
                        # dynamic one side by side (runtime/backends/openvino.py)
                        runners[label + STATIC] = _infer(engine)
                        engine = open_backend(manifest, backend, device="cpu",
                                              precision=precision, threads=args.threads,
                                              stages=form, static_shapes=False).activate()
                    runners[label] = _infer(engine)
    return runners


def _infer(engine):
    def run(window):
        return engine.infer(window.frames, window.content_hw)

    run.engine = engine
    return run


def scores_delta(reference: dict, outputs: dict) -> float | None:
    """Max |score| difference over the top-K rows both put at the same query and label; None
    when no row is shared (on the bench's noise clip a low-precision graph can rank the
    near-equal scores of a trained model differently: then there is nothing to compare)."""
    same = (reference["query_index"] == outputs["query_index"]) & (
        reference["labels"] == outputs["labels"])
    if not same.any():
        return None
    return float(np.abs(np.where(same, reference["scores"] - outputs["scores"], 0)).max())


def delta_text(delta: float | None) -> str:
    """A ``scores_delta`` for the table."""
    return "no shared top-K row" if delta is None else f"{delta:.1e}"
