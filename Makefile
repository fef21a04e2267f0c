# ashbox: make serve | make test | make install | make lint | make bench (-store, -peers, -sparse, -scale)
# Runs on a fresh Debian machine as root with python3 >= 3.11 (scripts/ install the rest).

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ashbox-installed
TEST_STAMP := $(VENV)/.ashbox-test-installed

.PHONY: install install-test serve test lint bench bench-store bench-peers bench-sparse bench-scale

install: $(STAMP)

install-test: $(TEST_STAMP)

$(BIN)/python:
	scripts/venv.sh $(VENV)

# An editable install leaves byte-compiling to each import, which PYTHONDONTWRITEBYTECODE
# turns into every import: compile once, as installing a wheel does.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	$(BIN)/python -m compileall -q src
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m compileall -q src
	touch $@ $(STAMP)

serve: install
	$(BIN)/ashbox serve

test: install-test
	scripts/test-deps.sh
	scripts/conformance-venv.sh
	$(MAKE) lint
	$(BIN)/pytest -q

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# BENCH_ARGS: more flags of bench/run.py (--runs 5, --store rgw, --encrypted, ...).
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The same beside a store on a local Ceph radosgw (installed as the tests install it).
bench-store: install
	scripts/test-deps.sh
	$(BIN)/python bench/run.py --store rgw $(BENCH_ARGS)

bench-peers: install
	command -v restic >/dev/null && command -v borg >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q restic borgbackup
	$(BIN)/python bench/peers.py

bench-sparse: install
	$(BIN)/python bench/scale.py

# N workers' database work on one PostgreSQL (docs/scale.md); its cluster comes from tests/.
bench-scale: install-test
	$(BIN)/python bench/db_scale.py
