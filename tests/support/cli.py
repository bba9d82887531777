"""The `wegweiser` command line as an operator runs it on the machine of a running system (its
data directory in the environment), for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from wegweiser.supervisor import LocalSystem


def wegweiser(
    system: LocalSystem, *args: str, env_extra: dict[str, str] | None = None, **kw: Any
) -> subprocess.Popen[str]:
    """`python -m wegweiser <args>` started on `system`'s data directory with JSON logs, its
    output piped; `env_extra` adds to the environment, `kw` goes to `subprocess.Popen`."""
    env = {
        **os.environ,
        "WEGWEISER_DATA_DIR": str(system.data_dir),
        "WEGWEISER_LOG_JSON": "1",
        **(env_extra or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "wegweiser", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def run_wegweiser(system: LocalSystem, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m wegweiser <args>` run to its end (within a minute) on `system`'s data
    directory, its output captured."""
    env = {**os.environ, "WEGWEISER_DATA_DIR": str(system.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "wegweiser", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
