"""The ``visdeploy`` command: one entry point for export, calibration, TensorRT builds,
streaming, evaluation, synthetic data and benchmarks, plus ``info`` and ``doctor``."""
