"""The one async Kubernetes REST client of KubeKMS (API and operator): get, paginated list, create,
merge-patch, JSON-patch, delete and a line-delimited watch stream, on one aiohttp.ClientSession.

Only what KubeKMS needs: the processes never put the synchronous official client on their event
loops, and the same error classes mean the same thing in both:
- `NotFound` (404), `Gone` (410; `ContinueExpired` on a continue page), `Conflict` (409, or 422
  whose causes show a failed JSON-patch `test`: the object changed, re-read and retry);
- any other 4xx is a verdict on the request (`ApiError.permanent`): retrying the same request
  cannot succeed (a CEL rule, the schema, a size limit, RBAC);
- `KubeUnavailable`: no answer at all (refused, reset, timed out), retried like a 503.
A 401 re-reads the credentials once (a rotated ServiceAccount token) and retries the request.

Security property: the bearer token is attached per request and never logged; errors carry the
API's status, reason and message only (never request bodies: TokenReviews hold tokens, Secrets
hold sealed material).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from kms_kube.config import KubeConfig

__all__ = [
    "ApiError",
    "Conflict",
    "ContinueExpired",
    "Gone",
    "JsonDict",
    "KubeClient",
    "KubeError",
    "KubeUnavailable",
    "NotFound",
]

JsonDict = dict[str, Any]
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """Any failure talking to the API server."""


class KubeUnavailable(KubeError):
    """The API server could not be reached or did not answer in time (transport failure)."""


class ApiError(KubeError):
    """The API server answered with an error Status."""

    def __init__(self, status: int, reason: str, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes  # the `details.causes[].reason` values, e.g. FieldValueInvalid

    @property
    def retriable(self) -> bool:
        """Server-side trouble (5xx, throttling) rather than a verdict on the request."""
        return self.status >= 500 or self.status == 429

    @property
    def permanent(self) -> bool:
        """A verdict on this request (validation, admission, RBAC): the same request fails again."""
        return not self.retriable and not isinstance(self, (Conflict, Gone)) and self.status != 401


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class Conflict(ApiError):
    """409 (exists / stale resourceVersion) or a 422 from a failed JSON-patch `test`: re-read, retry."""


class Gone(ApiError):
    """410: a resourceVersion or continue token older than the server keeps; list again."""


class ContinueExpired(Gone):
    """410 on a continue page: the list's snapshot was compacted away; only a new list can help."""


class KubeClient:
    """REST calls against one API server. Create inside a running loop or let it open lazily."""

    def __init__(self, config: KubeConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # The session must be created on the loop that uses it, hence lazily.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context(), limit=64)
            self._session = aiohttp.ClientSession(base_url=self.config.server, connector=connector)
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JsonDict:
        """One request; returns the decoded JSON object or raises ApiError / KubeUnavailable.
        A 401 is retried once with freshly read credentials (a rotated token)."""
        try:
            return await self._send(method, path, params, body, content_type)
        except ApiError as exc:
            if exc.status != 401 or not self.config.refresh_token():
                raise
        return await self._send(method, path, params, body, content_type)

    async def _send(
        self, method: str, path: str, params: Mapping[str, str] | None, body: Any, content_type: str
    ) -> JsonDict:
        session = self._open()
        data = orjson.dumps(body) if body is not None else None
        try:
            async with session.request(
                method,
                path,
                params=params,
                data=data,
                headers=self._headers(content_type if data is not None else None),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise error_of(resp.status, raw, method)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise KubeUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        try:
            result = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ApiError(502, "InvalidResponse", "the API server returned no JSON") from None
        if not isinstance(result, dict):
            raise ApiError(502, "InvalidResponse", "the API server returned a non-object")
        return result

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonDict:
        return await self.request("GET", path, params=params)

    async def get_or_none(self, path: str) -> JsonDict | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return await self.get(path)
        except NotFound:
            return None

    async def list_all(
        self, path: str, params: Mapping[str, str] | None = None, *, page_size: int = 500,
        transform: Callable[[JsonDict], JsonDict] | None = None,
    ) -> tuple[list[JsonDict], str]:
        """Every item of a collection and the resourceVersion they are consistent at.

        Fetched `page_size` at a time (0: one request) with `continue` tokens, like client-go's
        pager. The API server serves every continue page at the first page's resourceVersion, so
        that is the one returned (where a watch must resume). ContinueExpired when a token expired.
        `transform` is applied to each item as its page arrives, so what the caller drops (e.g.
        managedFields) never accumulates for the whole collection.
        """
        items: list[JsonDict] = []
        rv, token = "", ""
        while True:
            query = dict(params or {})
            if page_size > 0:
                query["limit"] = str(page_size)
            if token:
                query["continue"] = token
            try:
                page = await self.get(path, query)
            except Gone as exc:
                if token:
                    raise ContinueExpired(exc.status, exc.reason, exc.message) from None
                raise
            meta = page.get("metadata") or {}
            if not token:
                rv = str(meta.get("resourceVersion") or "")
            page_items = page.get("items") or []
            items.extend(map(transform, page_items) if transform is not None else page_items)
            del page, page_items
            token = str(meta.get("continue") or "")
            if not token:
                return items, rv

    async def create(self, path: str, body: JsonDict) -> JsonDict:
        return await self.request("POST", path, body=body)

    async def merge_patch(self, path: str, body: JsonDict) -> JsonDict:
        return await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def json_patch(self, path: str, ops: list[JsonDict]) -> JsonDict:
        """RFC 6902 patch; a failed `test` op (the object changed) raises Conflict."""
        return await self.request("PATCH", path, body=ops, content_type=JSON_PATCH)

    async def delete(self, path: str, resource_version: str | None = None) -> bool:
        """Delete; False if it was already gone. With `resource_version`, only that version of the
        object (a precondition: a changed object raises Conflict and is kept)."""
        # An explicit DeleteOptions body: accepted by every API server (some proxies require a body).
        options: JsonDict = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if resource_version is not None:
            options["preconditions"] = {"resourceVersion": resource_version}
        try:
            await self.request("DELETE", path, body=options)
        except NotFound:
            return False
        return True

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, *, timeout_seconds: int = 300
    ) -> AsyncIterator[JsonDict]:
        """Yield watch events `{type, object}` until the server closes the stream.

        An ERROR event is raised as ApiError (Gone for 410: the resourceVersion expired, relist).
        Lines are split by hand because one event (a Secret with many versions) can exceed
        aiohttp's readline limit.
        """
        session = self._open()
        query = {**(params or {}), "watch": "true", "timeoutSeconds": str(timeout_seconds)}
        # No total timeout: a watch is long-lived; a silent connection is cut by sock_read.
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=timeout_seconds + 30)
        try:
            async with session.get(path, params=query, headers=self._headers(), timeout=timeout) as resp:
                if resp.status >= 400:
                    if resp.status == 401:
                        self.config.refresh_token()  # the next watch presents the new token
                    raise error_of(resp.status, await resp.read(), "GET")
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _event(line)
                if buffer.strip():
                    yield _event(buffer)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise KubeUnavailable(f"watch {path}: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
        self._session = None


def _event(line: bytes) -> JsonDict:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ApiError(502, "InvalidResponse", "malformed watch event") from None
    if not isinstance(event, dict):
        raise ApiError(502, "InvalidResponse", "malformed watch event")
    if event.get("type") == "ERROR":
        status = event.get("object")
        raise status_error(status if isinstance(status, dict) else {}, int((status or {}).get("code") or 500))
    return event


def error_of(status: int, raw: bytes, method: str = "GET") -> ApiError:
    """The error for an HTTP error response (a Status object, or a proxy's page)."""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        return status_error(body, status, method)
    return status_error({"reason": "Error", "message": f"HTTP {status}"}, status, method)


def status_error(body: Mapping[str, Any], status: int, method: str = "GET") -> ApiError:
    """The error for a Kubernetes Status object (an error response or a watch ERROR event)."""
    details = body.get("details")
    raw_causes = (details.get("causes") if isinstance(details, dict) else None) or []
    causes = [c for c in raw_causes if isinstance(c, dict)]
    reasons = tuple(str(c.get("reason") or "") for c in causes)
    reason, message = str(body.get("reason") or "Error"), str(body.get("message") or "")
    if status == 404:
        return NotFound(status, reason, message, reasons)
    if status == 409 or (status == 422 and method == "PATCH" and _failed_test(causes)):
        return Conflict(status, reason, message, reasons)
    if status == 410:
        return Gone(status, reason, message, reasons)
    return ApiError(status, reason, message, reasons)


def _failed_test(causes: list[dict[str, Any]]) -> bool:
    """A JSON-patch `test` op that did not match. kube-apiserver answers 422 Invalid with one
    cause {reason: UnexpectedServerResponse, message: "testing value <path> failed: test failed"};
    CEL, schema and size rejections list FieldValue* causes instead and are permanent."""
    return any(
        c.get("reason") == "UnexpectedServerResponse" and "test failed" in str(c.get("message") or "")
        for c in causes
    )
