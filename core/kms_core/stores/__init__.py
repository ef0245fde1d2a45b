"""Key stores: where key records and sealed material live (SQLite embedded, or Kubernetes)."""

from kms_core.stores.base import KeyStore, ListQuery

__all__ = ["KeyStore", "ListQuery"]
