"""Ports handed out to the test suite's parallel workers: a port one process has claimed in
the shared folder is never handed out by another, and none comes from the kernel's
ephemeral range, where an outgoing connection could take it before it is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wegweiser.platform import nats_server
from wegweiser.platform.nats_server import PORT_CLAIMS, free_port


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "claims"
    folder.mkdir()
    monkeypatch.setenv(PORT_CLAIMS, str(folder))
    return folder


def test_claimed_ports_are_distinct_claimed_and_below_the_ephemeral_range(claims: Path) -> None:
    ports = [free_port() for _ in range(40)]
    assert len(set(ports)) == 40
    assert all(port in nats_server.CLAIMED_PORTS for port in ports)
    assert {int(p.name) for p in claims.iterdir()} == set(ports)


def test_a_port_another_process_claimed_is_not_handed_out(
    claims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # three ports nobody listens on (outside what other test workers draw from), two of them
    # claimed by another process of the folder
    candidates = [p for p in range(15000, 15200) if nats_server._unbound(p) == p][:3]
    claim = "import pathlib, sys; [pathlib.Path(sys.argv[1], p).touch() for p in sys.argv[2:]]"
    subprocess.run(
        [sys.executable, "-c", claim, str(claims), *map(str, candidates[:2])], check=True
    )
    monkeypatch.setattr(nats_server, "CLAIMED_PORTS", candidates)
    monkeypatch.setattr(nats_server, "_HANDED_OUT", set())
    assert free_port() == candidates[2]
    assert sorted(int(p.name) for p in claims.iterdir()) == candidates
    with pytest.raises(OSError, match="no free port"):  # all three taken: said, not a hang
        free_port()
