"""`wegweiser up`: an embedded nats-server and every service as its own supervised process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from wegweiser.platform import connect, nats_auth
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.nats_server import EmbeddedNats
from wegweiser.platform.runtime import ready_mark
from wegweiser.settings import SERVICES, Settings

log = structlog.get_logger()
RUNTIME_FILE = "runtime.json"


@dataclass
class Child:
    """One service process."""

    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self) -> None:
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wegweiser", "service", self.name],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self, data_dir: Path) -> bool:
        """Alive and serving: it has written its pid to its ready mark."""
        mark = ready_mark(data_dir, self.name)
        try:
            return (
                self.alive()
                and self.process is not None
                and mark.read_text() == str(self.process.pid)
            )
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class LocalSystem:
    """NATS (embedded unless configured) and the services, on one machine."""

    def __init__(self, settings: Settings, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.nats: EmbeddedNats | None = None
        if settings.nats_url is None:
            self.nats = EmbeddedNats(
                self.data_dir / "nats",
                port=settings.nats_port,
                monitor_port=settings.nats_monitor_port,
                sync_interval=settings.nats_sync_interval,
            )
        self._extra_env = extra_env or {}
        self.children: dict[str, Child] = {}

    @property
    def nats_url(self) -> str:
        return self.nats.url if self.nats else str(self.settings.nats_url)

    @property
    def nats_options(self) -> dict[str, object]:
        """Options for `nats.connect` as the services' user (for tools and tests)."""
        return connect.credentials(self.settings.nats_seed_path)

    def agency_seed(self, agency_id: str) -> Path | None:
        return self.settings.agency_seed_path(agency_id)

    @property
    def demo_options(self) -> dict[str, Any]:
        """The demo's NATS credentials: watching as the services, answering as the agency."""
        return {"seed": self.settings.nats_seed_path, "agency_seed": self.agency_seed}

    def start(self, wait: float = 60.0) -> bool:
        """Start everything; True once intake answers /health."""
        ensure_demo_keys(self.settings)
        if self.nats:
            self.nats.authorization = nats_users(self.settings)
            self.nats.start()
        env = {
            **os.environ,
            **self._extra_env,
            "WEGWEISER_NATS_URL": self.nats_url,
            "WEGWEISER_DATA_DIR": str(self.data_dir),
            "WEGWEISER_INTAKE_PORT": str(self.settings.intake_port),
            "WEGWEISER_AUDIT_PORT": str(self.settings.audit_port),
            "WEGWEISER_DIRECTORY_PORT": str(self.settings.directory_port),
            "WEGWEISER_GATEWAY_PORT": str(self.settings.gateway_port),
        }
        for name in SERVICES:
            self.children[name] = Child(name, env, self.data_dir / "logs" / f"{name}.log")
            self.children[name].start()
        self._write_runtime_file()
        return self.wait_ready(wait)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                url = f"{self.settings.intake_url}/health"
                healthy = httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                healthy = False
            if healthy and all(c.ready(self.data_dir) for c in self.children.values()):
                return True
            if any(not c.alive() for c in self.children.values()):
                return False
            time.sleep(0.2)
        return False

    def restart(self, name: str, kill: bool = True) -> None:
        """Kill (or stop) one service and start it again."""
        child = self.children[name]
        child.kill() if kill else child.stop()
        child.start()
        self._write_runtime_file()

    def supervise_once(self) -> None:
        """Restart whatever has died."""
        if self.nats and self.nats.process and self.nats.process.poll() is not None:
            log.error("nats.exited", code=self.nats.process.returncode)
            self.nats.authorization = nats_users(self.settings)
            self.nats.start()
            self._write_runtime_file()
        for child in self.children.values():
            if not child.alive():
                _restart(child)

    def stop(self) -> None:
        for child in self.children.values():
            child.stop()
        if self.nats:
            self.nats.stop()
        (self.data_dir / RUNTIME_FILE).unlink(missing_ok=True)

    def _write_runtime_file(self) -> None:
        info = {
            "nats_url": self.nats_url,
            "nats_monitor_url": self.nats.monitor_url if self.nats else None,
            "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
            "intake_url": self.settings.intake_url,
            "directory_url": self.settings.directory_url,
            "gateway_url": self.settings.gateway_url,
            "supervisor_pid": os.getpid(),
            "services": {n: c.process.pid for n, c in self.children.items() if c.process},
        }
        (self.data_dir / RUNTIME_FILE).write_text(json.dumps(info, indent=2))


def ensure_demo_keys(settings: Settings) -> None:
    """The embedded setup plays every sample agency: give each a key pair, and the office its
    signing key, unless they exist. Real agencies make their own and publish the public half."""
    from services.directory.sample import sample_agency_ids

    ring = KeyRing(settings.keys_path)
    ring.office_signing(settings.office_id)
    seeds = nats_auth.Seeds(settings.keys_path / "nats")
    seeds.ensure(seeds.path(nats_auth.SYSTEM))
    for agency_id in sample_agency_ids():
        ring.ensure_agency(agency_id)
    for agency_id in sample_agency_ids("nats"):
        seeds.ensure(seeds.agency_path(agency_id))


def nats_users(settings: Settings) -> str:
    """The authorization block for the embedded server: the services' user and every agency
    with credentials; also written to `<data_dir>/nats/auth.conf` for reference."""
    block = nats_auth.render(nats_auth.Seeds(settings.keys_path / "nats").users())
    folder = settings.data_dir / "nats"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "auth.conf").write_text(block)
    return block


def reload_nats_users(settings: Settings) -> bool:
    """Give a running embedded nats-server the current users; False when none runs here."""
    block = nats_users(settings)
    info = runtime_info(settings.data_dir)
    conf = settings.data_dir.resolve() / "nats" / "nats-server.conf"
    pid = info.get("nats_pid")
    if not isinstance(pid, int) or not conf.exists():
        return False
    text = conf.read_text()
    conf.write_text(
        text[: text.index("authorization {")] + block if "authorization {" in text else text + block
    )
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True


def runtime_info(data_dir: Path) -> dict[str, object]:
    """What `wegweiser up` wrote about the running system, for status and demo."""
    path = data_dir / RUNTIME_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def up(settings: Settings) -> int:
    """Start everything, restart what crashes, stop all on Ctrl-C or SIGTERM."""
    system = LocalSystem(settings)
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        ready = system.start()
        print(_banner(settings, system.nats_url, system.data_dir, ready), flush=True)
        while not stopping:
            time.sleep(0.5)
            if not stopping:
                system.supervise_once()
                system._write_runtime_file()
    finally:
        print("Stopping Wegweiser …", flush=True)
        system.stop()
    return 0


def _restart(child: Child) -> None:
    now = time.monotonic()
    child.restarts = [t for t in child.restarts if now - t < 60] + [now]
    code = child.process.returncode if child.process else None
    log.error(
        "service.exited", service=child.name, code=code, restarts_last_minute=len(child.restarts)
    )
    if len(child.restarts) > 5:
        time.sleep(5)  # a crash loop: keep trying, slowly, so the log stays readable
    child.start()


def _banner(settings: Settings, nats_url: str, data_dir: Path, ready: bool) -> str:
    state = "running" if ready else "NOT READY (see the logs)"
    return "\n".join(
        [
            f"Wegweiser is {state}.",
            f"  intake API   {settings.intake_url}   (OpenAPI: {settings.intake_url}/docs)",
            f"  audit API    http://{settings.audit_host}:{settings.audit_port}   (ombudsperson; "
            "token in keys/audit/ombudsperson.token)",
            f"  directory    {settings.directory_url}   (HSDS 3.0 read API)",
            f"  gateway      {settings.gateway_url}   (webhook callbacks, e-mail portal; "
            f"mail in {data_dir / 'mail'} unless smtp_host is set)",
            f"  NATS         {nats_url}",
            f"  data         {data_dir}   (logs in {data_dir / 'logs'})",
            "  try          wegweiser demo   |   wegweiser status   |   Ctrl-C stops everything",
        ]
    )
