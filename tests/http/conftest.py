"""What the HTTP tests share: intake in this process on SQLite in the test's own folder, an
office's client of it, and the web app wired to that intake (a module may define its own).
Passwords are hashed at test strength here (tests/support/passwords.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.intake import OFFICE, IntakeApp, intake, office
from tests.support.passwords import cheap_argon2
from tests.support.web import WebApp

__all__ = ["OFFICE", "cheap_argon2", "intake", "office"]


@pytest.fixture
def web(tmp_path: Path, intake: IntakeApp) -> Iterator[WebApp]:
    """The web app, with its files under `tmp_path/web`, calling `intake`."""
    folder = tmp_path / "web"
    folder.mkdir()
    made = WebApp(folder, intake=intake)
    yield made
    made.db.dispose()
