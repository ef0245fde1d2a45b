"""A small async Kubernetes REST client on one aiohttp.ClientSession: get, a paginated list,
create, merge-patch, delete and a line-delimited watch stream.

Only what KubeKMS needs, so the API process does not pull the synchronous official client onto its
event loop. Security property: the bearer token is attached per request and never logged; errors
carry the API's status, reason and message only (never request bodies, which may hold tokens in
TokenReviews).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from kms_api.kube.config import KubeConfig

JsonDict = dict[str, Any]


class KubeUnavailable(Exception):
    """The API server could not be reached or did not answer in time (transport failure)."""


class ApiError(Exception):
    """The API server answered with an error Status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def retriable(self) -> bool:
        """Server-side trouble (5xx, throttling) rather than a verdict on the request."""
        return self.status >= 500 or self.status == 429


class ContinueExpired(ApiError):
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
            self._session = aiohttp.ClientSession(
                base_url=self.config.server, connector=connector, json_serialize=_dumps
            )
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
        """One request; returns the decoded JSON object or raises ApiError / KubeUnavailable."""
        session = self._open()
        data = _dumps(body) if body is not None else None
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
                    raise _api_error(resp.status, raw)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise KubeUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        result = orjson.loads(raw) if raw else {}
        if not isinstance(result, dict):
            raise ApiError(500, "InvalidResponse", "the API server returned a non-object")
        return result

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonDict:
        return await self.request("GET", path, params=params)

    async def list_all(
        self, path: str, params: Mapping[str, str] | None = None, *, page_size: int = 500
    ) -> tuple[list[JsonDict], str]:
        """Every item of a collection and the resourceVersion they are consistent at.

        Fetched `page_size` at a time (0: one request) with `continue` tokens, like client-go's
        pager. The API server serves every continue page at the first page's resourceVersion, so
        that is the one returned (where a watch must resume). ContinueExpired when a token expired.
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
            except ApiError as exc:
                if exc.status == 410 and token:
                    raise ContinueExpired(exc.status, exc.reason, exc.message) from None
                raise
            meta = page.get("metadata") or {}
            if not token:
                rv = str(meta.get("resourceVersion") or "")
            items.extend(page.get("items") or [])
            token = str(meta.get("continue") or "")
            if not token:
                return items, rv

    async def create(self, path: str, body: JsonDict) -> JsonDict:
        return await self.request("POST", path, body=body)

    async def merge_patch(self, path: str, body: JsonDict) -> JsonDict:
        return await self.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    async def delete(self, path: str) -> JsonDict:
        # An explicit DeleteOptions body: accepted by every API server (some proxies require a body).
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        return await self.request("DELETE", path, body=options)

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, *, timeout_seconds: int = 300
    ) -> AsyncIterator[JsonDict]:
        """Yield watch events `{type, object}` until the server closes the stream.

        An ERROR event is raised as ApiError (410 Gone means the resourceVersion expired: relist).
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
                    raise _api_error(resp.status, await resp.read())
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


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _event(line: bytes) -> JsonDict:
    event = orjson.loads(line)
    if not isinstance(event, dict):
        raise ApiError(500, "InvalidResponse", "malformed watch event")
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        raise ApiError(int(status.get("code") or 500), str(status.get("reason") or "Error"),
                       str(status.get("message") or ""))
    return event


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        return ApiError(status, str(body.get("reason") or "Error"), str(body.get("message") or ""))
    return ApiError(status, "Error", f"HTTP {status}")
