"""Explicit Q/DQ graph surgery: which nodes are quantized, and removing Q/DQ in front of some.

A node is *quantized* when one of its inputs comes from a ``DequantizeLinear``. Removing the
quantization of a node rewires those inputs to the original float tensors: the input of the
matching ``QuantizeLinear`` (activations, and weights in ModelOpt's ``W -> Q -> DQ`` form) or the
FP32 model's initializer at the same input slot (onnxruntime's pre-quantized ``W_int8 -> DQ``
form). Ranges are per tensor and computed on the FP32 model, so removing Q/DQ from some nodes
gives exactly the graph that calibrating with those nodes excluded would give — which lets
sensitivity and fallback try many exclusion sets from one calibration.
"""

from __future__ import annotations

import onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def quantized_nodes(model: onnx.ModelProto) -> set[str]:
    """Names of non-Q/DQ nodes that read at least one DequantizeLinear output."""
    producers = _producers(model)
    return {node.name for node in model.graph.node if node.op_type not in QDQ_OPS
            and any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear"
                    for i in node.input)}


def _float_source(tensor: str, producers: dict[str, onnx.NodeProto]) -> str | None:
    """The float tensor behind a DQ output when it comes through a Q, else None."""
    while True:
        dq = producers.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            return tensor
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            return None
        tensor = q.input[0]


def _remove_dead_qdq(model: onnx.ModelProto) -> None:
    """Drop Q/DQ nodes and initializers nothing reads any more (repeated to a fixed point)."""
    outputs = {o.name for o in model.graph.output}
    while True:
        consumed = {name for node in model.graph.node for name in node.input} | outputs
        dead = [n for n in model.graph.node
                if n.op_type in QDQ_OPS and not any(o in consumed for o in n.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    consumed = {name for node in model.graph.node for name in node.input} | outputs
    unused = [init for init in model.graph.initializer if init.name not in consumed]
    for init in unused:
        model.graph.initializer.remove(init)


def keep_quantized(qmodel: onnx.ModelProto, fp32: onnx.ModelProto,
                   keep: set[str]) -> onnx.ModelProto:
    """A copy of ``qmodel`` in which only the nodes named in ``keep`` stay quantized.

    ``fp32`` is the model ``qmodel`` was quantized from (source of the original weights when a
    weight was stored pre-quantized). Raises ValueError when the quantizer removed FP32 nodes or
    a weight cannot be restored.
    """
    # Casts are exempt: ModelOpt's FP16 high precision replaces the input Cast (uint8 -> FP32)
    # by its own (uint8 -> FP16, another name; measured on the tiny IFC), and no subset rewiring
    # goes through a Cast.
    missing = ({n.name for n in fp32.graph.node if n.op_type != "Cast"}
               - {n.name for n in qmodel.graph.node})
    if missing:
        raise ValueError(f"the quantizer removed {len(missing)} nodes of the FP32 graph (e.g. "
                         f"{sorted(missing)[:3]}), so subsets cannot be derived from it; use "
                         "symmetric activations (onnxruntime drops Relus absorbed by asymmetric "
                         "ranges) or calibrate once per subset")
    model = onnx.ModelProto()
    model.CopyFrom(qmodel)
    producers = _producers(model)
    fp32_nodes = {node.name: list(node.input) for node in fp32.graph.node}
    fp32_inits = {init.name: init for init in fp32.graph.initializer}
    for node in model.graph.node:
        if node.op_type in QDQ_OPS or node.name in keep:
            continue
        for slot, tensor in enumerate(node.input):
            dq = producers.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            source = _float_source(tensor, producers)
            if source is None:  # pre-quantized initializer: take the FP32 model's tensor
                source = _restore_initializer(model, producers, node, slot, fp32_nodes,
                                              fp32_inits)
            node.input[slot] = source
    _unquantize_outputs(model, producers, keep)
    _remove_dead_qdq(model)
    return model


def _restore_initializer(model: onnx.ModelProto, producers: dict, node: onnx.NodeProto,
                         slot: int, fp32_nodes: dict, fp32_inits: dict) -> str:
    """Name of the FP32 initializer behind ``node.input[slot]`` (added to ``model`` if needed).

    onnxruntime names a bias DQ's output like the original bias; that DQ is renamed so the FP32
    initializer can take the name back (other consumers keep reading the DQ).
    """
    original = fp32_nodes.get(node.name, [])
    if slot >= len(original) or original[slot] not in fp32_inits:
        raise ValueError(f"cannot restore input {slot} of {node.name}: it is not an initializer "
                         "of the FP32 model; re-run calibration from the FP32 ONNX")
    name = original[slot]
    dq = producers.get(name)
    if dq is not None:  # the DQ output carries the initializer's name
        renamed = f"{name}_dequantized"
        dq.output[0] = renamed
        producers[renamed] = producers.pop(name)
        for other in model.graph.node:
            if other.name != node.name:
                other.input[:] = [renamed if i == name else i for i in other.input]
    if name not in {init.name for init in model.graph.initializer}:
        model.graph.initializer.append(fp32_inits[name])
    return name


def _unquantize_outputs(model: onnx.ModelProto, producers: dict[str, onnx.NodeProto],
                        keep: set[str]) -> None:
    """Graph outputs written by a DQ (onnxruntime quantizes op outputs too): when the op that
    computed the float tensor is not kept, the DQ becomes an Identity of that tensor."""
    for output in model.graph.output:
        dq = producers.get(output.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producers.get(dq.input[0])
        source = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else None
        origin = producers.get(source) if source else None
        if source is None or (origin is not None and origin.name in keep):
            continue
        identity = onnx.helper.make_node("Identity", [source], [output.name],
                                         name=f"{dq.name}_unquantized")
        dq.CopyFrom(identity)


def qdq_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Q and DQ node counts and the number of quantized nodes."""
    ops = [n.op_type for n in model.graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"),
            "DequantizeLinear": ops.count("DequantizeLinear"),
            "quantized_nodes": len(quantized_nodes(model))}
