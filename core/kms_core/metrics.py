"""Core Prometheus metrics: sealer operations, key-material cache, crypto failures, AES-GCM usage.

Security property: label values come from small fixed sets (backend, operation, result, reason);
no key ids, names, identities or material ever become labels.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

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
AES_GCM_MAX_ENCRYPTIONS: Final = Gauge(
    "kubekms_aes_gcm_encryptions_max",
    "The most AES-GCM encryptions one key version has made in this process (updated every 65536); "
    "rotate keys well before 2^32.",
    multiprocess_mode="max",
)
AES_GCM_VERSIONS_OVER_THRESHOLD: Final = Gauge(
    "kubekms_aes_gcm_key_versions_over_threshold",
    "AES-GCM key versions past the warning threshold (2^30 encryptions) in this process; the log "
    "names them.",
    multiprocess_mode="max",
)
KEY_ROTATIONS: Final = Counter(
    "kubekms_key_rotations_total",
    "Key rotations by trigger: manual (an API call) or scheduled (the key's rotation period).",
    ["trigger"],
)
KEY_ROTATION_OVERDUE: Final = Gauge(
    "kubekms_key_rotation_overdue",
    "Keys whose scheduled rotation is past due, as last counted by the rotation scheduler, by how "
    "late: within-period (less than one rotation period late) or over-period.",
    ["lateness"],
    multiprocess_mode="max",
)
