"""Route handlers: parse nothing (routes did), call one service method, encode the result."""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "crypto",
    "keys",
    "system",
    "transfer",
]
