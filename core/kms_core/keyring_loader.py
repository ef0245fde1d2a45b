"""Key material on demand: stored versions unsealed into ready-to-use `Keyring`s, new versions
minted and sealed, and the slow part of either kept off the event loop.

`KeyService` owns one `KeyringLoader` and sends it every step that touches material. Keyrings
are cached by (key id, version), so a warm key costs no store read and no unsealing. Slow work
(RSA private-key operations, RSA key generation, HSM round trips) runs in a bounded executor;
fast work (AES, HMAC, EC verification, root-key unsealing) runs inline, where a thread hop would
cost more than the work.

Security property: unsealed material exists only inside `Keyring` objects held in the bounded
`KeyringLru`; a version that cannot be unsealed (wrong KEK, tampered store) reaches callers as
a generic `KmsError` with no detail, and the log records only the key id and the exception type.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

from kms_core import material
from kms_core.algorithms import is_symmetric, spec_of
from kms_core.errors import KmsError, Unavailable
from kms_core.executor import crypto_threads
from kms_core.gcmusage import GCM_USAGE, GcmUsage
from kms_core.keyring import Keyring
from kms_core.keyring_lru import KeyringLru
from kms_core.metrics import CRYPTO_FAILURES
from kms_core.model import Algorithm, Key
from kms_core.sealing.base import Sealer
from kms_core.stores.base import KeyStore

__all__ = ["KeyringLoader"]

# The service's logger: these records were always the service's, and dashboards filter on it.
log = logging.getLogger("kubekms.service")

T = TypeVar("T")


class KeyringLoader:
    """Keyrings of one store's keys, unsealed with one sealer; mints material for new versions.

    Slow work runs in `executor`; with none given, the loader makes a pool of `crypto_threads()`
    threads and shuts it down in `close`.
    """

    def __init__(
        self,
        store: KeyStore,
        sealer: Sealer,
        *,
        cache_size: int = 4096,
        executor: Executor | None = None,
        usage: GcmUsage = GCM_USAGE,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=crypto_threads(), thread_name_prefix="kubekms-crypto"
        )
        self._keyrings = KeyringLru(cache_size)
        self._usage = usage
        # Unsealing with a root key costs microseconds; an HSM round trip may block for longer.
        self._unseal_inline = sealer.backend == "rootkey"

    async def offload(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on the executor, so a slow call never stalls the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, ring: Keyring, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`, an operation of `ring`: offloaded when the ring's algorithm is slow."""
        return await self.offload(fn, *args) if ring.is_slow else fn(*args)

    async def keyring(self, key: Key) -> Keyring:
        """The ready-to-use keyring of `key` at its current version (cached; unsealed on miss)."""
        ring = self._keyrings.get(key.id, key.generation)
        if ring is not None:
            return ring
        # Versions below the decryption bound are never unsealed: a retired version's material
        # does not enter memory.
        low = max(key.min_decryption_version, key.min_available_version, 1)
        versions = [v for v in await self.store.versions(key.id) if low <= v.version <= key.version]
        if not versions or versions[0].version != key.version:
            log.error("key material missing", extra={"key_id": key.id, "version": key.version})
            raise Unavailable("Key material is not available yet; retry shortly")

        usage = self._usage.counter(key.id, key.version) if is_symmetric(key.algorithm) else None

        def load() -> Keyring:
            materials = {
                v.version: material.unseal(key.id, v.version, key.algorithm, v.sealed, self.sealer)
                for v in versions
            }
            return Keyring(
                key.algorithm, materials, key.version, usage=usage,
                min_decryption_version=key.min_decryption_version,
                derived=key.derived, convergent=key.convergent_encryption,
            )

        try:
            ring = load() if self._unseal_inline else await self.offload(load)
        except KmsError:
            raise
        except Exception as exc:
            # Wrong KEK or a tampered store: a server fault, never the client's. No details out.
            CRYPTO_FAILURES.labels(reason="unseal").inc()
            log.error("cannot unseal key material", extra={"key_id": key.id, "error": type(exc).__name__})
            raise KmsError("Something went wrong") from None
        self._keyrings.put(key.id, key.generation, ring)
        log.debug("keyring loaded", extra={"key_id": key.id, "version": key.version})
        return ring

    async def new_material(self, key_id: str, version: int, algorithm: Algorithm) -> bytes | None:
        """Sealed fresh material for `version` of `key_id`, or None when the store makes its own."""
        if self.store.generates_material:
            return None
        if spec_of(algorithm).slow or not self._unseal_inline:
            return await self.offload(material.mint, key_id, version, algorithm, self.sealer)
        return material.mint(key_id, version, algorithm, self.sealer)

    async def seal_imported(self, key_id: str, version: int, algorithm: Algorithm, raw: bytes) -> bytes:
        """`raw` (a client's material for `algorithm`) validated and sealed for `version` of
        `key_id`; raises BadRequest when it is not valid material. Offloaded like `new_material`:
        an HSM round trip or an RSA key check never runs on the event loop."""

        def seal() -> bytes:
            parsed = material.parse_import(algorithm, raw)
            return material.seal(key_id, version, algorithm, parsed, self.sealer)

        if spec_of(algorithm).slow or not self._unseal_inline:
            return await self.offload(seal)
        return seal()

    async def ready(self) -> None:
        """Raise Unavailable unless the store can serve and the sealer can seal and unseal."""
        try:
            await self.store.ready()
            probe = b"kubekms-readiness"
            aad = b"kubekms/v1|readiness"
            sealed = await self.offload(self.sealer.seal, probe, aad)
            if await self.offload(self.sealer.unseal, sealed, aad) != probe:
                raise Unavailable("sealer round trip failed")
        except Unavailable:
            raise
        except Exception as exc:
            raise Unavailable(f"not ready: {type(exc).__name__}") from None

    def forget(self, key_id: str) -> None:
        """Drop every cached version of `key_id` (it was deleted)."""
        self._keyrings.drop(key_id)
        self._usage.forget(key_id)

    def close(self) -> None:
        """Drop all unsealed material; stop the executor if this loader made it."""
        self._keyrings.clear()
        if self._own_executor and isinstance(self._executor, ThreadPoolExecutor):
            self._executor.shutdown(wait=False, cancel_futures=True)
