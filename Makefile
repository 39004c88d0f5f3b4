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
PRECISION ?= fp32
CALIB ?= synthetic:val:4
AP_DATA ?=

.PHONY: setup setup-trt test test-gpu lint demo export train clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "[setup] creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "[setup] installing visdeploy with extras export, eval, quant, openvino, dev (first run downloads torch: a few minutes)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[export,eval,quant,openvino,dev]"
	@touch $(STAMP)
	@echo "[setup] done: $(VENV)"

# TensorRT wheels come from NVIDIA's index (not PyPI); on Jetson use JetPack's python3-libnvinfer.
setup-trt: setup
	$(PY) -m pip install -e ".[trt]" --extra-index-url https://pypi.nvidia.com

test: setup
	$(PY) -m pytest -q tests

test-gpu: setup
	$(PY) -m pytest -q -m gpu tests

lint: setup
	$(PY) -m ruff check .

# TRUST_CHECKPOINT=1 allows checkpoints that need full unpickling (only for files you trust).
# INPUT_SIZE=HxW exports for your camera's aspect ratio (multiples of 32; e.g. 384x512 for 4:3):
# no letterbox padding, so the official computation exactly (docs/contract.md).
# ROI_ALIGN=onnx writes TeViT's RoIAlign as the ONNX RoiAlign op (faster) instead of GridSample.
# PRECISION=fp16|int8 adds model.<precision>.onnx, calibrated on CALIB (video, folder, dataset
# or synthetic[:PRESET[:VIDEOS]]), to the same artifact directory. AP_DATA=DIR (a generated val
# set) makes the budget a YouTube-VIS AP drop on DIR instead of output parity.
export: setup
	$(PY) -m export $(MODEL) --preset $(PRESET) --out $(OUT) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),) $(if $(TRUST_CHECKPOINT),--trust-checkpoint,) $(if $(INPUT_SIZE),--input-size $(INPUT_SIZE),) $(if $(ROI_ALIGN),--roi-align $(ROI_ALIGN),)
	$(if $(filter-out fp32,$(PRECISION)),$(PY) -m calibration $(OUT) --precision $(PRECISION) --data $(CALIB) $(if $(AP_DATA),--ap-data $(AP_DATA),),)

# Repeats the recorded stages that produced checkpoints/<MODEL>_tiny.pth (training/recipes.py).
train: setup
	$(PY) -m training $(MODEL) --recipe

demo: setup
	$(PY) scripts/demo.py

clean:
	rm -rf artifacts demo_out .pytest_cache
