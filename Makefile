# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and reinstall when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES := samples
OUT := out

.PHONY: demo test lint bench train clean venv espeak

# Sample clips speak through espeak-ng (Debian's package). Installed where this user may
# (root, or passwordless sudo); elsewhere the clips stay silent and the tests that need
# speech say why they skip.
espeak:
	@command -v espeak-ng >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "espeak-ng missing and no root: sample clips will not speak"; exit 0; fi; \
	  $$SUDO apt-get install -y -q espeak-ng >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q espeak-ng >/dev/null 2>&1; } || \
	  echo "could not install espeak-ng: sample clips will not speak"; }

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Render the sample clips (once), summarize them on a local Ray, print what came out.
# (Clips rendered before they could speak are rendered again.)
demo: $(STAMP) espeak
	@grep -qs speech_rendered $(SAMPLES)/sample-007.gt.json || \
	  $(BIN)/vidgist samples $(SAMPLES) --count 8 --seed 0
	$(BIN)/vidgist run --input $(SAMPLES) --output $(OUT) --config conf/local.yaml

test: $(STAMP) espeak
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

train: $(STAMP)
	$(BIN)/vidgist train

clean:
	rm -rf $(OUT) $(SAMPLES) .pytest_cache .ruff_cache
