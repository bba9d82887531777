"""The monitoring report over one simulated year of a large county: the time to make it and
its peak memory, beside the raw cost of reading the same entries.

Run: .venv/bin/python bench/report.py [--referrals 50000]

The entries are made by the tests' network simulator with the real event models, kept as the
audit log keeps them (its metadata allow-list) and stored as the audit store does (JSON bytes
per entry, in order), over two years so that the period before is full too. Timed, in one
process: the raw baseline (decoding every entry, nothing else), then the whole report (fold,
figures for both periods, protection) and writing it as JSON, CSV and HTML. Peak memory is
the measuring process's peak RSS (VmHWM), in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.report import render
from services.report.figures import Period
from services.report.report import make
from tests.support.network import entries, simulate


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's maxrss, not carried
    over from the parent across exec)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def measure(path: Path) -> None:
    """In a process of its own: read the stored entries, time the baseline and the report."""
    stored = path.read_bytes().splitlines()
    this_year = sum(1 for e in stored if b'"time":"2026' in e)
    print(f"entries: {len(stored):,} over two years, {this_year:,} in the year reported")
    loaded = peak_mib()
    began = time.perf_counter()
    for entry in stored:
        json.loads(entry)
    raw = time.perf_counter() - began
    print(f"raw: decoding every entry                 {raw:6.2f} s")
    began = time.perf_counter()
    report = make(stored, Period(date(2026, 1, 1), date(2026, 12, 31)))
    made = time.perf_counter() - began
    print(f"report: fold, figures, protection         {made:6.2f} s  ({made / raw:.1f}x raw)")
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        for fmt in render.FORMATS:
            render.write(report, fmt, Path(out) / fmt)
        written = time.perf_counter() - began
    print(f"writing: json, csv + datapackage, html    {written:6.2f} s")
    print(f"peak memory: {peak_mib():.0f} MiB ({loaded:.0f} MiB with the entries read)")
    found = report.current.table("referrals-by-kind")
    total = found.protected.total() if found else 0
    print(f"referrals counted in the year: {total:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--referrals", type=int, default=50_000, help="over the year asked for")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    events, _ = simulate(
        2 * args.referrals, datetime(2025, 1, 1, tzinfo=UTC), days=730, seed=21, agencies=40
    )
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as stored:
        for entry in entries(events):
            stored.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        stored.flush()
        del events
        subprocess.run([sys.executable, __file__, "--measure", stored.name], check=True)


if __name__ == "__main__":
    main()
