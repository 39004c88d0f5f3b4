"""``config.pbtxt`` of a Triton model for an artifact (Triton's ``ModelConfig`` in text format).

The text lists the engine contract (docs/contract.md §1) without the batch axis, which Triton
adds when ``max_batch_size > 0``: ``frames`` UINT8 ``[T, H, W, 3]`` (T = -1 unless the artifact
fixes it, as VisTR does), ``content_hw`` INT32 ``[2]`` when the manifest declares it, and the six
outputs. Nothing here imports Triton; ``tests/export/test_triton_repository.py`` parses every
kind with ``tritonclient.grpc.model_config_pb2`` and protobuf's ``text_format``.

Schema: triton-inference-server/common ``protobuf/model_config.proto`` (``ModelConfig``,
``ModelInput``, ``ModelDynamicBatching``, ``ModelInstanceGroup``, ``cc_model_filenames``).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backends.base import CONTRACT_OUTPUTS, contract_outputs
from runtime.manifest import CONTENT_HW, FRAMES, Manifest

# --kind -> Triton backend/platform line and the model file name Triton looks for under 1/
KINDS = {
    "python": ('backend: "python"', "model.py"),
    "onnxruntime": ('backend: "onnxruntime"', "model.onnx"),
    "tensorrt": ('platform: "tensorrt_plan"', "model.plan"),
}
TRITON_TYPES = {"uint8": "TYPE_UINT8", "int32": "TYPE_INT32", "float32": "TYPE_FP32"}
# Triton's onnxruntime backend: optimization.graph.level 1 = basic + extended (its README,
# "Other Optimization Options"); the runtime uses extended too (runtime/backends/onnxrt.py).
ORT_EXTENDED_LEVEL = 1


@dataclass(frozen=True)
class BatchingOptions:
    """Triton's dynamic batcher and instances.

    ``preferred`` batch sizes (empty: the manifest's opt and max batch), the longest a request
    waits in the queue for others (``max_queue_delay_us``; longer = fuller batches, more
    latency), ``instances`` per device and ``instance_kind`` (KIND_CPU or KIND_GPU).
    """

    preferred: tuple[int, ...] = ()
    max_queue_delay_us: int = 2000
    instances: int = 1
    instance_kind: str = "KIND_CPU"


@dataclass(frozen=True)
class ServedShape:
    """What one Triton model accepts: ``max_batch`` windows per execution, ``frames`` T (None =
    any within the manifest's range), and the inputs the engine declares."""

    max_batch: int
    frames: int | None
    inputs: tuple[str, ...]


def preferred_sizes(manifest: Manifest, max_batch: int) -> tuple[int, ...]:
    """The manifest's opt and max batch sizes that fit ``max_batch``, above 1 when any is."""
    _, opt, top = manifest.batch_range
    sizes = sorted({s for s in (opt, top, max_batch) if s <= max_batch})
    return tuple(s for s in sizes if s > 1) or (sizes[-1],)


def _dims(values) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _tensor(name: str, dtype: str, dims) -> str:
    return f'  {{ name: "{name}" data_type: {TRITON_TYPES[dtype]} dims: {_dims(dims)} }}'


def io_sections(manifest: Manifest, shape: ServedShape) -> str:
    """``input [...]`` and ``output [...]`` without the batch axis."""
    h, w = manifest.input_hw
    t = shape.frames if shape.frames is not None else -1
    inputs = [_tensor(FRAMES, "uint8", (t, h, w, 3))]
    if CONTENT_HW in shape.inputs:
        inputs.append(_tensor(CONTENT_HW, "int32", (2,)))
    outputs = []
    for name, (dtype, dims, _) in contract_outputs(manifest).items():
        letters = CONTRACT_OUTPUTS[name][1]
        served = [t if letter == "T" else d for letter, d in zip(letters, dims) if letter != "B"]
        outputs.append(_tensor(name, dtype.name, served))
    return ("input [\n" + ",\n".join(inputs) + "\n]\n"
            "output [\n" + ",\n".join(outputs) + "\n]\n")


def batching_sections(manifest: Manifest, shape: ServedShape, options: BatchingOptions) -> str:
    """``dynamic_batching { ... }`` and ``instance_group [ ... ]``."""
    preferred = options.preferred or preferred_sizes(manifest, shape.max_batch)
    return (f"dynamic_batching {{\n  preferred_batch_size: {_dims(preferred)}\n"
            f"  max_queue_delay_microseconds: {options.max_queue_delay_us}\n}}\n"
            f"instance_group [ {{ count: {options.instances} kind: {options.instance_kind} }} ]\n")


def parameters_section(parameters: dict[str, str]) -> str:
    """``parameters { key: ... value: { string_value: ... } }`` per entry (sorted)."""
    return "".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n'
                   for k, v in sorted(parameters.items()))


def model_config_text(manifest: Manifest, *, name: str, kind: str, shape: ServedShape,
                      options: BatchingOptions, parameters: dict[str, str],
                      extra: str = "", header: str = "") -> str:
    """The whole ``config.pbtxt``: ``header`` comment lines, name, backend or platform, batch
    size, I/O, batching, instances, ``extra`` (kind-specific sections) and ``parameters``."""
    backend_line, _ = KINDS[kind]
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return (f'{comment}name: "{name}"\n{backend_line}\nmax_batch_size: {shape.max_batch}\n'
            + io_sections(manifest, shape) + batching_sections(manifest, shape, options)
            + extra + parameters_section(parameters))


def onnxruntime_extra() -> str:
    """The onnxruntime backend's graph optimisation at the runtime's level (extended)."""
    return f"optimization {{ graph {{ level: {ORT_EXTENDED_LEVEL} }} }}\n"


def tensorrt_extra(plans: dict[str, str]) -> str:
    """``cc_model_filenames``: compute capability -> plan file, so one repository serves each
    GPU generation with the plan built for it (TensorRT plans are tied to one)."""
    return "".join(f'cc_model_filenames {{ key: "{cc}" value: "{file}" }}\n'
                   for cc, file in sorted(plans.items()))
