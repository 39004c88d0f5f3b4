"""Which optional extra provides a module, and the message for a command that lacks it."""

from __future__ import annotations

# top-level module -> (extra, what it is for)
EXTRA_OF_MODULE = {
    "torch": "export", "torchvision": "export", "onnx": "export", "onnxscript": "export",
    "modelopt": "quant", "onnx_graphsurgeon": "quant", "onnxconverter_common": "quant",
    "onnxslim": "quant", "polygraphy": "quant",
    "tensorrt": "trt", "cuda": "trt",
    "pycocotools": "eval", "skimage": "eval",
    "av": "video", "matplotlib": "plots", "supervision": "interop",
}
TRT_HINT = ("make setup-trt (TensorRT wheels come from NVIDIA's index, not PyPI; on a Jetson use "
            "JetPack's python3-libnvinfer)")


def install_command(extra: str) -> str:
    """The command that installs ``extra`` (TensorRT: NVIDIA's index)."""
    if extra == "trt":
        return TRT_HINT
    return f"pip install 'visdeploy[{extra}]' (in a clone: pip install -e '.[{extra}]')"


def missing_module_message(err: ModuleNotFoundError, command: str) -> str | None:
    """``"<command> needs the X extra: ..."`` when ``err`` names a module of an extra, else
    None (a missing module that no extra provides is a real bug: let it raise)."""
    top = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (f"{command} needs the '{extra}' extra (module {top!r} is not installed): "
            f"{install_command(extra)}")
