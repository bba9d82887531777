"""What the HTTP tests share: intake in this process on SQLite in the test's own folder, an
office's client of it, and the web app wired to that intake (a module may define its own).
Passwords are hashed at test strength here (tests/support/passwords.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.intake import IntakeApp
from tests.support.passwords import cheap_argon2
from tests.support.web import WebApp

__all__ = ["cheap_argon2"]

OFFICE = "lup-integration-office"


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[IntakeApp]:
    """Intake with its files under `tmp_path/intake`."""
    folder = tmp_path / "intake"
    folder.mkdir()
    made = IntakeApp(folder)
    yield made
    made.dispose()


@pytest.fixture
async def office(intake: IntakeApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of intake's API for OFFICE."""
    async with intake.client(OFFICE) as client:
        yield client


@pytest.fixture
def web(tmp_path: Path, intake: IntakeApp) -> Iterator[WebApp]:
    """The web app, with its files under `tmp_path/web`, calling `intake`."""
    folder = tmp_path / "web"
    folder.mkdir()
    made = WebApp(folder, intake=intake)
    yield made
    made.db.dispose()
