PY ?= .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup up test check fmt lint types bench bench-report

setup:  ## create .venv and install Relay with its dev tools
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'

up: setup  ## run the whole farm (embedded Redis, API, worker, Flower, simulator)
	.venv/bin/relay up

# Three processes, a test file each at a time (a farm test mostly waits on its farm: serial, the
# suite takes well over 15 minutes on 2 cores, parallel ~7); one file: .venv/bin/python -m pytest FILE
# The several-hosts test (four network namespaces, its own Redis and S3) runs after, alone.
MULTIHOST := tests/faults/test_multihost.py
test: setup  ## the whole test suite (needs Redis at 127.0.0.1:6379; .ci/run starts it)
	$(PY) -m pytest -q -n 3 --dist loadfile --ignore=$(MULTIHOST)
	$(PY) -m pytest -q $(MULTIHOST)

fmt:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

lint:
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

types:
	$(PY) -m mypy relay_core relay_sim relay_api relay_workers relay_cli tests bench

check: setup lint types test  ## format, lint, types, tests: what CI runs

# BENCH_QUICK=1: small runs, rendered under bench/results/quick/; BENCH_ONLY=a,b: some of them
bench: setup  ## run the benchmarks, write bench/results/*.json, refresh docs/benchmarks.md
	$(PY) -m bench.run

bench-report:  ## re-render docs/benchmarks.md and docs/img/ from bench/results/*.json
	$(PY) -m bench.report
