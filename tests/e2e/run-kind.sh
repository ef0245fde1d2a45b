#!/usr/bin/env bash
# End-to-end run on a throwaway kind cluster: create it, build and load the image, install the
# chart, run tests/e2e, and delete the cluster whatever happened.
#
# The cluster gets its own kubeconfig under .tools/e2e/ (the user's ~/.kube/config is never
# touched) and a marker file holding the new cluster's kube-system UID; the tests refuse to run
# unless the current context is kind-kubekms-e2e and that UID matches, so they can never act on
# a cluster this script did not create.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=kubekms-e2e
NAMESPACE=kubekms
IMAGE=kubekms:e2e
HELM=${HELM:-.tools/helm}
KIND=${KIND:-kind}
DOCKER=${DOCKER:-docker}
PYTHON=${PYTHON:-.venv/bin/python}
STATE=.tools/e2e
export KUBECONFIG=$PWD/$STATE/kubeconfig

for tool in "$KIND" "$DOCKER" kubectl "$HELM"; do
  command -v "$tool" >/dev/null || { echo "e2e-kind needs $tool on PATH" >&2; exit 2; }
done
"$DOCKER" info >/dev/null 2>&1 || { echo "e2e-kind needs a running Docker engine" >&2; exit 2; }

mkdir -p "$STATE"
rm -f "$STATE/marker" "$KUBECONFIG"

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- diagnostics" >&2
    kubectl get pods,kmskeys -A -o wide >&2 || true
    kubectl -n "$NAMESPACE" logs deploy/kubekms-operator --tail=100 >&2 || true
    kubectl -n "$NAMESPACE" logs deploy/kubekms-api --tail=100 >&2 || true
  fi
  if [ -z "${KEEP_CLUSTER:-}" ]; then
    "$KIND" delete cluster --name "$CLUSTER" || true
    rm -f "$STATE/marker"
  fi
  exit "$status"
}
trap cleanup EXIT

"$KIND" create cluster --name "$CLUSTER" --config kind-config.yaml --kubeconfig "$KUBECONFIG" --wait 180s
kubectl config use-context "kind-$CLUSTER"
kubectl get namespace kube-system -o jsonpath='{.metadata.uid}' > "$STATE/marker"

"$DOCKER" build --tag "$IMAGE" .
"$KIND" load docker-image "$IMAGE" --name "$CLUSTER"

"$HELM" install kubekms charts/kubekms --namespace "$NAMESPACE" --create-namespace \
  --values tests/e2e/values-kind.yaml --wait --timeout 5m

# tests/e2e/pytest.ini makes tests/e2e the rootdir: the unit fixture plugins stay out.
"$PYTHON" -m pytest -p no:cacheprovider tests/e2e -v ${PYTEST_ARGS:-}
