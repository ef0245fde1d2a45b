"""A running emulated cluster: `KubeEmulator` served on 127.0.0.1:<random port> from its own thread.

The emulator lives on a private event loop in a daemon thread, so it serves real subprocesses
(the operator, the API, kubectl) and in-process clients alike, whatever event loop a test uses.
Every method here is synchronous and thread-safe (it runs the operation on the emulator's loop):

    with Cluster() as cluster:
        cluster.url                                   # "http://127.0.0.1:<port>"
        cluster.write_kubeconfig(path)                # for KUBECONFIG of subprocesses
        cluster.apply_file("crds/kmskeys.kubekms.io.yaml")
        cluster.create(KMSKEYS, {...}, namespace="team-a")
        cluster.get(SECRETS, "kubekms-system", "kmskey-<id>")      # None when absent
        cluster.list(EVENTS, "team-a")
        cluster.patch(KMSKEYS, "team-a", "k", {"spec": {"disabled": True}})
        cluster.delete(KMSKEYS, "team-a", "k")
        cluster.history(SECRETS, ns, name)            # every stored version (None = deleted)
        cluster.cut_watches(); cluster.fail(5); cluster.slow(5, delay=2); cluster.heal()
        cluster.fail(5, path="/secrets", body=status_body(403, "Forbidden", "denied by policy"))
        cluster.rbac.add_service_account("team-a", "app")
        cluster.wait_for(lambda: ..., timeout=30)     # poll until truthy, return the value

Resources are "group/version/plural" strings (constants below) or `kmock.resource` objects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import kmock
import yaml

from kube.emulator import KubeEmulator
from kube.rbac import Rbac
from kube.tls import ServerCert, tls_server_class

T = TypeVar("T")

KMSKEYS = "kubekms.io/v1alpha1/kmskeys"
SECRETS = "v1/secrets"
EVENTS = "v1/events"
LEASES = "coordination.k8s.io/v1/leases"
NAMESPACES = "v1/namespaces"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
ADMIN_TOKEN = "emulator-admin-token"
KUBEKMS_NAMESPACE = "kubekms-system"  # where the operator keeps key material Secrets in tests


class Cluster:
    """Starts/stops the emulator thread and offers thread-safe access to its state."""

    def __init__(
        self, *, namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public"), **options: Any
    ) -> None:
        self.rbac = Rbac(admin_tokens=(ADMIN_TOKEN,))
        # `tls=True` serves HTTPS with a self-signed certificate (`ca_file`); the rest are
        # KubeEmulator fields, e.g. bookmark_interval=1, log_size=10, authenticate_callers=True.
        self._tls = bool(options.pop("tls", False))
        self._tls_dir = Path(tempfile.mkdtemp(prefix="kube-emulator-tls-")) if self._tls else None
        self.ca_file: Path | None = None
        self._options = options
        self._namespaces = namespaces
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = concurrent.futures.Future[None]()
        self._stop: asyncio.Event | None = None
        self.emulator: KubeEmulator | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Cluster:
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        self._ready.result(timeout=30)
        for ns in self._namespaces:
            self.ensure_namespace(ns)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.emulator = KubeEmulator(rbac=self.rbac, **self._options)
            server_options: dict[str, Any] = {}
            if self._tls_dir is not None:
                cert = ServerCert.create(self._tls_dir)
                self.ca_file = cert.cert_file
                server_options["server_cls"] = tls_server_class(cert.context())
            async with self.emulator, kmock.Server(self.emulator, **server_options) as server:
                self.port = server.port
                self._ready.set_result(None)
                await self._stop.wait()
                await self.emulator.cut_watches()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self._loop is not None, "the cluster is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def _emu(self) -> KubeEmulator:
        assert self.emulator is not None, "the cluster is not started"
        return self.emulator

    # -- objects --------------------------------------------------------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._call(self._emu.read_object(resource, namespace, name))

    def list(
        self, resource: str, namespace: str | None = None, labels: str | None = None
    ) -> list[dict[str, Any]]:
        return self._call(self._emu.list_objects(resource, namespace, labels))

    def create(self, resource: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return self._call(self._emu.create_object(resource, body, namespace=namespace))

    def patch(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str = "application/merge-patch+json",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        coro = self._emu.patch_object(
            resource, namespace, name, patch, content_type=content_type, subresource=subresource
        )
        return self._call(coro)

    def delete(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self._call(self._emu.delete_object(resource, namespace, name))

    def history(self, resource: str, namespace: str | None, name: str) -> list[dict[str, Any] | None]:
        """Every stored version of an object, oldest first (None marks a deletion)."""

        async def read() -> list[dict[str, Any] | None]:
            key = (kmock.resource(resource), namespace, name)
            if key not in self._emu.objects:
                return []
            return [None if v is None else dict(v.raw) for v in self._emu.objects[key].history]

        return self._call(read())

    def ensure_namespace(self, name: str) -> dict[str, Any]:
        existing = self.get(NAMESPACES, None, name)
        return existing or self.create(NAMESPACES, {"metadata": {"name": name}})

    def apply_file(self, path: str | Path) -> list[dict[str, Any]]:
        """Create every document of a YAML file (CRDs first would be the caller's ordering)."""
        created = []
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if not doc:
                continue
            group_version, kind = doc["apiVersion"], doc["kind"]
            resource = self._resource_for(group_version, kind)
            created.append(self.create(resource, doc, namespace=doc.get("metadata", {}).get("namespace")))
        return created

    def _resource_for(self, group_version: str, kind: str) -> str:
        group, _, version = group_version.rpartition("/")
        for res in self._emu.resources:
            if res.group == group and res.version == version and self._emu.resources[res].kind == kind:
                return f"{group}/{version}/{res.plural}" if group else f"{version}/{res.plural}"
        raise LookupError(f"no resource serves {group_version} {kind}")

    def events(self, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Core v1 Events (what Kopf posts), optionally only those about the object `name`."""
        events = self.list(EVENTS, namespace)
        return [e for e in events if name is None or e.get("involvedObject", {}).get("name") == name]

    # -- faults and watches ---------------------------------------------------------------------

    def cut_watches(self) -> int:
        return self._call(self._emu.cut_watches())

    @property
    def open_watches(self) -> int:
        return self._emu.open_watches

    def fail(
        self,
        seconds: float,
        status: int = 503,
        path: str | None = None,
        method: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer `status` (or the `kind: Status` `body`) to matching requests (`path` regex
        searched in the URL path) for a while."""
        self._emu.faults.fail(seconds, status, path, method, body)

    def slow(self, seconds: float, delay: float, path: str | None = None, method: str | None = None) -> None:
        """Hold matching requests `delay` seconds before serving them, for a while."""
        self._emu.faults.slow(seconds, delay, path, method)

    @property
    def fault_hits(self) -> list[str]:
        """ "METHOD path" of every request a fault applied to, oldest first."""
        return list(self._emu.faults.hits)

    def heal(self) -> None:
        self._emu.faults.heal()

    # -- clients --------------------------------------------------------------------------------

    def kubeconfig(self, token: str = ADMIN_TOKEN, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {
                "server": self.url, **({"certificate-authority": str(self.ca_file)} if self.ca_file else {}),
            }}],
            "users": [{"name": "emulator", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }

    def write_kubeconfig(
        self, path: str | Path, token: str = ADMIN_TOKEN, namespace: str = "default"
    ) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(token, namespace)))
        path.chmod(0o600)
        return path

    @staticmethod
    def wait_for(probe: Callable[[], T], timeout: float = 30, interval: float = 0.1, message: str = "") -> T:
        """Poll `probe` until it returns something truthy; fail with `message` after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(message or f"condition not met within {timeout}s")
            time.sleep(interval)
