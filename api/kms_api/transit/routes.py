"""The Transit dialect's route table, bound by the same pipeline as Infisical's (authentication,
limits, audit events, metrics), plus the `/v1/` fallback that answers Vault's 403/404/405.

Writes are accepted as POST and PUT (Vault treats them alike); lists as `LIST` (read as
`GET ?list=true` by the connection layer, kms_api.http.protocol) and `GET ?list=true`.

Security property: only `sys/health` and `sys/seal-status` are public (as in Vault); every other
path under `/v1/`, the unknown ones included, authenticates the caller first, so an
unauthenticated client learns `permission denied` and nothing about which paths exist.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from kms_api.http.error_replies import ERROR_DIALECTS
from kms_api.http.json_body import CRYPTO_LIMIT
from kms_api.observe import audit
from kms_api.pipeline.binding import admit, bind
from kms_api.pipeline.call import Call
from kms_api.pipeline.route import Audit, Handler, Route
from kms_api.transit import backup, byok, crypto, export, imports, keys, lifecycle, login, system, wrapping
from kms_api.transit.envelope import PREFIX, UNSUPPORTED_OPERATION, UNSUPPORTED_PATH, VaultError, error_reply
from kms_api.transit.inputs import vault_token
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["ROUTES", "add_routes"]

T = "/v1/transit"
A = Action
WRITE: Final = ("POST", "PUT")


def key_algorithm(call: Call, outcome: Outcome[Any] | None, ok: bool) -> str:
    key = outcome.key if outcome is not None else None
    return key.algorithm.value if key is not None else ""


def _writes(**kw: Any) -> tuple[Route, ...]:
    """One route per write method (Vault's `update` operation is POST or PUT)."""
    return tuple(Route(method=m, token=vault_token, **kw) for m in WRITE)


def _crypto(
    path: str, name: str, summary: str, handler: Handler, event: str, action: Action
) -> tuple[Route, ...]:
    return _writes(
        path=path, name=name, summary=summary, handler=handler, encode=crypto.batch_reply,
        label=key_algorithm, audit=Audit(event), action=action, body_limit=CRYPTO_LIMIT,
    )


ROUTES: tuple[Route, ...] = (
    Route(
        method="GET", path="/v1/sys/health", name="vaultHealth", summary="Vault health",
        handler=system.health, encode=system.reply, audit=None, action=None, public=True,
    ),
    Route(
        method="GET", path="/v1/sys/seal-status", name="vaultSealStatus", summary="Vault seal status",
        handler=system.seal_status, encode=system.reply, audit=None, action=None, public=True,
    ),
    Route(
        method="GET", path="/v1/sys/mounts", name="vaultMounts", summary="Mounted secrets engines",
        handler=system.mounts, encode=system.reply, audit=Audit("transit-list-mounts"), action=A.READ,
        token=vault_token,
    ),
    Route(
        method="GET", path="/v1/auth/token/lookup-self", name="vaultLookupSelf", summary="The caller's token",
        handler=system.lookup_self, encode=system.wrapped, audit=Audit("transit-lookup-self"),
        action=A.READ, token=vault_token,
    ),
    *_writes(
        path=T + "/random{tail:(?:/.*)?}", name="transitRandom", summary="Random bytes",
        handler=system.random_bytes, encode=system.wrapped, audit=Audit("transit-random"), action=A.READ,
    ),
    *_writes(
        path=T + "/hash", name="transitHash", summary="Hash",
        handler=system.hash_input, encode=system.wrapped, audit=Audit("transit-hash"), action=A.READ,
    ),
    *_writes(
        path=T + "/hash/{algorithm}", name="transitHashAlgorithm", summary="Hash",
        handler=system.hash_input, encode=system.wrapped, audit=Audit("transit-hash"), action=A.READ,
    ),
    Route(
        method="GET", path=T + "/keys", name="transitListKeys", summary="List keys",
        handler=keys.list_keys, encode=keys.list_reply, audit=Audit("get-cmeks"), action=A.READ,
        token=vault_token,
    ),
    Route(
        method="GET", path=T + "/keys/", name="transitListKeysSlash", summary="List keys",
        handler=keys.list_keys, encode=keys.list_reply, audit=Audit("get-cmeks"), action=A.READ,
        token=vault_token,
    ),
    Route(
        method="GET", path=T + "/keys/{name}", name="transitReadKey", summary="Read a key",
        handler=keys.read_key, encode=keys.key_reply, label=key_algorithm,
        audit=Audit("get-cmek", audit.key_record), action=A.READ, token=vault_token,
    ),
    *_writes(
        path=T + "/keys/{name}", name="transitCreateKey", summary="Create a key",
        handler=lifecycle.create_key, encode=keys.key_reply, label=key_algorithm,
        audit=Audit("create-cmek", audit.key_created), action=A.CREATE,
    ),
    Route(
        method="DELETE", path=T + "/keys/{name}", name="transitDeleteKey", summary="Delete a key",
        handler=lifecycle.delete_key, encode=lifecycle.no_content, label=key_algorithm,
        audit=Audit("delete-cmek", audit.key_deleted), action=A.DELETE, token=vault_token,
    ),
    *_writes(
        path=T + "/keys/{name}/rotate", name="transitRotateKey", summary="Rotate a key",
        handler=lifecycle.rotate_key, encode=keys.key_reply, label=key_algorithm,
        audit=Audit("rotate-cmek", audit.key_rotated), action=A.ROTATE,
    ),
    *_writes(
        path=T + "/keys/{name}/config", name="transitConfigureKey", summary="Configure a key",
        handler=lifecycle.configure_key, encode=keys.key_reply, label=key_algorithm,
        audit=Audit("update-cmek", audit.key_record), action=A.EDIT,
    ),
    *_writes(
        path=T + "/keys/{name}/trim", name="transitTrimKey", summary="Trim a key's versions",
        handler=lifecycle.trim_key, encode=keys.key_reply, label=key_algorithm,
        audit=Audit("update-cmek", audit.key_record), action=A.EDIT,
    ),
    Route(
        method="DELETE", path=T + "/keys/{name}/soft-delete", name="transitSoftDeleteKey",
        summary="Soft-delete (disable) a key", handler=lifecycle.soft_delete,
        encode=lifecycle.maybe_key_reply, label=key_algorithm, audit=Audit("update-cmek"), action=A.EDIT,
        token=vault_token,
    ),
    *_writes(
        path=T + "/keys/{name}/soft-delete-restore", name="transitSoftRestoreKey",
        summary="Restore a soft-deleted key", handler=lifecycle.soft_restore,
        encode=lifecycle.maybe_key_reply, label=key_algorithm, audit=Audit("update-cmek"), action=A.EDIT,
    ),
    Route(
        method="GET", path=T + "/wrapping_key", name="transitWrappingKey", summary="BYOK wrapping key",
        handler=imports.wrapping_key, encode=imports.wrapping_key_reply,
        audit=Audit("transit-wrapping-key"), action=A.READ, token=vault_token,
    ),
    *_writes(
        path=T + "/keys/{name}/import", name="transitImportKey", summary="Import a key (BYOK)",
        handler=imports.import_key, encode=imports.no_content, label=key_algorithm,
        audit=Audit("create-cmek", audit.key_created), action=A.CREATE,
    ),
    *_writes(
        path=T + "/keys/{name}/import_version", name="transitImportKeyVersion",
        summary="Import a key version (BYOK)", handler=imports.import_version, encode=imports.no_content,
        label=key_algorithm, audit=Audit("rotate-cmek", audit.key_rotated), action=A.ROTATE,
    ),
    Route(
        method="GET", path=T + "/export/{kind}/{name}", name="transitExport", summary="Export a key",
        handler=export.export_key, encode=export.export_reply, label=key_algorithm,
        audit=Audit("cmek-get-private-key", audit.key_record), action=A.READ, token=vault_token,
    ),
    Route(
        method="GET", path=T + "/export/{kind}/{name}/{version}", name="transitExportVersion",
        summary="Export a key version", handler=export.export_key, encode=export.export_reply,
        label=key_algorithm, audit=Audit("cmek-get-private-key", audit.key_record), action=A.READ,
        token=vault_token,
    ),
    Route(
        method="GET", path=T + "/backup/{name}", name="transitBackupKey", summary="Back up a key (plaintext)",
        handler=backup.backup_key, encode=backup.backup_reply, label=key_algorithm,
        audit=Audit("cmek-get-private-key", audit.key_record), action=A.EXPORT, token=vault_token,
    ),
    *_writes(
        path=T + "/restore", name="transitRestoreKey", summary="Restore a key from a backup",
        handler=backup.restore_key, encode=backup.no_content, label=key_algorithm,
        audit=Audit("create-cmek", audit.key_created), action=A.CREATE,
    ),
    *_writes(
        path=T + "/restore/{name}", name="transitRestoreKeyNamed", summary="Restore a key from a backup",
        handler=backup.restore_key, encode=backup.no_content, label=key_algorithm,
        audit=Audit("create-cmek", audit.key_created), action=A.CREATE,
    ),
    *_crypto(T + "/rewrap/{name}", "transitRewrap", "Rewrap", wrapping.rewrap, "cmek-rewrap", A.DECRYPT),
    *_crypto(
        T + "/datakey/{kind}/{name}", "transitDataKey", "Data key", wrapping.datakey, "cmek-encrypt",
        A.ENCRYPT,
    ),
    *_crypto(T + "/encrypt/{name}", "transitEncrypt", "Encrypt", crypto.encrypt, "cmek-encrypt", A.ENCRYPT),
    *_crypto(T + "/decrypt/{name}", "transitDecrypt", "Decrypt", crypto.decrypt, "cmek-decrypt", A.DECRYPT),
    *_crypto(T + "/hmac/{name}", "transitHmac", "HMAC", crypto.hmac, "cmek-generate-mac", A.GENERATE_MAC),
    *_crypto(
        T + "/hmac/{name}/{algorithm}", "transitHmacAlgorithm", "HMAC", crypto.hmac, "cmek-generate-mac",
        A.GENERATE_MAC,
    ),
    *_crypto(T + "/sign/{name}", "transitSign", "Sign", crypto.sign, "cmek-sign", A.SIGN),
    *_crypto(
        T + "/sign/{name}/{hash_algorithm}", "transitSignHash", "Sign", crypto.sign, "cmek-sign", A.SIGN
    ),
    # One route verifies signatures (VERIFY) and HMACs (VERIFY_MAC, checked by the handler).
    *_crypto(T + "/verify/{name}", "transitVerify", "Verify", crypto.verify, "cmek-verify", A.VERIFY),
    *_crypto(
        T + "/verify/{name}/{hash_algorithm}", "transitVerifyHash", "Verify", crypto.verify, "cmek-verify",
        A.VERIFY,
    ),
)

# Never bound: `admit` reads its name (the rate-limit bucket), `public` and token reader only.
_FALLBACK: Final = Route(
    method="*", path=PREFIX + "{tail:.*}", name="vaultUnknownPath", summary="Unknown Vault path",
    handler=system.health, encode=system.reply, audit=Audit("transit-unknown-path"), action=A.READ,
    token=vault_token,
)


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """Any other `/v1/` request: authenticate (403 first, as Vault), then 405 for a known path
    with another method, else 404 in Vault's words."""
    await admit(request, _FALLBACK)
    if request.method in ("POST", "PUT") and request.path.endswith("/"):
        raise VaultError(400, "cannot write to a path ending in '/'")
    for resource in request.app.router.resources():
        if resource.canonical.startswith(PREFIX) and resource.name != _FALLBACK.name:
            _match, allowed = await resource.resolve(request)
            if allowed:
                raise VaultError(405, UNSUPPORTED_OPERATION)
    path = request.path[len(PREFIX) :]
    if path.startswith(("transit/", "sys/")) or path == "transit":
        raise VaultError(404, UNSUPPORTED_PATH)
    raise VaultError(404, f'no handler for route "{path}". route entry not found.')


def add_routes(app: web.Application) -> None:
    """Register the Transit routes, Vault's error shape for `/v1/`, and the fallback (last)."""
    app[ERROR_DIALECTS] = (*app.get(ERROR_DIALECTS, ()), (PREFIX, error_reply))
    app[byok.WRAPPING] = byok.WrappingKeys()
    for route in ROUTES:
        app.router.add_route(route.method, route.path, bind(route), name=route.name)
    login.add_routes(app)
    app.router.add_route("*", _FALLBACK.path, _unmatched, name=_FALLBACK.name)
