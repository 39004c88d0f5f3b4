"""An ONNX graph compiled by OpenVINO, seen like an onnxruntime ``InferenceSession``.

The budget checks (``calibration.checks``) run candidate graphs through ``get_inputs()``,
``get_outputs()`` and ``run(names, feeds)``. ``OpenVINOSession`` gives them that interface on
OpenVINO's CPU plugin with the runtime's own compile properties
(``runtime.backends.openvino.compile_config``: the f32 precision hint, the thread count), so a
budget measured with ``--check-backend openvino`` is measured on the kernels ``--backend
openvino`` (and ``--backend auto`` on a CPU with OpenVINO installed) will run. That matters for
INT8: OpenVINO runs Q/DQ convolutions and matrix products with real INT8 kernels, onnxruntime's
CPU provider mostly as FP32 on dequantized values, and the two differ by more than the parity
budget on the trained tiny TeViT (docs/notes/lab-notebook.md, "The INT8 budget depends on the
backend").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx


class OpenVINOSession:
    """``model`` (ModelProto or ONNX path) compiled for the CPU with ``threads`` threads;
    ``shapes`` (input name -> shape) compiles those inputs static, as the runtime does for an
    artifact whose manifest records them (``runtime.backends.openvino``)."""

    def __init__(self, model: onnx.ModelProto | str | Path, *, threads: int = 0,
                 shapes: dict[str, list[int]] | None = None) -> None:
        from runtime.backends.openvino import CompiledIO, compile_config, import_openvino
        from runtime.backends.openvino_cache import read_model

        core = import_openvino().Core()
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model),
                                                                           load_external_data=False)
        names = {"inputs": [i.name for i in proto.graph.input],
                 "outputs": [o.name for o in proto.graph.output]}
        with tempfile.TemporaryDirectory(prefix="visdeploy_ov_check_") as tmp:
            path = Path(model) if not isinstance(model, onnx.ModelProto) else \
                Path(tmp) / "candidate.onnx"
            if isinstance(model, onnx.ModelProto):
                onnx.save(model, str(path))
            self.compiled = core.compile_model(read_model(core, path, shapes), "CPU",
                                               compile_config(threads))
        self.io = CompiledIO(self.compiled, names)
        self.request = self.compiled.create_infer_request()

    def get_inputs(self):
        return self.io.get_inputs()

    def get_outputs(self):
        return self.io.get_outputs()

    def run(self, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        from runtime.backends.openvino import run_compiled

        names = names or [p.name for p in self.get_outputs()]
        return run_compiled(self.request, self.compiled, names, feeds)
