# Hardening suite (included by the main Makefile). `make test` runs the bounded versions of
# tests/hardening (hostile input, schema fuzzing, tamper properties, 5 crash iterations, store
# and HSM faults, audit and log hygiene); these targets run the long ones.
#
#   make fuzz   schemathesis with FUZZ_EXAMPLES per operation, TAMPER_EXAMPLES tamper properties
#   make soak   CRASH_ITERATIONS SIGKILL crashes, then SOAK_SECONDS of mixed load at 70 % of capacity
#               (tests/hardening/soak.py: paced wrk per operation, server latency from its own
#               Prometheus histogram; SOAK_ARGS="--generator hey" drives it with hey -q instead)

FUZZ_EXAMPLES    ?= 500
TAMPER_EXAMPLES  ?= 5000
CRASH_ITERATIONS ?= 50
SOAK_SECONDS     ?= 600
SOAK_ARGS        ?=

.PHONY: fuzz soak hardening-deps soak-deps

# schemathesis drives the fuzzing tests; installed into the venv when the test extras lack it.
hardening-deps: venv
	@$(PY) -c 'import schemathesis' 2>/dev/null || $(PIP) install --quiet 'schemathesis>=4.0'

TEST_DEPS += hardening-deps

fuzz: deps hardening-deps
	KUBEKMS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KUBEKMS_TAMPER_EXAMPLES=$(TAMPER_EXAMPLES) \
	  $(VENV)/bin/pytest -q tests/hardening/test_fuzz_openapi.py tests/hardening/test_tamper_oracle.py \
	  tests/hardening/test_hostile_input.py

# The soak's load generators are Debian packages: wrk (bench-deps) paces the load, hey is the
# alternative generator. Installed with apt-get when missing and running as root.
soak-deps: bench-deps
	@if ! command -v hey >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian package: hey"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey >/dev/null; \
	  else \
	    echo "hey is missing; install it first:  sudo apt-get install -y hey"; exit 1; \
	  fi; \
	fi

soak: deps hardening-deps soak-deps
	KUBEKMS_CRASH_ITERATIONS=$(CRASH_ITERATIONS) $(VENV)/bin/pytest -q tests/hardening/test_crash_durability.py
	$(PY) tests/hardening/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)
