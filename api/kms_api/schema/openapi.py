"""/openapi.json, generated from the route table and the same schemas that validate requests.

Security property: documentation only; built once at startup from static definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kms_api.pipeline.route import Route

ERROR = {
    "type": "object",
    "properties": {
        "reqId": {"type": "string"},
        "statusCode": {"type": "integer"},
        "message": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "path": {"type": "array", "items": {"type": ["string", "integer"]}},
                        },
                    },
                },
            ]
        },
        "error": {"type": "string"},
    },
    "required": ["reqId", "statusCode", "message", "error"],
}

_STATUSES = {
    "400": "Bad request (service rule: disabled key, wrong key usage, duplicate name, ...)",
    "401": "Token missing",
    "403": "TokenError, PermissionDenied or not a member of the project",
    "404": "Key not found",
    "413": "Request body too large",
    "422": "ValidationFailure: message is an array of {code, message, path}",
    "408": "RequestTimeout: the body was not received within the read timeout",
    "429": "RateLimitExceeded (per identity); see Retry-After",
    "503": "ServiceUnavailable: store or HSM unavailable, or the process is saturated; see Retry-After",
}
# Errors of the public routes (login is rate limited per client address).
_PUBLIC_STATUSES = {
    "universalAuthLogin": ("400", "401", "408", "413", "422", "429", "503"),
    "readyz": ("503",),
}


def _error(text: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": text, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "parameters": []}
    if route.action:
        op["description"] = f"Requires the `{route.action}` permission on `cmek` in the key's project."
    for schema, where in ((route.params, "path"), (route.query, "query")):
        if schema is None:
            continue
        for f in schema.fields:
            op["parameters"].append({"name": f.name, "in": where, "required": f.required, "schema": f.doc()})
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.body.name}"}}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if route.response:
        ok["content"] = {"application/json": {"schema": route.response}}
    op["responses"] = {"200": ok}
    if not route.public:
        op["security"] = [{"bearerAuth": []}]
        for status, text in _STATUSES.items():
            op["responses"][status] = _error(text)
    for status in _PUBLIC_STATUSES.get(route.name, ()):
        op["responses"][status] = _error(_STATUSES.get(status, "Bad request"))
    return op


def build_openapi(routes: Iterable[Route], version: str = "0.1.0") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        if route.body is not None:
            schemas[route.body.name] = route.body.doc()
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "KubeKMS API",
            "version": version,
            "description": "Key management for Kubernetes, wire-compatible with Infisical's KMS API.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
