"""``calibrate_artifacts``: write ``model.fp16.onnx`` or ``model.int8.onnx`` into an artifact
directory, with its report section and manifest entry (phase-logged); ``precision="fp32"``
only measures and records the FP32 graph's static-shape OpenVINO compile (``check_fp32_static``).

Steps: read calibration windows (runtime letterbox + windows) -> split off held-out windows ->
convert (AutoCast FP16 / ModelOpt or onnxruntime INT8 Q/DQ) -> measure per block (INT8) or per
keep-list group (FP16, ``sensitivity=True``) -> fall back until the budget holds -> write the
graph, ``calibration_report.json`` and the manifest entry -> run it once through the runtime's
onnxruntime backend.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from calibration.checks import DEFAULT_BUDGET_AP, MetricCheck, ParityCheck
from calibration.data import CalibrationSet, collect_windows
from calibration.errors import BudgetError, CalibrationDataError, CalibrationError
from calibration.fp16 import convert_fp16
from calibration.graph import has_scopes, node_infos, select
from calibration.int8 import check_high_precision, choose_engine, quantize_int8
from calibration.keeplist import KeepList, load_keep_list
from calibration.openvino_static import (
    FP32_STATIC_BUDGET,
    check_static_compile,
    manifest_fields,
)
from calibration.parity import ParityBudget
from calibration.qdq import keep_quantized, qdq_counts, quantized_nodes
from calibration.report import (
    check_record,
    manifest_summary,
    onnx_entry,
    update_manifest,
    write_report,
)
from calibration.runtime_check import openvino_runtime_check
from calibration.sensitivity import block_sensitivity, fallback, fp16_group_sensitivity
from runtime.manifest import Manifest, load_manifest

log = logging.getLogger("visdeploy.calibration")
PRECISIONS = ("fp16", "int8", "fp32")  # fp32: nothing converted, OpenVINO static check only
RANK_BY = ("parity", "check")
OTHER_T = 3  # parity is also checked at a frame count other than the calibration windows'


@dataclass(frozen=True, kw_only=True)
class CalibrationOptions:
    """Settings of one conversion (CLI flags of ``python -m calibration`` map 1:1).

    ``metric`` (ONNX path -> score, higher better) switches the budget from parity to a task
    metric drop <= ``budget_ap``; ``ap_data`` builds the YouTube-VIS AP metric on that dataset.
    ``reference_frames`` shortens AutoCast's reference windows (dynamic-T models only): its
    range rule keeps every intermediate tensor in memory, over 23 GB for the official TeViT at
    384x640 and T=5; per-tensor magnitudes hardly depend on T.
    ``rank_by`` orders the INT8 blocks for the fallback: ``parity`` (default) measures each block
    alone by held-out parity, which is cheap, and spends the task metric only on the fallback
    steps (baseline + one AP run per step, re-admission tries included: at most one per block
    sent back); ``check`` ranks every block by the budget's own check
    (one AP run per block with a metric: 19 blocks x 8 videos did not finish in 20 minutes for the
    tiny TeViT on 2 CPU cores).
    ``check_backend``: the CPU runtime every budget measurement (parity, AP, block ranking) runs
    the graphs on: ``onnxruntime`` or ``openvino`` (``calibration.openvino_session``). Measure on
    the backend the graph will be deployed with: INT8 kernels differ between them.
    ``openvino_static`` (with ``check_backend="openvino"``): also measure the written graph
    compiled for the window's static shape by the same budget (parity or AP) and record that
    shape in the manifest entry when it holds (``calibration.openvino_static``).
    """

    method: str = "max"
    engine: str = "auto"
    high_precision: str = "fp32"  # INT8: fp16 for TensorRT targets (calibration/int8.py)
    windows: int = 16
    eval_windows: int = 4
    reference_windows: int = 2
    reference_frames: int | None = 2
    window_length: int | None = None
    parity: ParityBudget = field(default_factory=ParityBudget)
    budget_ap: float = DEFAULT_BUDGET_AP
    metric: Callable[[Path], float] | None = None
    ap_data: str | None = None
    ap_videos: int | None = None
    ap_tracker: str = "default"
    keep_list: str | None = None
    block_depth: int | None = None
    rank_by: str = "parity"
    check_backend: str = "onnxruntime"
    openvino_static: bool = True
    sensitivity: bool = False
    fallback: bool = True
    threads: int = 0
    progress: bool = True


@dataclass
class _Job:
    """What every phase needs: manifest, FP32 graph and its node infos, data, check."""

    manifest: Manifest
    fp32_path: Path
    fp32: onnx.ModelProto
    infos: list
    keep: KeepList
    calib: CalibrationSet
    held: CalibrationSet
    check: object
    ranker: object  # the check that orders INT8 blocks (``rank_by``)
    options: CalibrationOptions


def _prepare(directory: Path, data, options: CalibrationOptions) -> _Job:
    if options.rank_by not in RANK_BY:
        raise CalibrationError(f"rank_by must be one of {RANK_BY}, got {options.rank_by!r}")
    _check_backend_available(options.check_backend)
    manifest = load_manifest(directory)
    fp32_path = manifest.verified_path(manifest.artifact("onnx", "fp32"))
    keep = load_keep_list(manifest.model, options.keep_list)
    windows = collect_windows(data, manifest, max_windows=options.windows + options.eval_windows,
                              length=options.window_length, progress=options.progress)
    calib, held = windows.split(options.eval_windows)
    fp32 = onnx.load(str(fp32_path))
    infos = node_infos(fp32)
    if not has_scopes(infos):
        log.warning("%s has no module scopes (pkg.torch.onnx.name_scopes); module rules of the "
                    "keep-list match nothing and all nodes form one block", fp32_path.name)
    metric = options.metric
    if metric is None and options.ap_data:
        from calibration.ap_metric import YtvisApMetric

        metric = YtvisApMetric(options.ap_data, directory, max_videos=options.ap_videos,
                               threads=options.threads, tracker=options.ap_tracker,
                               backend=options.check_backend)
    parity = None
    if not metric or options.rank_by == "parity":
        parity = ParityCheck(fp32, held.windows, budget=options.parity, threads=options.threads,
                             backend=options.check_backend)
    check = MetricCheck(metric, fp32_path, budget_drop=options.budget_ap) if metric else parity
    ranker = parity if options.rank_by == "parity" else check
    return _Job(manifest, fp32_path, fp32, infos, keep, calib, held, check, ranker, options)


def calibration_job(directory: str | Path, data, options: CalibrationOptions | None = None) -> _Job:
    """What calibration would use for ``directory``: calibration and held-out windows
    (``job.calib``, ``job.held``), the keep-list, node infos and the budget check
    (``job.check.measure(model)``). For judging a graph from another quantizer (NNCF,
    bench/speed.py) on the same windows and the same budget."""
    return _prepare(Path(directory), data, options or CalibrationOptions())


def _keep_nodes(job: _Job, selectors) -> tuple[set[str], dict[str, int]]:
    chosen = select(job.infos, list(selectors))
    return set().union(*chosen.values()) if chosen else set(), {k: len(v) for k, v in chosen.items()}


def _run_fp16(job: _Job, dst: Path) -> dict:
    opts, keep = job.options, job.keep
    reference = job.calib.windows[:max(1, opts.reference_windows)]
    if opts.reference_frames and not job.manifest.fixed_frames:
        reference = reference.first_frames(opts.reference_frames)
    section: dict = {"tool": "modelopt.onnx.autocast", "data_max": keep.fp16_data_max}
    if opts.sensitivity:
        section["sensitivity"] = fp16_group_sensitivity(
            job.fp32_path, job.fp32, job.infos, [g.selector for g in keep.fp16_groups],
            reference, job.check, decided=keep.fp16_keep, data_max=keep.fp16_data_max,
            progress=opts.progress)
    nodes, counts = _keep_nodes(job, keep.fp16_keep)
    result = convert_fp16(job.fp32_path, dst, reference, keep_nodes=nodes,
                          data_max=keep.fp16_data_max)
    final = job.check.measure(onnx.load(str(dst)))
    if not final.within_budget:
        log.warning("FP16 with the keep-list is over budget (%.3g); keeping every group FP32",
                    final.value)
        nodes, counts = _keep_nodes(job, [g.selector for g in keep.fp16_groups])
        result = convert_fp16(job.fp32_path, dst, reference, keep_nodes=nodes,
                              data_max=keep.fp16_data_max)
        final = job.check.measure(onnx.load(str(dst)))
        section["fallback"] = "all keep-list groups kept FP32"
    if not final.within_budget:
        raise BudgetError(f"FP16 graph misses the budget ({final.as_dict()}) even with every "
                          f"keep-list group in FP32; add groups to {keep.path} or loosen the "
                          "budget")
    section.update(kept_fp32_groups=counts, conversion=result.as_dict(), final=final.as_dict())
    return section


def _restrict(job: _Job, qmodel: onnx.ModelProto, candidates: set[str]):
    """Keep Q/DQ only in front of keep-list candidates; measure what the quantizer added beyond
    them (ModelOpt also quantizes residual Adds, Concats, Resizes; onnxruntime every consumer of
    a quantized output) so the report shows whether keeping them out mattered."""
    quantized = quantized_nodes(qmodel)
    outside = quantized - candidates
    if not outside:
        return qmodel, quantized, None
    by_type = Counter(info.op_type for info in job.infos if info.name in outside)
    record = {"nodes": dict(by_type), "measured_with_them": job.check.measure(qmodel).as_dict()}
    return keep_quantized(qmodel, job.fp32, quantized & candidates), quantized & candidates, record


def fp16_keep_op_types(keep: KeepList) -> tuple[str, ...]:
    """Op types the keep-list keeps FP32 by op type alone (module-scoped rules cannot be passed
    to ModelOpt's ``op_types_to_exclude_fp16``; the budget check still measures the result)."""
    return tuple(sorted({op for sel in keep.fp16_keep if sel.module is None
                         for op in sel.op_types}))


def _run_int8(job: _Job, dst: Path) -> dict:
    opts, keep = job.options, job.keep
    exclude, excluded_counts = _keep_nodes(job, keep.int8_exclude)
    candidates = {n.name for n in job.infos if n.op_type in keep.int8_op_types} - exclude
    with tempfile.TemporaryDirectory(prefix="visdeploy_int8_") as tmp:
        full_path = Path(tmp) / "full.onnx"
        result = quantize_int8(job.fp32_path, full_path, job.calib.windows, method=opts.method,
                               engine=opts.engine, candidates=candidates,
                               op_types=keep.int8_op_types, exclude=exclude,
                               high_precision=opts.high_precision,
                               keep_fp32_op_types=fp16_keep_op_types(keep))
        qmodel = onnx.load(str(full_path))
    section: dict = {"tool": result.engine, "method": opts.method, "engine": result.engine,
                     "high_precision": result.high_precision,
                     "op_types": list(keep.int8_op_types), "excluded_by_keep_list": excluded_counts,
                     "calibration": result.as_dict(), "full": qdq_counts(qmodel)}
    qmodel, quantized, section["outside_keep_list"] = _restrict(job, qmodel, candidates)
    if opts.fallback:
        rows = block_sensitivity(qmodel, job.fp32, job.infos, quantized, job.ranker,
                                 depth=opts.block_depth or keep.block_depth,
                                 progress=opts.progress)
        model, record = fallback(qmodel, job.fp32, quantized, rows, job.check)
        section.update(sensitivity=[r.as_dict() for r in rows], fallback=record.as_dict(),
                       ranked_by=job.ranker.kind)
        final = record.final
    else:
        model, final = qmodel, job.check.measure(qmodel)
    if not quantized_nodes(model):
        raise BudgetError("no layer could stay INT8 within the budget; loosen it (--budget-ap, "
                          "--scores-tol/--mask-tol/--box-tol) or use fp16")
    onnx.save(model, str(dst))
    section.update(written=qdq_counts(model), final=final.as_dict())
    return section


def _other_t_parity(job: _Job, dst: Path) -> dict | None:
    """Parity of the written graph at T = OTHER_T frames (parity budget, dynamic-T models only:
    a fixed-T graph such as VisTR's accepts no other frame count)."""
    t = job.held.windows.shape[1]
    if not isinstance(job.check, ParityCheck) or t <= OTHER_T or job.manifest.fixed_frames:
        return None
    check = ParityCheck(job.fp32, job.held.windows.first_frames(OTHER_T), budget=job.options.parity,
                        threads=job.options.threads, backend=job.options.check_backend)
    return {"frames": OTHER_T, **check.measure(onnx.load(str(dst))).as_dict()}


def openvino_static_check(job: _Job, dst: Path) -> dict | None:
    """The static-shape OpenVINO record of the graph written to ``dst``, measured by the job's
    budget check (parity, or the AP metric; ``calibration.openvino_static``; its manifest form:
    ``manifest_fields``), or None when the budget was not measured on OpenVINO or the option is
    off."""
    if job.options.check_backend != "openvino" or not job.options.openvino_static:
        return None
    if isinstance(job.check, MetricCheck) and not job.check.measures_static_shapes:
        return {"skipped": "this task metric cannot run a graph compiled for a static shape (the "
                           "AP metric of --ap-data can); the runtime compiles the graph with "
                           "dynamic shapes"}
    runtime_t = job.manifest.window_frames
    if job.held.windows.shape[1] != runtime_t:
        # the runtime would compile a shape its windows never have
        return {"skipped": f"the calibration windows have T={job.held.windows.shape[1]} frames, "
                           f"the runtime's windows T={runtime_t} (the manifest's window): "
                           "calibrate without --window-length to measure and record the static "
                           "compile the runtime would use"}
    log.info("Measuring %s compiled by OpenVINO for the window's static shape (%s) ...",
             dst.name, job.check.kind)
    record = check_static_compile(onnx.load(str(dst)), job.check, job.held.windows)
    log.info("static shapes %s: %s %.3g (%s)", record["inputs"], record["check"],
             record["value"], "recorded for the runtime" if record["within_budget"] else
             "beyond the budget: the runtime keeps dynamic shapes")
    return record


def _runtime_smoke(directory: Path, precision: str, job: _Job) -> dict:
    """Run one held-out window through the runtime's onnxruntime backend (default settings),
    then through OpenVINO when it is installed (calibration.runtime_check)."""
    from runtime.backends import open_backend

    backend = open_backend(load_manifest(directory), "onnxruntime", device="cpu",
                           precision=precision, threads=job.options.threads)
    first = job.held.windows[:1]
    with backend:
        outputs = backend.infer(first.frames, first.content_hw)
    openvino = openvino_runtime_check(directory, precision, first.frames, first.content_hw,
                                      outputs, threads=job.options.threads)
    if openvino.get("within_budget") is False and job.options.check_backend != "openvino":
        log.warning("OpenVINO runs model.%s.onnx differently from onnxruntime, beyond the "
                    "parity budget (%s); the budget was measured on onnxruntime. If you deploy "
                    "with OpenVINO (--backend openvino, or auto on a CPU with it installed), "
                    "calibrate again with --check-backend openvino.", precision,
                    openvino["vs_onnxruntime"])
    return {"backend": "onnxruntime", "optimization": backend.optimization,
            "ms": round(backend.last_inference_ms, 1),
            "outputs": {k: list(v.shape) for k, v in outputs.items()},
            "openvino": openvino}


def _check_backend_available(backend: str) -> None:
    from calibration.parity import CHECK_BACKENDS
    from runtime.backends.openvino import openvino_installed

    if backend not in CHECK_BACKENDS:
        raise CalibrationError(f"--check-backend must be one of {CHECK_BACKENDS}, got {backend!r}")
    if backend == "openvino" and not openvino_installed():
        raise CalibrationError("--check-backend openvino needs the openvino package, which is not "
                               "installed: pip install -e \".[openvino]\" (or measure on "
                               "onnxruntime with --check-backend onnxruntime)")


def check_fp32_static(directory: str | Path, data, options: CalibrationOptions) -> dict:
    """``--precision fp32``: convert nothing; measure the FP32 graph compiled by OpenVINO for the
    window's static shape against its dynamic compile (``FP32_STATIC_BUDGET``, FP32 rounding)
    and record the shape in the FP32 manifest entry when it holds. Returns the report section."""
    if options.check_backend != "openvino" or not options.openvino_static:
        raise CalibrationError(
            "--precision fp32 converts nothing: it measures model.onnx compiled by OpenVINO for "
            "the window's static shape, so it needs --check-backend openvino (and not "
            "--no-openvino-static)")
    directory = Path(directory)
    start = time.perf_counter()
    options = replace(options, parity=FP32_STATIC_BUDGET, metric=None, ap_data=None, windows=1,
                      rank_by="parity")
    job = _prepare(directory, data, options)
    static = openvino_static_check(job, job.fp32_path)
    entry = {k: v for k, v in job.manifest.artifact("onnx", "fp32").items()
             if k != "openvino_static"}
    update_manifest(directory, {**entry, **manifest_fields(static)})
    section = {"tool": "none (the FP32 export)", "data": job.calib.summary(),
               "held_out_windows": len(job.held), "check": check_record(job.check),
               "openvino_static": static, "final": static}
    if "skipped" not in static:
        section["runtime_check"] = _runtime_smoke(directory, "fp32", job)
    section["seconds"] = round(time.perf_counter() - start, 1)
    write_report(directory, "fp32", section)
    return section


def calibrate_artifacts(directory: str | Path, *, precision: str, data,
                        options: CalibrationOptions | None = None) -> dict:
    """Write ``model.<precision>.onnx`` into ``directory`` and record it; returns the report section.

    Raises:
        CalibrationDataError: no or unreadable calibration data (never falls back to random).
        BudgetError: the budget cannot be met.
        KeepListError, QuantizerUnavailableError, runtime ManifestError/ArtifactError.
    """
    if precision not in PRECISIONS:
        raise CalibrationError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if data is None:
        raise CalibrationDataError(
            "no calibration data: pass --data SOURCE (a video file, an image folder, a dataset "
            "folder from python -m evaluation.synthetic, or synthetic[:PRESET[:VIDEOS]]); "
            "calibration never uses random inputs")
    options = options or CalibrationOptions()
    if precision == "fp32":
        return check_fp32_static(directory, data, options)
    if precision == "int8":
        check_high_precision(options.high_precision, choose_engine(options.engine, options.method))
    directory = Path(directory)
    start = time.perf_counter()
    job = _prepare(directory, data, options)
    dst = directory / f"model.{precision}.onnx"
    log.info("Converting %s to %s ...", job.fp32_path.name, precision)
    section = _run_fp16(job, dst) if precision == "fp16" else _run_int8(job, dst)
    section.update(data=job.calib.summary(), held_out_windows=len(job.held),
                   keep_list=str(job.keep.path), check=check_record(job.check))
    other = _other_t_parity(job, dst)
    if other:
        section["final_other_T"] = other
    static = openvino_static_check(job, dst)
    if static is not None:
        section["openvino_static"] = static
    entry = onnx_entry(directory, dst.name, precision=precision,
                       calibration=manifest_summary(section), **manifest_fields(static))
    update_manifest(directory, entry)
    section["runtime_check"] = _runtime_smoke(directory, precision, job)
    section["seconds"] = round(time.perf_counter() - start, 1)
    write_report(directory, precision, section)
    log.info("%s written (%.1f MB) in %.0f s; report %s", dst.name, dst.stat().st_size / 1e6,
             section["seconds"], directory / "calibration_report.json")
    return section
