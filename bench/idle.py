"""What `wegweiser up` costs a machine at rest: seconds until it says it is running, and the
memory of every process it started once they are idle.

Run: .venv/bin/python bench/idle.py [--settle 20]

Starts `wegweiser up` on a fresh data directory (as on a first start after the install),
times it to its "Wegweiser is running" line, lets it settle, then reads each process's
memory from /proc/<pid>/smaps_rollup: RSS (what `ps` shows; pages shared between the
services forked from one zygote are counted in each of them) and PSS (each shared page
split between the processes that share it: their sum is what the system really uses).
Beside it, from the same run, the raw figures: a bare Python interpreter started and left
idle, and the time to start one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WEGWEISER = Path(sys.executable).with_name("wegweiser")


def memory_kib(pid: int) -> tuple[int, int]:
    """RSS and PSS of one process, in KiB."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss, pss = (
        int(re.search(rf"^{name}:\s+(\d+)", rollup, re.M).group(1)) for name in ("Rss", "Pss")
    )  # type: ignore[union-attr]
    return rss, pss


def descendants(root: int) -> list[int]:
    """`root` and every process below it (the zygote's children are below the zygote)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def name_of(pid: int, runtime: dict[str, object]) -> str:
    services = {v: k for k, v in dict(runtime["services"]).items()}  # type: ignore[call-overload]
    if pid in services:
        return services[pid]
    if pid == runtime["supervisor_pid"]:
        return "supervisor (wegweiser up)"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return " ".join(Path(part.decode()).name for part in cmdline[:3] if part)


def raw_python() -> tuple[float, int, int]:
    """Seconds to start a bare interpreter, and the RSS and PSS of one left idle."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    started = time.perf_counter() - start
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(1)
        rss, pss = memory_kib(idle.pid)
    finally:
        idle.kill()
        idle.wait()
    return started, rss, pss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settle", type=float, default=20.0, help="seconds idle before reading")
    settle = parser.parse_args().settle
    with tempfile.TemporaryDirectory(prefix="wegweiser-idle-") as tmp:
        data = Path(tmp) / "data"
        env = {**os.environ, "WEGWEISER_DATA_DIR": str(data)}
        start = time.perf_counter()
        up = subprocess.Popen(
            [str(WEGWEISER), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=tmp, start_new_session=True,
        )  # fmt: skip
        assert up.stdout is not None
        try:
            for line in up.stdout:
                if "Wegweiser is running" in line:
                    break
            else:
                raise SystemExit("wegweiser up ended before it was running")
            ready = time.perf_counter() - start
            time.sleep(settle)
            runtime = json.loads((data / "runtime.json").read_text())
            rows = []
            for pid in descendants(up.pid):
                try:
                    rows.append((name_of(pid, runtime), *memory_kib(pid)))
                except (OSError, AttributeError):
                    continue  # a process that ended meanwhile
        finally:
            os.killpg(up.pid, signal.SIGINT)
            up.wait(timeout=60)
    bare_start, bare_rss, bare_pss = raw_python()
    print("== wegweiser up at rest ==")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"ready after {ready:.1f} s (raw: a bare interpreter starts in {bare_start:.2f} s)")
    print(f"{'process':<28} {'RSS MiB':>8} {'PSS MiB':>8}")
    for name, rss, pss in sorted(rows, key=lambda r: -r[2]):
        print(f"{name:<28} {rss / 1024:8.1f} {pss / 1024:8.1f}")
    print(
        f"{f'all {len(rows)} processes':<28} {sum(r[1] for r in rows) / 1024:8.1f} "
        f"{sum(r[2] for r in rows) / 1024:8.1f}"
    )
    print(f"{'raw: a bare interpreter':<28} {bare_rss / 1024:8.1f} {bare_pss / 1024:8.1f}")


if __name__ == "__main__":
    main()
