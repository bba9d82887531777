"""Every service's schema under Alembic.

A service's revisions live in `services/<name>/migrations/` (the registry hands the folder
in: the platform knows no service) and form one linear history in the service's own
database (Settings refuses two services on one database: each has its outbox and inbox).
The one environment here applies them:
- under a lock (a PostgreSQL advisory lock; on SQLite the write lock that BEGIN IMMEDIATE
  takes), so that instances starting at once migrate once and the others find it done;
- in one transaction, so a failing revision leaves the database as it was (PostgreSQL and
  SQLite both roll back DDL);
- adopting a database that Wegweiser made before it had migrations, if its tables match.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

if TYPE_CHECKING:
    from wegweiser.platform.db import Database

ENV_DIR = Path(__file__).with_name("alembic")


class SchemaMismatch(RuntimeError):
    """The database holds tables this version of Wegweiser cannot take as its own."""


@dataclass(frozen=True)
class Revisions:
    """One service's schema history: the name it goes by (in its lock key and messages) and
    the folder of its revisions (`services/<name>/migrations/`, handed in by the registry)."""

    service: str
    folder: Path


def config(revisions: Revisions, db: Database | None = None) -> Config:
    """Alembic's configuration for one service, built in code (there is no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ENV_DIR))
    cfg.set_main_option("version_locations", str(revisions.folder))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    # new revisions are written in the project's style (ruff is a test tool: absent, skip)
    cfg.set_section_option("post_write_hooks", "hooks", "ruff_format,ruff_fix")
    for hook, options in (("ruff_format", "format"), ("ruff_fix", "check --fix")):
        cfg.set_section_option("post_write_hooks", f"{hook}.type", "module")
        cfg.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
        cfg.set_section_option(
            "post_write_hooks", f"{hook}.options", f"{options} REVISION_SCRIPT_FILENAME"
        )
    cfg.attributes.update(revisions=revisions, database=db)
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the service's database to `revision` (the newest by default)."""
    command.upgrade(config(_revisions(db), db), revision)


def downgrade(db: Database, revision: str) -> None:
    command.downgrade(config(_revisions(db), db), revision)


def revision(db: Database, message: str) -> Path:
    """Write a new revision from what the models have that the (upgraded) database lacks."""
    revisions = _revisions(db)
    number = len(list(ScriptDirectory.from_config(config(revisions)).walk_revisions())) + 1
    script = command.revision(
        config(revisions, db), message=message, autogenerate=True, rev_id=f"{number:04d}"
    )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def head(revisions: Revisions) -> str | None:
    """The service's newest revision."""
    return ScriptDirectory.from_config(config(revisions)).get_current_head()


def _revisions(db: Database) -> Revisions:
    if db.revisions is None:
        raise ValueError("this database has no revisions: its tables are simply created")
    return db.revisions


def current(db: Database) -> str | None:
    """The revision the service's database is at; None before the first upgrade."""
    with db.engine.connect() as connection:
        return _context(connection, db.metadata).get_current_revision()


def differences(db: Database) -> list[Any]:
    """Where the database and the service's models disagree (Alembic's autogenerate diff);
    tables that are not the service's (another service's, in a shared database) are ignored."""
    with db.engine.connect() as connection:
        return list(compare_metadata(_context(connection, db.metadata), db.metadata))


def describe(diffs: list[Any]) -> str:
    """Alembic's diff in a line: 'add_table deletions; add_column referrals.version'."""
    parts = []
    for diff in diffs:
        if isinstance(diff, list):  # a column's changes come as a list of modify_* tuples
            parts += [f"{d[0]} {d[2]}.{d[3]}" for d in diff]
        elif diff[0] in ("add_column", "remove_column"):
            parts.append(f"{diff[0]} {diff[2]}.{diff[3].name}")
        else:
            parts.append(f"{diff[0]} {getattr(diff[1], 'name', diff[1])}")
    return "; ".join(parts)


def run_env(context: EnvironmentContext) -> None:
    """The body of env.py: apply the service's revisions under a lock, in one transaction."""
    if context.is_offline_mode():
        raise SystemExit("Wegweiser applies its migrations online only")
    revisions: Revisions = context.config.attributes["revisions"]
    db: Database = context.config.attributes["database"]
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            key = zlib.crc32(f"wegweiser-migrations-{revisions.service}".encode())
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        context.configure(connection=connection, **_options(db.metadata))
        _adopt_unversioned(context, revisions, connection, db.metadata)
        with context.begin_transaction():
            context.run_migrations()


def _options(metadata: MetaData) -> dict[str, Any]:
    def ours(_obj: Any, _name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        """A table in the database but not in the metadata is not compared: a command that
        opens the database with a few of the service's tables sees only those."""
        return not (kind == "table" and reflected and compare_to is None)

    def plain_types(kind: str, obj: Any, _context: Any) -> str | bool:
        """SQLModel's AutoString is a String: revisions need not import SQLModel."""
        if kind == "type" and isinstance(obj, AutoString):
            return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
        return False

    return {
        "target_metadata": metadata,
        "render_item": plain_types,
        "render_as_batch": True,  # SQLite alters tables by copying them
        "compare_type": True,
        "include_object": ours,
    }


def _context(connection: Connection, metadata: MetaData) -> MigrationContext:
    return MigrationContext.configure(connection, opts=_options(metadata))


def _adopt_unversioned(
    context: EnvironmentContext, revisions: Revisions, connection: Connection, metadata: MetaData
) -> None:
    """A database from before migrations has the tables but no version table: take it as the
    first revision if it matches, so upgrading Wegweiser keeps its data."""
    inspector = inspect(connection)
    if inspector.has_table("alembic_version"):
        return
    if not any(inspector.has_table(name) for name in metadata.tables):
        return
    script = context.script
    base = str(script.get_base())
    diffs = _differences_from(base_schema(revisions, base), inspector)
    if diffs:
        raise SchemaMismatch(
            f"the {revisions.service} database has tables from before migrations that differ from "
            f"revision {base}: {'; '.join(diffs)}. Move the old database aside (or "
            "migrate it by hand), then start again."
        )
    context.get_context().stamp(script, base)


def base_schema(revisions: Revisions, revision: str) -> dict[str, set[str]]:
    """The tables and their columns as `revision` makes them (run on a scratch SQLite
    database): what Wegweiser made before it had migrations is the first revision's schema."""
    script = ScriptDirectory.from_config(config(revisions)).get_revision(revision)
    assert script is not None and script.module is not None
    engine = create_engine("sqlite://")
    try:
        with (
            engine.begin() as connection,
            Operations.context(MigrationContext.configure(connection)),
        ):
            script.module.upgrade()
            found = inspect(connection)
            return {
                table: {c["name"] for c in found.get_columns(table)}
                for table in found.get_table_names()
            }
    finally:
        engine.dispose()


def _differences_from(schema: dict[str, set[str]], inspector: Any) -> list[str]:
    """What the database lacks or has beyond `schema`, by table and column names."""
    out = []
    for table, columns in sorted(schema.items()):
        if not inspector.has_table(table):
            out.append(f"add_table {table}")
            continue
        present = {c["name"] for c in inspector.get_columns(table)}
        out += [f"add_column {table}.{c}" for c in sorted(columns - present)]
        out += [f"remove_column {table}.{c}" for c in sorted(present - columns)]
    return out
