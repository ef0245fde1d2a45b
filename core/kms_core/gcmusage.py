"""How many AES-GCM encryptions each key version has made in this process, with a warning well
before random nonces wear out.

A key's AES-GCM encryptions use fresh random 96-bit nonces. NIST SP 800-38D bounds a key to 2^32
such encryptions (beyond it the chance of a repeated nonce, which breaks confidentiality and
authenticity, exceeds 2^-32). Each key version gets one `EncryptionCount`; the hot path pays one
integer increment and one bitwise test per encryption. Every `stride` encryptions (65536) the
count is looked at: the `kubekms_aes_gcm_encryptions_max` gauge is updated, and once a version
reaches `warn_at` (2^30, a quarter of the bound) a WARNING naming the key id and version (never
material) is logged once, with rotation as the remedy; `kubekms_aes_gcm_key_versions_over_threshold`
counts such versions. Rotation starts a new version, and so a new count.

Counts live in memory: they restart with the process and are per process (with `--workers` or
several replicas the key's true total is the sum), so they are a lower bound that warns early
enough only when each process warns well before the bound; hence 2^30. Increments from threads
may race and lose a few counts, which is immaterial at this scale.

Security property: nothing but key ids, versions and counts is recorded; metric labels hold no
key ids (aggregates only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

from kms_core.metrics import AES_GCM_MAX_ENCRYPTIONS, AES_GCM_VERSIONS_OVER_THRESHOLD

log = logging.getLogger("kubekms.keys")

NONCE_LIMIT: Final = 2**32  # random-nonce AES-GCM encryptions per key (NIST SP 800-38D, 8.3)
WARN_AT: Final = 2**30
STRIDE: Final = 2**16


class EncryptionCount:
    """The encryption count of one key version; `add` is the only hot-path call."""

    __slots__ = ("count", "key_id", "mask", "usage", "version", "warned")

    def __init__(self, usage: GcmUsage, key_id: str, version: int) -> None:
        self.usage = usage
        self.key_id = key_id
        self.version = version
        self.count = 0
        self.mask = usage.stride - 1
        self.warned = False

    def add(self) -> None:
        """Count one encryption (before it is made: the count never lags the nonces used)."""
        count = self.count = self.count + 1
        if not count & self.mask:
            self.usage.reached(self)


class GcmUsage:
    """Counts by (key id, version) for one process; `counter` hands out the one count of a version."""

    def __init__(self, warn_at: int = WARN_AT, stride: int = STRIDE) -> None:
        if stride < 1 or stride & (stride - 1) or warn_at < stride:
            raise ValueError("stride must be a power of two no larger than warn_at")
        self.warn_at = warn_at
        self.stride = stride
        self._counts: dict[tuple[str, int], EncryptionCount] = {}
        self._lock = threading.Lock()  # keyrings may be built on executor threads
        self._max = 0
        self._over = 0
        # Told (key id, version, count) once per version that crosses `warn_at`, after the log line
        # (Kubernetes mode adds a Warning Event on the key's KmsKey). Called on the encrypting
        # thread: listeners must only schedule work, never block.
        self.listeners: list[Callable[[str, int, int], None]] = []

    def counter(self, key_id: str, version: int) -> EncryptionCount:
        """The count of `version` of `key_id` (made on first use; kept when keyrings are evicted)."""
        with self._lock:
            found = self._counts.get((key_id, version))
            if found is None:
                found = self._counts[(key_id, version)] = EncryptionCount(self, key_id, version)
            return found

    def count(self, key_id: str, version: int) -> int:
        found = self._counts.get((key_id, version))
        return found.count if found is not None else 0

    def reached(self, counter: EncryptionCount) -> None:
        """Called every `stride` encryptions of a version: gauges, and the one-time warning."""
        if counter.count > self._max:
            self._max = counter.count
            AES_GCM_MAX_ENCRYPTIONS.set(self._max)
        if counter.count >= self.warn_at and not counter.warned:
            counter.warned = True
            self._over += 1
            AES_GCM_VERSIONS_OVER_THRESHOLD.set(self._over)
            log.warning(
                "AES-GCM key %s version %d has made %d encryptions in this process; rotate the key "
                "(random nonces allow at most 2^32 encryptions per key version)",
                counter.key_id,
                counter.version,
                counter.count,
                extra={"key_id": counter.key_id, "version": counter.version, "encryptions": counter.count},
            )
            for listener in list(self.listeners):
                try:
                    listener(counter.key_id, counter.version, counter.count)
                except Exception:  # a failing listener never fails an encryption
                    log.exception("nonce-budget listener failed")

    def forget(self, key_id: str) -> None:
        """Drop the counts of a deleted key."""
        with self._lock:
            for k in [k for k in self._counts if k[0] == key_id]:
                del self._counts[k]


# The process's counts; the keyring loader hands their counters to the keyrings it builds.
GCM_USAGE: Final = GcmUsage()
