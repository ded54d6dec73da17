# The two commands of the README. Both create .venv if missing and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick lint format install system-deps db-start db-stop dev bench clean lock screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Set everything up and run the main job on the embedded database; ends by printing the result.
demo: $(STAMP)
	$(BIN)/fks demo

## System packages the tests use: Debian's prometheus (with promtool) for the real-Prometheus test. Idempotent;
## installs only as root (CI); elsewhere it says what is missing and the test skips with that reason.
system-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	  else echo "prometheus/promtool missing: install Debian's prometheus package (the Prometheus test skips)"; fi

## Set everything up and run the whole test suite.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest

## The pure tests only (marker "quick", not "slow"): no database, no Dagster run; ~32 s of CPU, under a minute on
## 2 free cores. The integration folders are not even imported (tests/conftest.py), nor dagster-dbt; tests that build
## the definitions or start one `fks` process per case are marked slow (they run in `make test`).
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "quick and not slow"

## Lint, format check, type check, the import contracts (pyproject's [tool.importlinter]: layers, one-way
## dependencies, no cycles) and sqlfluff (.sqlfluff: the dbt models through the dbt templater with no database,
## scripts/sqlfluff_offline.py, and the migrations as plain SQL): what .ci/run runs before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy fks_pipelines
	$(BIN)/lint-imports
	$(BIN)/python scripts/sqlfluff_offline.py lint dbt_project
	$(BIN)/sqlfluff lint --templater raw fks_pipelines/lib/db/migrations

## Apply the formatter and the safe lint fixes.
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/python scripts/sqlfluff_offline.py fix dbt_project
	$(BIN)/sqlfluff fix --templater raw fks_pipelines/lib/db/migrations

db-start: $(STAMP)
	$(BIN)/fks db start

db-stop: $(STAMP)
	$(BIN)/fks db stop

dev: $(STAMP)
	$(BIN)/fks dev

## Screenshots of the real Dagster UI (lineage, an asset, the demo's run) into docs/img/ for the README, after
## `make demo`; uses Debian's headless chromium (apt-get installs it when missing and root). Not part of CI.
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

## Every benchmark in benchmarks/, one after another, each printing its JSON line (installs the `bench` extra:
## backtesting.py, the backtest's peer). About 45 minutes on 2 cores (benchmarks/README.md lists each one's time).
## Each builds its own FKS_HOME on a free port (benchmarks/_home.py): it never touches .fks or a running demo.
BENCH_STAMP := $(VENV)/.installed-bench
BENCHMARKS  := $(filter-out benchmarks/_%,$(sort $(wildcard benchmarks/*.py)))

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@failed=""; for b in $(BENCHMARKS); do \
	  echo "== $$b"; $(BIN)/python $$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

clean:
	-$(BIN)/fks db stop
	rm -rf .fks

## Regenerate the image's lock (docker/requirements.lock) from this environment after a dependency change.
lock: $(STAMP)
	{ sed -n '/^#/p' docker/requirements.lock; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v ' @ ' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > docker/requirements.lock.new
	mv docker/requirements.lock.new docker/requirements.lock
