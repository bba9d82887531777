"""Files only their owner may read, written whole, and one running system per data directory.

Everything Wegweiser keeps under its data directory is for the service user alone: personal
data in the databases, keys, the JetStream store, mail. `private_umask` makes every file a
process (and its children, nats-server included) creates 0600 and every folder 0700 from the
first byte; `write_private` writes a file aside and moves it into place, so that no reader
ever sees it half written or, for a moment, readable by others.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import IO

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """From now on, this process and its children create files 0600 and folders 0700."""
    os.umask(PRIVATE_UMASK)


def write_private(path: Path, data: bytes | str) -> None:
    """Write `path` whole (aside, then renamed into place), readable by its owner only.
    Each writer writes aside under a name of its own: processes that write the same file at
    once (instances starting together) each put a whole file in place, the last one stays."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(aside, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
        raise


class AlreadyRunning(RuntimeError):
    """Another Wegweiser runs on this data directory."""


class DataDirLock:
    """An exclusive lock on a data directory, held for as long as the system runs: a second
    `up` on the same directory would start a second nats-server on the same JetStream store."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".lock"
        self._file: IO[str] | None = None

    def acquire(self, holder: dict[str, object]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            running = handle.read().strip() or "{}"
            handle.close()
            raise AlreadyRunning(
                f"Wegweiser is already running on {self.path.parent} ({_describe(running)}); "
                "stop it first, or use another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.seek(0)
                self._file.truncate()
            self._file.close()
            self._file = None


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
    except ValueError:
        return "no details"
    return ", ".join(f"{k} {v}" for k, v in holder.items()) or "no details"
