"""The one Kubernetes layer of KubeKMS, used by the API and the operator alike.

- `config`: where the API server is and how to authenticate (in-cluster or kubeconfig), with a
  token file re-read every minute and after a 401 (rotated ServiceAccount tokens);
- `client`: the async REST client and its error classes (what is a conflict, what is permanent);
- `reflector`: the list-then-watch cache of one collection, like client-go's reflector;
- `layout`: the KmsKey resource and the material Secret layout (names, labels, annotations).

Import rule: this package imports only `kms_core` (and aiohttp's client, never `aiohttp.web`),
and never kopf, `kms_api` or `kms_operator`.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = ["client", "config", "layout", "reflector"]
