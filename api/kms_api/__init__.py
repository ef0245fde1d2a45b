"""KubeKMS HTTP API: an aiohttp service wire-compatible with Infisical's KMS API."""
