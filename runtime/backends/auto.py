"""``--backend auto``: the fastest backend installed for the device.

- a TensorRT plan when TensorRT and cuda-python are installed, an NVIDIA GPU is visible and the
  manifest lists a plan at this precision built for that GPU and TensorRT version;
- otherwise on a GPU device (``cuda``, ``tensorrt``, or ``auto`` with onnxruntime's CUDA
  execution provider present): onnxruntime on that device;
- otherwise on the CPU: OpenVINO when installed (about twice onnxruntime's speed on this
  project's exports, docs/notes/lab-notebook.md), else onnxruntime.

``choose_backend`` is the pure rule (unit-tested); ``detect_environment`` looks at the machine.
The choice and its reason are kept on the backend (``Backend.selection``) and shown in the
stream summary; ``--backend onnxruntime|openvino|tensorrt`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backends.openvino import openvino_installed
from runtime.backends.openvino_cache import openvino_cannot_run
from runtime.backends.tensorrt import missing_packages
from runtime.manifest import Manifest

GPU_DEVICES = ("cuda", "tensorrt")


@dataclass(frozen=True)
class Environment:
    """What the choice depends on."""

    tensorrt_plan: bool  # a manifest plan loads here (packages, GPU, matching platform)
    cuda_onnxruntime: bool  # onnxruntime has the CUDA execution provider
    openvino: bool  # openvino is importable
    why_no_plan: str = ""
    openvino_cannot: str = ""  # why OpenVINO cannot run this artifact's graph ("" = it can)


@dataclass(frozen=True)
class Choice:
    backend: str
    device: str
    reason: str


def choose_backend(device: str, env: Environment) -> Choice:
    """The backend for ``device`` (auto|cpu|cuda|tensorrt) in ``env``."""
    if device != "cpu" and env.tensorrt_plan:
        return Choice("tensorrt", "auto" if device == "tensorrt" else device,
                      "a TensorRT plan built for this GPU is listed")
    plan = f" ({env.why_no_plan})" if env.why_no_plan else ""
    if device in GPU_DEVICES or (device == "auto" and env.cuda_onnxruntime):
        return Choice("onnxruntime", device, f"GPU device {device!r}, no usable TensorRT plan{plan}")
    if env.openvino and env.openvino_cannot:
        return Choice("onnxruntime", device,
                      f"CPU; openvino cannot run this graph: {env.openvino_cannot}{plan}")
    if env.openvino:
        return Choice("openvino", "cpu", f"CPU; openvino is installed{plan}")
    return Choice("onnxruntime", device, f"CPU; openvino is not installed{plan}")


def detect_environment(manifest: Manifest, precision: str, device: str) -> Environment:
    """Look at this machine: installed packages, GPU, and whether a plan fits it."""
    import onnxruntime

    plan, why = tensorrt_plan_fits(manifest, precision, device) if device != "cpu" else (False, "")
    return Environment(tensorrt_plan=plan,
                       cuda_onnxruntime="CUDAExecutionProvider" in onnxruntime.get_available_providers(),
                       openvino=openvino_installed(), why_no_plan=why,
                       openvino_cannot=openvino_cannot_run(manifest))


def tensorrt_plan_fits(manifest: Manifest, precision: str, device: str) -> tuple[bool, str]:
    """(True, "") when the manifest's ``precision`` plan would load on this machine's GPU,
    else (False, why). TensorRT is imported only when it is installed and a plan is listed."""
    if not any(e["kind"] == "tensorrt" and e["precision"] == precision
               for e in manifest.data["artifacts"]):
        return False, f"no TensorRT plan at {precision}"
    missing = missing_packages()
    if missing:
        return False, f"{' and '.join(missing)} not installed"
    from runtime.backends.tensorrt import import_cudart, parse_device, running_platform, select_plan

    try:
        import tensorrt as trt

        running = running_platform(trt, import_cudart(), parse_device(device))
        select_plan(manifest, precision, running)
    except Exception as err:  # no GPU, driver error, plan for another GPU or TensorRT version
        return False, str(err).split(";")[0]
    return True, ""
