"""Where each `--store` mode is built: one module per mode, each with one `build`.

`build(settings, sealer)` dispatches on `settings.store` to the registered mode's
`build(settings, sealer) -> (KeyStore, AuthBackend)`. Adding a mode is one module here, one entry
in `MODES` and its name in `kms_api.settings.STORES` (this package refuses to import when the two
disagree). Modes are independent of each other, and the stores and auth backends they compose
never import a mode (import-linter contracts in pyproject.toml).
Security property: every mode is imported unconditionally — a build without a mode's
dependencies fails at import, never by quietly falling back to another mode at startup.
"""

from __future__ import annotations

from collections.abc import Callable

from kms_api.auth.base import AuthBackend
from kms_api.modes import embedded, kubernetes
from kms_api.settings import STORES, Settings
from kms_core.sealing.base import Sealer
from kms_core.stores.base import KeyStore

__all__ = ["MODES", "Mode", "build", "embedded", "kubernetes"]

# A mode's builder: the store and the auth backend of one process (both closed at shutdown).
Mode = Callable[[Settings, Sealer], tuple[KeyStore, AuthBackend]]

MODES: dict[str, Mode] = {
    "embedded": embedded.build,
    "kubernetes": kubernetes.build,
}

if set(MODES) != set(STORES):
    raise ImportError(f"kms_api.modes registers {sorted(MODES)} but settings accept {sorted(STORES)}")


def build(settings: Settings, sealer: Sealer) -> tuple[KeyStore, AuthBackend]:
    """The store and auth backend of `settings.store` (settings are checked at load: it is known)."""
    return MODES[settings.store](settings, sealer)
