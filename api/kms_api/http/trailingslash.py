"""Fastify's `ignoreTrailingSlash`: `/api/v1/kms/keys/` is served as `/api/v1/kms/keys`.

Infisical's server ignores one trailing slash, so clients that build URLs by joining segments
work there; aiohttp would answer 404. This resource is registered last and indexed at `/`, so
aiohttp's walk consults it only after every ordinary resource failed to match. It resolves the
path without its trailing slash through the same router and returns that match: the *same*
route objects and bound handlers, so route names (metrics, audit), canonical paths, the
authentication and the rate limit are exactly those of the slash-less request.

Security property: no new handler becomes reachable and nothing is skipped. A request with a
trailing slash runs the very handler its slash-less twin runs, bearer check and limits included;
only one slash is ignored (as in Fastify), so `//` stays a 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web import UrlMappingMatchInfo

from kms_api.http.dispatch import RootResource

_UNMATCHED: tuple[None, set[str]] = (None, set())


class TrailingSlash(RootResource):
    """Resolves `<path>/` as `<path>` through `router`; claims nothing else."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        super().__init__(name=None)
        self._router = router

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        raw = request.rel_url.raw_path
        # One slash only, and never the root: `/` itself, `//` and `/x//` are not rewritten.
        if len(raw) < 2 or not raw.endswith("/") or raw.endswith("//"):
            return _UNMATCHED
        stripped = request.clone(rel_url=request.rel_url.with_path(raw[:-1], encoded=True))
        match = await self._router.resolve(stripped)
        if match.http_exception is not None:
            return _UNMATCHED  # unknown, or a known path with another method: the usual 404
        return match, set()

    # The rest of AbstractResource: this resource has no routes of its own.
    @property
    def canonical(self) -> str:
        return "/"

    def get_info(self) -> Any:  # aiohttp's TypedDict for it is private
        return {"path": "/"}
