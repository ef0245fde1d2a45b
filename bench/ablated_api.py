"""`kubekms-api` with parts of the request path switched off, for ablation measurements only.

`bench/ablation.py` starts this instead of `python -m kms_api` to learn what each part of the
hot path costs in CPU time per request on a real server under load (a profiler's figures are
inflated unevenly: small functions most). BENCH_ABLATE is a `+`-separated list of:

- `logs`: no per-request line (the audit event and the access line are off; start-up and error
  lines stay);
- `metrics`: no request metrics (the middleware's `observe_request` does nothing);
- `auth`: bearer tokens are verified once per distinct header, then remembered;
- `crypto`: the encrypt route returns random bytes of the ciphertext's size without a key lookup,
  an authorisation check or AES (the key service's whole encrypt path).

Never use this to serve anything: the `auth` and `crypto` ablations remove checks.
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
from typing import Any

PARTS = ("logs", "metrics", "auth", "crypto")


def _ablate(parts: set[str]) -> None:
    if "logs" in parts:
        for name in ("kubekms.audit", "kubekms.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if "metrics" in parts:
        from kms_api.observe import metrics

        metrics.observe_request = lambda *args, **kwargs: None  # type: ignore[assignment]
    if "auth" in parts:
        from kms_api.pipeline import binding

        verify = binding.authenticate
        known: dict[str | None, Any] = {}

        async def remembered(request: Any, attempt: Any = None) -> Any:
            header = request.headers.get("Authorization")
            if header not in known:
                known[header] = await verify(request, attempt)
            return known[header]

        binding.authenticate = remembered  # type: ignore[assignment]
    if "crypto" in parts:
        from kms_core.outcome import Outcome
        from kms_core.service import KeyService

        async def encrypt(self: Any, identity: Any, key_id: str, plaintext: bytes) -> Outcome[bytes]:
            return Outcome(os.urandom(len(plaintext) + 30))  # version byte, nonce, tag and trailer sizes

        KeyService.encrypt = encrypt  # type: ignore[method-assign]


def main() -> None:
    parts = {p for p in os.environ.get("BENCH_ABLATE", "").split("+") if p}
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown BENCH_ABLATE parts: {sorted(unknown)}")
    _ablate(parts)
    args = sys.argv[1:]
    if args[:2] == ["-m", "kms_api"]:  # started by processes.start_api as a python_args script
        args = args[2:]
    sys.argv = ["kubekms-api", *args]
    runpy.run_module("kms_api", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
