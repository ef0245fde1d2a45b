# Benchmarks (bench/README.md): `make bench` appends a dated section to bench/RESULTS.md and
# redraws bench/openbao.png. Quick mode takes about seven minutes; BENCH_FULL=1 runs every
# concurrency level and 100k keys. OpenBao (the peer) comes from `make openbao` (mk/openbao.mk),
# matplotlib (the plot) from the `bench` extra of pyproject.toml.
# wrk is a Debian package, installed with apt-get when missing and running as root. The hot-path
# profile uses the standard library's cProfile, so nothing else is needed.

.PHONY: bench bench-deps

## Tools the benchmarks need; the smoke test (tests/integration/test_bench_smoke.py) needs wrk too.
bench-deps: system-deps
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian package: wrk"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "wrk is missing; install it first:  sudo apt-get install -y wrk"; exit 1; \
	  fi; \
	fi
	@command -v taskset >/dev/null || echo "taskset (util-linux) is missing: load and server will not be pinned"

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(PIP) install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: venv bench-deps openbao $(BENCH_STAMP)
	$(PY) bench/suite.py $(if $(filter 1,$(BENCH_FULL)),--full,) $(BENCH_ARGS)

# The smoke test runs the OpenBao comparison for a second, so it needs the pinned bao too.
TEST_DEPS += bench-deps openbao
