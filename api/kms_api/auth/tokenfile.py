"""The `--tokens-file` YAML: static bearer tokens and machine identities with per-project roles.

Format (every secret is stored as the hex SHA-256 of its value; a plaintext `token:` or
`clientSecret:` is refused at startup, so secrets never sit in clear in the file)::

    tokens:
      - name: ci-reader                 # logged as the identity id "token:ci-reader"
        sha256: 9f86d08...              # hex SHA-256 of the bearer token
        roles:
          default: viewer               # project -> admin | viewer | cryptographic-operator
          "*": cryptographic-operator   # "*" grants the role in every project
    identities:
      - name: billing                   # universal-auth machine identity
        clientId: 6c1a7f0e-...
        clientSecretSha256: 2c26b46...  # hex SHA-256 of the client secret
        accessTokenTTL: 3600            # seconds, default 3600 (max 86400)
        roles:
          payments: cryptographic-operator

Tokens and client secrets must be high-entropy random strings (e.g. `openssl rand -base64 32`):
an unsalted SHA-256 is the right hash for those, not for passwords. Security property: a file
that grants an unknown role, repeats a name or holds a malformed hash is rejected at startup
(ConfigError) with a message naming the entry, never its secret; so is an entry holding a secret
in clear (`token:`, `clientSecret:`), with the command to hash it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kms_api.auth.roles import ROLES
from kms_core.errors import ConfigError

DEFAULT_TTL = 3600
MAX_TTL = 86400
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StaticToken:
    name: str
    digest: bytes  # SHA-256 of the token
    roles: dict[str, str]


@dataclass(frozen=True, slots=True)
class MachineIdentity:
    name: str
    client_id: str
    secret_digest: bytes  # SHA-256 of the client secret
    ttl: int
    roles: dict[str, str]


@dataclass(frozen=True, slots=True)
class TokenFile:
    tokens: tuple[StaticToken, ...] = ()
    identities: tuple[MachineIdentity, ...] = ()


def _roles(entry: dict[str, Any], where: str) -> dict[str, str]:
    roles = entry.get("roles") or {}
    if not isinstance(roles, dict):
        raise ConfigError(f"{where}: roles must be a mapping of project to role")
    for project, role in roles.items():
        if not isinstance(project, str) or role not in ROLES:
            raise ConfigError(
                f"{where}: role for project {project!r} must be one of {', '.join(sorted(ROLES))}"
            )
    return {str(p): str(r) for p, r in roles.items()}


def _digest(entry: dict[str, Any], hashed: str, plain: str, where: str) -> bytes:
    if plain in entry:
        # Never echo the value: the message names the entry and says how to hash it.
        raise ConfigError(
            f"{where}: a plaintext {plain!r} is not accepted; store its hex SHA-256 as {hashed!r} "
            f'instead (printf %s "$SECRET" | sha256sum) and remove the {plain!r} line'
        )
    value = entry.get(hashed)
    if not isinstance(value, str) or not _HEX64.fullmatch(value.lower()):
        raise ConfigError(f"{where}: {hashed} must be the 64-character hex SHA-256 of the secret")
    return bytes.fromhex(value)


def _name(entry: Any, where: str, seen: set[str]) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise ConfigError(f"{where}: each entry needs a non-empty name")
    name: str = entry["name"]
    if name in seen:
        raise ConfigError(f"{where}: duplicate name {name!r}")
    seen.add(name)
    return name


def parse_token_file(data: Any, source: str = "tokens file") -> TokenFile:
    """Validate the parsed YAML document and return its entries."""
    if data is None:
        return TokenFile()
    if not isinstance(data, dict) or set(data) - {"tokens", "identities"}:
        raise ConfigError(f"{source}: expected a mapping with keys 'tokens' and/or 'identities'")
    tokens: list[StaticToken] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("tokens") or []):
        where = f"{source}: tokens[{i}]"
        name = _name(entry, where, seen)
        tokens.append(StaticToken(name, _digest(entry, "sha256", "token", where), _roles(entry, where)))
    identities: list[MachineIdentity] = []
    seen_ids: set[str] = set()
    for i, entry in enumerate(data.get("identities") or []):
        where = f"{source}: identities[{i}]"
        name = _name(entry, where, seen)
        client_id = entry.get("clientId")
        if not isinstance(client_id, str) or not client_id or client_id in seen_ids:
            raise ConfigError(f"{where}: clientId must be a unique non-empty string")
        seen_ids.add(client_id)
        ttl = entry.get("accessTokenTTL", DEFAULT_TTL)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
            raise ConfigError(f"{where}: accessTokenTTL must be an integer between 1 and {MAX_TTL}")
        digest = _digest(entry, "clientSecretSha256", "clientSecret", where)
        identities.append(MachineIdentity(name, client_id, digest, ttl, _roles(entry, where)))
    return TokenFile(tuple(tokens), tuple(identities))


def load_token_file(path: Path) -> TokenFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read tokens file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"tokens file {path} is not valid YAML") from None
    return parse_token_file(data, str(path))
