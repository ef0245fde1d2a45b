"""Kubernetes RBAC objects stored in the emulator, evaluated like kube-apiserver's RBAC authorizer.

The emulator accepts any bearer token from its own callers and answers SubjectAccessReviews from
the test table `kube.rbac.Rbac`. This module closes both gaps for tests that install real RBAC
objects (a rendered Helm chart, a `kubectl create rolebinding`):

    grants = Grants.load(cluster)                       # every (Cluster)Role + (Cluster)RoleBinding
    grants.allows("system:serviceaccount:kubekms:kubekms-api", [...], Access("get", "", "secrets", ...))
    grants.install(cluster.rbac)                        # SubjectAccessReviews now follow those objects
    grants.forbidden(username, [], accesses(cluster, token))  # what a process did that RBAC forbids

`accesses` maps each request the emulator served to the attributes kube-apiserver would authorise
(verb from method and query, API group, resource/subresource, namespace, name), so a process's
real traffic can be checked against the roles the chart grants it.

Security property: none (test infrastructure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kube.cluster import Cluster
from kube.rbac import ANY, Rbac

RBAC = "rbac.authorization.k8s.io/v1"
_NAMESPACED = re.compile(r"^namespaces/(?P<ns>[^/]+)/(?P<rest>.+)$")


@dataclass(frozen=True)
class Access:
    """What one request asks for, in RBAC terms (`resource` may be `plural/subresource`)."""

    verb: str
    group: str
    resource: str
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.resource}.{self.group or 'core'}/{self.name or ''}{where}"


@dataclass(frozen=True)
class Grant:
    """One PolicyRule bound to one subject; `namespace` None means cluster-wide (ClusterRoleBinding)."""

    subject: str  # username, or a group name when `is_group`
    is_group: bool
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    namespace: str | None

    def permits(self, access: Access) -> bool:
        return (
            (self.namespace is None or self.namespace == access.namespace)
            and (ANY in self.verbs or access.verb in self.verbs)
            and (ANY in self.groups or access.group in self.groups)
            and (ANY in self.resources or access.resource in self.resources)
            and (not self.names or access.name in self.names)
        )


@dataclass(frozen=True)
class Grants:
    """Every PolicyRule reachable from the bindings stored in a cluster."""

    grants: tuple[Grant, ...]

    @classmethod
    def load(cls, cluster: Cluster) -> Grants:
        cluster_roles = {r["metadata"]["name"]: r for r in cluster.list(f"{RBAC}/clusterroles")}
        roles = {
            (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in cluster.list(f"{RBAC}/roles")
        }
        found: list[Grant] = []
        bindings = [(b, None) for b in cluster.list(f"{RBAC}/clusterrolebindings")]
        bindings += [(b, b["metadata"]["namespace"]) for b in cluster.list(f"{RBAC}/rolebindings")]
        for binding, namespace in bindings:
            ref = binding["roleRef"]
            role = (
                cluster_roles.get(ref["name"])
                if ref["kind"] == "ClusterRole"
                else roles.get((namespace, ref["name"]))
            )
            if role is None:
                continue  # a dangling roleRef grants nothing, as in kube-apiserver
            for subject in binding.get("subjects") or []:
                who, is_group = _subject(subject, namespace)
                for rule in role.get("rules") or []:
                    fields = ("verbs", "apiGroups", "resources", "resourceNames")
                    verbs, groups, resources, names = (frozenset(rule.get(f) or ()) for f in fields)
                    found.append(Grant(who, is_group, verbs, groups, resources, names, namespace))
        return cls(tuple(found))

    def allows(self, user: str, groups: Iterable[str], access: Access) -> bool:
        return any(g.permits(access) for g in self._of(user, groups))

    def verbs(self, user: str, groups: Iterable[str], group: str, resource: str, namespace: str) -> set[str]:
        """The verbs `user` holds on `resource` in `namespace` (any name)."""
        return {
            verb
            for g in self._of(user, groups)
            if not g.names
            for verb in g.verbs
            if g.permits(Access(verb, group, resource, namespace))
        }

    def _of(self, user: str, groups: Iterable[str]) -> list[Grant]:
        member = set(groups)
        return [g for g in self.grants if (g.subject in member if g.is_group else g.subject == user)]

    def install(self, rbac: Rbac) -> None:
        """Mirror the grants into the emulator's review table (subresource rules do not apply there)."""
        for g in self.grants:
            for api_group in g.groups:
                for resource in g.resources:
                    if "/" in resource:
                        continue
                    kwargs: dict[str, Any] = {
                        "namespace": g.namespace or ANY, "resource": resource, "group": api_group,
                        "names": g.names or None,
                    }
                    if g.is_group:
                        rbac.allow_group(g.subject, g.verbs, **kwargs)
                    else:
                        rbac.allow(g.subject, g.verbs, **kwargs)

    def forbidden(self, user: str, groups: Iterable[str], accesses: Iterable[Access]) -> list[str]:
        """The accesses these grants do not allow `user` (a ServiceAccount is also authenticated)."""
        member = [*groups, "system:authenticated"]
        return [str(a) for a in accesses if not self.allows(user, member, a)]


def accesses(cluster: Cluster, token: str) -> list[Access]:
    """Every resource request the emulator served with bearer `token`, in RBAC terms, in order."""
    assert cluster.emulator is not None, "the cluster is not started"
    found = []
    for request in list(cluster.emulator):
        if _bearer(request.headers) == token:
            access = access_of(request.method.value, request.url.path, dict(request.params))
            if access is not None:
                found.append(access)
    return found


def access_of(method: str, path: str, params: Mapping[str, str]) -> Access | None:
    """The RBAC attributes of a resource request; None for discovery and other non-resource URLs."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", "/".join(parts[2:])
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], "/".join(parts[3:])
    else:
        return None
    namespace: str | None = None
    match = _NAMESPACED.match(rest)
    if match:
        namespace, rest = match["ns"], match["rest"]
    segments = rest.split("/")
    name = segments[1] if len(segments) > 1 else None
    resource = "/".join(segments[0:3:2])  # plural, or plural/subresource
    if method == "GET":
        verb = "watch" if params.get("watch") in ("true", "1") else "get" if name else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "")
        if method == "DELETE":
            verb = "delete" if name else "deletecollection"
    return Access(verb, group, resource, namespace, name)


def _subject(subject: Mapping[str, Any], namespace: str | None) -> tuple[str, bool]:
    kind, name = subject.get("kind"), str(subject.get("name"))
    if kind == "ServiceAccount":
        return f"system:serviceaccount:{subject.get('namespace') or namespace}:{name}", False
    return name, kind == "Group"


def _bearer(headers: Mapping[str, str]) -> str | None:
    for key, value in headers.items():
        if key.lower() == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer "):]
    return None
