# Every contributor's entry points. `make demo` is the main job; `make test` is what CI runs.
PYTHON ?= python3
export MYSIMBDP_HOME ?= $(CURDIR)/.mysimbdp

.PHONY: install demo test unit lint typecheck bench stack-up stack-down clean

install:
	bash compose/install.sh

demo: install
	bash compose/demo.sh

test: install
	bash compose/run-tests.sh

unit:
	$(PYTHON) -m pytest -m unit -q

lint:
	ruff check mysimbdp_tasks producers benchmarks tests

typecheck:
	mypy

bench: install
	mysimbdp stack up
	mysimbdp bench batch --json benchmarks/results/batch.json
	mysimbdp bench stream --json benchmarks/results/stream.json

stack-up:
	mysimbdp stack up

stack-down:
	mysimbdp stack down

clean:
	mysimbdp down || true
	mysimbdp stack down --wipe || true
