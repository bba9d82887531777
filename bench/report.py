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
    """In a process of its own: stream the stored entries from the file, time the baseline
    and the report; the report reads them as the CLI does from the store, one at a time."""
    with path.open("rb") as lines:
        this_year = sum(1 for e in lines if b'"time":"2026' in e)
    print(f"entries in the year reported: {this_year:,}")
    began = time.perf_counter()
    with path.open("rb") as lines:
        for entry in lines:
            json.loads(entry)
    raw = time.perf_counter() - began
    print(f"raw: decoding every entry                 {raw:6.2f} s   peak {peak_mib():.0f} MiB")
    began = time.perf_counter()
    with path.open("rb") as lines:
        report = make(lines, Period(date(2026, 1, 1), date(2026, 12, 31)))
    made = time.perf_counter() - began
    print(
        f"report: fold, figures, protection         {made:6.2f} s  ({made / raw:.1f}x raw)"
        f"  peak {peak_mib():.0f} MiB"
    )
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        for fmt in render.FORMATS:
            render.write(report, fmt, Path(out) / fmt)
        written = time.perf_counter() - began
    print(f"writing: json, csv + datapackage, html    {written:6.2f} s   peak {peak_mib():.0f} MiB")
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
        count = 0
        for entry in entries(events):
            count += 1
            stored.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        stored.flush()
        del events
        print(f"entries: {count:,} over two years")
        subprocess.run([sys.executable, __file__, "--measure", stored.name], check=True)


if __name__ == "__main__":
    main()
