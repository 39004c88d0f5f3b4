"""ONNX export, graph checks, parity against PyTorch, manifests, and (later) TensorRT engines.

``python -m export MODEL --preset ... --checkpoint ... --out artifacts/MODEL``.
Heavy modules (torch, onnx, onnxruntime) are imported by the submodules that need them.
"""
