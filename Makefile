# docmill — the entry points a person types. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA := deploy/kafka/kafka.sh
KAFKA_PORT ?= 9092
TEST_KAFKA_PORT ?= 19092
PYTEST_ARGS ?=

.PHONY: help install demo test bench lint schemas kafka-up kafka-down topics up down clean
REPLICAS ?= 3

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/docmill: pyproject.toml
	@deploy/install-prerequisites.sh without-prometheus
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "docmill needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/docmill  ## create .venv and install docmill with its dev tools

kafka-up:  ## start the local Kafka broker on 127.0.0.1:$(KAFKA_PORT) (idempotent)
	KAFKA_PORT=$(KAFKA_PORT) $(KAFKA) up

kafka-down:  ## stop the local Kafka broker this project started
	KAFKA_PORT=$(KAFKA_PORT) $(KAFKA) down

topics: install kafka-up  ## create the three topics if missing
	$(BIN)/docmill topics ensure --bootstrap-servers 127.0.0.1:$(KAFKA_PORT)

demo: install kafka-up  ## run the whole pipeline on the bundled sample invoices
	KAFKA_PORT=$(KAFKA_PORT) deploy/demo.sh

test: install  ## run every test (unit and integration against a real broker)
	@deploy/install-prerequisites.sh with-prometheus
	@KAFKA_PORT=$(TEST_KAFKA_PORT) $(KAFKA) up
	@set -o pipefail; rc=0; \
	DOCMILL_TEST_BOOTSTRAP=127.0.0.1:$(TEST_KAFKA_PORT) $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	KAFKA_PORT=$(TEST_KAFKA_PORT) $(KAFKA) down; exit $$rc

bench: install  ## benchmarks: overhead, quota saturation, memory (prints a table, writes bench-results/)
	@KAFKA_PORT=$(TEST_KAFKA_PORT) $(KAFKA) up
	@rc=0; \
	DOCMILL_TEST_BOOTSTRAP=127.0.0.1:$(TEST_KAFKA_PORT) $(BIN)/python -m tests.bench.run $(BENCH_ARGS) || rc=$$?; \
	KAFKA_PORT=$(TEST_KAFKA_PORT) $(KAFKA) down; exit $$rc

up: install  ## broker, topics, $(REPLICAS) consumer replicas and Prometheus on this machine
	@deploy/install-prerequisites.sh with-prometheus
	REPLICAS=$(REPLICAS) KAFKA_PORT=$(KAFKA_PORT) deploy/local/cluster.sh up

down:  ## stop exactly what `make up` started
	KAFKA_PORT=$(KAFKA_PORT) deploy/local/cluster.sh down

lint: install  ## ruff, mypy (code and tests) and the package boundaries (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check schemas producer consumer tests deploy
	$(BIN)/mypy schemas producer consumer tests deploy
	$(BIN)/lint-imports

schemas: install  ## regenerate schemas/json/ from the message models
	$(BIN)/python -m schemas.generate

clean:  ## stop brokers and remove local state (keeps downloaded jars)
	-KAFKA_PORT=$(KAFKA_PORT) $(KAFKA) reset
	-KAFKA_PORT=$(TEST_KAFKA_PORT) $(KAFKA) reset
