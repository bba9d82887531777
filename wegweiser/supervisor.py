"""`wegweiser up`: an embedded nats-server and every service as its own supervised process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from wegweiser import provisioning, registry
from wegweiser.platform import connect, metrics
from wegweiser.platform.files import PRIVATE_UMASK, AlreadyRunning, DataDirLock, write_private
from wegweiser.platform.lifecycle import ready_mark
from wegweiser.platform.nats_server import EmbeddedCluster, EmbeddedNats
from wegweiser.registry import NAMES as SERVICES
from wegweiser.registry import ON_THE_BROKER
from wegweiser.settings import Settings
from wegweiser.zygote import Forked, Zygote, ZygoteGone

log = structlog.get_logger()
RUNTIME_FILE = "runtime.json"


@dataclass
class Child:
    """One service process: forked from the zygote when there is one, else a command."""

    name: str
    env: dict[str, str]
    log_path: Path
    instance: int = 1
    zygote: Zygote | None = None
    process: subprocess.Popen[bytes] | Forked | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self) -> None:
        if self.zygote is not None:
            try:
                self.process = self.zygote.fork(self.name, self.env, self.log_path)
                return
            except ZygoteGone as exc:
                log.warning("zygote.gone", service=self.name, error=str(exc))
                self.zygote = None
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wegweiser.serve", self.name],  # no CLI to import
                env=self.env,
                stdout=descriptor,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        finally:
            os.close(descriptor)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self, data_dir: Path) -> bool:
        """Alive and serving: it has written its pid to its ready mark."""
        mark = ready_mark(data_dir, self.name, self.instance)
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
        self.terminate()
        self.wait_or_kill(timeout)

    def terminate(self) -> None:
        """SIGTERM: the service shuts down in order."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, timeout: float) -> None:
        """Wait for the process to end; SIGKILL it if it has not within `timeout`."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "service.killed",
                service=self.name,
                why=f"still running {timeout:g} s after SIGTERM",
            )
            self.kill()


class BrokerWatch:
    """The healer (see `provisioning.watch`) on a thread of its own beside the supervision."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self, settings: Settings, url: str, timeout: float = 90.0) -> None:
        """Provision the stream and every consumer, then watch them; returns once provisioned
        (the services find their consumers made)."""
        provisioned = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                await provisioning.provision(settings, url, provisioning.known_agencies(settings))
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                provisioned.set()
            await provisioning.watch(settings, url, self._stop)

        def run() -> None:
            try:
                asyncio.run(main())
            except Exception as exc:
                log.exception("broker.watch_stopped", error=repr(exc))

        self._thread = threading.Thread(target=run, name="broker-watch", daemon=True)
        self._thread.start()
        if not provisioned.wait(timeout):
            raise TimeoutError(f"the broker was not provisioned within {timeout:g} s")
        if failure:
            raise RuntimeError(f"provisioning the broker failed: {failure[0]!r}") from failure[0]

    def stop(self) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


class LocalSystem:
    """NATS (embedded unless configured) and the services, on one machine."""

    def __init__(
        self,
        settings: Settings,
        extra_env: dict[str, str] | None = None,
        fork_services: bool = True,
        share_imports: bool = False,
    ) -> None:
        """`fork_services`: fork each service from a zygote that imported them all once
        (wegweiser/zygote.py), rather than start each as a command of its own.
        `share_imports`: import them here and fork the zygote from this process, so that
        this process, the zygote and the services hold one copy of the libraries (only
        for a process of its own: `up`; never where other threads run, as in tests)."""
        self.settings = settings
        self.fork_services = fork_services
        self.share_imports = share_imports
        self.zygote: Zygote | None = None
        self.data_dir = settings.data_dir.resolve()
        (self.data_dir / "logs").mkdir(mode=0o700, parents=True, exist_ok=True)
        self.nats = embedded_broker(settings)
        self._extra_env = extra_env or {}
        self.children: dict[str, Child] = {}
        self.watch = BrokerWatch()
        self.lock = DataDirLock(self.data_dir)
        self.metrics_folder = self.data_dir / "run" / "metrics"
        """Where the services write their metrics (wegweiser/platform/metrics.py)."""
        self._metrics_server: Any = None

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
        """The demo's credentials: intake's as the office's software, NATS watching as the
        services and answering as the agency."""
        return {
            "seed": self.settings.nats_seed_path,
            "agency_seed": self.agency_seed,
            "intake_credential": self.settings.demo_intake_credential_path,
        }

    def start(self, wait: float = 60.0) -> bool:
        """Start everything; True once intake answers /health. AlreadyRunning when another
        system runs on this data directory."""
        self.lock.acquire({"supervisor pid": os.getpid(), "since": time.strftime("%H:%M:%S")})
        zygote_log = self.data_dir / "logs" / "zygote.log"
        share = self.fork_services and self.share_imports and threading.active_count() == 1
        if self.fork_services and not share:  # it imports while the keys and users are made
            self.zygote = Zygote(zygote_log, fork=False)
        provisioning.ensure_demo_keys(self.settings)
        provisioning.ensure_web_token(self.settings)
        from services.web.demo_users import ensure_demo_users

        ensure_demo_users(self.settings)
        # forked after that one-off work: a page either process writes after the fork is
        # copied, in this one and in the zygote
        if share:
            self.zygote = Zygote(zygote_log, fork=True)
        self._serve_metrics()
        if self.nats:
            self.nats.authorization = provisioning.accounts(self.settings)
            self.nats.start()
        self.watch.start(self.settings, self.nats_url)  # provisions first, then watches
        env = {
            **os.environ,
            **self._extra_env,
            "WEGWEISER_NATS_URL": self.nats_url,
            "WEGWEISER_DATA_DIR": str(self.data_dir),
            "WEGWEISER_INTAKE_PORT": str(self.settings.intake_port),
            "WEGWEISER_AUDIT_PORT": str(self.settings.audit_port),
            "WEGWEISER_DIRECTORY_PORT": str(self.settings.directory_port),
            "WEGWEISER_GATEWAY_PORT": str(self.settings.gateway_port),
            "WEGWEISER_WEB_PORT": str(self.settings.web_port),
            metrics.FOLDER: str(self.metrics_folder),
            **{
                f"WEGWEISER_{service.upper()}_DB_URL": str(
                    getattr(self.settings, f"{service}_db_url")
                )
                for service in SERVICES
                if getattr(self.settings, f"{service}_db_url")
            },
            **(
                {"WEGWEISER_NATS_REPLICAS": str(self.settings.stream_replicas)}
                if self.settings.stream_replicas
                else {}
            ),
        }
        if self.settings.instances > 1:
            prepare_stores(self.settings)
        for instance in range(1, self.settings.instances + 1):
            for name in SERVICES:
                key = name if instance == 1 else f"{name}-{instance}"
                seed = self.settings.service_seed_path(name)
                own = {"WEGWEISER_NATS_SEED": str(seed)} if seed and name in ON_THE_BROKER else {}
                self.children[key] = Child(
                    name,
                    {**env, "WEGWEISER_INSTANCE": str(instance), **own},
                    self.data_dir / "logs" / f"{key}.log",
                    instance=instance,
                    zygote=self.zygote,
                )
                self.children[key].start()
        self._write_runtime_file()
        return self.wait_ready(wait)

    def wait_ready(self, timeout: float = 60.0, retries: int = 2) -> bool:
        """True once intake answers /health and every service is serving. A service that
        exits while starting is restarted, as `up` would; after `retries` restarts of the
        same one, it is broken rather than early, and this gives up."""
        deadline = time.monotonic() + timeout
        exits: Counter[str] = Counter()
        with httpx.Client(timeout=1) as http:  # one client: a new one costs 0.2 s of CPU
            while time.monotonic() < deadline:
                if all(c.ready(self.data_dir) for c in self.children.values()):
                    try:
                        url = f"{self.settings.intake_url}/health"
                        if http.get(url).status_code == 200:
                            return True
                    except httpx.HTTPError:
                        pass
                for key, child in self.children.items():
                    if not child.alive():
                        exits[key] += 1
                        if exits[key] > retries:
                            return False
                        _restart(child)
                time.sleep(0.1)
        return False

    def _serve_metrics(self) -> None:
        """Every service's metrics, summed, on `metrics_host:metrics_port` for Prometheus."""
        metrics.prepare(self.metrics_folder)
        host, port = self.settings.metrics_host, self.settings.metrics_port
        self._metrics_server = metrics.serve(self.metrics_folder, host, port)

    def restart(self, name: str, kill: bool = True) -> None:
        """Kill (or stop) one service and start it again."""
        child = self.children[name]
        child.kill() if kill else child.stop()
        if child.process is not None:
            metrics.process_ended(self.metrics_folder, child.process.pid)
        child.start()
        self._write_runtime_file()

    def supervise_once(self) -> None:
        """Restart whatever has died."""
        for node in self.nats_nodes:
            if node.process and node.process.poll() is not None:
                log.error("nats.exited", node=node.name, code=node.process.returncode)
                node.authorization = provisioning.accounts(self.settings)
                node.start()
                self._write_runtime_file()
        for child in self.children.values():
            if not child.alive():
                if child.process is not None:
                    metrics.process_ended(self.metrics_folder, child.process.pid)
                _restart(child)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to every service at once, SIGKILL to whatever still runs `grace` seconds
        later; then the broker watch and NATS. Each step happens even if one before failed."""
        try:
            for child in self.children.values():
                child.terminate()
            deadline = time.monotonic() + grace
            for child in self.children.values():
                child.wait_or_kill(max(0.0, deadline - time.monotonic()))
        finally:
            try:
                if self.zygote is not None:
                    self.zygote.stop()
                self.watch.stop()
            finally:
                if self.nats:
                    self.nats.stop()
                if self._metrics_server is not None:
                    self._metrics_server.shutdown()
                    self._metrics_server.server_close()
                (self.data_dir / RUNTIME_FILE).unlink(missing_ok=True)
                self.lock.release()

    @property
    def nats_nodes(self) -> list[EmbeddedNats]:
        """The embedded nats-server processes: one, or each node of the cluster."""
        if isinstance(self.nats, EmbeddedCluster):
            return self.nats.nodes
        return [self.nats] if self.nats else []

    def _write_runtime_file(self) -> None:
        info = {
            "nats_url": self.nats_url,
            "nats_monitor_url": (
                self.nats.monitor_url if self.nats and self.settings.nats_monitoring else None
            ),
            "nats_nodes": [
                {"pid": n.process.pid, "config": str(n.config_path)}
                for n in self.nats_nodes
                if n.process
            ],
            "intake_url": self.settings.intake_url,
            "directory_url": self.settings.directory_url,
            "gateway_url": self.settings.gateway_url,
            "supervisor_pid": os.getpid(),
            "services": {n: c.process.pid for n, c in self.children.items() if c.process},
        }
        # whole or not at all: status and demo read it while it is rewritten every half second
        write_private(self.data_dir / RUNTIME_FILE, json.dumps(info, indent=2))


def embedded_broker(settings: Settings) -> EmbeddedNats | EmbeddedCluster | None:
    """The nats-server (or cluster on loopback) that `up` runs itself, not yet started; None
    when the settings name a broker of the operator's (`nats_url`)."""
    store = settings.data_dir.resolve() / "nats"
    if settings.nats_url is not None:
        return None
    if settings.nats_cluster_size > 1:
        return EmbeddedCluster(
            store,
            size=settings.nats_cluster_size,
            sync_interval=settings.nats_sync_interval,
            monitor=settings.nats_monitoring,
        )
    return EmbeddedNats(
        store,
        port=settings.nats_port,
        monitor_port=settings.nats_monitor_port,
        sync_interval=settings.nats_sync_interval,
        monitor=settings.nats_monitoring,
    )


def prepare_stores(settings: Settings) -> None:
    """Migrate every service's database once, before several instances of it start (they
    would wait for each other's lock; this way the one failure, if any, is reported once)."""
    for name in SERVICES:
        database = registry.service(name).database(settings)
        try:
            database.migrate()
        finally:
            database.dispose()


def runtime_info(data_dir: Path) -> dict[str, object]:
    """What `wegweiser up` wrote about the running system, for status and demo."""
    path = data_dir / RUNTIME_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def up(settings: Settings) -> int:
    """Start everything, restart what crashes, stop all on Ctrl-C or SIGTERM."""
    system = LocalSystem(settings, share_imports=True)
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            ready = system.start()
        except AlreadyRunning as exc:
            print(exc, file=sys.stderr, flush=True)
            return 1
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
            f"  web app      {settings.web_url}   (sign in; demo users and passwords in "
            f"{settings.keys_path / 'web' / 'demo-users.txt'})",
            f"  intake API   {settings.intake_url}   (OpenAPI: {settings.intake_url}/docs)",
            f"  audit API    http://{settings.audit_host}:{settings.audit_port}   (ombudsperson; "
            "token in keys/audit/ombudsperson.token)",
            f"  directory    {settings.directory_url}   (HSDS 3.0 read API)",
            f"  gateway      {settings.gateway_url}   (webhook callbacks, e-mail portal; "
            f"mail in {data_dir / 'mail'} unless smtp_host is set)",
            f"  NATS         {nats_url}",
            f"  metrics      http://{settings.metrics_host}:{settings.metrics_port}/metrics   "
            "(Prometheus; every service's, summed)",
            f"  data         {data_dir}   (logs in {data_dir / 'logs'})",
            "  try          wegweiser demo   |   wegweiser status   |   Ctrl-C stops everything",
        ]
    )
