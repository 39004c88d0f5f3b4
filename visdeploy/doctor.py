"""``visdeploy doctor``: what this machine can run, and how to install what is missing.

Backends (onnxruntime and its execution providers, TensorRT, OpenVINO), the GPU and driver,
Triton, PyTorch (found by its metadata; imported only with ``--torch``), OpenCV's build
(FFmpeg, GStreamer, GUI), the overlay codecs, cameras and the optional extras. Reads local
facts only: nothing is downloaded, no network is used.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass

from visdeploy.extras import EXTRA_OF_MODULE, install_command


@dataclass(frozen=True)
class Check:
    """One fact: ``name``, whether it is there, what was found, and the fix when it is not."""

    name: str
    ok: bool
    found: str
    fix: str = ""


def installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (a broken package: False)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def backend_checks() -> list[Check]:
    checks = []
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        checks.append(Check("onnxruntime", True, f"{ort.__version__}: {', '.join(providers)}"))
    except ImportError as err:
        providers = []
        checks.append(Check("onnxruntime", False, f"cannot import: {err}",
                            "pip install onnxruntime (a base dependency: pip install visdeploy)"))
    checks.append(Check("onnxruntime CUDA", "CUDAExecutionProvider" in providers,
                        "CUDAExecutionProvider" if "CUDAExecutionProvider" in providers
                        else "CPU only", "pip uninstall onnxruntime && pip install "
                        "onnxruntime-gpu (one of the two, never both), with an NVIDIA driver"))
    trt = _version("tensorrt") or _version("tensorrt-cu12") or _version("tensorrt-cu13")
    checks.append(Check("TensorRT (Python)", installed("tensorrt"),
                        trt or "not installed", install_command("trt")))
    openvino = _version("openvino")
    from runtime.backends.cpu_isa import int8_kernel_family

    family = int8_kernel_family()  # INT8 budgets hold for the family they were measured with
    checks.append(Check("OpenVINO", openvino is not None
                        or "OpenVINOExecutionProvider" in providers,
                        (openvino and openvino + (f", {family} INT8 kernels" if family else ""))
                        or ("onnxruntime EP" if "OpenVINOExecutionProvider" in providers
                            else "not installed"),
                        "pip install openvino (Intel CPUs/GPUs/NPUs)"))
    triton = shutil.which("tritonserver")
    checks.append(Check("tritonserver", triton is not None, triton or "not on PATH",
                        "use NVIDIA's Triton container (tritonserver image), or put "
                        "tritonserver on PATH"))
    return checks


def gpu_checks(import_torch: bool) -> list[Check]:
    smi = shutil.which("nvidia-smi")
    found = "nvidia-smi not on PATH"
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version,compute_cap",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=20)
            found = out.stdout.strip().replace("\n", "; ") or out.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as err:
            found = f"nvidia-smi failed: {err}"
    checks = [Check("NVIDIA GPU", bool(smi) and "failed" not in found, found,
                    "install the NVIDIA driver (a GPU is needed for TensorRT and CUDA)")]
    torch_version = _version("torch")
    if torch_version is None:
        checks.append(Check("PyTorch", False, "not installed", install_command("export")))
    elif not import_torch:
        checks.append(Check("PyTorch", True, f"{torch_version} (not imported; --torch checks "
                            "its CUDA)"))
    else:
        import torch

        cuda = torch.cuda.is_available()
        checks.append(Check("PyTorch CUDA", cuda, f"torch {torch.__version__}, CUDA "
                            f"{torch.version.cuda}, available: {cuda}",
                            "a CUDA build of torch and an NVIDIA driver (export runs on CPU too)"))
    return checks


def opencv_checks() -> list[Check]:
    import re

    import cv2

    info = cv2.getBuildInformation()

    def build(key: str) -> str:
        match = re.search(rf"^\s*{key}:\s*(.+)$", info, re.MULTILINE)
        return match.group(1).strip() if match else "?"

    gstreamer, gui, ffmpeg = build("GStreamer"), build("GUI"), build("FFMPEG")
    return [
        Check("OpenCV", True, cv2.__version__),
        Check("OpenCV FFmpeg (files, rtsp/http)", ffmpeg.upper().startswith("YES"), ffmpeg,
              "pip install opencv-python-headless (its wheels include FFmpeg)"),
        Check("OpenCV GStreamer (Jetson CSI cameras)", gstreamer.upper().startswith("YES"),
              gstreamer, "the pip wheels never have GStreamer: on a Jetson use JetPack's "
              "OpenCV (sudo apt install python3-opencv; pip uninstall opencv-python-headless), "
              "elsewhere build OpenCV with -DWITH_GSTREAMER=ON"),
        Check("OpenCV GUI (--show)", gui.upper() not in ("NONE", "?"), gui,
              "pip uninstall opencv-python-headless && pip install opencv-python, or use "
              "--view PORT (a browser) on headless boxes"),
    ]


def codec_checks() -> list[Check]:
    import tempfile
    from pathlib import Path

    import cv2

    from runtime.sinks.h264 import INSTALL_HINT, h264_unavailable

    missing = h264_unavailable("overlay.mp4")
    checks = [Check("H.264 overlays (browsers play them)", missing is None,
                    "PyAV libx264" if missing is None else missing, INSTALL_HINT)]
    with tempfile.TemporaryDirectory() as tmp:
        for fourcc, name in (("mp4v", "probe.mp4"), ("MJPG", "probe.avi")):
            writer = cv2.VideoWriter(str(Path(tmp) / name), cv2.VideoWriter_fourcc(*fourcc),
                                     30.0, (64, 64))
            checks.append(Check(f"OpenCV writer {fourcc} ({Path(name).suffix})",
                                writer.isOpened(), "opens" if writer.isOpened() else "fails",
                                "reinstall opencv-python-headless"))
            writer.release()
    return checks


def camera_checks(probe: bool) -> list[Check]:
    from runtime.sources.cameras import candidate_indices, list_cameras

    indices = candidate_indices()
    if not probe:
        nodes = ", ".join(f"/dev/video{i}" for i in indices) if sys.platform.startswith(
            "linux") else "not listed on this platform"
        return [Check("cameras", bool(indices), (nodes or "no /dev/video* device") +
                      " (--cameras opens each)", "plug in a camera; check `ls -l /dev/video*`")]
    cameras = list_cameras(indices)
    return [Check("cameras", bool(cameras),
                  "; ".join(f"camera{c.index} {c.width}x{c.height}" for c in cameras)
                  or "none delivered a frame", "plug in a camera; check `ls -l /dev/video*` "
                  "and that no other program holds it")]


def extra_checks() -> list[Check]:
    by_extra: dict[str, list[str]] = {}
    for module, extra in EXTRA_OF_MODULE.items():
        by_extra.setdefault(extra, []).append(module)
    checks = []
    for extra, modules in by_extra.items():
        if extra == "trt":
            continue  # reported with the backends
        missing = [m for m in modules if not installed(m)]
        checks.append(Check(f"extra [{extra}]", not missing,
                            "complete" if not missing else f"missing {', '.join(missing)}",
                            install_command(extra)))
    return checks


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'yes' if c.ok else ' no'}  {c.name:<{width}}  {c.found}" for c in checks]
    fixes = [f"  {c.name}: {c.fix}" for c in checks if not c.ok and c.fix]
    if fixes:
        lines += ["", "to add what is missing:"] + fixes
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="visdeploy doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch", action="store_true",
                        help="also import PyTorch to check its CUDA (slow)")
    parser.add_argument("--cameras", action="store_true",
                        help="open each camera to check it delivers frames")
    args = parser.parse_args(argv)
    checks = [Check("Python", True, f"{sys.version.split()[0]} ({sys.platform})")]
    checks += backend_checks() + gpu_checks(args.torch) + opencv_checks() + codec_checks()
    checks += camera_checks(args.cameras) + extra_checks()
    print(report(checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
