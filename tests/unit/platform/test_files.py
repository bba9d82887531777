"""Private files and one system per data directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wegweiser.platform.files import AlreadyRunning, DataDirLock, write_private


def test_a_private_file_is_owner_only_from_the_start_and_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "secret.txt"
    old = os.umask(0o022)  # even under a lax umask
    try:
        write_private(target, "one")
        write_private(target, b"two")
    finally:
        os.umask(old)
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["secret.txt"]  # nothing left aside


def test_a_second_system_on_one_data_directory_is_refused_naming_the_first(
    tmp_path: Path,
) -> None:
    first = DataDirLock(tmp_path)
    first.acquire({"supervisor pid": 4242})
    with pytest.raises(AlreadyRunning, match=r"already running on .*supervisor pid 4242"):
        DataDirLock(tmp_path).acquire({"supervisor pid": 7})
    first.release()
    second = DataDirLock(tmp_path)
    second.acquire({"supervisor pid": 7})  # free again once the first stopped
    second.release()
