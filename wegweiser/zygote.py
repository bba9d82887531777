"""A process that imports every service's code once, then forks each service from itself.

Each service started as `python -m wegweiser.serve NAME` spends about three seconds of CPU
importing the same libraries (FastAPI, SQLAlchemy, nats-py, pydantic's models, the
contracts) before it does anything; six of them on two cores take ten seconds to start, and a
service restarted after a crash takes as long again. Forked from this process, a service has
all of that already and is serving within a fraction of a second. Only `up` (LocalSystem)
uses it; systemd runs each service as its own command.

The zygote does nothing but import and fork: no thread, no event loop, no connection, no
file of any service is open in it, so a fork of it is as clean as a new interpreter. The
child gets its own session, umask, working directory, environment and log file, and then
runs `wegweiser.serve.serve(NAME)` exactly as the command would.

The zygote is itself forked from the supervisor once the supervisor has imported the same
(`preload`): the supervisor's copy of those libraries is then the zygote's and the services'
too, rather than a fourth of everything `up` holds in memory. Before anything is imported,
the few modules the services would import only once they serve are imported too, SQLAlchemy's
mappers are configured and every object is moved out of the collector's sight (`gc.freeze`),
so that a service does not copy the pages that hold them by touching them.

The protocol is one JSON object per line: the supervisor writes
`{"name", "env", "log", "cwd"}` and reads `{"pid"}`. The zygote reaps its children; the
supervisor watches them by their pid (see `Forked`).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from wegweiser import registry
from wegweiser.platform.files import PRIVATE_UMASK


def _reap(_signum: int, _frame: Any) -> None:
    """Collect every child that has ended, so that none lingers as a zombie."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _child(request: dict[str, Any]) -> None:
    """In the forked process: become the service, then leave without returning."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.umask(PRIVATE_UMASK)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)
        os.close(nothing)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [sys.executable, "-m", "wegweiser.serve", request["name"]]
        from wegweiser.serve import serve

        serve(request["name"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - said in the service's log, then the process ends
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


SERVING = (
    "anyio._backends._asyncio",
    "concurrent.futures.thread",
    "cryptography.hazmat.backends.openssl.backend",
    "httpcore",
    "jinja2.ext",
    "uvicorn.lifespan.off",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
    "_strptime",
)
"""Modules the services import only once they serve (the HTTP server's protocol, the thread
pool, the HTTP client's transport): imported here, each service would otherwise hold its own
copy."""


def preload() -> None:
    """Import every service and what they import once serving, configure the mappers (each
    service would on its first query, in pages of its own), and freeze what is there."""
    for service in registry.SERVICES:
        importlib.import_module(service.bootstrap)
    importlib.import_module("wegweiser.serve")
    for module in SERVING:
        with contextlib.suppress(ImportError):  # a library that moved it: imported later
            importlib.import_module(module)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    gc.collect()
    gc.freeze()  # a full collection in a service would otherwise write to every page


def main(imported: bool = False) -> None:
    """Import every service (unless `imported`), say so, then fork one child per request
    until stdin closes."""
    if not imported:
        preload()
    signal.signal(signal.SIGCHLD, _reap)
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


class ZygoteGone(RuntimeError):
    """The zygote is not running (any more): start services as commands instead."""


class Zygote:
    """The supervisor's side: start the zygote, ask it for services."""

    def __init__(self, log_path: Path, fork: bool = True) -> None:
        """`fork`: import everything here and fork the zygote from this process, which must
        have no thread but the main one yet (it then shares its libraries with the services);
        else start it as a command of its own."""
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.process: subprocess.Popen[bytes] | _Child = (
                _fork(log)
                if fork
                else subprocess.Popen(
                    [sys.executable, "-m", "wegweiser.zygote"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                    umask=PRIVATE_UMASK,
                )
            )
        finally:
            os.close(log)
        self._lock = threading.Lock()
        self._ready = False

    def fork(self, name: str, env: dict[str, str], log_path: Path) -> Forked:
        """Service `name` forked from the zygote (waiting for it to have imported
        everything the first time); ZygoteGone if it is not running."""
        request = {"name": name, "env": env, "log": str(log_path), "cwd": os.getcwd()}
        with self._lock:
            stdin, stdout = self.process.stdin, self.process.stdout
            assert stdin is not None and stdout is not None
            try:
                if not self._ready:
                    self._read(stdout)
                    self._ready = True
                stdin.write((json.dumps(request) + "\n").encode())
                stdin.flush()
                return Forked(int(self._read(stdout)["pid"]))
            except (OSError, ValueError, KeyError) as exc:
                raise ZygoteGone(f"the zygote did not answer: {exc!r}") from None

    @staticmethod
    def _read(stdout: IO[bytes]) -> dict[str, Any]:
        line = stdout.readline()
        if not line:
            raise ZygoteGone("the zygote has ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        """End the zygote (its children are the supervisor's to stop)."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _fork(log: int) -> _Child:
    """The zygote as a fork of this process, after `preload`: stdin and stdout are pipes to
    this process, stderr is `log`, and nothing else of this process is open in it."""
    preload()
    requests, answers = os.pipe(), os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            os.umask(PRIVATE_UMASK)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)  # the supervisor's handlers are not its
            os.dup2(requests[0], 0)
            os.dup2(answers[1], 1)
            os.dup2(log, 2)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the data directory's lock above all
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 - for as long as it runs
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            main(imported=True)
            code = 0
        except BaseException:  # noqa: BLE001 - said in its log, then the process ends
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)  # never the supervisor's atexit handlers
    os.close(requests[0])
    os.close(answers[1])
    return _Child(pid, stdin=os.fdopen(requests[1], "wb"), stdout=os.fdopen(answers[0], "rb"))


@dataclass
class Forked:
    """A service forked by the zygote, watched by its pid as `subprocess.Popen` would be
    (the zygote, its parent, reaps it; its exit code is not known here)."""

    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _running(self.pid):
            self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


@dataclass
class _Child(Forked):
    """The forked zygote, as much of `subprocess.Popen` as `Zygote` uses (this process is its
    parent: it reaps it, and so knows its exit code)."""

    stdin: IO[bytes] | None = None
    stdout: IO[bytes] | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid == 0:
                    return None
                self.returncode = os.waitstatus_to_exitcode(status)
            if self.returncode is None:
                self.returncode = -1  # reaped by someone else
        return self.returncode


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in {"Z", "X"}


if __name__ == "__main__":
    main()
