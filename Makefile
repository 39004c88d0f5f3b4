# visdeploy — every target sets up what it needs on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  ?= tevit
PRESET ?= tiny
OUT    ?= artifacts/$(MODEL)
CHECKPOINT ?=
TRUST_CHECKPOINT ?=
INPUT_SIZE ?=
ROI_ALIGN ?=
DEFORM_CONV ?=
PRECISION ?= fp32
CALIB ?= synthetic:val:4
AP_DATA ?=
CHECK_BACKEND ?=
# onnxruntime (CPU) unless `make setup-trt` moved this venv to onnxruntime-gpu: never both wheels.
ORT_EXTRA = $(if $(wildcard $(VENV)/.gpu),gpu,cpu)

SERVE_ENV := .venv-serve

.PHONY: setup setup-trt setup-jetson serve-env browser test test-gpu test-browser lint demo export train clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "[setup] creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "[setup] installing visdeploy with extras $(ORT_EXTRA), export, eval, quant, openvino, video, plots, serve, dev (first run downloads torch: a few minutes)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(ORT_EXTRA),export,eval,quant,openvino,video,plots,serve,dev]"
	@touch $(STAMP)
	@echo "[setup] done: $(VENV)"

# x86_64/SBSA with an NVIDIA GPU: onnxruntime-gpu replaces the CPU wheel (never both, see
# pyproject.toml), TensorRT wheels come from NVIDIA's index.
setup-trt: setup
	$(PY) -m pip uninstall --quiet -y onnxruntime
	$(PY) -m pip install -e ".[gpu,trt]" --extra-index-url https://pypi.nvidia.com
	@touch $(VENV)/.gpu

# Jetson (JetPack >= 6.1): TensorRT is JetPack's python3-libnvinfer, seen through a venv with
# --system-site-packages; cuda-python pinned to CUDA 12 (docs/jetson.md).
setup-jetson:
	@python3 -c "import tensorrt" 2>/dev/null || { echo "[setup-jetson] JetPack's TensorRT is missing: sudo apt-get install python3-libnvinfer python3-libnvinfer-dev"; exit 1; }
	@test -x $(PY) || python3 -m venv --system-site-packages $(VENV)
	@$(PY) -c "import tensorrt" 2>/dev/null || { echo "[setup-jetson] $(VENV) does not see the system TensorRT: remove it and rerun (it must be made with --system-site-packages)"; exit 1; }
	$(PY) -m pip install --quiet -e ".[cpu,trt]" "cuda-python>=12,<13"

# The Triton server's own Python (numpy<2, onnxruntime, nvidia-pytriton's tritonserver 2.51,
# visdeploy without extras): python -m runtime.serve uses it (docs/serving.md).
serve-env: $(SERVE_ENV)/.installed

$(SERVE_ENV)/.installed: pyproject.toml | $(STAMP)
	$(PY) -m runtime.serving.environment $(SERVE_ENV)
	@touch $@

# Debian's Chromium (~370 MB, about 20 s here) for the --view page test in a real headless browser
# (tests/runtime/test_rt_view.py). Where it cannot be installed (not Debian, not root, no apt
# mirror) that one test is skipped, saying so; everything else runs.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "[browser] installing Debian's chromium for the --view page test (once)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium; } >/dev/null 2>&1 \
		|| echo "[browser] apt-get could not install chromium: the --view page test is skipped"; \
	else echo "[browser] no chromium and no root apt-get: the --view page test is skipped"; fi

test: setup serve-env browser
	$(PY) -m pytest -q tests

test-gpu: setup
	$(PY) -m pytest -q -m gpu tests

# The --view page tests alone (make test runs them too).
test-browser: setup browser
	$(PY) -m pytest -q tests/runtime/test_rt_view.py

lint: setup
	$(PY) -m ruff check .

# TRUST_CHECKPOINT=1 allows checkpoints that need full unpickling (only for files you trust).
# INPUT_SIZE=HxW exports for your camera's aspect ratio (multiples of 32; e.g. 384x512 for 4:3):
# no letterbox padding, so the official computation exactly (docs/contract.md).
# TeViT's RoIAlign is exported as the ONNX RoiAlign op (fast; TensorRT's ROIAlign_TRT plugin);
# ROI_ALIGN=grid_sample writes it with GridSample instead, for runtimes without RoiAlign;
# ROI_ALIGN=onnx_gathered pools each RoI on its own FPN level only (fastest on CPU runtimes).
# DEFORM_CONV=onnx writes VisTR's deformable conv as the ONNX DeformConv op (opset 19).
# PRECISION=fp16|int8 adds model.<precision>.onnx, calibrated on CALIB (video, folder, dataset
# or synthetic[:PRESET[:VIDEOS]]), to the same artifact directory. AP_DATA=DIR (a generated val
# set) makes the budget a YouTube-VIS AP drop on DIR instead of output parity. CHECK_BACKEND=openvino
# measures the budget on OpenVINO (deploying with it: its INT8 kernels differ from onnxruntime's)
# and the graph compiled for the window's static shape, recorded when it holds (with fp32 too:
# model.onnx compiled static against its dynamic compile; docs/runtime.md).
export: setup
	$(PY) -m export $(MODEL) --preset $(PRESET) --out $(OUT) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),) $(if $(TRUST_CHECKPOINT),--trust-checkpoint,) $(if $(INPUT_SIZE),--input-size $(INPUT_SIZE),) $(if $(ROI_ALIGN),--roi-align $(ROI_ALIGN),) $(if $(DEFORM_CONV),--deform-conv $(DEFORM_CONV),)
	$(if $(or $(filter-out fp32,$(PRECISION)),$(filter openvino,$(CHECK_BACKEND))),$(PY) -m calibration $(OUT) --precision $(PRECISION) --data $(CALIB) $(if $(AP_DATA),--ap-data $(AP_DATA),) $(if $(CHECK_BACKEND),--check-backend $(CHECK_BACKEND),),)

# Repeats the recorded stages that produced checkpoints/<MODEL>_tiny.pth (training/recipes.py).
train: setup
	$(PY) -m training $(MODEL) --recipe

demo: setup
	$(PY) scripts/demo.py

clean:
	rm -rf artifacts demo_out .pytest_cache
