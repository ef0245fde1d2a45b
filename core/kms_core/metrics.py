"""Core Prometheus metrics: sealer operations, key-material cache, crypto failures.

Security property: label values come from small fixed sets (backend, operation, result, reason);
no key ids, names, identities or material ever become labels.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

SEALER_OPERATIONS: Final = Counter(
    "kubekms_sealer_operations_total",
    "Seal and unseal calls by sealer backend, operation and result.",
    ["backend", "op", "result"],
)
SEALER_DURATION: Final = Histogram(
    "kubekms_sealer_duration_seconds",
    "Latency of seal and unseal calls by sealer backend and operation.",
    ["backend", "op"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
)
CACHE_REQUESTS: Final = Counter(
    "kubekms_cache_requests_total",
    "Lookups in KubeKMS's in-memory caches by cache and result (hit or miss).",
    ["cache", "result"],
)
CRYPTO_FAILURES: Final = Counter(
    "kubekms_crypto_failures_total",
    "Cryptographic operations that failed, by reason.",
    ["reason"],
)
