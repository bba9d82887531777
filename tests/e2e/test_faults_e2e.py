"""Fault injection: 500 referrals sent over 25 s while, in turn, a nats-server node is killed and
restarted, one instance of every service is killed with SIGKILL, and (on PostgreSQL) every
database connection is cut for a few seconds. Afterwards every referral is where it should
be, no agency saw an offer twice, and the audit log has no gap.

Run on the production topology (three nats-servers as one JetStream cluster, stream and
consumers at three replicas, two instances of every service, PostgreSQL) and on the embedded
default (one nats-server, one instance each, SQLite)."""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
import sqlalchemy

from schemas import subjects
from services.audit.ledger import Ledger
from tests.support.system import (
    AGENCY,
    agency_client,
    office_client,
    request_body,
    start_system,
    stream_events,
)
from wegweiser.platform import topology
from wegweiser.platform.db import normalise_url
from wegweiser.platform.nats_server import EmbeddedCluster, servers
from wegweiser.platform.postgres import drop_service_databases, service_databases
from wegweiser.registry import NAMES as SERVICES
from wegweiser.supervisor import LocalSystem

pytestmark = pytest.mark.slow
N = 500
RATE = 20
"""Referrals sent per second: spread over the faults, so that a consumer has work waiting
when its instance is killed (sent all at once, one node had finished before the kills)."""
PG = os.environ.get("WEGWEISER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class Agency:
    """A partner that acknowledges every offer, reconnecting whenever NATS drops it."""

    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.offers: dict[str, set[str]] = collections.defaultdict(set)
        self.reconnects = 0

    async def run(self) -> None:
        while True:
            try:
                async with await agency_client(self.system) as client:
                    async for delivery in client.deliveries():
                        if delivery.kind == "offered":
                            rid = delivery.event.data.referral_id
                            self.offers[rid].add(delivery.event.id)
                            await client.answer(
                                rid, "acknowledge", answer_id=f"{delivery.event.id}-ack"
                            )
                        await delivery.ack()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a dropped connection: come back, as an adapter does
                self.reconnects += 1
                await asyncio.sleep(1)


async def _post(http: httpx.AsyncClient, path: str, body: Any, ok: set[int]) -> Any:
    """A counsellor's client: retry while intake is unreachable or says the network is."""
    for _ in range(300):
        try:
            response = await http.post(path, json=body)
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if response.status_code in ok:
            return response.json()
        assert response.status_code in {500, 502, 503}, response.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} kept failing")


async def send_referral(http: httpx.AsyncClient, gate: asyncio.Semaphore, delay: float) -> str:
    await asyncio.sleep(delay)
    async with gate:
        request = await _post(http, "/requests", request_body(), {201})
        path = f"/requests/{request['request_id']}/referrals"
        referral = await _post(http, path, {"agency_id": AGENCY}, {200, 202})
        return str(referral["referral_id"])


def count(system: LocalSystem, service: str, sql: str) -> Any:
    engine = sqlalchemy.create_engine(normalise_url(system.settings.db_url(service)))
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).all()
    finally:
        engine.dispose()


async def until_all_received(system: LocalSystem, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(
            count, system, "intake", "select count(*) from referral_views where status='received'"
        )
        done = int(rows[0][0])
        if done >= N:
            break
        await asyncio.sleep(1)
    return done


def faults(
    system: LocalSystem, cut_postgres: Callable[[], int] | None, offered: Callable[[], int]
) -> list[str]:
    """Each fault in turn, a few seconds apart; what was done."""
    time.sleep(2)
    done = [f"{N - offered()} of {N} referrals not yet offered when the faults began"]
    nats = system.nats
    node = nats.nodes[1] if isinstance(nats, EmbeddedCluster) else nats
    assert node is not None
    node.kill()
    done.append(f"killed nats-server {node.name}")
    time.sleep(3)
    node.start()
    if isinstance(nats, EmbeddedCluster):
        nats.wait_healthy()
    done.append(f"restarted {node.name}")
    time.sleep(2)
    pauses = []
    for name in SERVICES:
        key = name if system.settings.instances == 1 else f"{name}-2"
        pause = pause_after(system, name, functools.partial(system.restart, key, kill=True))
        pauses.append(f"{key} {pause}")
    done.append(
        f"SIGKILLed and restarted {', '.join(SERVICES)} (one instance each; each one's "
        f"consumers moved on again after: {', '.join(pauses)})"
    )
    if cut_postgres is not None:
        time.sleep(2)
        cut = 0
        end = time.monotonic() + 4
        while time.monotonic() < end:
            cut += cut_postgres()
            time.sleep(0.3)
        done.append(f"cut {cut} PostgreSQL connections over 4 s")
    return done


def pause_after(system: LocalSystem, service: str, kill: Callable[[], None]) -> str:
    """How long after `kill` the service's consumers stood still: for each of them that had
    work waiting, the time until it acknowledged a message again; the longest is the
    failover pause (measured and printed, not asserted). A partition that the instance
    left alive owns moves on at once; one that the killed instance owned waits for another
    owner to be pinned and for what the dead one held to come again (ack_wait)."""
    durables = [spec.durable for spec in topology.consumers(service)]

    async def measure() -> str:
        nc = await nats.connect(servers(system.nats_url), **system.nats_options)
        js = nc.jetstream()
        try:
            before = {d: await js.consumer_info(subjects.STREAM, d) for d in durables}
            waiting = {d for d, i in before.items() if i.num_pending + i.num_ack_pending > 0}
            started = time.monotonic()
            kill()
            if not waiting:
                return "n/a (nothing waiting)"
            stood: dict[str, float] = {}
            while waiting and time.monotonic() - started < 20:
                for durable in sorted(waiting):
                    now = await js.consumer_info(subjects.STREAM, durable)
                    if now.ack_floor.stream_seq > before[durable].ack_floor.stream_seq:
                        stood[durable] = time.monotonic() - started
                        waiting.discard(durable)
                await asyncio.sleep(0.02)
            if waiting:
                return f"over 20 s ({', '.join(sorted(waiting))})"
            longest = max(stood, key=stood.__getitem__)
            return f"{stood[longest]:.1f} s ({longest}, the longest of {len(stood)})"
        finally:
            await nc.close()

    return asyncio.run(measure())


@pytest.fixture
def postgres_databases() -> Iterator[dict[str, str]]:
    """One fresh database per service on the test server, dropped afterwards."""
    prefix = f"ww_{uuid.uuid4().hex[:8]}_"
    try:
        urls = service_databases(PG, SERVICES, prefix=prefix)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG}: {exc}")
    yield urls
    drop_service_databases(PG, SERVICES, prefix)


def cutter(prefix: str) -> Callable[[], int]:
    def cut() -> int:
        with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as conn:
            rows = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname like %s and pid <> pg_backend_pid()",
                (prefix + "%",),
            ).fetchall()
        return len(rows)

    return cut


async def run_workload(system: LocalSystem, cut: Callable[[], int] | None) -> None:
    agency = Agency(system)
    listening = asyncio.create_task(agency.run())
    gate = asyncio.Semaphore(16)
    started = time.monotonic()
    try:
        async with office_client(system, timeout=30) as http:
            sends = [asyncio.create_task(send_referral(http, gate, n / RATE)) for n in range(N)]
            injected = await asyncio.to_thread(faults, system, cut, lambda: len(agency.offers))
            ids = await asyncio.gather(*sends)
            received = await until_all_received(system)
    finally:  # the agency stops with the workload, failed or not, before the system does
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    elapsed = time.monotonic() - started

    assert len(set(ids)) == N
    assert received == N, f"only {received} of {N} referrals reached 'received'"
    states = dict(count(system, "referral", "select status, count(*) from referrals group by 1"))
    assert states == {"received": N}, states
    assert set(agency.offers) == set(ids)
    doubled = {rid: ev for rid, ev in agency.offers.items() if len(ev) != 1}
    assert not doubled, f"offers seen twice: {list(doubled.items())[:3]}"
    events = await stream_events(system, "ww.referral.>", idle=1.0)
    per_kind = collections.Counter(
        (e["data"]["referral_id"], e["nats_subject"].rsplit(".", 1)[1]) for e in events
    )
    for rid in ids:
        assert per_kind[(rid, "offered")] == 1 and per_kind[(rid, "received")] == 1, rid

    entries = await audit_entries_settled(system, expected_offers=N)
    ledger = Ledger()
    for i, (index, raw) in enumerate(entries, start=1):
        entry = json.loads(raw)
        assert index == i and entry["index"] == i, f"gap at entry {i}"
        assert entry["prev_root"] == ledger.root(), f"entry {i} does not chain"
        ledger.accept(bytes(raw))
    offered = collections.Counter(
        json.loads(raw)["data"]["referral_id"]
        for _, raw in entries
        if json.loads(raw)["type"].startswith("de.wegweiser.referral.offered")
    )
    assert set(offered) == set(ids) and set(offered.values()) == {1}
    print(
        f"\n{N} referrals in {elapsed:.0f} s: "
        + "; ".join(injected)
        + f". Afterwards: {received} received, each offered once to the agency "
        f"(adapter reconnected {agency.reconnects}x), audit log {len(entries)} entries "
        "without a gap."
    )


async def audit_entries_settled(system: LocalSystem, expected_offers: int) -> list[Any]:
    """The audit log once it recorded every offer and stopped growing."""
    deadline = time.monotonic() + 120
    last: list[Any] = []
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(
            count, system, "audit", 'select "index", entry from audit_entries order by 1'
        )
        offers = sum(b'"de.wegweiser.referral.offered' in bytes(r[1]) for r in rows)
        if offers >= expected_offers and len(rows) == len(last):
            return rows
        last = rows
        await asyncio.sleep(2)
    return last


async def test_500_referrals_survive_faults_on_the_cluster_with_postgresql(
    tmp_path: Path, postgres_databases: dict[str, str]
) -> None:
    urls = postgres_databases
    system = start_system(
        tmp_path,
        {
            "nats_cluster_size": 3,
            "instances": 2,
            **{f"{service}_db_url": url for service, url in urls.items()},
        },
        wait=120,
        WEGWEISER_LOG_LEVEL="WARNING",
    )
    prefix = make_prefix(urls)
    try:
        await run_workload(system, cutter(prefix))
    finally:
        system.stop()


async def test_500_referrals_survive_faults_on_one_node_with_sqlite(tmp_path: Path) -> None:
    system = start_system(tmp_path, wait=120, WEGWEISER_LOG_LEVEL="WARNING")
    try:
        await run_workload(system, None)
    finally:
        system.stop()


def make_prefix(urls: dict[str, str]) -> str:
    name = sqlalchemy.engine.make_url(urls["intake"]).database or ""
    return name.removesuffix("intake")
