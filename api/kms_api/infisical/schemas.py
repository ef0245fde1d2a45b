"""Request schemas of every route (spec §1-§2), built from `kms_api.schema.fields`.

The same objects validate requests and generate /openapi.json. Limits are the V2+ ones from
`kms_core.algorithms`. Security property: payloads are decoded here once and handed to the service
as bytes; nothing in a failed payload is echoed back.
"""

from __future__ import annotations

from typing import Any, Final

from kms_api.schema.base64_fields import Base64
from kms_api.schema.composite_fields import Array, Schema
from kms_api.schema.fields import Boolean, Enum, Path, QueryInt, Slug, String, Uuid
from kms_api.schema.number_fields import Duration, Integer
from kms_core import algorithms as alg
from kms_core.errors import Issue
from kms_core.model import Algorithm, KeyUsage, SigningAlgorithm

USAGES: Final = tuple(u.value for u in KeyUsage)
# The Infisical dialect's names, from the algorithm registry (kms_core.algorithms).
# Transit-only types (chacha20-poly1305, RSA_2048/3072) have no Infisical name: not creatable here.
ALGORITHMS: Final = tuple(
    s.wire[alg.Dialect.INFISICAL] for s in alg.ALGORITHMS if alg.Dialect.INFISICAL in s.wire
)
SIGNING_ALGORITHMS: Final = tuple(s.value for s in SigningAlgorithm)

_description = String("description", required=False, trim=True, max_length=500)


def _resolve_algorithm(body: dict[str, Any], path: Path, issues: list[Issue]) -> None:
    """`algorithm` wins over the deprecated `encryptionAlgorithm`; then usage compatibility (§1.3)."""
    chosen = body.pop("algorithm") or body.pop("encryptionAlgorithm") or Algorithm.AES_256_GCM.value
    body.pop("encryptionAlgorithm", None)
    usage = KeyUsage(body["keyUsage"])
    algorithm = Algorithm(chosen)
    if not alg.is_compatible(usage, algorithm):
        issues.append(Issue("custom", alg.incompatibility_message(usage), (*path, "algorithm")))
    body["algorithm"] = algorithm
    body["keyUsage"] = usage


CREATE_KEY: Final = Schema(
    name="CreateKmsKeyBody",
    fields=(
        String(
            "projectId", min_length=1, trim=True, description="Project slug (a namespace in Kubernetes mode)"
        ),
        Slug("name", max_length=32),
        _description,
        Enum("keyUsage", required=False, values=USAGES, default=KeyUsage.ENCRYPT_DECRYPT.value),
        Enum("algorithm", required=False, values=ALGORITHMS, description="Default aes-256-gcm"),
        Enum("encryptionAlgorithm", required=False, values=ALGORITHMS, description="Deprecated alias"),
        Boolean("isExportable", required=False, default=False),
        Boolean("hasDeleteProtection", required=False, default=False),
    ),
    refine=_resolve_algorithm,
)

# KubeKMS's lifecycle extensions of the update route (README "Key lifecycle"): the rules of
# their values are the service's (kms_core.lifecycle: 400 with OpenBao's texts); only their
# syntax is checked here.
_EXTENSION = "KubeKMS extension (lifecycle policy): "
UPDATE_KEY: Final = Schema(
    name="UpdateKmsKeyBody",
    fields=(
        Slug("name", required=False, max_length=32),
        Boolean("isDisabled", required=False),
        _description,
        Boolean("hasDeleteProtection", required=False),
        Duration(
            "rotationPeriod", required=False,
            description=_EXTENSION + "scheduled rotation every this long (24h, 90d, 1h30m or seconds; "
            "at least 1h); 0, \"0\" or null turns it off",
        ),
        Integer(
            "minDecryptionVersion", required=False,
            description=_EXTENSION + "older versions no longer decrypt or verify (0 is 1)",
        ),
        Integer(
            "minEncryptionVersion", required=False,
            description=_EXTENSION + "older versions may not be chosen to encrypt (0 = the latest only)",
        ),
        Integer(
            "minAvailableVersion", required=False,
            description=_EXTENSION + "destroy the material of every older version (irreversible; "
            "only when minDecryptionVersion and minEncryptionVersion are at or above it)",
        ),
    ),
)

# Body of the restore route: a new name, for when the old one was taken meanwhile.
RESTORE_KEY: Final = Schema(
    name="RestoreKmsKeyBody",
    fields=(Slug("name", required=False, max_length=32, description="Default: the key's name when deleted"),),
)

LIST_QUERY: Final = Schema(
    name="ListKmsKeysQuery",
    fields=(
        String("projectId", min_length=1, min_message="Project ID is required"),
        QueryInt("offset", required=False, default=0, minimum=0),
        QueryInt("limit", required=False, default=100, minimum=1, maximum=100),
        Enum("orderBy", required=False, values=("name",), default="name"),
        Enum("orderDirection", required=False, values=("asc", "desc"), default="asc"),
        String("search", required=False, trim=True),
    ),
)

KEY_ID_PARAMS: Final = Schema(name="KeyIdParams", fields=(Uuid("keyId"),))
KEY_NAME_PARAMS: Final = Schema(
    name="KeyNameParams", fields=(Slug("keyName", max_length=64, label="Key name"),)
)
PROJECT_QUERY: Final = Schema(
    name="ProjectQuery",
    fields=(String("projectId", min_length=1, min_message="Project ID is required"),),
)

ENCRYPT: Final = Schema(
    name="EncryptBody", fields=(Base64("plaintext", label="data", limit=alg.PLAINTEXT_LIMIT),)
)
DECRYPT: Final = Schema(
    name="DecryptBody", fields=(Base64("ciphertext", label="ciphertext", limit=alg.CIPHERTEXT_LIMIT),)
)

_signing_algorithm = Enum("signingAlgorithm", values=SIGNING_ALGORITHMS)
_is_digest = Boolean("isDigest", required=False, default=False)
_data = Base64("data", label="data", limit=alg.DATA_LIMIT)

SIGN: Final = Schema(name="SignBody", fields=(_signing_algorithm, _is_digest, _data))
VERIFY: Final = Schema(
    name="VerifyBody",
    fields=(
        _signing_algorithm,
        _is_digest,
        _data,
        Base64("signature", label="signature", limit=alg.SIGNATURE_LIMIT),
    ),
)
GENERATE_MAC: Final = Schema(name="GenerateMacBody", fields=(_data,))
VERIFY_MAC: Final = Schema(
    name="VerifyMacBody", fields=(_data, Base64("mac", label="mac", limit=alg.MAC_LIMIT))
)
DERIVE: Final = Schema(
    name="DeriveSharedSecretBody",
    fields=(Base64("publicKey", label="publicKey", limit=alg.PUBLIC_KEY_LIMIT),),
)

BULK_EXPORT: Final = Schema(
    name="BulkExportBody", fields=(Array("keyIds", item=Uuid("keyId"), min_items=1, max_items=100),)
)

_IMPORT_KIND: Final = {
    KeyUsage.ENCRYPT_DECRYPT: ("a symmetric algorithm", alg.ENCRYPTION),
    KeyUsage.SIGN_VERIFY: ("an asymmetric algorithm", alg.ASYMMETRIC_SIGNING),
    KeyUsage.GENERATE_VERIFY_MAC: ("an HMAC algorithm", alg.HMAC),
    KeyUsage.KEY_AGREEMENT: ("a valid key agreement algorithm", alg.KEY_AGREEMENT),
}
IMPORT_MATERIAL_LIMIT: Final = 16_384


def _resolve_import_algorithm(entry: dict[str, Any], path: Path, issues: list[Issue]) -> None:
    """Per-entry rules of spec §2.15: one of algorithm/encryptionAlgorithm, compatible with usage."""
    chosen = entry.pop("algorithm") or entry.pop("encryptionAlgorithm")
    entry.pop("encryptionAlgorithm", None)
    if chosen is None:
        issues.append(Issue("custom", "algorithm is required", (*path, "algorithm")))
        return
    usage = KeyUsage(entry["keyUsage"])
    kind, allowed = _IMPORT_KIND[usage]
    if Algorithm(chosen) not in allowed:
        msg = f"algorithm must be {kind} for {usage.value} keys"
        issues.append(Issue("custom", msg, (*path, "algorithm")))
        return
    entry["algorithm"] = Algorithm(chosen)
    entry["keyUsage"] = usage


IMPORT_ENTRY: Final = Schema(
    name="BulkImportEntry",
    fields=(
        Slug("name", max_length=32),
        Enum("keyUsage", values=USAGES),
        Enum("algorithm", required=False, values=ALGORITHMS),
        Enum("encryptionAlgorithm", required=False, values=ALGORITHMS),
        Base64("keyMaterial", label="keyMaterial", limit=IMPORT_MATERIAL_LIMIT),
        Boolean("isExportable", required=False, default=False),
        Boolean("hasDeleteProtection", required=False, default=False),
    ),
    refine=_resolve_import_algorithm,
)

BULK_IMPORT: Final = Schema(
    name="BulkImportBody",
    fields=(
        String("projectId", min_length=1, trim=True),
        Array("keys", item=IMPORT_ENTRY, min_items=1, max_items=100),
    ),
)

LOGIN: Final = Schema(
    name="UniversalAuthLoginBody",
    fields=(String("clientId", min_length=1), String("clientSecret", min_length=1)),
)
