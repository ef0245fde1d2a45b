# Kubernetes-mode test prerequisites (included by the main Makefile).
#
# The operator and API tests run against an emulated API server (tests/kube/, no cluster needed);
# one test drives the real kubectl against it, so kubectl must be on PATH.

KUBECTL ?= kubectl

.PHONY: kubectl-check test-kube

TEST_DEPS += kubectl-check

kubectl-check:
	@command -v $(KUBECTL) >/dev/null || { \
	  echo "kubectl is missing: install it (https://kubernetes.io/docs/tasks/tools/) or set KUBECTL=/path/to/kubectl"; \
	  exit 1; }

## Only the Kubernetes-mode suites: CRD, emulator, operator (and the API's Kubernetes mode).
test-kube: venv kubectl-check
	$(VENV)/bin/pytest -q tests/unit/test_crd.py tests/integration/test_operator_emulator.py \
	  tests/integration/test_operator.py tests/integration/test_operator_crash.py $(PYTEST_ARGS)
