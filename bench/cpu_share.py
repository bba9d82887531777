"""CPU seconds each process of a running benchmark system uses over a window.

Run beside `bench/pipeline.py` (it reads the newest /tmp/wegweiser-bench-*/runtime.json):
    .venv/bin/python bench/pipeline.py --duration 40 > /tmp/bench.log &
    .venv/bin/python bench/cpu_share.py /tmp/bench.log
It waits for the raw phase to end, then measures 20 s of the sustained phase from /proc.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(log: str, window: float = 20.0) -> None:
    while "raw:" not in Path(log).read_text():
        time.sleep(0.2)
    time.sleep(4)
    newest = max(glob.glob("/tmp/wegweiser-bench-*/runtime.json"), key=os.path.getmtime)
    info = json.loads(Path(newest).read_text())
    pids: dict[str, int] = dict(info["services"])
    pids |= {f"nats-server {n['pid']}": n["pid"] for n in info.get("nats_nodes", [])}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - start
    for name, pid in pids.items():
        used = cpu_seconds(pid) - before[name]
        print(f"{name:<20} {used:6.2f} s CPU  ({100 * used / elapsed:5.1f} % of a core)")


if __name__ == "__main__":
    main(sys.argv[1])
