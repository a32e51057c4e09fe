# The one way to run every check. `make help` lists the targets.
# Needs python3 (3.11+), Java 17+, Maven and (for the tests) Go; everything else is installed into
# .venv/ and .cache/ (both git-ignored).

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .cache/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# uv reads the system's CA bundle, as pip does.
export UV_SYSTEM_CERTS := 1

.DEFAULT_GOAL := help
.PHONY: help setup venv lock models kafka tools demo bench test test-unit lint format schemas broker-start broker-stop clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: venv models kafka ## install everything: virtualenv, models, Kafka jars

$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

venv: $(UV) ## create .venv with exactly the locked dependencies (requirements/dev.txt) and the project, editable
	test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements/dev.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable .
	$(BIN)/python ops/check_opencv.py

# The locks pin every version and wheel hash and name no download address; uv.lock, from which they are
# exported, stays a local (git-ignored) file for the resolver to start from next time.
lock: $(UV) ## re-resolve pyproject.toml's dependencies into requirements/dev.txt and requirements/image.txt
	$(UV) lock --quiet
	{ echo "# The development environment: every version and hash pinned. Made by \`make lock\` from pyproject.toml."; \
	  $(UV) export --frozen --extra dev --extra otel --no-emit-project --no-header --quiet; } > requirements/dev.txt
	{ echo "# The container image (no dev extras): every version and hash pinned. Made by \`make lock\` from pyproject.toml."; \
	  $(UV) export --frozen --no-dev --extra otel --no-emit-project --no-header --quiet; } > requirements/image.txt

models: venv ## fetch the BlazeFace and FaceMesh models from the mediapipe 0.10.21 wheel and verify their sha256
	$(BIN)/python ops/fetch_models.py

kafka: ## resolve the Kafka broker jars with Maven
	$(PYTHON) ops/kafka_local.py install

tools: ## build the Go programs the tests use: MinIO, promtool, helm, kubeconform, docker-compose (cached)
	$(PYTHON) ops/go_tools.py install minio promtool helm kubeconform docker-compose

demo: setup ## start a local broker and a worker, submit the sample images, show the outputs
	PATH=$(CURDIR)/$(BIN):$$PATH ops/demo.sh

bench: setup ## one worker through a local broker vs the bare pipeline, on ../shared/data/faces
	$(BIN)/python ops/bench_worker.py

test: setup tools ## run the whole test suite (unit, integration against a real broker and S3 server, end to end)
	$(BIN)/pytest

test-unit: venv models ## only the fast unit tests
	$(BIN)/pytest tests/unit

lint: venv ## ruff, ruff format --check, mypy, schema drift
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m schemas.export --check
	$(BIN)/python -m consumer.api.openapi --check

format: venv ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: venv ## regenerate the JSON Schema files from the pydantic contracts
	$(BIN)/python -m schemas.export
	$(BIN)/python -m consumer.api.openapi

broker-start: kafka ## start (or reuse) the local broker in .cache/kafka/broker on port 9092
	$(PYTHON) ops/kafka_local.py start

broker-stop: ## stop the local broker
	$(PYTHON) ops/kafka_local.py stop

clean: ## remove the virtualenv, caches and models
	rm -rf $(VENV) .cache models out
