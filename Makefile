# Every contributor's entry points. `make demo` is the main job; `make test` is what CI runs.
# `make install` makes the virtual environment .venv from $(PYTHON) (Debian's /usr/bin/python3 will
# do) and every target runs the tools installed there: nothing goes into the system's Python.
PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export MYSIMBDP_HOME ?= $(CURDIR)/.mysimbdp

.PHONY: install demo test unit lint typecheck bench stack-up stack-down clean

install:
	PYTHON="$(PYTHON)" VENV="$(VENV)" bash compose/install.sh

demo: install
	bash compose/demo.sh

test: install
	bash compose/run-tests.sh

unit:
	python -m pytest -m unit -q

lint:
	ruff check mysimbdp_tasks producers benchmarks tests

typecheck:
	mypy

bench: install
	mysimbdp stack up
	mysimbdp bench batch --json-out benchmarks/results/batch.json
	mysimbdp bench stream --json-out benchmarks/results/stream.json

stack-up:
	mysimbdp stack up

stack-down:
	mysimbdp stack down

clean:
	mysimbdp down || true
	mysimbdp stack down --wipe || true
