# KubeKMS — the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SOFTHSM_LIB ?= /usr/lib/softhsm/libsofthsm2.so
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
# The HTTP layer is also tested against the oldest aiohttp that pyproject.toml allows.
AIOHTTP_OLDEST ?= 3.14.0
OLDEST_VENV ?= .venv-aiohttp-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed-$(AIOHTTP_OLDEST)
HTTP_TESTS := tests/unit/test_dispatch.py tests/integration/test_connection_guard.py \
  tests/integration/test_api_http.py tests/integration/test_hotpath.py \
  tests/hardening/test_abuse_limits.py tests/hardening/test_hostile_input.py

.PHONY: run test venv deps system-deps lint typecheck pytest test-aiohttp-matrix clean

# Extra prerequisites of `make test` (tools, npm packages) are added by the files in mk/.
TEST_DEPS :=
-include mk/*.mk

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall when the project's metadata changes. `make run` needs only the runtime dependencies;
# the test extras (pytest, mypy, schemathesis, ...) are installed for the checks and tests.
$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP) $(RUNTIME_STAMP)

venv: $(STAMP)

## System packages the tests need (SoftHSMv2 for the PKCS#11 sealer, openssl for
## independent signature checks). Installed with apt-get when running as root.
system-deps:
	@missing=""; \
	[ -f "$(SOFTHSM_LIB)" ] || missing="$$missing softhsm2"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "install them first:  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

deps: system-deps venv

## Style, then the import contracts of pyproject.toml [tool.importlinter] (the layers).
lint: venv
	$(VENV)/bin/ruff check .
	PYTHONPATH=core:operator:api $(VENV)/bin/lint-imports

## mypy --strict on the four packages (the tests are not type-checked strictly).
typecheck: venv
	$(VENV)/bin/mypy --strict core/kms_core core/kms_kube api/kms_api operator/kms_operator

pytest: deps $(TEST_DEPS)
	PATH="$(CURDIR)/.tools:$$PATH" $(VENV)/bin/pytest -q --durations=20 $(PYTEST_ARGS)

# A second venv with the oldest supported aiohttp (the main venv has the newest pip resolves).
$(OLDEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -e '.[test]' 'aiohttp==$(AIOHTTP_OLDEST)'
	rm -f $(OLDEST_VENV)/.installed-*
	touch $(OLDEST_STAMP)

## The HTTP-layer tests against the oldest supported aiohttp.
test-aiohttp-matrix: deps $(OLDEST_STAMP)
	@$(OLDEST_VENV)/bin/python -c 'import aiohttp; print("aiohttp", aiohttp.__version__, "(oldest supported)")'
	PATH="$(CURDIR)/.tools:$$PATH" $(OLDEST_VENV)/bin/pytest -q --durations=5 $(HTTP_TESTS)

test: deps lint typecheck pytest test-aiohttp-matrix

run: $(RUNTIME_STAMP)
	@$(PY) -m kms_api.devserver

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .import_linter_cache .mypy_cache .ruff_cache .pytest_cache .hypothesis
