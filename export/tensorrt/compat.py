"""Every TensorRT 10 / 11 difference the engine builder depends on, in one place.

- TensorRT 11 networks are always strongly typed: the FP16/INT8 builder flags and implicit INT8
  calibration are gone, and ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` is deprecated and
  ignored. Precision therefore comes from the ONNX file chosen (``model.onnx``,
  ``model.fp16.onnx``, ``model.int8.onnx``: Casts and explicit Q/DQ).
- TensorRT 10 (Jetson JetPack 6 ships 10.3) is asked for a strongly typed network explicitly, so
  it builds the same ONNX file the same way. No precision builder flag is set on either version.
- The engine inspector's JSON names a tensor's type ``Format/Datatype`` (10.x; the 11.1 OSS tools
  still read that key) or ``Datatype`` (see ``TrtFlavor.inspector_type_keys``).

Nothing here imports TensorRT; ``import_tensorrt`` does, with an error that says how to install it.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_MAJORS = (10, 11)
INSTALL_HINT = (
    "install TensorRT on a machine with an NVIDIA GPU: "
    "`pip install -e \".[trt]\" --extra-index-url https://pypi.nvidia.com` (x86_64 / SBSA: "
    "TensorRT 10 or 11 wheels come from NVIDIA's index, PyPI only holds stubs), or on Jetson "
    "(JetPack 6, TensorRT 10.3) `sudo apt-get install python3-libnvinfer python3-libnvinfer-dev` "
    "plus `pip install cuda-python polygraphy`"
)


class TensorRTUnavailableError(RuntimeError):
    """The ``tensorrt`` package cannot be imported here."""


class UnsupportedTensorRTError(RuntimeError):
    """The installed TensorRT is neither 10.x nor 11.x."""


@dataclass(frozen=True)
class TrtFlavor:
    """What differs between the TensorRT major versions we build with."""

    version: str
    major: int

    def network_options(self) -> dict:
        """Keyword arguments for Polygraphy's ``NetworkFromOnnxPath``."""
        if self.major == 10:
            return {"strongly_typed": True}  # 10.x: opt in, so precision follows the ONNX types
        return {}  # 11.x: always strongly typed; the flag is deprecated and ignored

    @property
    def inspector_type_keys(self) -> tuple[str, ...]:
        """Keys of a tensor entry in the inspector's JSON that name its data type, tried in order.

        ``Format/Datatype`` is what 10.x writes and what the TensorRT 11.1 OSS release still
        reads from ``IEngineInspector`` JSON (Polygraphy ``backend/trt/util.py``, engine layer
        metadata; ``.agents/skills/trt-perf-analysis/scripts/trt_perf/data.py`` validates the same
        key and also knows separate ``Datatype``/``Format`` keys). No 11.x document states one
        key for every build, so all are tried; when none is present the precision read-back is
        recorded as unverified (``layers.parse_layer_information``) instead of guessed.
        """
        return ("Format/Datatype", "Datatype", "DataType")


def flavor_for(version: str) -> TrtFlavor:
    """``TrtFlavor`` for a TensorRT version string such as ``10.3.0.30`` or ``11.4.0.106``."""
    try:
        major = int(version.split(".")[0])
    except ValueError as err:
        raise UnsupportedTensorRTError(f"cannot read the TensorRT version {version!r}") from err
    if major not in SUPPORTED_MAJORS:
        raise UnsupportedTensorRTError(
            f"TensorRT {version} is not supported; visdeploy builds with TensorRT "
            f"{' or '.join(f'{m}.x' for m in SUPPORTED_MAJORS)}. {INSTALL_HINT}")
    return TrtFlavor(version=version, major=major)


def import_tensorrt():
    """The ``tensorrt`` module, or ``TensorRTUnavailableError`` saying how to install it."""
    try:
        import tensorrt
    except ImportError as err:  # also OSError-like failures of libnvinfer surface as ImportError
        raise TensorRTUnavailableError(f"the tensorrt package cannot be imported ({err}); "
                                       f"{INSTALL_HINT}") from err
    return tensorrt
