"""What the command groups share: the data directory option, settings, the NATS address,
durations and the services' databases."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from wegweiser.settings import Settings

if TYPE_CHECKING:  # SQLAlchemy and Alembic load only for the commands that open a database
    from wegweiser.agencies import CountyAdministration
    from wegweiser.platform.db import Database

T = TypeVar("T")
DataDir = Annotated[Path | None, typer.Option(help="data directory (WEGWEISER_DATA_DIR)")]
Seed = Annotated[
    Path | None,
    typer.Option(help="the agency's NATS nkey seed (default: keys_dir/nats/agency-ID.nk)"),
]


def load_settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


def running_nats(settings: Settings) -> str:
    """The NATS server of the system running here (or NATS_URL); exit 2 without one."""
    from wegweiser.supervisor import runtime_info

    url = settings.nats_url or runtime_info(settings.data_dir).get("nats_url")
    if not url:
        typer.echo("No NATS URL: set NATS_URL or run `wegweiser up` in this directory.", err=True)
        raise typer.Exit(2)
    return str(url)


def duration(text: str) -> Any:
    """An ISO 8601 duration (P7D, PT12H) or seconds; a bad one is the user's error."""
    from datetime import timedelta

    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(timedelta).validate_python(text)
    except ValidationError:
        raise typer.BadParameter(f"{text!r} is not a duration (e.g. P7D, PT12H)") from None


def database(settings: Settings, service: str) -> Database:
    """A service's database, migrated (the service need not run)."""
    from wegweiser import registry

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = registry.service(service).database(settings)
    db.migrate()
    return db


def county(settings: Settings) -> CountyAdministration:
    """The county's use cases on agencies and the directory, on the directory's database
    (closed at exit)."""
    import atexit

    from wegweiser.agencies import CountyAdministration

    db = database(settings, "directory")
    atexit.register(db.dispose)
    return CountyAdministration(settings, db, lambda: running_nats(settings))
