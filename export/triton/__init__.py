"""Triton Inference Server model repositories for artifacts: ``python -m export.triton A
--repository DIR [--kind python|onnxruntime|tensorrt]`` (docs/serving.md)."""
