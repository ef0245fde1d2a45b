# Kubernetes-mode test prerequisites (included by the main Makefile).
#
# The operator and API tests run against an emulated API server (tests/kube/, no cluster needed);
# some tests drive the real kubectl against it: the pinned copy unpacked into .tools/ with helm
# (mk/chart.mk), which the Makefile puts first on PATH for pytest.

KUBECTL ?= $(KUBECTL_TOOL)

.PHONY: kubectl-check test-kube

TEST_DEPS += kubectl-check

kubectl-check: $(KUBECTL_TOOL)
	@$(KUBECTL) version --client >/dev/null

## Only the Kubernetes-mode suites: CRD, emulator, operator (and the API's Kubernetes mode).
test-kube: venv kubectl-check
	PATH="$(CURDIR)/$(TOOLS):$$PATH" $(VENV)/bin/pytest -q tests/unit/test_crd.py tests/integration/test_operator_emulator.py \
	  tests/integration/test_operator.py tests/integration/test_operator_crash.py $(PYTEST_ARGS)
