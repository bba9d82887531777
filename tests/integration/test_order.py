"""Proof of order (issue 19): many referrals' events, interleaved, through partitioned consumers
owned by several instances that crash and come back, with handler faults and redeliveries.
Every referral's events must be applied exactly once, in the order they entered the stream.

The instances run the services' own consumer loop (`pull.own` with `ConsumerEdge`) against a
real nats-server; a crash cancels an instance in the middle of its work (what it held and had
not acked comes again, after ack_wait, to whichever instance the server pins next) and the
instance starts again a little later.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import defaultdict

import nats
import pytest
from sqlmodel import Field, Session, SQLModel, col, select

from schemas import subjects
from wegweiser.platform import topology
from wegweiser.platform.consumer import ConsumerEdge, raw
from wegweiser.platform.db import Database
from wegweiser.platform.inbox import InboxRow
from wegweiser.platform.outbox import OutboxRow
from wegweiser.platform.ownership import own
from wegweiser.platform.topology import ConsumerSpec

SUBJECT = "ww.intake.order-test"
INSTANCES = 3


class Applied(SQLModel, table=True):
    """One event as the handler applied it, in the order of application (`id`)."""

    __tablename__ = "test_applied"
    id: int | None = Field(default=None, primary_key=True)
    referral: str
    step: int
    instance: int


def partitions(batch: int) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            "order-test" if p == 0 else f"order-test-p{p}",
            "test",
            (SUBJECT,),
            ack_wait=1.0,
            max_ack_pending=2 * batch,  # an owner holds more than it handles in one batch
            batch=batch,
            owner_timeout=1.0,
            group="order-test",
            partition=p,
            partitions=3,
        )
        for p in range(3)
    ]


def interleaved(rng: random.Random, referrals: int, steps: int) -> list[tuple[str, int]]:
    """Each referral's steps in order, the referrals shuffled among each other."""
    left = {f"r{n}": 0 for n in range(referrals)}
    out = []
    while left:
        referral = rng.choice(sorted(left))
        out.append((referral, left[referral]))
        left[referral] += 1
        if left[referral] == steps:
            del left[referral]
    return out


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("ORDER_SEEDS", "5,11").split(",")])
async def test_each_referral_is_applied_once_and_in_stream_order_through_crashes(
    nats_server, database_url, seed
):
    rng = random.Random(seed)
    referrals, steps = rng.randint(25, 40), rng.randint(3, 6)
    batch = rng.choice([4, 16, 64])
    events = interleaved(rng, referrals, steps)
    print(f"seed {seed}: {referrals} referrals x {steps} steps, batch {batch}")

    admin = await nats.connect(nats_server.url)
    js = admin.jetstream()
    await topology.ensure_stream(js)
    specs = partitions(batch)
    await topology.ensure_consumers(js, specs, max_deliver=50)
    db = Database(database_url, [OutboxRow, InboxRow, Applied])
    db.migrate()

    faults = random.Random(seed + 1)

    async def instance(which: int) -> None:
        nc = await nats.connect(nats_server.url)
        try:
            edge = ConsumerEdge("test", db.run, nc.jetstream(), max_deliver=50, heartbeat=0.25)

            def apply(session: Session, msg) -> None:
                body = json.loads(msg.data)
                if faults.random() < 0.05:
                    raise ConnectionError("database blinked")  # the batch is redone, in order
                session.add(Applied(referral=body["subject"], step=body["step"], instance=which))

            work = lambda msg: raw(msg, apply)  # noqa: E731
            await own(nc, nc.jetstream(), edge, specs, work, instance=(which, INSTANCES))
        finally:
            await nc.close()

    running = {n: asyncio.create_task(instance(n)) for n in range(1, INSTANCES + 1)}

    async def publish() -> None:
        for i, (referral, step) in enumerate(events):
            body = json.dumps({"subject": referral, "step": step}).encode()
            await js.publish(SUBJECT, body)
            if i % 20 == 0:
                await asyncio.sleep(rng.uniform(0.0, 0.2))

    async def crash_and_restart() -> int:
        crashes = 0
        for _ in range(4):
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            which = rng.randint(1, INSTANCES)
            running[which].cancel()  # mid-batch: what it held and had not acked comes again
            await asyncio.gather(running[which], return_exceptions=True)
            crashes += 1
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            running[which] = asyncio.create_task(instance(which))
        return crashes

    publishing = asyncio.create_task(publish())
    crashes = await crash_and_restart()
    await publishing

    total = len(events)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while loop.time() < deadline:
        infos = [await js.consumer_info(subjects.STREAM, s.durable) for s in specs]
        settled = all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos)
        applied = db.run_sync(lambda s: len(s.exec(select(Applied)).all()))
        if settled and applied >= total:
            break
        await asyncio.sleep(0.25)
    for task in running.values():
        task.cancel()
    await asyncio.gather(*running.values(), return_exceptions=True)
    await admin.close()

    rows = db.run_sync(lambda s: list(s.exec(select(Applied).order_by(col(Applied.id)))))
    by_referral: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_referral[row.referral].append(row.step)
    instances = {row.instance for row in rows}
    print(f"{crashes} crashes; applied {len(rows)} of {total}; by instances {sorted(instances)}")
    assert len(rows) == total  # nothing lost, nothing twice
    assert {r: s for r, s in by_referral.items() if s != list(range(steps))} == {}
    assert len(instances) > 1  # the partitions were spread over instances, not one doing all
