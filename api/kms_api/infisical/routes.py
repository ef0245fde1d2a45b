"""The Infisical dialect's route table: one keyword-only `Route` per endpoint carries its handler,
encoder, audit event, action, metrics label and schemas; it drives validation, auth, limits,
auditing and the OpenAPI document.

Security property: only health, readiness, the OpenAPI document and login are `public`; every
other route requires a bearer token (see `kms_api.pipeline.binding`) and declares its audit event and the
action the service enforces (`kms_api.pipeline.route.Route` refuses one without; a test proves the
action by calling the service with a policy that denies).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kms_api.http.dispatch import KeyOperations
from kms_api.http.json_body import CRYPTO_LIMIT
from kms_api.http.trailingslash import TrailingSlash
from kms_api.infisical import crypto, keys, lifecycle, system, transfer
from kms_api.infisical import schemas as s
from kms_api.infisical.encoding import KEY_DOC
from kms_api.observe import audit
from kms_api.pipeline.binding import bind
from kms_api.pipeline.call import Call
from kms_api.pipeline.route import Audit, Route
from kms_core.outcome import Outcome
from kms_core.policy import Action

_KEY = {"type": "object", "properties": {"key": KEY_DOC}}


def _obj(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}}


# -- metrics `algorithm` labels (enum values only) -------------------------------------------------


def key_algorithm(call: Call, outcome: Outcome[Any] | None, ok: bool) -> str:
    """The algorithm of the key the operation used, once the key passed its checks (a failure
    after them, such as a wrong usage or a tampered ciphertext, is labelled too)."""
    key = outcome.key if outcome is not None else None
    return key.algorithm.value if key is not None else ""


def returned_key_algorithm(call: Call, outcome: Outcome[Any] | None, ok: bool) -> str:
    """The algorithm of the key record a successful operation returned."""
    key = outcome.key if ok and outcome is not None else None
    return key.algorithm.value if key is not None else ""


def signing_algorithm(call: Call, outcome: Outcome[Any] | None, ok: bool) -> str:
    """The requested signing algorithm, once the body validated (whatever the outcome)."""
    value: str = call.body.get("signingAlgorithm", "")
    return value


P = "/api/v1/kms/keys"
D = "/api/v1/kms/deleted-keys"
ID = s.KEY_ID_PARAMS
C = CRYPTO_LIMIT
A = Action
KEY_READ = Audit("get-cmek", audit.key_record)

ROUTES: tuple[Route, ...] = (
    Route(
        method="POST", path=P, name="createKmsKey", summary="Create a key",
        handler=keys.create_key, encode=keys.key_reply, label=returned_key_algorithm,
        audit=Audit("create-cmek", audit.key_created), action=A.CREATE,
        body=s.CREATE_KEY, response=_KEY,
    ),
    Route(
        method="GET", path=P, name="listKmsKeys", summary="List keys",
        handler=keys.list_keys, encode=keys.list_reply,
        audit=Audit("get-cmeks", audit.keys_listed), action=A.READ,
        query=s.LIST_QUERY,
        response={
            "type": "object",
            "properties": {"keys": {"type": "array", "items": KEY_DOC}, "totalCount": {"type": "integer"}},
        },
    ),
    Route(
        method="POST", path=f"{P}/bulk-export-private-keys", name="bulkExportKmsKeyPrivateKeys",
        summary="Export several keys' material",
        handler=transfer.bulk_export, encode=transfer.bulk_export_reply,
        audit=Audit("cmek-bulk-export-private-keys", audit.keys_exported), action=A.EXPORT,
        body=s.BULK_EXPORT,
        response={
            "type": "object",
            "properties": {
                "keys": {
                    "type": "array",
                    "items": _obj(
                        keyId="string",
                        name="string",
                        keyUsage="string",
                        algorithm="string",
                        privateKey="string",
                        publicKey="string",
                    ),
                }
            },
        },
    ),
    Route(
        method="POST", path=f"{P}/bulk-import", name="bulkImportKmsKeys", summary="Import keys",
        handler=transfer.bulk_import, encode=transfer.bulk_import_reply,
        audit=Audit("cmek-bulk-import-keys", audit.keys_imported), action=A.CREATE,
        body=s.BULK_IMPORT,
        response={
            "type": "object",
            "properties": {
                "keys": {"type": "array", "items": _obj(id="string", name="string")},
                "errors": {"type": "array", "items": _obj(name="string", message="string")},
            },
        },
    ),
    Route(
        method="GET", path=P + "/key-name/{keyName}", name="getKmsKeyByName", summary="Get a key by name",
        handler=keys.get_key_by_name, encode=keys.key_reply, label=returned_key_algorithm,
        audit=KEY_READ, action=A.READ,
        params=s.KEY_NAME_PARAMS, query=s.PROJECT_QUERY, response=_KEY,
    ),
    Route(
        method="GET", path=P + "/{keyId}", name="getKmsKeyById", summary="Get a key",
        handler=keys.get_key, encode=keys.key_reply, label=returned_key_algorithm,
        audit=KEY_READ, action=A.READ,
        params=ID, response=_KEY,
    ),
    Route(
        method="PATCH", path=P + "/{keyId}", name="updateKmsKey", summary="Update a key",
        handler=keys.update_key, encode=keys.key_reply, label=returned_key_algorithm,
        audit=Audit("update-cmek", audit.key_updated), action=A.EDIT,
        params=ID, body=s.UPDATE_KEY, response=_KEY,
    ),
    Route(
        method="DELETE", path=P + "/{keyId}", name="deleteKmsKey", summary="Delete a key",
        handler=keys.delete_key, encode=keys.key_reply, label=returned_key_algorithm,
        audit=Audit("delete-cmek", audit.key_deleted), action=A.DELETE,
        params=ID, response=_KEY,
    ),
    Route(
        method="POST", path=P + "/{keyId}/encrypt", name="encryptWithKmsKey", summary="Encrypt",
        handler=crypto.encrypt, encode=crypto.encrypt_reply, label=key_algorithm,
        audit=Audit("cmek-encrypt"), action=A.ENCRYPT,
        params=ID, body=s.ENCRYPT, body_limit=C, response=_obj(ciphertext="string"),
    ),
    Route(
        method="POST", path=P + "/{keyId}/decrypt", name="decryptWithKmsKey", summary="Decrypt",
        handler=crypto.decrypt, encode=crypto.decrypt_reply, label=key_algorithm,
        audit=Audit("cmek-decrypt"), action=A.DECRYPT,
        params=ID, body=s.DECRYPT, body_limit=C, response=_obj(plaintext="string"),
    ),
    Route(
        method="GET", path=P + "/{keyId}/public-key", name="getKmsKeyPublicKey",
        summary="Public key (base64 DER SPKI)",
        handler=crypto.public_key, encode=crypto.public_key_reply,
        audit=Audit("cmek-get-public-key"), action=A.READ,
        params=ID, response=_obj(publicKey="string"),
    ),
    Route(
        method="GET", path=P + "/{keyId}/private-key", name="getKmsKeyPrivateKey",
        summary="Export a key's material",
        handler=transfer.private_key, encode=transfer.private_key_reply,
        audit=Audit("cmek-get-private-key"), action=A.EXPORT,
        params=ID, response=_obj(privateKey="string"),
    ),
    Route(
        method="GET", path=P + "/{keyId}/signing-algorithms", name="listKmsKeySigningAlgorithms",
        summary="Signing algorithms of a key",
        handler=crypto.signing_algorithms, encode=crypto.signing_algorithms_reply,
        audit=Audit("cmek-list-signing-algorithms"), action=A.READ,
        params=ID,
        response={
            "type": "object",
            "properties": {
                "signingAlgorithms": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(s.SIGNING_ALGORITHMS)},
                }
            },
        },
    ),
    Route(
        method="POST", path=P + "/{keyId}/sign", name="signWithKmsKey", summary="Sign",
        handler=crypto.sign, encode=crypto.sign_reply, label=signing_algorithm,
        audit=Audit("cmek-sign", audit.signed), action=A.SIGN,
        params=ID, body=s.SIGN, body_limit=C,
        response=_obj(signature="string", keyId="string", signingAlgorithm="string"),
    ),
    Route(
        method="POST", path=P + "/{keyId}/verify", name="verifyWithKmsKey", summary="Verify",
        handler=crypto.verify, encode=crypto.verify_reply, label=signing_algorithm,
        audit=Audit("cmek-verify", audit.verified), action=A.VERIFY,
        params=ID, body=s.VERIFY, body_limit=C,
        response=_obj(signatureValid="boolean", keyId="string", signingAlgorithm="string"),
    ),
    Route(
        method="POST", path=P + "/{keyId}/rotate", name="rotateKmsKey",
        summary="Rotate a symmetric encrypt-decrypt key (Infisical's rule)",
        handler=keys.rotate_key, encode=keys.key_reply, label=returned_key_algorithm,
        audit=Audit("rotate-cmek", audit.key_rotated), action=A.ROTATE,
        params=ID, response=_KEY,
    ),
    Route(
        method="GET", path=P + "/{keyId}/versions", name="listKmsKeyVersions",
        summary="A key's versions and lifecycle policy (side branch A's shape, with state and policy)",
        handler=lifecycle.versions, encode=lifecycle.versions_reply,
        audit=Audit("get-cmek-versions", audit.key_record), action=A.READ,
        params=ID, response=lifecycle.VERSIONS_DOC,
    ),
    Route(
        method="POST", path=P + "/{keyId}/generate-mac", name="generateMacWithKmsKey",
        summary="Generate a MAC",
        handler=crypto.generate_mac, encode=crypto.generate_mac_reply, label=key_algorithm,
        audit=Audit("cmek-generate-mac", audit.mac_generated), action=A.GENERATE_MAC,
        params=ID, body=s.GENERATE_MAC, body_limit=C,
        response=_obj(mac="string", keyId="string", macAlgorithm="string"),
    ),
    Route(
        method="POST", path=P + "/{keyId}/verify-mac", name="verifyMacWithKmsKey", summary="Verify a MAC",
        handler=crypto.verify_mac, encode=crypto.verify_mac_reply, label=key_algorithm,
        audit=Audit("cmek-verify-mac", audit.mac_verified), action=A.VERIFY_MAC,
        params=ID, body=s.VERIFY_MAC, body_limit=C,
        response=_obj(macValid="boolean", keyId="string", macAlgorithm="string"),
    ),
    Route(
        method="POST", path=P + "/{keyId}/derive-shared-secret", name="deriveSharedSecretWithKmsKey",
        summary="ECDH shared secret",
        handler=crypto.derive_shared_secret, encode=crypto.derive_shared_secret_reply,
        audit=Audit("cmek-derive-shared-secret"), action=A.DERIVE,
        params=ID, body=s.DERIVE, body_limit=C, response=_obj(secret="string", keyId="string"),
    ),
    # KubeKMS's recoverable deletion (README "Key lifecycle"): admin-only `restore` permission.
    Route(
        method="GET", path=D, name="listDeletedKmsKeys",
        summary="Keys deleted within their recovery window (KubeKMS extension)",
        handler=lifecycle.deleted_keys, encode=lifecycle.deleted_keys_reply,
        audit=Audit("get-deleted-cmeks", audit.keys_listed_deleted), action=A.RESTORE,
        query=s.PROJECT_QUERY,
        response={
            "type": "object",
            "properties": {
                "keys": {"type": "array", "items": lifecycle.DELETED_KEY_DOC},
                "totalCount": {"type": "integer"},
            },
        },
    ),
    Route(
        method="POST", path=D + "/{keyId}/restore", name="restoreDeletedKmsKey",
        summary="Restore a deleted key: same id, material and versions (KubeKMS extension)",
        handler=lifecycle.restore, encode=keys.key_reply, label=returned_key_algorithm,
        audit=Audit("restore-cmek", audit.key_restored), action=A.RESTORE,
        params=ID, body=s.RESTORE_KEY, response=_KEY,
    ),
    Route(
        method="DELETE", path=D + "/{keyId}", name="purgeDeletedKmsKey",
        summary="Destroy a deleted key now, before its window ends (KubeKMS extension)",
        handler=lifecycle.purge, encode=lifecycle.purge_reply, label=returned_key_algorithm,
        audit=Audit("purge-cmek", audit.key_purged), action=A.RESTORE,
        params=ID, response={"type": "object", "properties": {"key": lifecycle.DELETED_KEY_DOC}},
    ),
    Route(
        method="POST", path="/api/v1/auth/universal-auth/login", name="universalAuthLogin",
        summary="Machine identity login",
        handler=system.universal_auth_login, encode=system.reply,
        audit=Audit(audit.LOGIN_EVENT, audit.login_attempt, on_failure=True), action=None,
        body=s.LOGIN, public=True, checks_credentials=True,
        response=_obj(
            accessToken="string", expiresIn="integer", accessTokenMaxTTL="integer", tokenType="string"
        ),
    ),
    Route(
        method="GET", path="/healthz", name="healthz", summary="Process is up",
        handler=system.healthz, encode=system.reply, audit=None, action=None,
        public=True, response=_obj(status="string"),
    ),
    Route(
        method="GET", path="/readyz", name="readyz", summary="Store and sealer usable",
        handler=system.readyz, encode=system.reply, audit=None, action=None,
        public=True, response=_obj(status="string"),
    ),
    Route(
        method="GET", path="/openapi.json", name="openapi", summary="This document",
        handler=system.openapi, encode=system.reply, audit=None, action=None, public=True,
    ),
)


def add_routes(app: web.Application, *, fast_dispatch: bool = True) -> None:
    """Register every route; `fast_dispatch` puts `KeyOperations` first in the keys' bucket.

    `TrailingSlash` comes last: a path with one trailing slash resolves to its slash-less route.
    """
    operations = KeyOperations(P)
    if fast_dispatch:
        app.router.register_resource(operations)
    for route in ROUTES:
        registered = app.router.add_route(route.method, route.path, bind(route), name=route.name)
        operations.add(registered.resource)  # type: ignore[arg-type]
    app.router.register_resource(TrailingSlash(app.router))
