"""One dictionary lookup instead of a linear regex scan for the `/keys/{keyId}/{operation}` routes.

aiohttp indexes dynamic resources by their static prefix, so every route under
`/api/v1/kms/keys/` shares one bucket that it tries in registration order, one regex per
resource; `verify-mac`, registered late, costs a dozen failed matches per request. This resource
is registered first in that bucket and answers the crypto family with a split and two dict
lookups, returning the *same* `ResourceRoute` objects the ordinary resources own, so route
names, canonical paths (access log, metrics) and handlers are exactly those of the route table.

It only claims a request the ordinary resources would resolve to the same route; anything
else (unknown operation, method not allowed, percent-encoded or unusual segments, the
`key-name/{keyName}` route that shares the shape) falls through to aiohttp's own resolution, so
404 and 405 answers are unchanged.

Only public aiohttp interfaces are used: a custom `web.AbstractResource` registered with
`router.register_resource`, answering with a `web.UrlMappingMatchInfo`.

Security property: no new paths become reachable; the key id is handed on unvalidated exactly
as aiohttp's own match would hand it, and the route's schema validates it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from aiohttp import web
from aiohttp.web import AbstractResource, AbstractRoute, UrlMappingMatchInfo
from yarl import URL

__all__ = ["KeyOperations"]

_UNCLAIMED: Final[tuple[None, set[str]]] = (None, set())
# Characters after which aiohttp's own matcher would decode or refuse the segment.
_FALL_THROUGH: Final = frozenset("%{}")


class RootResource(AbstractResource):
    """A resource that routes by itself on the root application and owns no routes of its own:
    the URL building, prefixing and iteration parts of aiohttp's resource interface, answered
    once for every such resource (`KeyOperations`, `trailingslash.TrailingSlash`)."""

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("use the named route's url_for")

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} is for the root application only")

    def get_info(self) -> Any:  # aiohttp's TypedDict for it is private
        return {"formatter": self.canonical}

    def raw_match(self, path: str) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(())


class KeyOperations(RootResource):
    """`<prefix>/{keyId}/<operation>` for every operation route added with `add`."""

    def __init__(self, prefix: str) -> None:
        super().__init__(name=None)
        self._prefix = prefix.rstrip("/") + "/"
        self._reserved: set[str] = set()  # literal first segments owned by other routes
        self._routes: dict[str, dict[str, AbstractRoute]] = {}

    def add(self, resource: AbstractResource) -> bool:
        """Serve `resource`'s routes when it is `<prefix>/{keyId}/<literal operation>`; a route
        whose first segment is literal (`key-name/{keyName}`) reserves that segment instead."""
        head = self._prefix + "{keyId}/"
        canonical = resource.canonical
        if not canonical.startswith(head):
            if canonical.startswith(self._prefix):
                first = canonical[len(self._prefix) :].partition("/")[0]
                if first and "{" not in first:
                    self._reserved.add(first)
            return False
        operation = canonical[len(head) :]
        if not operation or "/" in operation or "{" in operation or "%" in operation:
            return False
        methods = self._routes.setdefault(operation, {})
        for route in resource:
            methods[route.method] = route
        return True

    def match(self, request: web.BaseRequest) -> UrlMappingMatchInfo | None:
        """The match for a request this resource claims, else None (aiohttp's walk decides)."""
        path = request.rel_url.path_safe
        if not path.startswith(self._prefix):
            return None
        key_id, sep, operation = path[len(self._prefix) :].partition("/")
        methods = self._routes.get(operation) if sep and key_id else None
        if methods is None or key_id in self._reserved or not _FALL_THROUGH.isdisjoint(key_id):
            return None
        route = methods.get(request.method)
        if route is None:
            return None  # aiohttp's walk computes the 405's allowed methods
        return UrlMappingMatchInfo({"keyId": key_id}, route)

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        info = self.match(request)
        return (info, set()) if info is not None else _UNCLAIMED

    # The rest of AbstractResource: this resource has no routes of its own.
    @property
    def canonical(self) -> str:
        return self._prefix + "{keyId}/{operation}"

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(self._routes)
