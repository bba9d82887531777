"""A nats-server of the test's own with the server's default syncing (the root conftest's
`nats_server` syncs every write), for the tests of the broker watch and of `wegweiser
status`, which take it down or look at it as it runs (a fixture: the integration conftest
lists it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wegweiser.platform.nats_server import EmbeddedNats


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A JetStream nats-server on a free port, its store under `tmp_path/nats`."""
    s = EmbeddedNats(tmp_path / "nats").start()
    yield s
    s.stop()
