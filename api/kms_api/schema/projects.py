"""What a `projectId` may be, per mode: any slug on the embedded store, a namespace in Kubernetes.

The route schemas accept the embedded store's projects (any non-empty string, as Infisical's
slugs); in Kubernetes mode the project is the namespace of the KmsKey, so it is also checked as
an RFC 1123 label before a view runs — before it reaches an authorizer, a cache or an API-server
URL. Security property: in Kubernetes mode no `projectId` that could address anything but one
namespace (`..`, `/`, `%2F`, `?`, upper case, over 63 characters) gets past the request
boundary; the refusal is a 422 ValidationFailure that names the field and never the whole value.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from kms_api.appstate import SETTINGS
from kms_api.schema.composite_fields import Schema
from kms_api.schema.fields import INVALID, DnsLabel
from kms_core.errors import Issue, ValidationFailure

FIELD: Final = "projectId"
NAMESPACE: Final = DnsLabel(FIELD, description="In Kubernetes mode: the namespace of the key")


def takes_project(schema: Schema | None) -> bool:
    """Whether requests validated by `schema` carry a top-level `projectId`."""
    return schema is not None and any(f.name == FIELD for f in schema.fields)


def is_kubernetes(app: web.Application) -> bool:
    settings = app.get(SETTINGS)
    return settings is not None and settings.store == "kubernetes"


def check(app: web.Application, parsed: dict[str, Any]) -> None:
    """Raise ValidationFailure when `parsed[projectId]` is not a project of this app's mode."""
    if FIELD not in parsed or not is_kubernetes(app):
        return
    check_namespace(parsed[FIELD])


def check_namespace(value: Any) -> None:
    """Raise ValidationFailure when `value` is not a namespace name (Kubernetes mode's projects)."""
    issues: list[Issue] = []
    if NAMESPACE.parse(value, (FIELD,), issues) is INVALID or issues:
        raise ValidationFailure(issues)
