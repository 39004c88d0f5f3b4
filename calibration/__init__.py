"""FP16 and INT8 decided inside the ONNX graph (TensorRT 11 is strongly typed), verified on CPU.

``python -m calibration ARTIFACTS --precision fp16|int8 --data SOURCE [--method max|entropy|
percentile]`` writes ``model.fp16.onnx`` / ``model.int8.onnx`` beside ``model.onnx``, adds the
manifest entry and records the sensitivity table and final deltas in ``calibration_report.json``.

Modules (one job each; ModelOpt is imported only by the converters):

- ``data``: calibration windows from a video, image folder, dataset folder or ``synthetic``,
  letterboxed and windowed by the runtime's own code; never random data.
- ``keeplist``: per-model rules (``models/<name>/precision.json``): FP16 groups kept FP32, INT8
  op types and exclusions. ``graph``: node module scopes, selections, sensitivity blocks.
- ``fp16``: ModelOpt AutoCast. ``int8``: ModelOpt ONNX PTQ or onnxruntime ``quantize_static``.
  ``qdq``: which nodes are quantized, and Q/DQ removal for fallback subsets.
- ``parity`` and ``checks``: parity vs FP32 with a ``ParityBudget``, or a pluggable task metric
  (``ap_metric.YtvisApMetric``: YouTube-VIS AP through the runtime) with an AP-drop budget.
- ``sensitivity``: per-block INT8 sensitivity and fallback; per-group FP16 sensitivity.
- ``calibrate``: the pipeline behind the CLI; ``report``: report file and manifest entry.
"""
