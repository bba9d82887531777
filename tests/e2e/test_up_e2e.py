"""The user's commands as a user runs them: `wegweiser up`, `wegweiser demo`, Ctrl-C."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from wegweiser.platform.nats_server import free_port

pytestmark = pytest.mark.slow


def test_up_runs_everything_the_demo_passes_and_ctrl_c_stops_it_all(tmp_path):
    env = {
        **os.environ,
        "WEGWEISER_DATA_DIR": str(tmp_path / "data"),
        "WEGWEISER_INTAKE_PORT": str(free_port()),
        "WEGWEISER_AUDIT_PORT": str(free_port()),
        "WEGWEISER_DIRECTORY_PORT": str(free_port()),
        "WEGWEISER_GATEWAY_PORT": str(free_port()),
        "WEGWEISER_WEB_PORT": str(free_port()),
        "WEGWEISER_METRICS_PORT": str(free_port()),
        "WEGWEISER_NATS_PORT": str(free_port()),  # all ports from one process: no two alike
        "WEGWEISER_NATS_MONITOR_PORT": str(free_port()),
    }
    env.pop("NATS_URL", None)
    env.pop("WEGWEISER_NATS_URL", None)
    up = subprocess.Popen(
        [sys.executable, "-m", "wegweiser", "up"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert up.stdout is not None
        banner = [up.stdout.readline() for _ in range(6)]
        assert banner[0].strip() == "Wegweiser is running.", banner
        demo = subprocess.run(
            [sys.executable, "-m", "wegweiser", "demo"],
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
        )
        assert demo.returncode == 0, demo.stderr
        assert "demo passed" in demo.stdout and "completed" in demo.stdout
        assert (tmp_path / "data" / "referral.db").exists()
        second = subprocess.run(  # a second `up` on the same data directory is refused
            [sys.executable, "-m", "wegweiser", "up"],
            env=env,
            text=True,
            capture_output=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"already running on {tmp_path / 'data'}" in second.stderr
        assert f"supervisor pid {up.pid}" in second.stderr and "Traceback" not in second.stderr
        pids = _children(up.pid)
        assert len(pids) >= 7  # nats-server and the six services (and the zygote)
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
        stopping = up.stdout.read()
        assert "service.killed" not in stopping, stopping  # each stopped on SIGTERM itself
        deadline = time.monotonic() + 10  # a loaded machine reaps the last ones a moment later
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [_described(p) for p in pids if _alive(p)] == []
        assert not (tmp_path / "data" / "runtime.json").exists()
        # every file and folder of the data directory is for the service user alone
        loose = [
            f"{oct(stat.S_IMODE(p.stat().st_mode))} {p}"
            for p in (tmp_path / "data").rglob("*")
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077
        ]
        assert loose == []
    finally:
        if up.poll() is None:
            up.kill()


def test_demo_fails_clearly_when_nothing_runs(tmp_path):
    env = {**os.environ, "WEGWEISER_DATA_DIR": str(tmp_path)}
    env.pop("NATS_URL", None)
    demo = subprocess.run(
        [sys.executable, "-m", "wegweiser", "demo"],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert demo.returncode == 2 and "not running" in demo.stderr


def _children(pid: int) -> list[int]:
    """Every process `pid` started, and what they started (the services are forked by the
    zygote that `up` starts)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    direct = [int(p) for p in out.stdout.split()]
    return direct + [grandchild for child in direct for grandchild in _children(child)]


def _described(pid: int) -> str:
    """A process as ps shows it (its command line says which one lingers)."""
    return subprocess.run(
        ["ps", "-o", "pid=,stat=,args=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip() not in ("", "Z")
