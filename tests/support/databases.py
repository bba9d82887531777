"""A service's database at a URL of the test's choosing, as the registry describes it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import Session, SQLModel, func, select

from wegweiser import registry
from wegweiser.platform.db import Database


def service_database(name: str, url: str) -> Database:
    """Every table of service `name`, under its schema revisions; not yet migrated."""
    service = registry.service(name)
    return Database(url, service.tables(), service.revisions)


@contextmanager
def migrated(name: str, url: str) -> Iterator[Database]:
    """Service `name`'s database at `url`, migrated to its latest revision; disposed of after."""
    database = service_database(name, url)
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


_TEMPLATES: dict[tuple[str, str], Path] = {}
_TEMPLATE_FOLDER = tempfile.TemporaryDirectory(prefix="wegweiser-templates-")


def copied(
    name: str, path: Path, fill: Callable[[Session], object] | None = None, kind: str = ""
) -> Database:
    """Service `name`'s SQLite database at `path`, migrated (and filled by `fill`, the same
    for every database of this `kind`): made once per process, then copied, which takes a
    fraction of migrating it (the HTTP tests make two or three for each test). One already
    at `path` is taken as it is."""
    assert fill is None or kind, "a filled database names its kind: one template per filling"
    template = _TEMPLATES.get((name, kind))
    if template is None:
        template = Path(_TEMPLATE_FOLDER.name) / f"{name}-{len(_TEMPLATES)}.db"
        with migrated(name, f"sqlite:///{template}") as database:
            if fill is not None:
                database.run_sync(fill)
        # its last connection closed, SQLite moved the write-ahead log into the file
        assert not template.with_name(f"{template.name}-wal").exists()
        _TEMPLATES[(name, kind)] = template
    if not path.exists():  # else made so before, and in use: never copied over (its WAL)
        shutil.copyfile(template, path)
    return service_database(name, f"sqlite:///{path}")


def count(db: Database, table: type[SQLModel]) -> int:
    """How many rows `table` holds in `db`."""
    return int(db.read_sync(lambda s: s.exec(select(func.count()).select_from(table)).one()))
