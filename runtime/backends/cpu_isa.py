"""What OpenVINO's CPU kernels depend on about this CPU: its instruction sets.

Two facts, both measured with openvino 2026.4.1 on an Intel Xeon with AMX, lowering the
instruction set OpenVINO may use with oneDNN's cap (``ONEDNN_MAX_CPU_ISA``, which OpenVINO's CPU
plugin honours; docs/notes/lab-notebook.md, "INT8 results depend on the CPU's instruction set"):

- A compiled blob records the instruction set it was compiled for, and OpenVINO refuses it on
  any other ("Cannot import compiled blob: it was built for a different runtime configuration
  (OpenVINO version/isa mismatch)"), in both directions. The compiled-model cache keys its blobs
  by ``cpu_isa_fingerprint`` (runtime.backends.openvino_cache).
- INT8 kernels of different instruction sets compute differently. FP32 outputs were equal under
  every cap (VisTR tiny: scores to 1.2e-7), but the trained tiny TeViT's NNCF INT8 graph,
  calibrated with AMX kernels within the 0.5-point AP budget (AP 29.6 against FP32's 29.3 on 30
  videos), scored 27.7 with AVX-512 VNNI kernels and 25.6 with AVX2 kernels; VisTR tiny's, within
  its parity budget with AMX (loss 0.78), gave 1.75 and 3.80 (boxes 15 px apart). Calibrated
  under the AVX2 cap, TeViT's graph held the budget with AVX2 kernels (two blocks back to FP32)
  and with AMX kernels too. So an INT8 graph's budget holds for the kernel family it was
  measured with (``int8_kernel_family``, which follows the cap): calibration records it and
  the OpenVINO backend compares it at activation.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

# oneDNN's instruction-set cap, honoured by OpenVINO's CPU plugin
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# /proc/cpuinfo flags that name the vector and matrix instruction sets OpenVINO picks kernels by
# (SSE4.x, AVX, AVX2, AVX-512 and its VNNI/BF16/FP16 parts, AVX-VNNI, AVX10, AMX, FMA, F16C)
ISA_FLAG = re.compile(r"^(sse4|avx|amx|fma|f16c)")

# INT8 kernel families, lowest first, with the /proc/cpuinfo flag each needs
INT8_FAMILIES = (("SSE4.1", "sse4_1"), ("AVX2", "avx2"), ("AVX-VNNI", "avx_vnni"),
                 ("AVX-512", "avx512bw"), ("AVX-512 VNNI", "avx512_vnni"), ("AMX", "amx_int8"))
# The families each oneDNN cap allows. oneDNN orders its ISAs partially
# (doc/performance_considerations/dispatcher_control.md: SSE41 < AVX < AVX2 < AVX2_VNNI <
# AVX2_VNNI_2; AVX2 < AVX512_CORE < AVX512_CORE_VNNI < AVX512_CORE_BF16 < AVX10_1_512 <
# AVX10_1_512_AMX < AVX10_1_512_AMX_FP16; AVX2_VNNI < AVX10_1_512), so AVX512_CORE and
# AVX512_CORE_VNNI do not allow AVX-VNNI. First matching prefix wins.
_AVX512 = ("SSE4.1", "AVX2", "AVX-512")
_AVX512_VNNI = (*_AVX512, "AVX-512 VNNI")
CAP_FAMILIES = (
    ("SSE41", ("SSE4.1",)),
    ("AVX2_VNNI", ("SSE4.1", "AVX2", "AVX-VNNI")),
    ("AVX2", ("SSE4.1", "AVX2")),
    ("AVX512_CORE_AMX", None),
    ("AVX10_1_512_AMX", None),
    ("AVX10", (*_AVX512_VNNI, "AVX-VNNI")),
    ("AVX512_CORE_FP16", (*_AVX512_VNNI, "AVX-VNNI")),
    ("AVX512_CORE_VNNI", _AVX512_VNNI),
    ("AVX512_CORE_BF16", _AVX512_VNNI),
    ("AVX512_CORE", _AVX512),
    ("AVX", ("SSE4.1",)),
)  # None: every family (the AMX caps, DEFAULT and names this table does not know)


def cpu_flags(cpuinfo: str | None = None) -> list[str] | None:
    """The first ``flags`` line of ``/proc/cpuinfo`` (``cpuinfo``: its text), None where there
    is none (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return None
    return next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                 if line.startswith("flags") and ":" in line), None)


def isa_cap(environ=None) -> str | None:
    """The instruction-set cap set in ``environ`` (default ``os.environ``), e.g. ``AVX2``."""
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in ISA_CAP_VARIABLES if environ.get(name)), None)


def cpu_isa_fingerprint(cpuinfo: str | None = None, environ=None) -> str:
    """The instruction-set flags (elsewhere the processor name Python reports) and the cap, as
    text: blobs compiled under one fingerprint are refused under another."""
    flags = cpu_flags(cpuinfo)
    cpu = (" ".join(sorted(f for f in flags if ISA_FLAG.match(f))) if flags is not None
           else f"{platform.machine()} {platform.processor()}".strip())
    cap = isa_cap(environ)
    return f"{cpu}; ONEDNN_MAX_CPU_ISA={cap}" if cap else cpu


def _cap_allows(cap: str | None) -> tuple[str, ...] | None:
    """The INT8 families a oneDNN cap name allows (None: all)."""
    cap = (cap or "").upper()
    return next((families for prefix, families in CAP_FAMILIES if cap.startswith(prefix)), None)


def int8_kernel_family(cpuinfo: str | None = None, environ=None) -> str | None:
    """The INT8 kernel family OpenVINO uses here: the highest of ``INT8_FAMILIES`` the CPU has
    and the cap allows; None on a CPU without ``/proc/cpuinfo`` flags (not x86 Linux)."""
    flags = cpu_flags(cpuinfo)
    if not flags or "sse4_1" not in flags:
        return None
    allowed = _cap_allows(isa_cap(environ))
    have = [name for name, flag in INT8_FAMILIES
            if flag in flags and (allowed is None or name in allowed)]
    return have[-1]


def int8_check_warning(calibration: dict, family: str | None) -> str | None:
    """Why an INT8 graph's recorded budget may not hold on this CPU, or None.

    ``calibration``: the manifest entry's ``calibration`` record (``check_backend``, and with
    OpenVINO ``check_cpu``: the kernel family the budget was measured with); ``family``: this
    CPU's ``int8_kernel_family``. Records written before these fields say nothing."""
    backend, measured = calibration.get("check_backend"), calibration.get("check_cpu")
    again = ("calibrate it on this machine (python -m calibration ARTIFACTS --precision int8 "
             "--data SOURCE --check-backend openvino)")
    if backend == "onnxruntime":
        return ("this INT8 graph's accuracy budget was measured on onnxruntime; OpenVINO's "
                f"INT8 kernels compute differently: {again}")
    if backend == "openvino" and measured and family and measured != family:
        return (f"this INT8 graph's accuracy budget was measured with OpenVINO's {measured} "
                f"kernels; this CPU runs {family} kernels, whose results differ (the trained "
                "tiny TeViT's graph calibrated with AMX kernels scored 0.3 AP points above FP32 "
                "there, 1.6 below it with AVX-512 VNNI and 3.7 below with AVX2; budget 0.5): "
                f"{again}, or on another "
                f"machine for these kernels with ONEDNN_MAX_CPU_ISA set (docs/runtime.md)")
    return None
