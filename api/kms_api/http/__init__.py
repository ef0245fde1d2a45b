"""The HTTP edge: the server and its connection guard, the one request middleware, route
dispatch, CORS, TLS, body reading, abuse limits, and the mapping of errors to Infisical's
`{reqId, statusCode, message, error}` replies.

Security property: every failure leaves here in the one error shape, with no exception text,
token or payload in it.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "cors",
    "dispatch",
    "error_replies",
    "json_body",
    "limits",
    "middleware",
    "protocol",
    "random_pool",
    "server",
    "tls",
    "trailingslash",
]
