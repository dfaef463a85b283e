# caretwin: two commands, `make demo` and `make test`; each sets up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCK := requirements/dev.txt

.PHONY: demo test bench docs clean lock

# exact versions with their hashes from the lock, then caretwin itself (no dependency resolution at install)
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# refresh the lock from pyproject.toml's lower bounds (newest versions that satisfy them), then run `make test`
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal --python-version 3.11 \
		--upgrade -o $(LOCK)

demo: $(STAMP)
	$(BIN)/caretwin demo demo-workspace

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/fhir_ndjson.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/simpy_waitlist.py
	$(BIN)/python benchmarks/validate.py
	$(BIN)/python benchmarks/backtest_scores.py
	$(BIN)/python benchmarks/scenarios.py
	$(BIN)/python benchmarks/uci_readmission.py
	$(BIN)/python benchmarks/risk_scoring.py
	$(BIN)/python benchmarks/api_load.py
	$(BIN)/python benchmarks/dashboard.py

docs: $(STAMP)
	$(BIN)/caretwin schema --markdown > docs/data-model.md
	$(BIN)/caretwin settings --markdown > docs/settings.md
	$(BIN)/caretwin params --markdown > docs/parameters.md

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache .hypothesis
