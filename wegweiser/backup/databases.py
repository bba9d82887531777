"""The databases' part of a backup: each held at one instant, copied from that instant, and
put back on restore.

SQLite (WAL): a read transaction sees the last commit before it began, however much is written
after, and the online backup API copies the pages of that snapshot from the same connection in
one step. PostgreSQL: a repeatable-read transaction exports its snapshot and `pg_dump
--snapshot` dumps exactly what that transaction sees. In both, what the backup reads of the
database (its outbox, its schema revision, the audit's last head) is read in the held
transaction too.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import make_url

from wegweiser.backup.archive import Refused
from wegweiser.platform.db import normalise_url


class Hold(Protocol):
    kind: str

    def rows(self, query: str) -> list[tuple[Any, ...]]: ...
    def has_table(self, table: str) -> bool: ...
    def copy(self, out: Path) -> Path: ...
    def release(self) -> None: ...


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path:
    return Path(str(make_url(url).database))


def libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg, pg_dump) reads it."""
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(False)


class SqliteHold:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.connection.execute("BEGIN")
        self.connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return list(self.connection.execute(query))

    def has_table(self, table: str) -> bool:
        found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self.connection.execute(found, (table,)).fetchone() is not None

    def copy(self, out: Path) -> Path:
        target = out.with_suffix(".sqlite")
        copy = sqlite3.connect(target)
        try:
            self.connection.backup(copy)  # one step: every page of the held snapshot
        finally:
            copy.close()
        return target

    def release(self) -> None:
        self.connection.close()


class PostgresHold:
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = libpq(url)
        self.connection = psycopg.connect(self.url, autocommit=True)
        self.connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        exported = self.connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert exported is not None
        self.snapshot = str(exported[0])

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return list(self.connection.execute(query.encode()))

    def has_table(self, table: str) -> bool:
        found = self.connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return found is not None and found[0] is not None

    def copy(self, out: Path) -> Path:
        target = out.with_suffix(".pgdump")
        _run(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--snapshot={self.snapshot}",
                f"--file={target}",
                f"--dbname={self.url}",
            ]
        )
        return target

    def release(self) -> None:
        self.connection.close()


def hold(url: str) -> Hold | None:
    """Hold the database at this instant; None if it does not exist yet (a service that never
    started has no SQLite file)."""
    if is_sqlite(url):
        path = sqlite_path(url)
        return SqliteHold(path) if path.exists() else None
    return PostgresHold(url)


def outbox(held: Hold) -> list[tuple[str, datetime]]:
    """The events the service's outbox still held, with when each was staged."""
    if not held.has_table("outbox"):
        return []
    return [(str(i), _utc(t)) for i, t in held.rows("SELECT event_id, created_at FROM outbox")]


def revision(held: Hold) -> str | None:
    if not held.has_table("alembic_version"):
        return None
    found = held.rows("SELECT version_num FROM alembic_version")
    return str(found[0][0]) if found else None


def audit_head(held: Hold) -> dict[str, object] | None:
    if not held.has_table("audit_tree_heads"):
        return None
    found = held.rows("SELECT size, root, time FROM audit_tree_heads ORDER BY size DESC LIMIT 1")
    return {"size": found[0][0], "root": found[0][1], "time": found[0][2]} if found else None


def _utc(value: Any) -> datetime:
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def occupied(url: str) -> str | None:
    """Why restoring into this database would overwrite something; None when it is empty."""
    if is_sqlite(url):
        path = sqlite_path(url)
        return f"{path} exists" if path.exists() else None
    with psycopg.connect(libpq(url)) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    return f"the database {make_url(url).database} has tables" if tables and tables[0] else None


def put_back(copy: Path, url: str, published: list[str]) -> None:
    """Restore a copy into the (empty) database `url`, then forget the outbox rows whose
    events the stream already has."""
    if copy.suffix == ".sqlite":
        if not is_sqlite(url):
            raise Refused(
                f"{copy.stem}: the archive holds a SQLite database, but the settings name "
                "PostgreSQL for it; restore with the same kind of database"
            )
        target = sqlite_path(url)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(copy, target)
        target.chmod(0o600)
        if not published:
            return
        with sqlite3.connect(target) as connection:
            connection.executemany(
                "DELETE FROM outbox WHERE event_id = ?", [(i,) for i in published]
            )
        return
    if is_sqlite(url):
        raise Refused(
            f"{copy.stem}: the archive holds a PostgreSQL dump, but the settings name SQLite "
            "for it; restore with the same kind of database"
        )
    _run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq(url)}", str(copy)])
    if not published:
        return
    with psycopg.connect(libpq(url)) as connection:
        for event_id in published:
            connection.execute("DELETE FROM outbox WHERE event_id = %s", (event_id,))


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Refused(f"{command[0]} is not installed (PostgreSQL's client tools)") from None
    if done.returncode != 0:
        raise Refused(f"{command[0]} failed: {done.stderr.strip()[-500:]}")
