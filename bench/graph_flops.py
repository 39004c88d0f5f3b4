"""FLOPs an exported ONNX graph does: its convolutions and matrix products at one input shape.

``graph_flops(onnx_path, {input: shape})`` reads the graph with OpenVINO's ONNX reader (no
optimisation passes), makes every input static and lets OpenVINO propagate the shapes; onnx's
own shape inference leaves some of our MatMul shapes unknown (data-dependent Reshapes). The
reader maps ONNX ops one to one where it matters here: Conv -> Convolution or
GroupConvolution, ConvTranspose -> ConvolutionBackpropData, MatMul -> MatMul, Gemm -> MatMul
(+ Add). A multiply-add counts as 2 FLOPs, the convention of ``torch.utils.flop_counter``:

- convolution: 2 * prod(output shape) * prod(weight shape[1:]) (C_in/groups * kernel);
- transposed convolution: 2 * prod(input shape) * prod(weight shape[1:]) (every input value
  is scattered through a C_out * kernel footprint);
- matrix product [..., M, K] x [..., K, N]: 2 * prod(output shape) * K.

Everything else (softmax, layer norm, GridSample, RoiAlign, element-wise ops) is left out: it
is memory-bound work, not what a FLOP/s peak measures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

CONV_OPS = ("Convolution", "GroupConvolution")


def _shape(port) -> list[int]:
    return [int(d) for d in port.get_shape()]


def op_flops(op) -> tuple[str, int] | None:
    """(kind, FLOPs) of one OpenVINO op, or None when it is not a convolution/matrix product."""
    kind = op.get_type_name()
    if kind in CONV_OPS:
        out, weight = _shape(op.output(0)), _shape(op.input(1))
        per_output = np.prod(weight[2:] if kind == "GroupConvolution" else weight[1:])
        return "Conv", int(2 * np.prod(out) * per_output)
    if kind == "ConvolutionBackpropData":  # ONNX ConvTranspose; weight [C_in, C_out, k...]
        data, weight = _shape(op.input(0)), _shape(op.input(1))
        return "ConvTranspose", int(2 * np.prod(data) * np.prod(weight[1:]))
    if kind == "MatMul":
        a = _shape(op.input(0))
        attrs = op.get_attributes()
        k = a[-2] if attrs.get("transpose_a") and len(a) > 1 else a[-1]
        return "MatMul", int(2 * np.prod(_shape(op.output(0))) * k)
    return None


def graph_flops(onnx_path: str | Path, input_shapes: dict[str, list[int]]) -> dict[str, int]:
    """{op kind: FLOPs} and ``"total"`` of the graph at ``input_shapes`` ({name: static shape})."""
    model = _static_model(onnx_path, input_shapes)
    counts: Counter[str] = Counter()
    for op in model.get_ordered_ops():
        found = op_flops(op)
        if found:
            counts[found[0]] += found[1]
    return {**counts, "total": sum(counts.values())}


def _static_model(onnx_path: str | Path, input_shapes: dict[str, list[int]]):
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    model.reshape({name: ov.PartialShape(shape) for name, shape in input_shapes.items()})
    return model


def stage_flops(frame_path: str | Path, clip_path: str | Path, shapes: dict[str, list[int]], *,
                new_frames: int, frames: int) -> int:
    """FLOPs of a two-stage window: the frame stage on ``new_frames`` frames plus the clip stage
    on the features of ``frames`` frames (``shapes``: the whole model's inputs at ``frames``)."""
    at = lambda t: [shapes["frames"][0], t, *shapes["frames"][2:]]  # noqa: E731
    frame_stage = graph_flops(frame_path, {"frames": at(new_frames)})["total"]
    features = _static_model(frame_path, {"frames": at(frames)})
    clip_shapes = {next(n for n in o.get_names()): [int(d) for d in o.get_shape()]
                   for o in features.outputs}
    clip_inputs = {i.get_any_name() for i in _static_model(clip_path, {}).inputs}
    clip_shapes = {n: s for n, s in clip_shapes.items() if n in clip_inputs}
    clip_shapes.update({n: s for n, s in shapes.items() if n in clip_inputs and n != "frames"})
    return frame_stage + graph_flops(clip_path, clip_shapes)["total"]


def onnx_op_counts(onnx_path: str | Path) -> dict[str, int]:
    """How many Conv / ConvTranspose / MatMul / Gemm nodes the ONNX file has (a cross-check of
    what ``graph_flops`` counted)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    kinds = Counter(n.op_type for n in graph.node)
    return {k: kinds[k] for k in ("Conv", "ConvTranspose", "MatMul", "Gemm")}


def eager_flops(model, inputs: tuple) -> dict[str, int]:
    """{aten op: FLOPs} of one eager forward, from ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    by_op = {str(op).split(".")[1] if "." in str(op) else str(op): int(n)
             for op, n in counter.get_flop_counts()["Global"].items()}
    return {**by_op, "total": int(counter.get_total_flops())}
