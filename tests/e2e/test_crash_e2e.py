"""Kill -9 a process while 200 referrals are in flight: none lost, none doubled."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import httpx
import pytest
import sqlalchemy

from tests.support.system import (
    AGENCY,
    agency_client,
    office_client,
    request_body,
    stream_events,
)
from wegweiser.supervisor import LocalSystem

pytestmark = pytest.mark.slow
N = 200


class Agency:
    """A partner that acknowledges, accepts and completes every offer it receives."""

    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.offers: dict[str, set[str]] = collections.defaultdict(set)
        self.task: asyncio.Task[None] | None = None
        self.busy = asyncio.Event()

    async def run(self) -> None:
        async with await agency_client(self.system) as client:
            async for delivery in client.deliveries():
                if delivery.kind == "offered":
                    rid = delivery.event.data.referral_id
                    self.offers[rid].add(delivery.event.id)
                    if len(self.offers) >= 20:
                        self.busy.set()
                    for action in ("acknowledge", "accept", "complete"):
                        await client.answer(
                            rid,
                            action,
                            answer_id=f"{delivery.event.id}-{action}",
                            outcome="provided" if action == "complete" else None,
                        )
                await delivery.ack()


async def send_referral(http: httpx.AsyncClient, gate: asyncio.Semaphore) -> str:
    """What a counsellor's client does: retry while intake says the network is unavailable."""
    async with gate:
        request = await _post(http, "/requests", request_body(), 201)
        referral = await _post(
            http, f"/requests/{request['request_id']}/referrals", {"agency_id": AGENCY}, 202
        )
        return str(referral["referral_id"])


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, Any], expected: int) -> Any:
    for _ in range(200):
        response = await http.post(path, json=body)
        if response.status_code == expected:
            return response.json()
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} kept failing")


async def workload(system: LocalSystem, crash) -> dict[str, Any]:
    agency = Agency(system)
    agency.task = asyncio.create_task(agency.run())
    gate = asyncio.Semaphore(16)
    async with office_client(system, timeout=30) as http:
        sends = [asyncio.create_task(send_referral(http, gate)) for _ in range(N)]
        await asyncio.wait_for(agency.busy.wait(), 60)
        in_flight = N - len(agency.offers)
        await asyncio.to_thread(crash)
        referral_ids = await asyncio.gather(*sends)
        completed = await _until_all_completed(system, referral_ids)
    agency.task.cancel()
    await asyncio.gather(agency.task, return_exceptions=True)
    return {"ids": referral_ids, "agency": agency, "completed": completed, "in_flight": in_flight}


async def _until_all_completed(system: LocalSystem, ids: list[str], timeout: float = 180) -> int:
    engine = sqlalchemy.create_engine(f"sqlite:///{system.data_dir / 'intake.db'}")
    deadline = asyncio.get_running_loop().time() + timeout
    done = 0
    try:
        while asyncio.get_running_loop().time() < deadline:
            with engine.connect() as conn:
                done = conn.exec_driver_sql(
                    "select count(*) from referral_views where status = 'completed'"
                ).scalar_one()
            if done >= len(ids):
                break
            await asyncio.sleep(0.5)
    finally:
        engine.dispose()
    return int(done)


async def check_exactly_once(system: LocalSystem, result: dict[str, Any]) -> None:
    ids = set(result["ids"])
    assert len(ids) == N
    assert result["completed"] == N, f"only {result['completed']} of {N} completed"
    events = await stream_events(system, "ww.referral.>", idle=1.0)
    per_kind = collections.Counter(
        (e["data"]["referral_id"], e["nats_subject"].rsplit(".", 1)[1]) for e in events
    )
    for rid in ids:
        for kind in ("offered", "received", "accepted", "completed"):
            assert per_kind[(rid, kind)] == 1, f"{rid} {kind} x{per_kind[(rid, kind)]}"
    assert not [e for e in events if e["nats_subject"].endswith(".refused")]
    offers = result["agency"].offers
    assert set(offers) == ids
    assert all(len(event_ids) == 1 for event_ids in offers.values())
    engine = sqlalchemy.create_engine(f"sqlite:///{system.data_dir / 'referral.db'}")
    with engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.exec_driver_sql("select status, count(*) from referrals group by status").all()
        )
    engine.dispose()
    assert states == {"completed": N}
    print(
        f"\n{N} referrals, {result['in_flight']} in flight at the crash: "
        f"{result['completed']} completed, each offered, received, accepted, completed once"
    )


async def test_killing_the_referral_service_mid_flight_loses_and_doubles_nothing(fresh_system):
    system = fresh_system

    def crash() -> None:
        system.restart("referral", kill=True)

    result = await workload(system, crash)
    await check_exactly_once(system, result)


async def test_killing_the_nats_server_mid_flight_loses_and_doubles_nothing(fresh_system):
    system = fresh_system

    def crash() -> None:
        assert system.nats is not None
        system.nats.kill()
        system.nats.start()

    result = await workload(system, crash)
    await check_exactly_once(system, result)
