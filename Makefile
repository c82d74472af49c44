# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast fuzz lint typecheck bench services web-test-deps clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## Start the server on SQLite with the demo config and run one demo release.
run: $(VENV)/.installed
	INTERLOCK=$(abspath $(BIN))/interlock examples/demo/run.sh

services:
	scripts/ensure-services.sh

## axe-core for the browser tests, from tests/web/package.json and its lock (the
## tests run this themselves when it is missing).
web-test-deps: tests/web/node_modules/axe-core/axe.min.js

tests/web/node_modules/axe-core/axe.min.js: tests/web/package-lock.json
	cd tests/web && npm ci --no-audit --no-fund
	touch $@

# Seconds of Schemathesis in `make test` (tests/acceptance/test_api_fuzz.py); `make fuzz` runs long.
FUZZ_SECONDS ?= 30
# Test processes: the suite waits on servers, subprocesses and sockets as much as it
# computes (a lease running out after kill -9, a drain, a long poll, a step's sleep), so
# more processes than cores keep both cores busy while others wait; work stealing keeps
# them all busy until the last long test ends. On 2 idle cores, from one clone: 3
# processes 409 s of pytest, 4 processes 371 s.
TEST_WORKERS ?= 4
# The fast loop computes more than it waits: 3 processes (66 s idle; 72 s with 4).
FAST_WORKERS ?= 3
# Each test process imports (and pytest rewrites) every module: with no .pyc files
# (PYTHONDONTWRITEBYTECODE set in the shell) that is ~4 s of CPU per process, per run.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

## Every test, SQLite and PostgreSQL, starting PostgreSQL if it is down.
# mypy (15 s of CPU with no cache, as in a fresh clone) runs beside the tests, which
# wait on servers and subprocesses as much as they compute; its verdict comes after
# theirs. The npm installs of the SSO provider and of axe-core (cached) run beside
# ruff and lint-imports. A failed check fails the target; ruff and lint-imports fail
# it before any test runs.
test: $(VENV)/.installed-dev services
	@rm -f $(VENV)/mypy.log; ($(BIN)/mypy > $(VENV)/mypy.log 2>&1; echo "exit $$?" >> $(VENV)/mypy.log) & \
	$(BIN)/python -m tests.support.oidc > /dev/null & oidc=$$!; \
	$(MAKE) -s web-test-deps > /dev/null & axe=$$!; \
	$(BIN)/ruff check src tests bench && $(BIN)/lint-imports --no-logo \
		&& wait $$oidc && wait $$axe \
		&& $(TEST_ENV) INTERLOCK_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -q \
			-p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal; \
	tests=$$?; wait; echo "mypy:"; cat $(VENV)/mypy.log; \
	test $$tests -eq 0 && test "$$(tail -n 1 $(VENV)/mypy.log)" = "exit 0"

## The loop for the common edit: unit and integration tests on SQLite, no server
## processes, browsers or slow scenarios. Schemathesis's pytest plugin is not loaded
## (only the fuzz test uses it): importing it costs each test process 0.5 s of CPU.
test-fast: $(VENV)/.installed-dev
	$(TEST_ENV) INTERLOCK_TEST_BACKENDS=sqlite $(BIN)/pytest -q -p no:cacheprovider \
		-p no:schemathesis -n $(FAST_WORKERS) --dist worksteal \
		-m "not slow and not browser" tests/unit tests/integration tests/contract

## Schemathesis against a real server for 10 minutes (FUZZ_SECONDS=...); on PostgreSQL
## with FUZZ_DATABASE_URL=postgresql://.../an_empty_database.
fuzz: FUZZ_SECONDS = 600
fuzz: $(VENV)/.installed-dev
	INTERLOCK_FUZZ_SECONDS=$(FUZZ_SECONDS) \
		INTERLOCK_FUZZ_DATABASE_URL=$(FUZZ_DATABASE_URL) \
		$(BIN)/pytest -q -p no:cacheprovider -s tests/acceptance/test_api_fuzz.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .interlock examples/demo/.interlock
