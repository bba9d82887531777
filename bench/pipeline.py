"""Wegweiser pipeline benchmark: raw JetStream vs. referrals end to end, on one nats-server.

Run from the repo root:  .venv/bin/python bench/pipeline.py [--duration 60] [--rate 50]
[--latency-duration 30] [--quick].  See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import httpx
import nats
import structlog
from nats.js.api import StorageType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import hardware

from services.agency import AgencyClient
from services.intake.credential import OfficeAuth
from wegweiser.demo import sample_request
from wegweiser.platform import topology
from wegweiser.platform.nats_server import binary, servers
from wegweiser.platform.postgres import drop_service_databases, service_databases
from wegweiser.settings import SERVICES, Settings
from wegweiser.supervisor import LocalSystem

# The four migration-counselling agencies; consent {"kind": "migration-counselling"} covers each.
AGENCIES = ("lup-mbe-ludwigslust", "lup-mbe-parchim", "oa-mbe-sonthofen", "oa-mbe-immenstadt")
WORKERS = 32
RESULTS = Path(__file__).resolve().parent / "results"


def request_body() -> dict[str, Any]:
    """The demo's request, under a client reference of the benchmark's own."""
    return sample_request(client_reference="bench-client")


def machine() -> dict[str, Any]:
    nats_version = subprocess.run(
        [binary(), "--version"], capture_output=True, text=True, timeout=10
    ).stdout.strip()
    return {**hardware.machine(), "nats_server": nats_version, "loadavg_1_5_15": hardware.loadavg()}


def code_under_test() -> dict[str, Any]:
    """Which commit, whether the tree has changes, and the consumer limits that shape the flow."""
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", ".", ":!bench"], text=True, capture_output=True
    ).stdout.split("\n")
    pending = {c.durable: c.config(5).max_ack_pending for c in topology.consumers()}
    pending["agency-*"] = topology.agency_consumer("x").config(5).max_ack_pending
    return {
        "commit": head.stdout.strip() or "(not a git checkout)",
        "changed_files": [d[3:] for d in dirty if d],
        "max_ack_pending": pending,
    }


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def raw_baseline(
    url: str, n: int, options: dict[str, Any], replicas: int = 1
) -> dict[str, float]:
    """nats-py straight to a BENCH stream: pipelined publish, then durable pull consume + ack."""
    nc = await nats.connect(servers(url), **options)
    js = nc.jetstream(publish_async_max_pending=256)
    payload = os.urandom(512)
    try:
        await js.add_stream(
            name="BENCH", subjects=["bench.>"], storage=StorageType.FILE, num_replicas=replicas
        )
        start = perf_counter()
        for _ in range(n):
            await js.publish_async("bench.msg", payload, wait_stall=30)
        await asyncio.wait_for(js.publish_async_completed(), 60)
        publish_s = perf_counter() - start
        stored = (await js.stream_info("BENCH")).state.messages
        if stored != n:
            raise RuntimeError(f"BENCH holds {stored} messages, published {n}")
        sub = await js.pull_subscribe("bench.>", durable="bench-consumer", stream="BENCH")
        got, start = 0, perf_counter()
        while got < n:
            for msg in await sub.fetch(256, timeout=10):
                await msg.ack()
                got += 1
        await nc.flush(timeout=10)
        consume_s = perf_counter() - start
        return {"messages": n, "publish_msg_s": n / publish_s, "consume_msg_s": n / consume_s}
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream("BENCH")
        await nc.close()


class Rig:
    """Agency adapters (one AgencyClient each, acking every delivery) and an HTTP client."""

    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.received: dict[str, float] = {}  # referral_id -> perf_counter at the adapter
        self.errors: Counter[str] = Counter()
        self.adapter_errors: list[str] = []
        self.http = httpx.AsyncClient(
            base_url=system.settings.intake_url,
            auth=OfficeAuth(system.settings.demo_intake_credential_path),
            timeout=30,
            limits=httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS),
        )
        self.clients: list[AgencyClient] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for agency in AGENCIES:
            client = await AgencyClient.connect(
                self.system.nats_url, agency, seed=self.system.agency_seed(agency)
            )
            self.clients.append(client)
            self.tasks.append(asyncio.create_task(self._listen(client)))

    async def _listen(self, client: AgencyClient) -> None:
        # Until d6cefc7 deliveries() died on nats-py's plain TimeoutError and its offers
        # silently piled up; count any such death and resume from the durable consumer.
        for _ in range(20):
            try:
                async for delivery in client.deliveries():
                    if delivery.kind == "offered":
                        self.received.setdefault(delivery.event.data.referral_id, perf_counter())
                    await delivery.ack()
            except Exception as exc:  # noqa: BLE001 - count any death, then resume
                self.adapter_errors.append(f"{client.agency_id}: {type(exc).__name__}")

    async def consumer_state(self) -> dict[str, Any]:
        """The agency consumers as the server sees them (for when offers go missing); asked as
        the services' user: an agency may not read consumer info."""
        nc = await nats.connect(servers(self.system.nats_url), **self.system.nats_options)
        js = nc.jetstream()
        out = {}
        for agency in AGENCIES:
            ci = await js.consumer_info("WEGWEISER", f"agency-{agency}")
            out[agency] = {
                "delivered": ci.delivered.stream_seq,
                "pending": ci.num_pending,
                "ack_pending": ci.num_ack_pending,
                "redelivered": ci.num_redelivered,
            }
        await nc.close()
        return out

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client._nc.close(), 5)  # quicker than its drain
        await self.http.aclose()

    async def refer(self, agency: str) -> tuple[str, float, float] | None:
        """POST /requests, POST /requests/{id}/referrals; (referral_id, sent, 202 at) or None."""
        sent = perf_counter()
        try:
            r = await self.http.post("/requests", json=request_body())
            if r.status_code != 201:
                self.errors[f"POST /requests {r.status_code}"] += 1
                return None
            path = f"/requests/{r.json()['request_id']}/referrals"
            r = await self.http.post(path, json={"agency_id": agency})
            if r.status_code != 202:
                self.errors[f"POST /referrals {r.status_code}"] += 1
                return None
            return r.json()["referral_id"], sent, perf_counter()
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return None

    async def drain(self, ids: list[str], timeout: float) -> float:
        """Seconds until every id was received (or the timeout passed)."""
        start = perf_counter()
        missing = [i for i in ids if i not in self.received]
        while missing and perf_counter() - start < timeout:
            await asyncio.sleep(0.05)
            missing = [i for i in missing if i not in self.received]
        return perf_counter() - start


async def sustained(rig: Rig, duration: float, drain_timeout: float) -> dict[str, Any]:
    """WORKERS closed-loop HTTP workers for `duration` s; throughput = offers received in window."""
    accepted: list[str] = []
    start = perf_counter()
    end = start + duration

    async def worker(n: int) -> None:
        i = n
        while perf_counter() < end:
            done = await rig.refer(AGENCIES[i % len(AGENCIES)])
            if done:
                accepted.append(done[0])
            i += WORKERS

    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(WORKERS))), duration + 90)
    window = [i for i in accepted if start <= rig.received.get(i, float("inf")) <= end]
    in_flight = len(accepted) - len(window)  # started in the window, offer not yet there at end
    drain_s = await rig.drain(accepted, drain_timeout)
    lost = sum(1 for i in accepted if i not in rig.received)
    return {
        "duration_s": duration,
        "accepted": len(accepted),
        "received_in_window": len(window),
        "referrals_s": len(window) / duration,
        "in_flight_at_end": in_flight,
        "drain_s": round(drain_s, 3),
        "not_received_after_drain": lost,
        "errors": dict(rig.errors),
    }


async def latency(rig: Rig, rate: float, duration: float, drain_timeout: float) -> dict[str, Any]:
    """Open loop: launch referral i at start + i/rate no matter how slow earlier ones are."""
    rig.errors.clear()
    total = int(rate * duration)
    start = perf_counter()
    tasks = []
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / rate - perf_counter()))
        tasks.append(asyncio.create_task(rig.refer(AGENCIES[i % len(AGENCIES)])))
    done = [d for d in await asyncio.wait_for(asyncio.gather(*tasks), 120) if d]
    await rig.drain([d[0] for d in done], drain_timeout)
    ms = [(rig.received[rid] - sent) * 1000 for rid, sent, _ in done if rid in rig.received]
    http_ms = [(answered - sent) * 1000 for _, sent, answered in done]
    figures: dict[str, float] = {}
    if ms:
        figures = {f"p{q}_ms": pct(ms, q) for q in (50, 90, 99)} | {"max_ms": max(ms)}
    if http_ms:
        figures |= {"http_p50_ms": pct(http_ms, 50), "http_p99_ms": pct(http_ms, 99)}
    return {
        "rate_s": rate,
        "duration_s": duration,
        "sent": total,
        "accepted": len(done),
        "received": len(ms),
        "errors": dict(rig.errors),
        **figures,
    }


async def measure(system: LocalSystem, args: argparse.Namespace) -> dict[str, Any]:
    raw = await asyncio.wait_for(
        raw_baseline(
            system.nats_url,
            args.raw_messages,
            system.nats_options,
            system.settings.stream_replicas or 1,
        ),
        180,
    )
    print(f"raw: {raw}", flush=True)
    rig = Rig(system)
    try:
        await asyncio.wait_for(rig.start(), 30)
        sus = await sustained(rig, args.duration, args.drain_timeout)
        print(f"sustained: {sus}", flush=True)
        lat = await latency(rig, args.rate, args.latency_duration, args.drain_timeout)
        print(f"latency: {lat}", flush=True)
        consumers = await asyncio.wait_for(rig.consumer_state(), 10)
    finally:
        await rig.close()
    print(f"agency consumers at the end: {consumers}", flush=True)
    return {
        "raw": raw,
        "sustained": sus,
        "latency": lat,
        "agency_consumers_at_end": consumers,
        "adapter_restarts": rig.adapter_errors,
    }


def report(r: dict[str, Any]) -> str:
    m, c, raw, sus, lat = r["machine"], r["code"], r["raw"], r["sustained"], r["latency"]
    ratio = raw["publish_msg_s"] / sus["referrals_s"] if sus["referrals_s"] else float("inf")
    r["overhead_ratio"] = ratio
    ms = " ".join(
        f"{k[:-3]} {lat[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms") if k in lat
    )
    ms = f"{ms} ms" if ms else "no offer received"
    return "\n".join(
        [
            "== Wegweiser pipeline benchmark ==",
            f"machine        {m['cpu']}, {m['cpu_count']} CPUs, {m['ram_gib']} GiB RAM, "
            f"load avg {m['loadavg_1_5_15']} at start, {r['loadavg_end']} at end",
            f"software       Python {m['python']}, {m['nats_server']}, "
            f"JetStream sync_interval={r['sync_interval']}",
            f"code           {c['commit']}, uncommitted: {', '.join(c['changed_files']) or '-'}",
            f"               max_ack_pending {c['max_ack_pending']}",
            f"raw JetStream  publish {raw['publish_msg_s']:,.0f} msg/s (256 in flight), "
            f"consume+ack {raw['consume_msg_s']:,.0f} msg/s ({raw['messages']:,} x 512 B)",
            f"pipeline       {sus['referrals_s']:,.1f} referrals/s over {sus['duration_s']:g} s "
            f"({WORKERS} HTTP workers, {sus['received_in_window']} offers in window, "
            f"{sus['in_flight_at_end']} in flight at end, drained in {sus['drain_s']:.2f} s, "
            f"{sus['not_received_after_drain']} never received, errors {sus['errors'] or 0})",
            f"overhead       raw publish / pipeline = {ratio:,.0f}x",
            f"latency        at {lat['rate_s']:g}/s for {lat['duration_s']:g} s: {ms} "
            f"(sent {lat['sent']}, accepted {lat['accepted']}, received {lat['received']}, "
            f"errors {lat['errors'] or 0})",
            f"               of which HTTP (send to 202): p50 {lat.get('http_p50_ms', 0):.1f} "
            f"p99 {lat.get('http_p99_ms', 0):.1f} ms",
            f"adapters       {len(r['adapter_restarts'])} restarts of AgencyClient.deliveries() "
            f"{r['adapter_restarts'] or ''}",
        ]
    )


def run_topology(name: str, args: argparse.Namespace, instances: int = 2) -> dict[str, Any]:
    """Start a fresh system of one topology, measure it, stop it.

    single: the embedded default (one nats-server, one process per service, SQLite).
    cluster: three nats-servers (stream and consumers at 3 replicas), `instances` instances of
    every service, PostgreSQL (a fresh database per service, dropped afterwards).
    """
    extra: dict[str, Any] = {}
    prefix = f"wwbench_{os.getpid()}_"
    if name == "cluster":
        urls = service_databases(args.postgres, SERVICES, prefix=prefix)
        extra = {"nats_cluster_size": 3, "instances": instances}
        extra |= {f"{service}_db_url": url for service, url in urls.items()}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wegweiser-bench-") as tmp:
        settings = Settings.on_free_ports(data_dir=Path(tmp), **extra)
        out["topology"] = {
            "name": name,
            "nats_nodes": settings.nats_cluster_size,
            "replicas": settings.stream_replicas or 1,
            "instances_per_service": settings.instances,
            "store": "postgresql" if name == "cluster" else "sqlite",
        }
        out["sync_interval"] = settings.nats_sync_interval
        print(f"JetStream sync_interval = {settings.nats_sync_interval} (shipped default)")
        system = LocalSystem(settings, extra_env={"WEGWEISER_LOG_LEVEL": "WARNING"})
        try:
            if not system.start(wait=120):
                logs = {q.name: q.read_text()[-2000:] for q in (Path(tmp) / "logs").glob("*")}
                raise SystemExit(f"system did not start: {logs}")
            out.update(asyncio.run(measure(system, args)))
        finally:
            system.stop()
            if name == "cluster":
                drop_service_databases(args.postgres, SERVICES, prefix)
    return out


def comparison(runs: dict[str, dict[str, Any]]) -> str:
    """One table: each topology's throughput and latency side by side."""
    rows = ["figure                          " + "".join(f"{n:>22}" for n in runs)]

    def cell(r: dict[str, Any], key: str) -> str:
        lat, sus = r["latency"], r["sustained"]
        values = {
            "referrals/s sustained": f"{sus['referrals_s']:,.1f}",
            "latency p50 ms": f"{lat.get('p50_ms', 0):,.0f}",
            "latency p99 ms": f"{lat.get('p99_ms', 0):,.0f}",
            "raw publish msg/s": f"{r['raw']['publish_msg_s']:,.0f}",
            "lost (never received)": f"{sus['not_received_after_drain']}",
        }
        return values[key]

    for key in (
        "referrals/s sustained",
        "latency p50 ms",
        "latency p99 ms",
        "raw publish msg/s",
        "lost (never received)",
    ):
        rows.append(f"{key:<32}" + "".join(f"{cell(r, key):>22}" for r in runs.values()))
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--duration", type=float, default=60.0, help="sustained phase, seconds")
    p.add_argument("--rate", type=float, default=50.0, help="latency phase, referrals/s")
    p.add_argument("--latency-duration", type=float, default=30.0, help="latency phase, seconds")
    p.add_argument("--raw-messages", type=int, default=20_000)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    p.add_argument("--quick", action="store_true", help="5 s phases, 2,000 raw messages")
    p.add_argument(
        "--topology",
        choices=["single", "cluster", "both"],
        default="single",
        help="single node with SQLite (default), the 3-node cluster with PostgreSQL, or both",
    )
    p.add_argument(
        "--postgres",
        default=os.environ.get(
            "WEGWEISER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL server for the cluster topology",
    )
    p.add_argument(
        "--instances",
        default="2",
        help="instances of every service in the cluster topology; several (1,2,4) run one "
        "cluster after another and put them in one table",
    )
    args = p.parse_args()
    # the in-process agency adapters log through structlog; keep only errors
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    if args.quick:
        args.duration, args.latency_duration, args.raw_messages = 5.0, 5.0, 2_000
        args.drain_timeout = 30.0
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "args": vars(args),
        "machine": machine(),
        "code": code_under_test(),
    }
    topologies = ["single", "cluster"] if args.topology == "both" else [args.topology]
    counts = [int(n) for n in args.instances.split(",")]
    runs = {}
    for topology_name in topologies:
        for count in counts if topology_name == "cluster" else [1]:
            label = topology_name if topology_name == "single" else f"cluster x{count}"
            print(f"=== {label} ===", flush=True)
            runs[label] = run_topology(topology_name, args, count)
    result.update(next(iter(runs.values())))
    if len(runs) > 1:
        result["topologies"] = runs
    result["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = (
        report(result)
        if len(runs) == 1
        else "\n\n".join(f"--- {name} ---\n{report({**result, **r})}" for name, r in runs.items())
        + "\n\n"
        + comparison(runs)
    )
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({**result, "figures": text}, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
