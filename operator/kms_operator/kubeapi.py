"""A minimal async Kubernetes REST client for the operator's own reads and writes.

Kopf owns watching and its bookkeeping; the operator writes Secrets and KmsKey status itself, at
the moment each write must happen (a keyId is persisted before material exists), with the
server's optimistic concurrency: JSON-patch `test` on resourceVersion and create-if-absent.

Security property: request bodies (which carry sealed material) are never logged; errors carry
the HTTP status and the server's reason only.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp

from kms_operator import credentials


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {reason}")
        self.status = status
        self.reason = reason


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409 (exists / stale resourceVersion) or 422 (a failed JSON-patch test): re-read and retry."""


class Unreachable(ApiError):
    """No answer at all (refused, reset, timed out): retried like a 503, not as an unknown error."""

    def __init__(self, request: str, error: BaseException) -> None:
        super().__init__(503, f"no answer to {request} ({type(error).__name__})")
        Exception.__init__(self, f"Kubernetes API did not answer {request}: {type(error).__name__}")


def kmskey_path(namespace: str, name: str, subresource: str = "") -> str:
    tail = f"/{subresource}" if subresource else ""
    return f"/apis/kubekms.io/v1alpha1/namespaces/{namespace}/kmskeys/{name}{tail}"


def secrets_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


class KubeApi:
    """get / create / patch / delete on paths of the API server named by a `Connection`."""

    def __init__(self, connection: credentials.Connection, timeout: float = 30) -> None:
        self._conn = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        if self._conn.token:
            return {"Authorization": f"{self._conn.scheme or 'Bearer'} {self._conn.token}"}
        return {}

    def _ssl(self) -> ssl.SSLContext | bool:
        if self._conn.insecure:
            return False
        context = ssl.create_default_context(cafile=self._conn.ca_path)
        if self._conn.certificate_path:
            context.load_cert_chain(self._conn.certificate_path, self._conn.private_key_path)
        return context

    async def _request(
        self, method: str, path: str, body: Any = None, ctype: str = "application/json"
    ) -> Any:
        if self._session is None:
            connector = (
                aiohttp.TCPConnector(ssl=self._ssl()) if self._conn.server.startswith("https") else None
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        headers = {**self._headers(), "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = ctype
        try:
            async with self._session.request(
                method, self._conn.server + path, json=body, headers=headers
            ) as resp:
                status, raw, http_reason = resp.status, await resp.read(), str(resp.reason)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            # Kopf would retry an unknown exception only after its 60 s default backoff; a slow or
            # restarting API server is a temporary condition like a 503.
            raise Unreachable(f"{method} {path}", e) from None
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = None  # e.g. a proxy's HTML error page
        if status < 400:
            return payload
        reason = str(payload.get("message", http_reason)) if isinstance(payload, dict) else http_reason
        if status == 404:
            raise NotFound(status, reason)
        if status in (409, 422):
            raise Conflict(status, reason)
        raise ApiError(status, reason)

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._request("GET", path)
        except NotFound:
            return None
        return result

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("POST", path, body)
        return result

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("PATCH", path, patch, "application/merge-patch+json")
        return result

    async def json_patch(self, path: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("PATCH", path, ops, "application/json-patch+json")
        return result

    async def delete(self, path: str) -> bool:
        """Delete; False if it was already gone."""
        try:
            await self._request("DELETE", path)
        except NotFound:
            return False
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
