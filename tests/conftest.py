"""Fixtures shared by every test layer: a private nats-server and databases."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from tests.support.webhook_endpoint import endpoint  # noqa: F401 - a fixture for webhook tests
from wegweiser.platform.nats_server import PORT_CLAIMS, EmbeddedNats

PG_ADMIN_URL = os.environ.get(
    "WEGWEISER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs in parallel workers (pytest-xdist), each starting nats-servers and whole
    systems on free ports: they claim their ports in one folder, made here by the controlling
    process before it starts the workers, which inherit its environment."""
    if not hasattr(config, "workerinput") and PORT_CLAIMS not in os.environ:
        os.environ[PORT_CLAIMS] = tempfile.mkdtemp(prefix="wegweiser-ports-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(PORT_CLAIMS), True))


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """A command run in this process (CliRunner) configures logging for its process: each
    test gets back the logging it found."""
    config = structlog.get_config()
    handlers, level = list(logging.root.handlers), logging.root.level
    yield
    structlog.configure(**config)
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server with JetStream of our own, on a free port, with a temporary store."""
    server = EmbeddedNats(tmp_path / "nats", sync_interval="always").start()
    yield server
    server.stop()


def _postgres_reachable() -> str | None:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}"


def create_database() -> str:
    """A new, empty PostgreSQL database; its URL."""
    import sqlalchemy

    name = f"ww_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Make fresh PostgreSQL databases for one test; all are dropped afterwards."""
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    made: list[str] = []

    def make() -> str:
        made.append(create_database())
        return made[-1]

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture
def postgres_database(postgres_databases: Callable[[], str]) -> str:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    return postgres_databases()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_database"))
