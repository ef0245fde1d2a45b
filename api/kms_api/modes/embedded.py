"""Embedded mode (`--store embedded`): a SQLite key store and token auth, both in `--data-dir`.

Security property: the store refuses a data dir sealed under another KEK (`SealerMismatch`)
before anything is written; the admin token, JWT secret and machine-identity secrets are files
created 0600 in the data dir (`kms_api.auth.tokens`) and never logged.
"""

from __future__ import annotations

from kms_api.auth.base import AuthBackend
from kms_api.auth.tokens import build_token_auth
from kms_api.settings import Settings
from kms_core.sealing.base import Sealer
from kms_core.stores.base import KeyStore
from kms_core.stores.sqlite import SqliteStore

__all__ = ["build"]


def build(settings: Settings, sealer: Sealer) -> tuple[KeyStore, AuthBackend]:
    """The SQLite store (bound to `sealer`'s KEK) and the token backend. Close both at exit."""
    # The store first: a data dir sealed under another KEK is refused before the token backend
    # writes its secret files.
    store = SqliteStore.open(settings.data_dir, sealer.kek_id)
    return store, build_token_auth(settings.data_dir, settings.tokens_file, settings.admin_token)
