"""Route handlers and encoders: a handler calls one service method with the caller's identity
and returns its `Outcome`; an encoder turns that outcome into the reply body."""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "crypto",
    "keys",
    "system",
    "transfer",
]
