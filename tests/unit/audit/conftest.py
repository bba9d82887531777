"""The audit's store on SQLite, migrated, for the tests of its use cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import migrated
from wegweiser.platform.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with migrated("audit", f"sqlite:///{tmp_path / 'audit.db'}") as database:
        yield database
