"""CPU each process of a running benchmark system uses per referral, and where it goes.

Run beside `bench/pipeline.py` (it reads the newest /tmp/wegweiser-bench-*/runtime.json):
    .venv/bin/python bench/pipeline.py --duration 60 > /tmp/bench.log &
    .venv/bin/python bench/cpu_share.py /tmp/bench.log [--window 20] [--py-spy PATH]
It waits for the raw phase to end, then measures `window` seconds of the sustained phase from
/proc: each process's CPU seconds and share of a core. Once the pipeline has printed its
sustained throughput, it divides: milliseconds of CPU per referral, per process and in all,
beside the CPU the machine has per referral at that rate (cores ÷ referrals/s), and the CPU
per referral a target rate leaves (`--target`, 300/s: the figure issue 19 asks for).

With `--py-spy` (a py-spy binary; it is not a dependency: `pip install py-spy` anywhere),
each service is also sampled for the window (`py-spy record --gil --nonblocking`: only the
samples in which the process held the GIL, i.e. ran Python), and the report lists, per
service, the libraries and the functions that held the GIL most, from the collapsed stacks.
The report is printed and written to bench/results/profile-<time>.txt.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import hardware  # type: ignore[import-not-found]  # bench/, on the path above

RESULTS = Path(__file__).resolve().parent / "results"
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def library(path: str) -> str:
    """Who a frame's file belongs to: a site-packages distribution, Wegweiser's own folder
    (services/intake, wegweiser/platform, ...), or the standard library."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for own in ("services/", "wegweiser/", "schemas/"):
        if own in path:
            parts = path[path.index(own) :].split("/")
            return "/".join(parts[:2]) if own != "schemas/" else "schemas"
    return "stdlib:" + Path(path).stem


def hot_spots(
    collapsed: Path, top: int
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Samples in all; the libraries by samples in which one of their frames ran Python last
    (self time); the functions by self samples."""
    libraries: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        last = stack.rsplit(";", 1)[-1]
        match = FRAME.match(last)
        where = match.group("file") if match else last
        name = match.group("function") if match else last
        libraries[library(where)] += n
        functions[f"{name} ({library(where)})"] += n
    return total, libraries.most_common(top), functions.most_common(top)


def sustained_rate(log: Path) -> float:
    """The pipeline's sustained referrals/s, once it has printed them."""
    while True:
        found = [ln for ln in log.read_text().splitlines() if ln.startswith("sustained:")]
        if found:
            line = found[0]
            break
        time.sleep(0.5)
    return float(ast.literal_eval(line.removeprefix("sustained: "))["referrals_s"])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("log", type=Path, help="the running pipeline.py's output")
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--py-spy", dest="py_spy", help="a py-spy binary: also sample each service")
    p.add_argument("--target", type=float, default=300.0, help="referrals/s to compare with")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    while "raw:" not in args.log.read_text():
        time.sleep(0.2)
    time.sleep(4)
    newest = max(glob.glob("/tmp/wegweiser-bench-*/runtime.json"), key=os.path.getmtime)
    info = json.loads(Path(newest).read_text())
    services: dict[str, int] = dict(info["services"])
    pids = services | {f"nats-server {n['pid']}": n["pid"] for n in info.get("nats_nodes", [])}
    folder = Path(tempfile.mkdtemp(prefix="wegweiser-profile-"))
    spies = {}
    if args.py_spy:
        for name, pid in services.items():
            spies[name] = subprocess.Popen(
                [args.py_spy, "record", "--gil", "--nonblocking", "--full-filenames",
                 "--rate", "50", "--duration", str(int(args.window)), "--format", "raw",
                 "--output", str(folder / f"{name}.txt"), "--pid", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(args.window)
    elapsed = time.monotonic() - start
    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    for spy in spies.values():
        spy.wait(60)
    rate = sustained_rate(args.log)
    cores = os.cpu_count() or 1
    machine = hardware.machine()
    all_used = sum(used.values())
    per_referral = {name: 1000 * u / (rate * elapsed) for name, u in used.items()}
    lines = [
        "== CPU per referral, sustained phase of bench/pipeline.py ==",
        f"when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine['cpu']}, {cores} CPUs,"
        f" Python {machine['python']}; load average at the end {hardware.loadavg()}",
        f"window: {elapsed:.1f} s of the sustained phase; pipeline: {rate:.1f} referrals/s",
        f"the machine's CPU per referral at that rate: {1000 * cores / rate:.1f} ms"
        f" (raw: {cores} cores / {rate:.1f} per s);"
        f" at {args.target:g}/s: {1000 * cores / args.target:.1f} ms",
        "",
        f"{'process':<24}{'CPU s':>8}{'% core':>8}{'ms/referral':>13}",
    ]
    rows = [(name, used[name], per_referral[name]) for name in sorted(used, key=lambda n: -used[n])]
    rows.append(("all", all_used, sum(per_referral.values())))
    lines += [f"{n:<24}{u:8.2f}{100 * u / elapsed:8.1f}{ms:13.1f}" for n, u, ms in rows]
    for name in sorted(spies, key=lambda n: -used[n]):
        collapsed = folder / f"{name}.txt"
        if not collapsed.exists():
            lines += ["", f"-- {name}: py-spy wrote nothing (may it attach? ptrace)"]
            continue
        total, libraries, functions = hot_spots(collapsed, args.top)
        lines += ["", f"-- {name}: {total} samples holding the GIL at 50/s over {args.window:g} s"]
        lines += [f"   {100 * n / total:5.1f} %  {lib}" for lib, n in libraries]
        lines.append("   functions (self):")
        lines += [f"   {100 * n / total:5.1f} %  {fn[:110]}" for fn, n in functions]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.txt"
    out.write_text(text + "\n")
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
