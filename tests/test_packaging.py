"""The install extras (issue 21 item 12): one onnxruntime distribution at a time.

``onnxruntime`` and ``onnxruntime-gpu`` ship the same ``onnxruntime`` import package; installed
together they overwrite each other's files. The base install therefore has neither; ``[cpu]``
brings onnxruntime, ``[gpu]`` onnxruntime-gpu (CUDA and TensorRT execution providers), and no
extra pulls in the other. ``make setup`` installs ``[cpu]``. Checked on the metadata pip resolves
from (pyproject.toml, PEP 508 markers), without network. A full resolution with pip
(``pip install --dry-run --report``) is recorded in docs/tensorrt.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the TOML reader pip itself vendors
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
ORT = {"onnxruntime", "onnxruntime-gpu"}


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str], machine: str = "x86_64") -> set[str]:
    """Distribution names the requirements install on ``machine`` (markers evaluated)."""
    env = {"platform_machine": machine, "sys_platform": "linux", "extra": ""}
    names = set()
    for text in requirements:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            names.add(req.name.lower().replace("_", "-"))
    return names


def _install(extras: list[str], machine: str = "x86_64") -> set[str]:
    project = _project()
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return _names(wanted, machine)


def test_base_has_no_onnxruntime_and_each_extra_brings_exactly_one():
    assert not _install([]) & ORT
    assert _install(["cpu"]) & ORT == {"onnxruntime"}
    assert _install(["gpu"]) & ORT == {"onnxruntime-gpu"}
    extras = _project()["optional-dependencies"]
    for extra in set(extras) - {"cpu", "gpu"}:
        assert not _install([extra]) & ORT, extra  # quant: ModelOpt without its [onnx] extra


def test_make_setup_installs_one_onnxruntime_extra():
    """``make setup`` installs [cpu] on a fresh clone, [gpu] once ``make setup-trt`` marked the
    venv (which uninstalls the CPU wheel first); never both."""
    makefile = (REPO / "Makefile").read_text()
    assert "ORT_EXTRA = $(if $(wildcard $(VENV)/.gpu),gpu,cpu)" in makefile
    setup = re.findall(r'pip install --quiet -e "\.\[([^\]]+)\]"', makefile)
    assert len(setup) == 2 and setup[1] == "cpu,trt"  # make setup, make setup-jetson
    extras = setup[0].split(",")
    assert extras[0] == "$(ORT_EXTRA)" and {"export", "eval", "quant", "serve", "dev"} <= set(extras)
    for ort_extra in ("cpu", "gpu"):
        names = [ort_extra, *extras[1:]]
        assert len(_install(names) & ORT) == 1
    gpu = re.findall(r'pip install -e "\.\[([^\]]+)\]" --extra-index-url', makefile)
    assert gpu == ["gpu,trt"] and "pip uninstall --quiet -y onnxruntime" in makefile


def test_documented_gpu_command_yields_only_onnxruntime_gpu():
    docs = (REPO / "docs" / "tensorrt.md").read_text()
    commands = re.findall(r'pip install -e "\.\[([^\]]*gpu[^\]]*)\]"', docs)
    assert commands
    for extras in commands:
        assert _install(extras.split(",")) & ORT == {"onnxruntime-gpu"}


def test_trt_extra_never_pip_installs_tensorrt_on_jetson():
    """JetPack ships TensorRT as python3-libnvinfer; a pip ``tensorrt`` would shadow it."""
    assert "tensorrt" in _install(["trt"], "x86_64")
    assert "tensorrt" not in _install(["trt"], "aarch64")
    assert {"cuda-python", "polygraphy", "onnx"} <= _install(["trt"], "aarch64")
