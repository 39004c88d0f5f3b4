"""The written graph through the runtime's other CPU backend: OpenVINO runs it as well.

After calibration writes ``model.<precision>.onnx``, ``openvino_runtime_check`` runs the same
held-out window that onnxruntime ran through ``--backend openvino``: it records the time, how
many convolution / matrix-product kernels OpenVINO runs in INT8 (a Q/DQ graph only speeds up
where they do) and how far its outputs are from onnxruntime's on the same graph
(``calibration.parity.compare_outputs``, judged by the calibration's default parity budget).
Without the openvino package the check says so and is skipped; calibration never needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.parity import ParityBudget, compare_outputs


def openvino_runtime_check(directory: str | Path, precision: str, frames: np.ndarray,
                           content_hw: np.ndarray | None, reference: dict[str, np.ndarray], *,
                           threads: int = 0) -> dict:
    """``frames`` uint8 [1, T, H, W, 3] (+ ``content_hw`` int32 [1, 2]) through OpenVINO;
    ``reference`` is onnxruntime's output for the same window and graph."""
    from runtime.backends import open_backend
    from runtime.backends.openvino import kernel_precisions, openvino_installed
    from runtime.manifest import load_manifest

    if not openvino_installed():
        return {"skipped": "openvino is not installed (pip install -e \".[openvino]\")"}
    backend = open_backend(load_manifest(directory), "openvino", precision=precision,
                           threads=threads, stages="one")
    with backend:
        outputs = backend.infer(frames, content_hw)
        kernels = kernel_precisions(backend.compiled)
    stats = compare_outputs([reference], [outputs])
    int8 = sum(n for (_, p), n in kernels.items() if p in ("i8", "u8"))
    return {"backend": "openvino", "ms": round(backend.last_inference_ms, 1),
            "static_shapes": {k: list(v) for k, v in backend.static_shapes.items()} or None,
            "int8_kernels": f"{int8} of {sum(kernels.values())}",
            "vs_onnxruntime": stats.as_dict(),
            "within_budget": ParityBudget().loss(stats) <= 1}
