"""Each service's Alembic revisions build exactly the schema its models declare, on SQLite and
on PostgreSQL; instances starting together migrate once; a database from before migrations
is adopted when it matches and refused, untouched, when it does not."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from typer.testing import CliRunner

from wegweiser import registry
from wegweiser.cli import app
from wegweiser.platform import migrations
from wegweiser.platform.db import Database
from wegweiser.platform.inbox import InboxRow
from wegweiser.registry import NAMES as SERVICES
from wegweiser.settings import Settings

BASE = "0001"  # every service's first revision, made when Wegweiser adopted migrations


def database(tmp_path: Path, service: str, url: str) -> Database:
    url_of_service: dict[str, Any] = {f"{service}_db_url": url}  # a field named at run time
    settings = Settings(data_dir=tmp_path / "data", **url_of_service)
    return registry.service(service).database(settings)


def head(service: str) -> str | None:
    return migrations.head(registry.service(service).revisions)


def tables(db: Database) -> set[str]:
    return set(sqlalchemy.inspect(db.engine).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_revisions_build_what_the_models_declare(
    tmp_path: Path, database_url: str, service: str
) -> None:
    db = database(tmp_path, service, database_url)
    try:
        db.migrate()
        assert tables(db) == set(db.metadata.tables)
        assert migrations.differences(db) == []
        assert migrations.current(db) == head(service)
        db.migrate()  # at the newest revision already: nothing to do
        migrations.downgrade(db, "base")
        assert tables(db) == set()
        assert migrations.current(db) is None
        db.migrate()
        assert tables(db) == set(db.metadata.tables)
    finally:
        db.dispose()


INSTANCE = """
import sys, time
from pathlib import Path
from wegweiser.settings import Settings
from wegweiser import registry
folder, url, me = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
db = registry.service("referral").database(Settings(data_dir=folder / "data", referral_db_url=url))
(folder / f"ready-{me}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
db.migrate()
"""


def test_instances_starting_together_migrate_once(tmp_path: Path, database_url: str) -> None:
    """Four processes (Alembic keeps its context per process) migrate one empty database at
    the same moment; without the lock their CREATE TABLEs collide on PostgreSQL."""
    instances = [
        subprocess.Popen(
            [sys.executable, "-c", INSTANCE, str(tmp_path), database_url, str(n)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        for _ in range(600):
            if len(list(tmp_path.glob("ready-*"))) == len(instances):
                break
            time.sleep(0.1)
        (tmp_path / "go").touch()
        errors = [p.communicate(timeout=120)[1] for p in instances]
    finally:
        for p in instances:
            p.kill()
    assert [p.returncode for p in instances] == [0] * len(instances), errors
    db = database(tmp_path, "referral", database_url)
    try:
        assert migrations.current(db) == head("referral")
        with db.engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert versions == [(head("referral"),)]
        assert tables(db) == set(db.metadata.tables)
    finally:
        db.dispose()


def test_a_database_from_before_migrations_is_adopted_with_its_data(
    tmp_path: Path, database_url: str
) -> None:
    db = database(tmp_path, "intake", database_url)
    try:
        # the tables as Wegweiser made them before it had migrations: the first revision's,
        # without the version table
        migrations.upgrade(db, BASE)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
        kept = InboxRow(consumer="intake", event_id="e-1", processed_at=datetime.now(UTC))
        db.run_sync(lambda s: s.add(kept))
        db.migrate()
        assert migrations.current(db) == head("intake")
        assert db.run_sync(lambda s: s.get(InboxRow, ("intake", "e-1"))) is not None
    finally:
        db.dispose()


def test_a_database_whose_tables_differ_is_refused_and_left_alone(
    tmp_path: Path, database_url: str
) -> None:
    db = database(tmp_path, "intake", database_url)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE inbox (consumer VARCHAR(64) PRIMARY KEY)")
        with pytest.raises(migrations.SchemaMismatch, match=r"add_column inbox\.event_id"):
            db.migrate()
        assert tables(db) == {"inbox"}
        assert not sqlalchemy.inspect(db.engine).has_table("alembic_version")
    finally:
        db.dispose()


def test_db_status_and_upgrade_from_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "data")
    before = runner.invoke(app, ["db", "status", "--data-dir", data])
    assert before.exit_code == 1
    assert f"intake     at -      newest {head('intake')}   not created yet" in before.output
    assert not (tmp_path / "data" / "intake.db").exists()  # looking created nothing
    upgraded = runner.invoke(app, ["db", "upgrade", "--data-dir", data])
    assert upgraded.exit_code == 0, upgraded.output
    after = runner.invoke(app, ["db", "status", "--data-dir", data])
    assert after.exit_code == 0, after.output
    assert after.output.count("up to date") == len(SERVICES)
