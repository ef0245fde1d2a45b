"""Vault client tokens of `auth/kubernetes/login` (kms_api.auth.clienttokens): sealed under the
real root-key sealer, bounded by their own lifetime and by the ServiceAccount JWT's."""

from __future__ import annotations

import os

import jwt
import pytest

from kms_api.auth import clienttokens
from kms_core.errors import TokenError
from kms_core.sealing.rootkey import RootKeySealer

NOW = 1_700_000_000


def sealer() -> RootKeySealer:
    return RootKeySealer(os.urandom(32))


def test_round_trip_and_lifetime() -> None:
    s = sealer()
    token = clienttokens.issue(s, "opaque-sa-token", now=NOW)
    assert token.expires_at == NOW + clienttokens.LOGIN_TTL
    assert token.token.startswith("kkv1.") and "opaque-sa-token" not in token.token
    assert clienttokens.open_token(s, token.token, now=NOW + 10) == "opaque-sa-token"
    with pytest.raises(TokenError, match="expired"):
        clienttokens.open_token(s, token.token, now=token.expires_at)


def test_never_outlives_the_serviceaccount_jwt() -> None:
    sa_jwt = jwt.encode({"sub": "system:serviceaccount:a:b", "exp": NOW + 600}, "k" * 32, algorithm="HS256")
    token = clienttokens.issue(sealer(), sa_jwt, now=NOW)
    assert token.expires_at == NOW + 600


def test_forged_altered_and_foreign_tokens_are_refused() -> None:
    s = sealer()
    token = clienttokens.issue(s, "opaque-sa-token", now=NOW).token
    expiry, accessor, sealed = token[len("kkv1."):].split(".", 2)
    altered = (
        f"kkv1.{int(expiry) + 10_000}.{accessor}.{sealed}",  # a longer life
        f"kkv1.{expiry}.{'0' * len(accessor)}.{sealed}",  # another accessor
        f"kkv1.{expiry}.{accessor}.{sealed[:-4]}AAAA",  # altered ciphertext
        "kkv1.x.y.z",
        "kkv1.",
    )
    for bad in altered:
        with pytest.raises(TokenError):
            clienttokens.open_token(s, bad, now=NOW)
    with pytest.raises(TokenError):
        clienttokens.open_token(sealer(), token, now=NOW)  # another KEK
