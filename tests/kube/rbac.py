"""A test RBAC table that answers TokenReview and SubjectAccessReview like a real API server.

Tokens map to ServiceAccount users (`system:serviceaccount:<ns>:<name>`, with the groups a real
cluster gives them); rules grant (verbs, group/resource, namespace, names) to users or groups.
Anything not granted is denied, so tests of the API's authorisation can fail.

Usage (thread-safe; the emulator consults it on every review):

    token = rbac.add_service_account("team-a", "app")              # a fresh random token
    rbac.allow("system:serviceaccount:team-a:app", ["encrypt", "decrypt"], namespace="team-a")
    rbac.allow_group("system:serviceaccounts:team-b", ["get", "list"], namespace="team-b")
    rbac.revoke(token)

Security property: none (test infrastructure); tokens are random and never logged.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ANY = "*"


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> list[str]:
        return ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]


@dataclass(frozen=True)
class Rule:
    """A grant: `subject` is a username or (with `is_group`) a group; `*` matches anything."""

    subject: str
    verbs: frozenset[str]
    resource: str = "kmskeys"
    group: str = "kubekms.io"
    namespace: str = ANY
    names: frozenset[str] | None = None
    is_group: bool = False

    def permits(self, user: str, groups: Iterable[str], attrs: Mapping[str, Any]) -> bool:
        who = self.subject in set(groups) if self.is_group else self.subject == user
        return (
            who
            and (ANY in self.verbs or attrs.get("verb") in self.verbs)
            and self.resource in (ANY, attrs.get("resource"))
            and self.group in (ANY, attrs.get("group", ""))
            and self.namespace in (ANY, attrs.get("namespace") or "")
            and (self.names is None or attrs.get("name") in self.names)
        )


@dataclass
class Rbac:
    """Tokens -> ServiceAccounts, rules -> allowed (namespace, verb, resource, name)."""

    default_audiences: tuple[str, ...] = ("https://kubernetes.default.svc",)
    admin_tokens: tuple[str, ...] = ()  # accepted from the emulator's own callers, like a kubeconfig's
    _tokens: dict[str, ServiceAccount] = field(default_factory=dict)
    _rules: list[Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    reviews: list[dict[str, Any]] = field(default_factory=list)  # every review asked, for assertions

    def add_service_account(
        self,
        namespace: str,
        name: str,
        token: str | None = None,
        audiences: Iterable[str] | None = None,
        *,
        uid: str | None = None,
        extra: Mapping[str, Iterable[str]] | None = None,
    ) -> str:
        """A fresh token for the ServiceAccount. `audiences` are the token's (default: the API
        server's); `uid` repeats an account's uid for a second token of the same account; `extra`
        is what a real cluster puts there for Pod-bound tokens (pod name, node...)."""
        token = token or f"sa-{secrets.token_urlsafe(24)}"
        auds = tuple(audiences) if audiences is not None else self.default_audiences
        frozen = tuple(sorted((k, tuple(v)) for k, v in (extra or {}).items()))
        with self._lock:
            self._tokens[token] = ServiceAccount(namespace, name, uid or str(uuid.uuid4()), auds, frozen)
        return token

    def authenticates(self, token: str | None) -> bool:
        """Whether kube-apiserver would accept `token` from a caller: an admin token, or a live
        ServiceAccount token whose audiences include the API server's (a revoked or rotated-away
        token is refused, as an expired projected token is)."""
        if not token:
            return False
        if token in self.admin_tokens:
            return True
        with self._lock:
            account = self._tokens.get(token)
        return account is not None and bool(set(account.audiences) & set(self.default_audiences))

    def uid_of(self, token: str) -> str:
        with self._lock:
            return self._tokens[token].uid

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def allow(
        self,
        user: str,
        verbs: Iterable[str],
        *,
        namespace: str = ANY,
        resource: str = "kmskeys",
        group: str = "kubekms.io",
        names: Iterable[str] | None = None,
    ) -> None:
        rule = Rule(
            user, frozenset(verbs), resource, group, namespace, None if names is None else frozenset(names)
        )
        with self._lock:
            self._rules.append(rule)

    def allow_group(self, group_name: str, verbs: Iterable[str], *, namespace: str = ANY, **kw: Any) -> None:
        rule = Rule(group_name, frozenset(verbs), namespace=namespace, is_group=True, **kw)
        with self._lock:
            self._rules.append(rule)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def token_review(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The TokenReview response (authentication.k8s.io/v1) for a request body.

        As kube-apiserver does: without `spec.audiences` the API server's own audiences are the
        target; the token authenticates only when its audiences intersect the target, and
        `status.audiences` is that intersection (in the target's order).
        """
        spec = body.get("spec") or {}
        wanted = list(spec.get("audiences") or [])
        with self._lock:
            self.reviews.append({"kind": "TokenReview", "audiences": wanted})
            account = self._tokens.get(str(spec.get("token", "")))
        target = wanted or list(self.default_audiences)
        status: dict[str, Any]
        if account is None:
            status = {"authenticated": False, "error": "invalid bearer token"}
        elif not set(target) & set(account.audiences):
            status = {"authenticated": False, "error": "token audiences are invalid for the target audiences"}
        else:
            user: dict[str, Any] = {
                "username": account.username, "uid": account.uid, "groups": account.groups,
            }
            if account.extra:
                user["extra"] = {k: list(v) for k, v in account.extra}
            status = {
                "authenticated": True,
                "user": user,
                "audiences": [a for a in target if a in account.audiences],
            }
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
            "status": status,
        }

    def access_review(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The SubjectAccessReview response (authorization.k8s.io/v1) for a request body."""
        spec = body.get("spec") or {}
        attrs = spec.get("resourceAttributes") or {}
        user = str(spec.get("user", ""))
        groups = list(spec.get("groups") or [])
        with self._lock:
            self.reviews.append({
                "kind": "SubjectAccessReview", "user": user, "uid": spec.get("uid"), "groups": groups,
                "extra": spec.get("extra"), **attrs,
            })
            allowed = any(rule.permits(user, groups, attrs) for rule in self._rules)
        status: dict[str, Any] = {"allowed": allowed}
        if not allowed:
            status["reason"] = "no RBAC rule allows the request"
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
            "status": status,
        }
