"""The KubeKMS operator: turns each KmsKey into sealed key material in a Secret (Kopf-based)."""
