"""A webhook agency's signing secret, kept for its owner alone from the first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from services.gateway.bootstrap import secret_path
from services.gateway.webhook import SECRET_PREFIX, ensure_secret


def test_a_new_secret_is_owner_only_from_the_start_and_kept_once_made(tmp_path: Path) -> None:
    path = secret_path(tmp_path / "keys", "lup-fallsoftware")
    old = os.umask(0o022)  # even under a lax umask
    try:
        made = ensure_secret(path)
    finally:
        os.umask(old)
    assert made.startswith(SECRET_PREFIX)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_secret(path) == made  # asked again: the same secret, not a new one
