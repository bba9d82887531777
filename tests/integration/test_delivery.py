"""Outbox, inbox and the consumer edge against a real nats-server and both databases."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from contextlib import aclosing

import nats
from sqlmodel import Field, Session, SQLModel, func, select

from schemas import subjects
from schemas.envelope import Envelope, new_event
from schemas.events import ReferralCancellationRequested
from tests.support.consumers import handle_one, stored_messages
from wegweiser.platform import topology
from wegweiser.platform.consumer import CRASH_DELIVERIES, ConsumerEdge, Delivery, Unprocessable
from wegweiser.platform.db import Database
from wegweiser.platform.inbox import InboxRow
from wegweiser.platform.outbox import OutboxRow, Relay, pending_count, stage
from wegweiser.platform.pull import Pull
from wegweiser.platform.topology import ConsumerSpec


class Effect(SQLModel, table=True):
    """A row a test handler writes, to count effects."""

    __tablename__ = "test_effects"
    id: int | None = Field(default=None, primary_key=True)
    event_id: str


def cancellation(n: int = 1) -> Envelope[ReferralCancellationRequested]:
    data = ReferralCancellationRequested(referral_id=f"r{n}", office_id="o1", reason="need-met")
    return new_event(data, source="/wegweiser/intake", subject=f"r{n}")


def stage_all(session: Session, events: Sequence[Envelope[ReferralCancellationRequested]]) -> None:
    for event in events:
        stage(session, subjects.CANCELLATION_REQUESTED, event)


async def setup(nats_url: str, db_url: str, max_deliver: int = 3):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await topology.ensure_stream(js)
    db = Database(db_url, [OutboxRow, InboxRow, Effect])
    db.migrate()
    spec = ConsumerSpec("test-consumer", "test", (subjects.CANCELLATION_REQUESTED,), 2.0)
    await topology.ensure_consumers(js, [spec], max_deliver)
    sub = await js.pull_subscribe_bind("test-consumer", subjects.STREAM)
    edge = ConsumerEdge("test", db.run, js, max_deliver)
    return nc, js, db, sub, edge


async def drain(nc, sub, edge, handler, deadline: float = 30.0) -> None:
    """Handle at least one message, then until the consumer has nothing pending or unacked:
    through the one pull loop (`Pull`, as an agency's consumer is read, the consumer being
    unowned) and the edge, batch by batch, each reported in progress while it is handled."""
    pull = Pull(nc, nc.jetstream(), "test-consumer", owned=False)
    handled = 0

    async def consume() -> None:
        nonlocal handled
        async with aclosing(pull.batches()) as batches:
            async for msgs in batches:
                for msg in msgs:
                    await handle_one(
                        edge, msg, "test-consumer", ReferralCancellationRequested, handler
                    )
                    handled += 1
                pull.done(msgs)

    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    consuming = asyncio.create_task(consume())
    try:
        while loop.time() < end and not consuming.done():
            await asyncio.sleep(0.1)
            info = await sub.consumer_info()
            if handled and info.num_pending == 0 and info.num_ack_pending == 0:
                return
    finally:
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
    raise AssertionError("consumer not drained in time")


def count(db: Database, model) -> int:
    return db.run_sync(lambda s: s.exec(select(func.count()).select_from(model)).one())


async def stream_messages(js, subject: str) -> list[dict]:
    return [json.loads(msg.data) for msg in await stored_messages(js, subject)]


async def test_the_relay_publishes_each_staged_event_once_even_when_run_twice(
    nats_server, database_url
):
    nc, js, db, _, _ = await setup(nats_server.url, database_url)
    events = [cancellation(i) for i in range(50)]
    db.run_sync(lambda s: stage_all(s, events))
    relay = Relay(db.run, js, batch=16)
    assert await relay.publish_pending() == 16
    # a crash after publishing but before deleting: the same rows are published again
    db.run_sync(lambda s: stage_all(s, events[:16]))
    while await relay.publish_pending():
        pass
    assert count(db, OutboxRow) == 0
    seen = await stream_messages(js, subjects.CANCELLATION_REQUESTED)
    assert sorted(m["id"] for m in seen) == sorted(e.id for e in events)
    await nc.close()


async def test_a_handler_fault_is_retried_and_the_effect_happens_once(nats_server, database_url):
    nc, js, db, sub, edge = await setup(nats_server.url, database_url)
    faults = {"left": 2}

    def flaky(session: Session, delivery: Delivery) -> None:
        session.add(Effect(event_id=delivery.event.id))
        session.flush()
        if faults["left"]:
            faults["left"] -= 1
            raise ConnectionError("database blinked")

    event = cancellation()
    await js.publish(subjects.CANCELLATION_REQUESTED, event.model_dump_json().encode())
    await drain(nc, sub, edge, flaky)
    assert faults["left"] == 0
    assert count(db, Effect) == 1
    assert await stream_messages(js, "ww.deadletter.>") == []
    await nc.close()


async def test_a_republished_event_outside_the_duplicate_window_is_processed_once(
    nats_server, database_url
):
    nc, js, db, sub, edge = await setup(nats_server.url, database_url)

    def effect(session: Session, delivery: Delivery) -> None:
        session.add(Effect(event_id=delivery.event.id))

    event = cancellation()
    body = event.model_dump_json().encode()
    await js.publish(subjects.CANCELLATION_REQUESTED, body, headers={"Nats-Msg-Id": event.id})
    await js.publish(subjects.CANCELLATION_REQUESTED, body, headers={"Nats-Msg-Id": event.id})
    await js.publish(subjects.CANCELLATION_REQUESTED, body, headers={"Nats-Msg-Id": "other-id"})
    info = await js.stream_info(subjects.STREAM)
    assert info.state.messages == 2  # the stream dropped the exact duplicate
    await drain(nc, sub, edge, effect)
    assert count(db, Effect) == 1  # the inbox dropped the one the stream could not
    assert count(db, InboxRow) == 1
    await nc.close()


async def test_a_malformed_event_is_dead_lettered_with_its_reason_and_the_next_is_served(
    nats_server, database_url
):
    nc, js, db, sub, edge = await setup(nats_server.url, database_url)

    def effect(session: Session, delivery: Delivery) -> None:
        session.add(Effect(event_id=delivery.event.id))

    bad = json.loads(cancellation().model_dump_json())
    del bad["data"]["reason"]
    await js.publish(subjects.CANCELLATION_REQUESTED, json.dumps(bad).encode())
    await js.publish(subjects.CANCELLATION_REQUESTED, b"\xff not json")
    await js.publish(subjects.CANCELLATION_REQUESTED, cancellation(2).model_dump_json().encode())
    await drain(nc, sub, edge, effect)
    letters = await stream_messages(js, "ww.deadletter.test")
    reasons = [letter["data"]["reason"] for letter in letters]
    assert len(reasons) == 2
    assert "data.reason: Field required" in reasons[0]
    assert "Invalid JSON" in reasons[1]
    assert count(db, Effect) == 1 and count(db, InboxRow) == 1
    await nc.close()


async def test_a_message_that_keeps_failing_ends_in_the_dead_letter_after_max_deliveries(
    nats_server, database_url
):
    nc, js, db, sub, edge = await setup(nats_server.url, database_url, max_deliver=3)

    def broken(session: Session, delivery: Delivery) -> None:
        session.add(Effect(event_id=delivery.event.id))
        session.flush()
        raise RuntimeError("bug in handler")

    def refuses(_session: Session, _delivery: Delivery) -> None:
        raise Unprocessable("referral r9 does not exist")

    await js.publish(subjects.CANCELLATION_REQUESTED, cancellation().model_dump_json().encode())
    await drain(nc, sub, edge, broken)
    await js.publish(subjects.CANCELLATION_REQUESTED, cancellation(9).model_dump_json().encode())
    await drain(nc, sub, edge, refuses)
    letters = await stream_messages(js, "ww.deadletter.test")
    assert [le["data"]["deliveries"] for le in letters] == [3, 1]
    assert (
        "gave up after 3 attempts: RuntimeError('bug in handler')" in letters[0]["data"]["reason"]
    )
    assert letters[1]["data"]["reason"] == "referral r9 does not exist"
    assert count(db, Effect) == 0 and count(db, InboxRow) == 0  # nothing half-written
    assert db.run_sync(pending_count) == 0
    await nc.close()


async def test_a_handler_slower_than_ack_wait_keeps_its_message_to_itself(
    nats_server, database_url
):
    """The edge reports the message in progress while the handler works: with ack_wait 2 s, a
    3 s handler is not redelivered to a second puller of the same consumer meanwhile."""
    nc, js, db, sub, edge = await setup(nats_server.url, database_url)
    other = await js.pull_subscribe_bind("test-consumer", subjects.STREAM)

    def slow(session: Session, delivery: Delivery) -> None:
        time.sleep(3.0)  # longer than the consumer's ack_wait
        session.add(Effect(event_id=delivery.event.id))

    await js.publish(subjects.CANCELLATION_REQUESTED, cancellation().model_dump_json().encode())
    [msg] = await sub.fetch(1, timeout=5)
    handling = asyncio.create_task(
        handle_one(edge, msg, "test-consumer", ReferralCancellationRequested, slow)
    )
    try:
        stolen = await other.fetch(1, timeout=3.5)
    except (nats.errors.TimeoutError, TimeoutError):
        stolen = []
    await handling
    assert stolen == []
    assert msg.metadata.num_delivered == 1 and count(db, Effect) == 1
    info = await sub.consumer_info()
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
    await nc.close()


async def test_a_message_delivered_again_and_again_without_an_ack_is_dead_lettered_untried(
    nats_server, database_url
):
    """A message whose handling ends the process comes back without ever being acked (the
    attempts the edge counts never reach their end): after CRASH_DELIVERIES deliveries it is
    dead-lettered, with the reason, before it is tried once more."""
    nc, js, db, sub, edge = await setup(nats_server.url, database_url, max_deliver=50)
    tried = []

    def handler(_session: Session, delivery: Delivery) -> None:
        tried.append(delivery.event.id)

    await js.publish(subjects.CANCELLATION_REQUESTED, cancellation().model_dump_json().encode())
    for _ in range(CRASH_DELIVERIES):  # each delivery "dies" before an ack: it comes again
        [msg] = await sub.fetch(1, timeout=5)
        await msg.nak()
    [msg] = await sub.fetch(1, timeout=5)
    assert msg.metadata.num_delivered == CRASH_DELIVERIES + 1
    await handle_one(edge, msg, "test-consumer", ReferralCancellationRequested, handler)
    assert tried == [] and count(db, Effect) == 0
    [letter] = await stream_messages(js, "ww.deadletter.test")
    assert (
        f"delivered {CRASH_DELIVERIES + 1} times and never acknowledged"
        in (letter["data"]["reason"])
    )
    await nc.close()
