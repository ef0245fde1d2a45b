"""A key an identity was just allowed one action on: what a dialect that addresses keys by name
(Vault Transit) hands back to the service so an operation does not look the key up and ask the
policy a second time.

Security property: a `Grant` is made only by `KeyService.grant_by_name`, after the policy
allowed `action` to `identity`; the service honours it only for that same identity object and
that same action (anything else is checked from scratch, by the key's id), and still checks
that the key is enabled and of the right usage on every use.
"""

from __future__ import annotations

from dataclasses import dataclass

from kms_core.identity import Identity
from kms_core.model import Key
from kms_core.policy import Action

__all__ = ["Grant", "KeyRef"]


@dataclass(frozen=True, slots=True)
class Grant:
    key: Key
    identity: Identity
    action: Action


# How an operation names its key: an id (looked up and authorised) or a Grant (already both).
KeyRef = str | Grant
