"""A minimal async Kubernetes REST client for the operator's own reads, writes and Secret watch.

Kopf owns the KmsKey watch and its bookkeeping; the operator writes Secrets and KmsKey status
itself, at the moment each write must happen (a keyId is persisted before material exists), with
the server's optimistic concurrency: JSON-patch `test` on resourceVersion and create-if-absent.
It also lists and watches its material Secrets (`list_all`, `watch`; see `secretwatch`).

Security property: request bodies (which carry sealed material) are never logged; errors carry
the HTTP status and the server's reason only.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
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


class Gone(ApiError):
    """410: a resourceVersion or continue token older than the server keeps; list again."""


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

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = (
                aiohttp.TCPConnector(ssl=self._ssl()) if self._conn.server.startswith("https") else None
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        ctype: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Any:
        session = self._open()
        headers = {**self._headers(), "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = ctype
        try:
            async with session.request(
                method, self._conn.server + path, json=body, headers=headers, params=params
            ) as resp:
                status, raw, http_reason = resp.status, await resp.read(), str(resp.reason)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            # Kopf would retry an unknown exception only after its 60 s default backoff; a slow or
            # restarting API server is a temporary condition like a 503.
            raise Unreachable(f"{method} {path}", e) from None
        if status < 400:
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return None  # e.g. a proxy's HTML page
        raise _error(status, raw, http_reason)

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

    async def list_all(
        self, path: str, params: Mapping[str, str] | None = None, page_size: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection, `page_size` at a time, and the resourceVersion of the list.

        Continue pages are served as of the first page's resourceVersion, so that one is where a
        watch resumes. A continue token that expired (410) raises Gone: the caller lists again.
        """
        items: list[dict[str, Any]] = []
        rv, token = "", ""
        while True:
            query = {**(params or {}), "limit": str(page_size)}
            if token:
                query["continue"] = token
            page: dict[str, Any] = await self._request("GET", path, params=query) or {}
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")
            items.extend(page.get("items") or [])
            token = str(meta.get("continue") or "")
            if not token:
                return items, rv

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield watch events `{type, object}` until the server ends the stream.

        An ERROR event is raised as an ApiError (Gone for 410: the resourceVersion expired); a
        dropped connection as Unreachable. Lines are split by hand: one event (a Secret with many
        versions) can exceed aiohttp's line length limit.
        """
        query = {**(params or {}), "watch": "true", "timeoutSeconds": str(timeout_seconds)}
        # No total timeout on a long-lived stream; a silent connection is cut by sock_read.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        headers = {**self._headers(), "Accept": "application/json"}
        try:
            async with self._open().get(
                self._conn.server + path, params=query, headers=headers, timeout=timeout
            ) as resp:
                if resp.status >= 400:
                    raise _error(resp.status, await resp.read(), str(resp.reason))
                buffer = b""
                async for chunk in resp.content.iter_any():
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _event(line)
                if buffer.strip():
                    yield _event(buffer)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise Unreachable(f"watch {path}", e) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error(status: int, raw: bytes, http_reason: str) -> ApiError:
    try:
        payload: Any = json.loads(raw) if raw else None
    except ValueError:
        payload = None  # e.g. a proxy's HTML error page
    reason = str(payload.get("message", http_reason)) if isinstance(payload, dict) else http_reason
    return _classify(status, reason)


def _classify(status: int, reason: str) -> ApiError:
    if status == 404:
        return NotFound(status, reason)
    if status in (409, 422):
        return Conflict(status, reason)
    if status == 410:
        return Gone(status, reason)
    return ApiError(status, reason)


def _event(line: bytes) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError:
        raise ApiError(500, "malformed watch event") from None
    if not isinstance(event, dict):
        raise ApiError(500, "malformed watch event")
    if event.get("type") == "ERROR":
        obj = event.get("object")
        status: dict[str, Any] = obj if isinstance(obj, dict) else {}
        raise _classify(int(status.get("code") or 500), str(status.get("message") or "watch error"))
    return event
