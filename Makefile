# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and reinstall when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES := samples
OUT := out

.PHONY: demo test lint bench train clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Render the sample clips (once), summarize them on a local Ray, print what came out.
demo: $(STAMP)
	@test -f $(SAMPLES)/sample-007.gt.json || $(BIN)/vidgist samples $(SAMPLES) --count 8 --seed 0
	$(BIN)/vidgist run --input $(SAMPLES) --output $(OUT) --config conf/local.yaml

test: $(STAMP)
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
