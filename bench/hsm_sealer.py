"""The HSM sealer benchmark: a private SoftHSMv2 token (own config and token directory), cold and
warm latency through `kubekms-api`, and warm throughput against the root-key sealer.

Security property: PINs are random per run and reach the API only through its environment;
a failed `softhsm2-util` reports its output, never its command line (which holds the PINs).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadgen import LoadResult
from processes import Identity, Server, call, create_key, start_api
from scenarios import BY_NAME, Prepared, prepare

SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so"


def available() -> bool:
    return os.path.isfile(SOFTHSM_LIB) and shutil.which("softhsm2-util") is not None


def token_env(root: Path) -> dict[str, str]:
    """Initialise a fresh token under `root`; the environment that makes `kubekms-api` use it."""
    tokens = root / "softhsm-tokens"
    tokens.mkdir(mode=0o700, parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    label, pin, so_pin = f"bench-{secrets.token_hex(4)}", secrets.token_hex(8), secrets.token_hex(8)
    result = subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"softhsm2-util --init-token failed: {result.stdout}{result.stderr}")
    return {
        "HSM_LIB_PATH": SOFTHSM_LIB,
        "HSM_TOKEN_LABEL": label,
        "HSM_PIN": pin,
        "HSM_KEY_LABEL": "kubekms-bench-kek",
        "HSM_CREATE_KEY": "true",
        "SOFTHSM2_CONF": str(conf),
    }


Load = Callable[[Server, Prepared, int], LoadResult]


def measure(
    workdir: Path, identity: Identity, cpus: dict[str, str | None], load: Load, reps: int, connections: int
) -> dict[str, Any]:
    """Cold (first use after create, after restart) and warm latency with the HSM sealer, and warm
    encrypt-64B req/s against a root-key server measured alternately in the same step."""
    if not available():
        raise RuntimeError(f"SoftHSM is not installed ({SOFTHSM_LIB}): apt-get install softhsm2")
    env, data = token_env(workdir / "hsm"), workdir / "data-hsm"
    timings: dict[str, float] = {}

    def timed(server: Server, path: str, label: str) -> None:
        began = time.perf_counter()
        status, reply, _ = call(server, "POST", path, identity.operator, {"plaintext": "aGVsbG8gd29ybGQ="})
        timings[label] = (time.perf_counter() - began) * 1000
        if status != 200:
            raise RuntimeError(f"HSM {label}: {status} {reply}")

    def start(name: str) -> Server:
        return start_api(workdir, identity, cpus=cpus["server"], data_dir=data, extra_env=env, name=name)

    api = start("api-hsm")
    try:
        key_id = create_key(api, identity, "bench-hsm", "encrypt-decrypt", "aes-256-gcm")
        path = f"/api/v1/kms/keys/{key_id}/encrypt"
        timed(api, path, "first use after create")
        timed(api, path, "warm single request")
    finally:
        api.stop()
    api, root = start("api-hsm-restart"), start_api(workdir, identity, cpus=cpus["server"], name="api-root")
    try:
        timed(api, path, "first use after restart")
        timed(api, path, "warm single request after restart")
        hsm_case = prepare(api, identity, BY_NAME["encrypt-64B"], {"aes-256-gcm": key_id})
        root_case = prepare(root, identity, BY_NAME["encrypt-64B"], {})
        hsm_runs, root_runs = [], []
        for _ in range(reps):
            hsm_runs.append(load(api, hsm_case, connections))
            root_runs.append(load(root, root_case, connections))
    finally:
        api.stop()
        root.stop()
    warm, rootkey = max(hsm_runs, key=lambda r: r.rps), max(root_runs, key=lambda r: r.rps)
    return {
        "connections": connections,
        "timings_ms": timings,
        "warm": warm.as_dict(),
        "rootkey": rootkey.as_dict(),
        "ratio": warm.rps / rootkey.rps if rootkey.rps else 0.0,
    }
