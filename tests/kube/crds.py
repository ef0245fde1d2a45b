"""CustomResourceDefinitions made servable: discovery entries and the CRD's own status.

kmock serves only resources declared up front; a CRD created at run time (by a test or by
`kubectl apply`) must become discoverable and servable like on a real API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kmock

from kube import compat, validation

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def served(crd: Mapping[str, Any]) -> dict[kmock.resource, kmock.ResourceInfo]:
    """The discovery entry of every served version of a CRD."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    infos: dict[kmock.resource, kmock.ResourceInfo] = {}
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        infos[kmock.resource(spec["group"], version["name"], names["plural"])] = kmock.ResourceInfo(
            kind=names.get("kind"),
            singular=names.get("singular") or names.get("kind", "").lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs=set(ALL_VERBS),
            shortnames=set(names.get("shortNames", [])),
            categories=set(names.get("categories", [])),
            subresources={"status"} if "status" in (version.get("subresources") or {}) else set(),
        )
    return infos


def established(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The status a real API server gives an accepted CRD (kubectl wait --for=condition=Established)."""
    spec = crd.get("spec", {})
    condition = {
        "type": "Established",
        "status": "True",
        "reason": "InitialNamesAccepted",
        "message": "the initial names have been accepted",
        "lastTransitionTime": compat.now_rfc3339(),
    }
    return {
        "acceptedNames": spec.get("names", {}),
        "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage", True)],
        "conditions": [condition],
    }


@dataclass(frozen=True)
class Schema:
    """The structural schema of one served version, and the Kind its errors name."""

    kind: str
    openapi: Mapping[str, Any]


def schemas(crd: Mapping[str, Any]) -> dict[kmock.resource, Schema]:
    """The schema of every served version; refuses a CRD whose CEL rules the emulator cannot
    evaluate (see `validation`), as kube-apiserver refuses a CRD whose rules do not compile."""
    spec = crd.get("spec", {})
    found: dict[kmock.resource, Schema] = {}
    for version in spec.get("versions", []):
        openapi = (version.get("schema") or {}).get("openAPIV3Schema")
        if not version.get("served", True) or not openapi:
            continue
        for rule in validation.crd_rules(openapi):
            try:
                validation.rule_for(rule)
            except LookupError as e:
                raise compat.ApiError(422, "Invalid", str(e)) from e
        res = kmock.resource(spec["group"], version["name"], spec["names"]["plural"])
        found[res] = Schema(kind=spec["names"]["kind"], openapi=openapi)
    return found
