"""The dialect-independent request path: a `Route` declaration, the `Call` a handler receives,
and the binding that turns a route into an aiohttp handler (authentication, limits, body,
validation, handler, encoder, audit and metrics from the `Outcome`).

Security property: a route is authenticated and audited unless it is declared `public`.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "binding",
    "call",
    "route",
]
