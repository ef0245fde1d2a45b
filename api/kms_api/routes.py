"""The route table: one `Route` per endpoint drives request validation, auth, limits and OpenAPI.

Security property: only health, readiness, the OpenAPI document and login are `public`; every
other route requires a bearer token (see `kms_api.binding`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kms_api import schemas as s
from kms_api.binding import Route, bind
from kms_api.body import CRYPTO_LIMIT
from kms_api.dispatch import KeyOperations
from kms_api.trailingslash import TrailingSlash
from kms_api.views import crypto, keys, system, transfer
from kms_api.wire import KEY_DOC

_KEY = {"type": "object", "properties": {"key": KEY_DOC}}


def _obj(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}}


P = "/api/v1/kms/keys"
ID = s.KEY_ID_PARAMS
C = CRYPTO_LIMIT

ROUTES: tuple[Route, ...] = (
    Route(
        "POST", P, "createKmsKey", keys.create_key, "Create a key", "create", body=s.CREATE_KEY, response=_KEY
    ),
    Route(
        "GET",
        P,
        "listKmsKeys",
        keys.list_keys,
        "List keys",
        "read",
        query=s.LIST_QUERY,
        response={
            "type": "object",
            "properties": {"keys": {"type": "array", "items": KEY_DOC}, "totalCount": {"type": "integer"}},
        },
    ),
    Route(
        "POST",
        f"{P}/bulk-export-private-keys",
        "bulkExportKmsKeyPrivateKeys",
        transfer.bulk_export,
        "Export several keys' material",
        "export-private-key",
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
        "POST",
        f"{P}/bulk-import",
        "bulkImportKmsKeys",
        transfer.bulk_import,
        "Import keys",
        "create",
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
        "GET",
        P + "/key-name/{keyName}",
        "getKmsKeyByName",
        keys.get_key_by_name,
        "Get a key by name",
        "read",
        params=s.KEY_NAME_PARAMS,
        query=s.PROJECT_QUERY,
        response=_KEY,
    ),
    Route(
        "GET", P + "/{keyId}", "getKmsKeyById", keys.get_key, "Get a key", "read", params=ID, response=_KEY
    ),
    Route(
        "PATCH",
        P + "/{keyId}",
        "updateKmsKey",
        keys.update_key,
        "Update a key",
        "edit",
        params=ID,
        body=s.UPDATE_KEY,
        response=_KEY,
    ),
    Route(
        "DELETE",
        P + "/{keyId}",
        "deleteKmsKey",
        keys.delete_key,
        "Delete a key",
        "delete",
        params=ID,
        response=_KEY,
    ),
    Route(
        "POST",
        P + "/{keyId}/encrypt",
        "encryptWithKmsKey",
        crypto.encrypt,
        "Encrypt",
        "encrypt",
        params=ID,
        body=s.ENCRYPT,
        body_limit=C,
        response=_obj(ciphertext="string"),
    ),
    Route(
        "POST",
        P + "/{keyId}/decrypt",
        "decryptWithKmsKey",
        crypto.decrypt,
        "Decrypt",
        "decrypt",
        params=ID,
        body=s.DECRYPT,
        body_limit=C,
        response=_obj(plaintext="string"),
    ),
    Route(
        "GET",
        P + "/{keyId}/public-key",
        "getKmsKeyPublicKey",
        crypto.public_key,
        "Public key (base64 DER SPKI)",
        "read",
        params=ID,
        response=_obj(publicKey="string"),
    ),
    Route(
        "GET",
        P + "/{keyId}/private-key",
        "getKmsKeyPrivateKey",
        transfer.private_key,
        "Export a key's material",
        "export-private-key",
        params=ID,
        response=_obj(privateKey="string"),
    ),
    Route(
        "GET",
        P + "/{keyId}/signing-algorithms",
        "listKmsKeySigningAlgorithms",
        crypto.signing_algorithms,
        "Signing algorithms of a key",
        "read",
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
        "POST",
        P + "/{keyId}/sign",
        "signWithKmsKey",
        crypto.sign,
        "Sign",
        "sign",
        params=ID,
        body=s.SIGN,
        body_limit=C,
        response=_obj(signature="string", keyId="string", signingAlgorithm="string"),
    ),
    Route(
        "POST",
        P + "/{keyId}/verify",
        "verifyWithKmsKey",
        crypto.verify,
        "Verify",
        "verify",
        params=ID,
        body=s.VERIFY,
        body_limit=C,
        response=_obj(signatureValid="boolean", keyId="string", signingAlgorithm="string"),
    ),
    Route(
        "POST",
        P + "/{keyId}/rotate",
        "rotateKmsKey",
        keys.rotate_key,
        "Rotate an AES key",
        "rotate",
        params=ID,
        response=_KEY,
    ),
    Route(
        "POST",
        P + "/{keyId}/generate-mac",
        "generateMacWithKmsKey",
        crypto.generate_mac,
        "Generate a MAC",
        "generate-mac",
        params=ID,
        body=s.GENERATE_MAC,
        body_limit=C,
        response=_obj(mac="string", keyId="string", macAlgorithm="string"),
    ),
    Route(
        "POST",
        P + "/{keyId}/verify-mac",
        "verifyMacWithKmsKey",
        crypto.verify_mac,
        "Verify a MAC",
        "verify-mac",
        params=ID,
        body=s.VERIFY_MAC,
        body_limit=C,
        response=_obj(macValid="boolean", keyId="string", macAlgorithm="string"),
    ),
    Route(
        "POST",
        P + "/{keyId}/derive-shared-secret",
        "deriveSharedSecretWithKmsKey",
        crypto.derive_shared_secret,
        "ECDH shared secret",
        "derive-shared-secret",
        params=ID,
        body=s.DERIVE,
        body_limit=C,
        response=_obj(secret="string", keyId="string"),
    ),
    Route(
        "POST",
        "/api/v1/auth/universal-auth/login",
        "universalAuthLogin",
        system.universal_auth_login,
        "Machine identity login",
        body=s.LOGIN,
        public=True,
        checks_credentials=True,
        response=_obj(
            accessToken="string", expiresIn="integer", accessTokenMaxTTL="integer", tokenType="string"
        ),
    ),
    Route(
        "GET",
        "/healthz",
        "healthz",
        system.healthz,
        "Process is up",
        public=True,
        response=_obj(status="string"),
    ),
    Route(
        "GET",
        "/readyz",
        "readyz",
        system.readyz,
        "Store and sealer usable",
        public=True,
        response=_obj(status="string"),
    ),
    Route("GET", "/openapi.json", "openapi", system.openapi, "This document", public=True),
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
