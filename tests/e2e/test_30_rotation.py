"""Rotation through the API: the version goes up, old ciphertexts still decrypt, new ones carry v02."""

from __future__ import annotations

import base64

from kindsuite import Api, wait_for, wait_ready


def test_rotate_keeps_old_ciphertexts(admin: Api, tenant: str) -> None:
    key = admin.create_key(tenant, "rotation-key")
    wait_ready(tenant, "rotation-key")
    old = admin.encrypt(key["id"], b"before rotation")
    assert base64.b64decode(old).endswith(b"v01")

    rotated = admin.ok("POST", f"/api/v1/kms/keys/{key['id']}/rotate")["key"]
    assert rotated["version"] == 2

    def new_version_in_use() -> str | None:
        ciphertext = admin.encrypt(key["id"], b"after rotation")
        raw = base64.b64decode(ciphertext)
        return ciphertext if raw.endswith(b"v02") and raw[-7:-3] == (2).to_bytes(4, "big") else None

    new = wait_for("ciphertexts under version 2", new_version_in_use, timeout=120)
    assert admin.decrypt(key["id"], old) == b"before rotation"
    assert admin.decrypt(key["id"], new) == b"after rotation"
    assert admin.ok("GET", f"/api/v1/kms/keys/{key['id']}")["key"]["version"] == 2
