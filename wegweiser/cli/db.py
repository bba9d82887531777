"""Each service's database schema: status, upgrade, new revisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, load_settings
from wegweiser.registry import NAMES as SERVICES

db_app = typer.Typer(
    no_args_is_help=True, help="Each service's database schema (Alembic revisions)."
)


Service = Annotated[str | None, typer.Argument(help="one service (default: every service)")]


def _services(service: str | None) -> list[str]:
    if service is None:
        return list(SERVICES)
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return [service]


def _no_file(url: str) -> bool:
    """A SQLite database that does not exist yet (looking must not create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists()


@db_app.command("upgrade")
def db_upgrade(service: Service = None, data_dir: DataDir = None) -> None:
    """Bring the databases to the newest revision (services also do so when they start)."""
    from wegweiser import registry
    from wegweiser.platform import migrations

    settings = load_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for name in _services(service):
        db = registry.service(name).database(settings)
        try:
            db.migrate()
            typer.echo(f"{name:<10} at {migrations.current(db)}")
        except migrations.SchemaMismatch as exc:
            typer.echo(f"{name:<10} refused: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            db.dispose()


@db_app.command("status")
def db_status(service: Service = None, data_dir: DataDir = None) -> None:
    """Each database's revision against the newest; exit 1 unless all are up to date and
    match the models."""
    from wegweiser import registry
    from wegweiser.platform import migrations

    settings = load_settings(data_dir)
    behind = False
    for name in _services(service):
        db = registry.service(name).database(settings)
        try:
            at = None if _no_file(db.url) else migrations.current(db)
            head = migrations.head(registry.service(name).revisions)
            diffs = migrations.differences(db) if at and at == head else []
        finally:
            db.dispose()
        if at is None:
            verdict = "not created yet"
        elif at != head:
            verdict = f"behind: run `wegweiser db upgrade {name}`"
        elif diffs:
            verdict = f"differs from the models: {migrations.describe(diffs)}"
        else:
            verdict = "up to date"
        behind = behind or verdict != "up to date"
        typer.echo(f"{name:<10} at {at or '-':<6} newest {head:<6} {verdict}")
    raise typer.Exit(1 if behind else 0)


@db_app.command("revision")
def db_revision(
    service: Annotated[str, typer.Argument(help="the service whose models changed")],
    message: Annotated[str, typer.Option("--message", "-m", help="what the revision does")],
) -> None:
    """For developers: write the next revision of a service from what its models have that
    its revisions lack (compared on a scratch SQLite database; review what it writes)."""
    import tempfile

    from wegweiser import registry
    from wegweiser.platform import migrations

    _services(service)
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(Path(scratch))
        db = registry.service(service).database(settings)
        try:
            db.migrate()
            if not migrations.differences(db):
                typer.echo(f"{service}: the models and the revisions agree; nothing to write")
                return
            typer.echo(f"wrote {migrations.revision(db, message)}")
        finally:
            db.dispose()
