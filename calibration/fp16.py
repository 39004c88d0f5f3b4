"""FP16 mixed precision inside the ONNX graph with ModelOpt AutoCast (CPU reference runs).

I/O stays float32 (``keep_io_types``); the keep-list's groups stay FP32 (``nodes_to_exclude``);
AutoCast also keeps every node whose reference I/O magnitude exceeds ``data_max`` (FP16 ULP at 512
is 0.5) — its reference ranges come from real calibration windows, never random inputs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from calibration.data import Windows
from calibration.errors import QuantizerUnavailableError
from calibration.graph import exact_name_regex

log = logging.getLogger("visdeploy.calibration")
DEFAULT_DATA_MAX = 512.0


@dataclass(frozen=True)
class Fp16Result:
    """What ``convert_fp16`` wrote: node counts and the time taken."""

    path: Path
    nodes: int
    fp16_nodes: int
    kept_fp32: int
    seconds: float

    def as_dict(self) -> dict:
        return {"file": self.path.name, "nodes": self.nodes, "fp16_nodes": self.fp16_nodes,
                "kept_fp32_by_keep_list": self.kept_fp32, "seconds": round(self.seconds, 1)}


def _import_autocast(log_level: str):
    try:
        from modelopt.onnx.autocast import configure_logging, convert_to_mixed_precision
    except ImportError as err:
        raise QuantizerUnavailableError(
            "FP16 conversion needs NVIDIA ModelOpt: pip install -e '.[quant]' (installs "
            f"nvidia-modelopt without its [onnx] extra, keeping one onnxruntime); import said: {err}"
        ) from err
    configure_logging(log_level)  # AutoCast logs every node it keeps at INFO
    return convert_to_mixed_precision


def _linear_dead_node_cleanup(self) -> None:
    """Same rule as ModelOpt 0.47's ``PrecisionConverter._cleanup_no_consumer_nodes`` (drop nodes
    none of whose outputs is consumed or a graph output), in one pass instead of one graph scan
    per tensor; upstream's scan is quadratic (200 of 285 s on the tiny TeViT)."""
    outputs = {o.name for o in self.model.graph.output}
    consumed = {name for node in self.model.graph.node for name in node.input}
    dead = [node for node in self.model.graph.node
            if not any(out in outputs or out in consumed for out in node.output)]
    for node in dead:
        self.model.graph.node.remove(node)


@contextmanager
def linear_cleanup_patch():
    """Swap in ``_linear_dead_node_cleanup`` for the duration of one conversion (restored after)."""
    from modelopt.onnx.autocast.precisionconverter import PrecisionConverter

    original = getattr(PrecisionConverter, "_cleanup_no_consumer_nodes", None)
    if original is None:  # another ModelOpt version: run it unchanged
        yield
        return
    PrecisionConverter._cleanup_no_consumer_nodes = _linear_dead_node_cleanup
    try:
        yield
    finally:
        PrecisionConverter._cleanup_no_consumer_nodes = original


def write_reference_inputs(windows: Windows, input_names: list[str], folder: Path) -> Path:
    """One batch-1 feed per window as NPZ files keyed by input name (AutoCast's multi-batch
    input format)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, feeds in enumerate(windows.feeds(input_names)):
        np.savez(folder / f"{i:04d}.npz", **feeds)
    return folder


def forget_shared_unknown_dims(model: onnx.ModelProto) -> int:
    """Clear ``dim_param: "unk"`` in value_info and outputs; returns how many were cleared.

    AutoCast 0.47's type inference names every unknown dimension ``unk``; onnxruntime reads
    equal names as equal sizes and fails ("Shape mismatch attempting to re-use buffer").
    An anonymous dimension means the same "unknown" without that claim.
    """
    cleared = 0
    for info in [*model.graph.value_info, *model.graph.output]:
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param == "unk":
                dim.ClearField("dim_param")
                cleared += 1
    return cleared


def _count_fp16(model: onnx.ModelProto) -> int:
    """Nodes with at least one float16 output (from the converted graph's value_info)."""
    fp16 = {v.name for v in model.graph.value_info
            if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16}
    return sum(1 for n in model.graph.node if n.op_type != "Cast" and fp16 & set(n.output))


def convert_fp16(src: str | Path, dst: str | Path, windows: Windows, *,
                 keep_nodes: set[str], data_max: float = DEFAULT_DATA_MAX,
                 log_level: str = "WARNING") -> Fp16Result:
    """Write the FP16 mixed-precision graph of ``src`` to ``dst``.

    Args:
        src: FP32 ONNX (``frames`` uint8 [B, T, H, W, 3] input).
        dst: output path.
        windows: reference windows (``calibration.data.Windows``; 1-3 are enough: AutoCast keeps
            every intermediate tensor of every window in memory).
        keep_nodes: node names kept in FP32 (from the keep-list).
        data_max: AutoCast keeps nodes whose reference I/O exceeds this magnitude in FP32.
        log_level: AutoCast's own log level (INFO lists every node kept in FP32).
    """
    convert = _import_autocast(log_level)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="visdeploy_fp16_") as tmp:
        inputs = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]
        ref = write_reference_inputs(windows, inputs, Path(tmp) / "reference")
        work = Path(tmp) / "model.onnx"  # private copy: converters may write beside the input
        shutil.copyfile(src, work)
        with linear_cleanup_patch():
            model = convert(str(work), low_precision_type="fp16",
                            nodes_to_exclude=[exact_name_regex(keep_nodes)] if keep_nodes else None,
                            keep_io_types=True, calibration_data=str(ref), providers=["cpu"],
                            data_max=data_max)
    dst = Path(dst)
    forget_shared_unknown_dims(model)
    onnx.save(model, str(dst))
    result = Fp16Result(dst, len(model.graph.node), _count_fp16(model), len(keep_nodes),
                        time.perf_counter() - start)
    log.info("FP16 graph %s: %d of %d nodes in fp16, %d kept fp32 by the keep-list (%.0f s)",
             dst.name, result.fp16_nodes, result.nodes, result.kept_fp32, result.seconds)
    return result
