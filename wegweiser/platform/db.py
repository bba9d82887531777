"""Engines and units of work: one transaction per call, run off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

import anyio
from sqlalchemy import MetaData, Table, event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

from wegweiser.platform import migrations

T = TypeVar("T")
READ_ONLY = "wegweiser_read_only"
STAGED = "wegweiser_staged"
"""Set in a session's `info` by whatever staged work for after the commit (the outbox)."""


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every time Wegweiser stores is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common short form."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """An engine; SQLite in WAL mode so that readers never block the writer."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            # WAL survives a killed process; synchronous=NORMAL may lose the last commits
            # only on power loss, which the outbox then republishes as new work never began.
            conn.execute("PRAGMA busy_timeout=30000")
            _into_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # a writer takes the write lock at once (no upgrade deadlock mid-transaction);
            # a reader does not queue for it: in WAL mode it reads the last commit
            reading = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@retry(
    retry=retry_if_exception(lambda exc: "locked" in str(exc) or "busy" in str(exc)),
    wait=wait_random_exponential(multiplier=0.01, max=0.5),
    stop=stop_after_delay(30),
    reraise=True,
)
def _into_wal(conn: Any) -> None:
    """Switch a database file to WAL. On a new file that other processes open at the same
    moment (instances starting together), the switch needs the file to itself, and SQLite
    answers "database is locked" at once instead of waiting out busy_timeout: try again."""
    conn.execute("PRAGMA journal_mode=WAL")


class Database:
    """A service's database: `await db.run(fn)` runs `fn(session)` in one transaction;
    `await db.read(fn)` in one that only reads."""

    def __init__(
        self,
        url: str,
        tables: Iterable[type[SQLModel]],
        revisions: migrations.Revisions | None = None,
    ) -> None:
        """`revisions`: the service's schema history, which `migrate` applies; without it,
        the tables are simply created (a test's, a benchmark's)."""
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self._reader = self.engine.execution_options(
            **{READ_ONLY: True, "postgresql_readonly": True}
        )
        # SQLite has one writer at a time. The threads of this process queue for it here, where
        # a commit wakes the next at once, rather than in SQLite's busy handler, which sleeps
        # up to 100 ms between tries (other processes still meet busy_timeout).
        self._one_writer: AbstractContextManager[Any] = (
            threading.Lock() if self.url.startswith("sqlite") else nullcontext()
        )
        self.revisions = revisions
        self._tables: list[Table] = [t.__table__ for t in tables]  # type: ignore[attr-defined]
        self._after_staging: list[Callable[[], None]] = []

    def after_staging(self, hook: Callable[[], None]) -> None:
        """Call `hook` after each commit of a unit of work that staged something (the outbox
        relay wakes itself this way; it may run on any thread)."""
        self._after_staging.append(hook)

    @cached_property
    def metadata(self) -> MetaData:
        """This database's tables alone (SQLModel keeps every service's in one)."""
        metadata = MetaData()
        for table in self._tables:
            table.to_metadata(metadata)
        return metadata

    def migrate(self) -> None:
        """Bring the schema up to date: a service's database by its Alembic revisions;
        tables of no service (a test's, a benchmark's) are simply created."""
        if self.revisions is None:
            SQLModel.metadata.create_all(self.engine, tables=self._tables)
            return
        migrations.upgrade(self)

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        with self._one_writer, Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                result = fn(session)
            staged = session.info.pop(STAGED, False)
        if staged:
            for hook in self._after_staging:
                hook()
        return result

    async def run(self, fn: Callable[[Session], T]) -> T:
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def read_sync(self, fn: Callable[[Session], T]) -> T:
        """`fn` in a read-only transaction (PostgreSQL refuses writes in it)."""
        with Session(self._reader, expire_on_commit=False) as session, session.begin():
            return fn(session)

    async def read(self, fn: Callable[[Session], T]) -> T:
        return await anyio.to_thread.run_sync(self.read_sync, fn)

    def dispose(self) -> None:
        self.engine.dispose()
