# The two commands of the README: `make run` and `make test`. Each sets itself up from nothing
# but Python 3.11+ and pip: it creates .venv (and, for the tests, the FHIR test server's own
# venv) and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FHIR_VENV := .fhir-venv
# The real FHIR R4 server the tests start on 127.0.0.1 (its own venv: its deps never mix with ours).
SEKMET_VERSION := 0.1.1

.PHONY: run test lint bench bench-peer clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

$(FHIR_VENV)/.installed:
	$(PYTHON) -m venv $(FHIR_VENV)
	$(FHIR_VENV)/bin/python -m pip install -q 'sekmet-fhir==$(SEKMET_VERSION)'
	@touch $@

## run: serve the API on http://127.0.0.1:8080, or CYTOKINE_CDS_PORT (demo settings: loopback only)
# Demo settings: CDS client authentication explicitly off (allowed on loopback only; logs a
# warning), and FHIR servers on this machine may be read (e.g. a local sekmet; set
# CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK=false to try the allowlist alone).
run: $(VENV)/.installed-run
	CYTOKINE_CDS_AUTH=off \
	CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK=$(or $(CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK),true) \
	  $(BIN)/cytokine-cds serve --host 127.0.0.1 --port $(or $(CYTOKINE_CDS_PORT),8080)

## lint: ruff (lint + format check), mypy on the package, hadolint on the Dockerfile
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy cds_service
	$(BIN)/hadolint Dockerfile

## test: lint, then the whole test suite (starts its own FHIR server on 127.0.0.1)
test: lint $(FHIR_VENV)/.installed
	CYTOKINE_TEST_SEKMET=$(abspath $(FHIR_VENV))/bin/sekmet $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(FHIR_VENV) $(PEER_VENV) .pytest_cache .mypy_cache .ruff_cache

# The benchmark's peer, HealthChain, in a venv of its own (its FastAPI/pydantic/fhir.resources
# pins never mix with ours). Versions pinned so runs compare.
PEER_VENV := bench/.healthchain-venv
HEALTHCHAIN_VERSION := 0.16.1
UVICORN_VERSION := 0.54.0

$(PEER_VENV)/.installed:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q 'healthchain==$(HEALTHCHAIN_VERSION)' 'uvicorn==$(UVICORN_VERSION)'
	@touch $@

## bench-peer: install the HealthChain peer of the benchmark into bench/.healthchain-venv
bench-peer: $(PEER_VENV)/.installed

## bench: HTTP load benchmark (wrk: `apt-get install -y wrk`) of the service, a bare-Flask
## baseline and the HealthChain peer side by side, then the cost-growth table; see README
bench: $(VENV)/.installed-test $(FHIR_VENV)/.installed $(PEER_VENV)/.installed
	CYTOKINE_TEST_SEKMET=$(abspath $(FHIR_VENV))/bin/sekmet $(BIN)/python bench/http_load.py $(BENCH_ARGS)
