"""Who may sign in to the web app, as the county's administrator manages it from the command
line (`wegweiser user`): each call opens the web app's database, migrated, and closes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from services.web.accounts import AccountError, Role, UserRow, add_user, users
from wegweiser import registry
from wegweiser.platform.db import Database
from wegweiser.settings import Settings


class UserAdministration:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def add(
        self,
        username: str,
        password: Callable[[], str],
        role: Role,
        office: str | None = None,
        name: str | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """Create a user, or with `replace` change one (their sessions end); AccountError
        says why not, and nothing is written. `password` is asked once the office is known
        to be one of the county's."""
        if office is not None and office not in self._settings.all_offices:
            raise AccountError(
                f"unknown office {office!r}; configured: {', '.join(self._settings.all_offices)}"
            )
        chosen = password()
        with self._database() as db:
            db.run_sync(lambda s: add_user(s, username, chosen, role, office, name, replace))

    def listed(self) -> list[UserRow]:
        """Every user, by name."""
        with self._database() as db:
            return db.run_sync(users)

    @contextmanager
    def _database(self) -> Iterator[Database]:
        self._settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = registry.service("web").database(self._settings)
        db.migrate()
        try:
            yield db
        finally:
            db.dispose()
