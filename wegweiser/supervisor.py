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

import httpx
import structlog

from wegweiser.platform.nats_server import EmbeddedNats
from wegweiser.settings import SERVICES, Settings

log = structlog.get_logger()
RUNTIME_FILE = "runtime.json"


@dataclass
class Child:
    """One supervised service process."""

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

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()


def runtime_info(data_dir: Path) -> dict[str, object]:
    """What `wegweiser up` wrote about the running system, for status and demo."""
    path = data_dir / RUNTIME_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def up(settings: Settings) -> int:
    """Start everything, restart what crashes, stop all on Ctrl-C or SIGTERM."""
    data_dir = settings.data_dir.resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    nats = None
    nats_url = settings.nats_url
    if nats_url is None:
        nats = EmbeddedNats(
            data_dir / "nats", port=settings.nats_port, sync_interval=settings.nats_sync_interval
        ).start()
        nats_url = nats.url
    env = {**os.environ, "WEGWEISER_NATS_URL": nats_url, "WEGWEISER_DATA_DIR": str(data_dir)}
    children = [Child(name, env, data_dir / "logs" / f"{name}.log") for name in SERVICES]
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.start()
    (data_dir / RUNTIME_FILE).write_text(
        json.dumps(
            {
                "nats_url": nats_url,
                "nats_monitor_url": nats.monitor_url if nats else None,
                "intake_url": settings.intake_url,
                "supervisor_pid": os.getpid(),
                "services": {c.name: c.process.pid for c in children if c.process},
                "nats_pid": nats.process.pid if nats and nats.process else None,
            },
            indent=2,
        )
    )
    ready = _wait_ready(settings.intake_url, children)
    print(_banner(settings, nats_url, data_dir, ready), flush=True)
    try:
        while not stopping:
            time.sleep(0.5)
            if nats and nats.process and nats.process.poll() is not None and not stopping:
                log.error("nats.exited", code=nats.process.returncode)
                nats.start()
            for child in children:
                if not child.alive() and not stopping:
                    _restart(child)
    finally:
        print("Stopping Wegweiser …", flush=True)
        for child in children:
            child.stop()
        if nats:
            nats.stop()
        (data_dir / RUNTIME_FILE).unlink(missing_ok=True)
    return 0


def _restart(child: Child) -> None:
    now = time.monotonic()
    child.restarts = [t for t in child.restarts if now - t < 60] + [now]
    code = child.process.returncode if child.process else None
    log.error(
        "service.exited", service=child.name, code=code, restarts_last_minute=len(child.restarts)
    )
    if len(child.restarts) > 5:
        time.sleep(5)  # a crash loop: give the log a chance to be read, keep trying slowly
    child.start()


def _wait_ready(intake_url: str, children: list[Child], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{intake_url}/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if any(not c.alive() for c in children):
            return False
        time.sleep(0.2)
    return False


def _banner(settings: Settings, nats_url: str, data_dir: Path, ready: bool) -> str:
    state = "running" if ready else "NOT READY (see the logs)"
    return "\n".join(
        [
            f"Wegweiser is {state}.",
            f"  intake API   {settings.intake_url}   (OpenAPI: {settings.intake_url}/docs)",
            f"  NATS         {nats_url}",
            f"  data         {data_dir}   (logs in {data_dir / 'logs'})",
            "  try          wegweiser demo      |   wegweiser status   |   Ctrl-C stops everything",
        ]
    )
