"""Derived ed25519 keys (Transit's `derived: true`) against the real OpenBao 2.7.2.

Byte for byte: a derived ed25519 key made exportable in OpenBao, exported (`export/signing-key`:
seed ‖ public key) and imported into KubeKMS (`transit/keys/:name/import` with `derived: true`)
gives the same signature for the same context and input (ed25519 is deterministic) and the same
public key per context, and each side verifies the other's signatures. The other way is
impossible: OpenBao gives a derived key it imports its legacy KDF and cannot sign with it (the
last test shows it, so a future OpenBao that can is noticed).

Also: the errors where OpenBao answers 500 (KubeKMS: 400 with OpenBao's text), and what the
Infisical dialect, which has no context, does with a derived key (a 400 in its error shape).
"""

from __future__ import annotations

import base64
from typing import Any, Final

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from servers import KubeKms, OpenBao
from test_cross import call, import_into_openbao, import_wrapped, material_from_kubekms, openbao_material
from test_dialects import b64

from kms_core.derivation import MISSING_CONTEXT

pytestmark = pytest.mark.integration

CONTEXTS: Final = (b"tenant-1", b"tenant-2")
DATA: Final = b"signed with a derived key"


def _sign(server: OpenBao | KubeKms, name: str, context: bytes, **extra: Any) -> dict[str, Any]:
    body = {"input": b64(DATA), "context": b64(context), **extra}
    data: dict[str, Any] = call(server, "POST", f"transit/sign/{name}", body)["data"]
    return data


def _valid(server: OpenBao | KubeKms, name: str, data: bytes, context: bytes, signature: str) -> bool:
    body = {"input": b64(data), "context": b64(context), "signature": signature}
    valid: bool = call(server, "POST", f"transit/verify/{name}", body)["data"]["valid"]
    return valid


def _publics(server: OpenBao | KubeKms, name: str, context: bytes | None = None) -> dict[str, str]:
    query = f"?context={b64(context)}" if context is not None else ""
    keys = call(server, "GET", f"transit/keys/{name}{query}")["data"]["keys"]
    return {version: entry["public_key"] for version, entry in keys.items()}


def _version_material(openbao: OpenBao, name: str, version: int) -> bytes:
    """OpenBao's export of one version (seed ‖ public key) as the PKCS#8 its import takes."""
    exported = call(openbao, "GET", f"transit/export/signing-key/{name}/{version}")["data"]["keys"]
    private = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(exported[str(version)])[:32])
    return private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_derived_key_moved_from_openbao_signs_byte_for_byte_alike(
    openbao: OpenBao, kubekms: KubeKms
) -> None:
    name = "dx-ed"
    call(openbao, "POST", f"transit/keys/{name}", {"type": "ed25519", "derived": True, "exportable": True})
    material = openbao_material(openbao, "ed25519", name)
    import_wrapped(kubekms, name, material, type="ed25519", derived=True, exportable=True)
    read = call(kubekms, "GET", f"transit/keys/{name}")["data"]
    assert (read["derived"], read["kdf"], read["type"]) == (True, "hkdf_sha256", "ed25519")
    assert _publics(kubekms, name) == _publics(openbao, name) == {"1": ""}  # no context, no key

    for context, other in (CONTEXTS, CONTEXTS[::-1]):
        theirs, ours = _sign(openbao, name, context), _sign(kubekms, name, context)
        assert ours == theirs  # signature, key_version and this context's public key
        assert (
            ours["public_key"]
            == _publics(openbao, name, context)["1"]
            == _publics(kubekms, name, context)["1"]
        )
        for signer, verifier in ((openbao, kubekms), (kubekms, openbao)):
            signature = _sign(signer, name, context)["signature"]
            assert _valid(verifier, name, DATA, context, signature), (signer.name, context)
            assert not _valid(verifier, name, DATA, other, signature), (signer.name, "wrong context")
            assert not _valid(verifier, name, b"other input", context, signature), (
                signer.name,
                "other input",
            )
    assert _sign(kubekms, name, CONTEXTS[0], marshaling_algorithm="jws") == _sign(
        openbao, name, CONTEXTS[0], marshaling_algorithm="jws"
    )

    # a batch with a context per item (and one item without): the same results, item for item
    batch = {
        "batch_input": [*({"input": b64(DATA), "context": b64(c)} for c in CONTEXTS), {"input": b64(DATA)}]
    }
    ours_batch = call(kubekms, "POST", f"transit/sign/{name}", batch)["data"]["batch_results"]
    assert ours_batch == call(openbao, "POST", f"transit/sign/{name}", batch)["data"]["batch_results"]
    assert "publickey" in ours_batch[0] and "error" in ours_batch[2]

    # a second version: OpenBao rotates, KubeKMS imports that version; each version derives alike
    call(openbao, "POST", f"transit/keys/{name}/rotate")
    import_wrapped(kubekms, name, _version_material(openbao, name, 2), path="import_version")
    for version in (1, 2):
        theirs, ours = (_sign(s, name, CONTEXTS[0], key_version=version) for s in (openbao, kubekms))
        assert ours == theirs and ours["signature"].startswith(f"vault:v{version}:")
    assert _publics(kubekms, name, CONTEXTS[1]) == _publics(openbao, name, CONTEXTS[1])

    # the exports are OpenBao's: the key material per version, and each version's own public key
    for kind in ("signing-key", "public-key"):
        exported = call(kubekms, "GET", f"transit/export/{kind}/{name}")["data"]
        assert exported == call(openbao, "GET", f"transit/export/{kind}/{name}")["data"], kind
        if kind == "signing-key":  # the material never reaches the log
            assert not any(value in kubekms.logs() for value in exported["keys"].values())


def test_openbao_cannot_sign_with_a_derived_ed25519_key_it_imports(
    openbao: OpenBao, kubekms: KubeKms
) -> None:
    """Why the byte-for-byte proof moves keys from OpenBao only: OpenBao imports a derived key
    with its legacy KDF (`hmac-sha256-counter`, 32 bytes), which is no ed25519 private key."""
    name = "dk-ed"
    call(kubekms, "POST", f"transit/keys/{name}", {"type": "ed25519", "derived": True, "exportable": True})
    pem = material_from_kubekms(kubekms, name)
    private = serialization.load_pem_private_key(pem, password=None)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    import_into_openbao(openbao, name, der, type="ed25519", derived=True)
    assert call(openbao, "GET", f"transit/keys/{name}")["data"]["kdf"] == "hmac-sha256-counter"
    refused = requests.post(
        f"{openbao.url}/v1/transit/sign/{name}",
        json={"input": b64(DATA), "context": b64(CONTEXTS[0])},
        headers={"X-Vault-Token": openbao.token},
        timeout=30,
    )
    assert refused.status_code == 500 and "bad private key length: 32" in refused.text
    assert _sign(kubekms, name, CONTEXTS[0])["signature"].startswith("vault:v1:")


def _both(
    openbao: OpenBao, kubekms: KubeKms, method: str, path: str, body: Any = None
) -> list[requests.Response]:
    return [
        requests.request(
            method, f"{server.url}/v1/{path}", json=body, headers={"X-Vault-Token": server.token}, timeout=30
        )
        for server in (openbao, kubekms)
    ]


def test_where_openbao_answers_500_kubekms_answers_400_with_its_text(
    openbao: OpenBao, kubekms: KubeKms
) -> None:
    for server in (openbao, kubekms):
        call(server, "POST", "transit/keys/d5-ed", {"type": "ed25519", "derived": True})
    signature = _sign(kubekms, "d5-ed", CONTEXTS[0])["signature"]
    deriving = f"error deriving key: {MISSING_CONTEXT}"
    requests_500 = [
        ("transit/sign/d5-ed", {"input": b64(DATA)}, deriving),
        ("transit/sign/d5-ed", {"input": b64(DATA), "context": ""}, deriving),
        ("transit/verify/d5-ed", {"input": b64(DATA), "signature": signature}, deriving),
        (
            "transit/keys/d5-conv",
            {"type": "ed25519", "derived": True, "convergent_encryption": True},
            "convergent encryption not supported for keys of type ed25519",
        ),
    ]
    for path, body, text in requests_500:
        theirs, ours = _both(openbao, kubekms, "POST", path, body)
        assert theirs.status_code == 500 and theirs.json()["errors"] == [f"1 error occurred:\n\t* {text}\n\n"]
        assert ours.status_code == 400 and ours.json()["errors"] == [text], (path, ours.text)
    # a key that is not derived ignores the context (but it must still be base64)
    for server in (openbao, kubekms):
        call(server, "POST", "transit/keys/d5-plain", {"type": "ed25519"})
    theirs, ours = _both(
        openbao, kubekms, "POST", "transit/sign/d5-plain", {"input": b64(DATA), "context": "aGk="}
    )
    assert set(theirs.json()["data"]) == set(ours.json()["data"]) == {"key_version", "signature"}
    theirs, ours = _both(
        openbao, kubekms, "POST", "transit/sign/d5-plain", {"input": b64(DATA), "context": "!"}
    )
    assert (
        (theirs.status_code, theirs.json())
        == (ours.status_code, ours.json())
        == (
            400,
            {"errors": ["failed to base64-decode context"]},
        )
    )


def test_the_infisical_dialect_refuses_a_derived_key_with_a_400(kubekms: KubeKms) -> None:
    """Infisical's sign, verify and public-key carry no context: a clear 400 in its shape."""
    call(kubekms, "POST", "transit/keys/d-inf", {"type": "ed25519", "derived": True})
    headers = {"Authorization": f"Bearer {kubekms.token}"}
    key = requests.get(
        f"{kubekms.url}/api/v1/kms/keys/key-name/d-inf?projectId=default", headers=headers, timeout=30
    ).json()["key"]
    base = f"{kubekms.url}/api/v1/kms/keys/{key['id']}"
    signature = base64.b64decode(_sign(kubekms, "d-inf", CONTEXTS[0])["signature"].removeprefix("vault:v1:"))
    attempts = [
        ("POST", "/sign", {"data": b64(DATA), "signingAlgorithm": "ED25519_SHA_512"}, "missing 'context'"),
        (
            "POST",
            "/verify",
            {"data": b64(DATA), "signature": b64(signature), "signingAlgorithm": "ED25519_SHA_512"},
            "missing 'context'",
        ),
        ("GET", "/public-key", None, "is a derived key"),
    ]
    for method, path, body, text in attempts:
        reply = requests.request(method, base + path, json=body, headers=headers, timeout=30)
        assert reply.status_code == 400, (path, reply.text)
        error = reply.json()
        assert set(error) == {"reqId", "statusCode", "message", "error"} and error["statusCode"] == 400
        assert text in error["message"], (path, error)
    assert b64(signature) not in kubekms.logs()
