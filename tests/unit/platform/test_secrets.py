"""A webhook agency's signing secret, kept for its owner alone from the first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wegweiser.platform.secrets import SECRET_PREFIX, SecretFolder


def test_a_new_secret_is_owner_only_from_the_start_and_kept_once_made(tmp_path: Path) -> None:
    secrets = SecretFolder(tmp_path / "keys" / "webhooks")
    path = secrets.path("lup-fallsoftware")
    old = os.umask(0o022)  # even under a lax umask
    try:
        made = secrets.ensure("lup-fallsoftware")
    finally:
        os.umask(old)
    assert made.startswith(SECRET_PREFIX)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secrets.ensure("lup-fallsoftware") == made  # asked again: the same, not a new one


def test_issuing_replaces_the_secret(tmp_path: Path) -> None:
    secrets = SecretFolder(tmp_path / "webhooks")
    first = secrets.ensure("lup-fallsoftware")
    second = secrets.issue("lup-fallsoftware")
    assert second != first
    assert secrets.get("lup-fallsoftware") == second
    assert secrets.get("lup-other") is None
