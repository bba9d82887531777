"""End-to-end fixtures: the real services as separate processes around a private nats-server
(the helpers that start and call them are in tests/support/system.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.system import STARTED, STARTUP_WAIT, start_system
from wegweiser.supervisor import LocalSystem


@pytest.fixture(scope="session", autouse=True)
def _no_system_outlives_the_session() -> Iterator[None]:
    yield
    for system in STARTED:
        if any(c.alive() for c in system.children.values()) or any(
            node.process and node.process.poll() is None for node in system.nats_nodes
        ):
            system.stop(grace=5)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """Every service as a process, with its own nats-server and SQLite files, shared by the
    tests of one module: each works on requests and referrals of its own. A test that needs
    a system to itself (it counts everything, or breaks it) takes `fresh_system`."""
    s = start_system(tmp_path_factory.mktemp("system"))
    yield s
    s.stop()


@pytest.fixture
def fresh_system(tmp_path: Path) -> Iterator[LocalSystem]:
    """A system for one test alone."""
    s = start_system(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def system_factory(tmp_path: Path) -> Iterator[Callable[..., LocalSystem]]:
    started: list[LocalSystem] = []

    def make(**env: str) -> LocalSystem:
        # `settings` and `wait` named, so that mypy knows `env` holds environment variables only
        started.append(start_system(tmp_path, settings=None, wait=STARTUP_WAIT, **env))
        return started[-1]

    yield make
    for s in started:
        s.stop()
