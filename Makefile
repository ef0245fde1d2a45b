# KubeKMS — the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SOFTHSM_LIB ?= /usr/lib/softhsm/libsofthsm2.so
STAMP := $(VENV)/.installed

.PHONY: run test venv deps system-deps lint typecheck pytest clean

# Extra prerequisites of `make test` (tools, npm packages) are added by the files in mk/.
TEST_DEPS :=
-include mk/*.mk

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall when the project's metadata changes.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

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

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy core/kms_core core/kms_kube

pytest: deps $(TEST_DEPS)
	PATH="$(CURDIR)/.tools:$$PATH" $(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: deps lint typecheck pytest

run: venv
	@$(PY) -m kms_api.devserver

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
