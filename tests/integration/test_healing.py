"""The broker watch heals what was lost, and says so: a deleted consumer comes back where its
predecessor had acknowledged up to, a deleted stream comes back (empty, loudly), a purge is
reported; and the one pull loop that services and agencies share waits out the gap, a server
restart included, and resumes without losing or repeating an acknowledged message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from schemas import subjects
from wegweiser.platform import topology
from wegweiser.platform.healer import Healer
from wegweiser.platform.nats_server import EmbeddedNats
from wegweiser.platform.pull import Pull

SPEC = topology.ConsumerSpec("healing-test", "test", ("ww.intake.>",), ack_wait=2.0)


@pytest.fixture
async def nc(server: EmbeddedNats) -> AsyncIterator[Client]:
    client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield client
    await client.close()


def healer(nc: Client, tmp_path: Path) -> Healer:
    return Healer(nc.jetstream(timeout=3), lambda: [SPEC], 5, state=tmp_path / "positions.json")


async def publish(nc: Client, *numbers: int) -> None:
    """Publish with retries, as the outbox relay does (the client may be reconnecting)."""
    for n in numbers:
        for _ in range(50):
            try:
                await nc.jetstream().publish(
                    subjects.REQUEST_RECORDED, f"event {n}".encode(), timeout=1
                )
                break
            except nats.errors.Error:
                await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"event {n} could not be published")


def reader(nc: Client) -> AsyncIterator[Msg]:
    """The consumer's messages as an agency reads them (the one pull loop, unowned)."""
    return Pull(nc, nc.jetstream(), SPEC.durable, owned=False).messages()


async def take(stream: AsyncIterator[Msg], count: int) -> list[bytes]:
    """The next `count` messages of a pull loop, each acked."""
    got = []
    for _ in range(count):
        msg = await asyncio.wait_for(anext(stream), 20)
        got.append(msg.data)
        await msg.ack_sync()
    return got


async def test_the_watch_makes_a_missing_stream_and_consumer(nc: Client, tmp_path: Path) -> None:
    with capture_logs() as logs:
        repaired = await healer(nc, tmp_path).check_once()
    assert repaired == [f"stream {subjects.STREAM}", f"consumer {SPEC.durable}"]
    assert {e["event"] for e in logs} >= {"broker.stream_missing", "broker.consumer_recreated"}
    assert await healer(nc, tmp_path).check_once() == []  # all well: nothing to do, no noise


async def test_a_deleted_consumer_comes_back_where_it_was_acknowledged(
    nc: Client, tmp_path: Path
) -> None:
    watch = healer(nc, tmp_path)
    await watch.check_once()
    await publish(nc, 1, 2, 3, 4, 5)
    js = nc.jetstream()
    loop = reader(nc)
    assert await take(loop, 3) == [b"event 1", b"event 2", b"event 3"]
    await watch.check_once()  # sees the acknowledged position
    await js.delete_consumer(subjects.STREAM, SPEC.durable)
    # a new watch (the supervisor restarted) reads the position from its state file
    with capture_logs() as logs:
        assert await healer(nc, tmp_path).check_once() == [f"consumer {SPEC.durable}"]
    (recreated,) = [e for e in logs if e["event"] == "broker.consumer_recreated"]
    assert recreated["start_sequence"] == 4
    # the same pull loop goes on: nothing acknowledged again, nothing skipped
    assert await take(loop, 2) == [b"event 4", b"event 5"]


async def test_a_deleted_stream_comes_back_empty_and_loudly(nc: Client, tmp_path: Path) -> None:
    watch = healer(nc, tmp_path)
    await watch.check_once()
    await publish(nc, 1, 2)
    await watch.check_once()
    await nc.jetstream().delete_stream(subjects.STREAM)
    with capture_logs() as logs:
        assert await watch.check_once() == [f"stream {subjects.STREAM}", f"consumer {SPEC.durable}"]
    events = {e["event"]: e for e in logs}
    assert events["broker.stream_missing"]["last_sequence_known"] == 2
    assert "broker.stream_recreated" in events
    # the recreated consumer starts at the new stream's beginning, not at the old position
    await publish(nc, 3)
    assert await take(reader(nc), 1) == [b"event 3"]


async def test_a_purge_is_reported_as_events_lost(nc: Client, tmp_path: Path) -> None:
    watch = healer(nc, tmp_path)
    await watch.check_once()
    await publish(nc, 1, 2, 3)
    await watch.check_once()
    await nc.jetstream().purge_stream(subjects.STREAM)
    with capture_logs() as logs:
        await watch.check_once()
    (purged,) = [e for e in logs if e["event"] == "broker.stream_purged"]
    assert (purged["removed_from"], purged["removed_to"]) == (1, 3)


async def test_the_pull_loop_resumes_after_the_server_restarts(
    server: EmbeddedNats, nc: Client, tmp_path: Path
) -> None:
    await healer(nc, tmp_path).check_once()
    await publish(nc, 1, 2)
    loop = reader(nc)
    assert await take(loop, 1) == [b"event 1"]
    # a clean restart (a crash may deliver an acknowledged message once more: JetStream writes
    # consumer positions behind the acks; the services' inboxes absorb that)
    server.stop()
    server.start()  # same port, same store: the stream and the consumer's position survive
    await publish(nc, 3)
    assert await take(loop, 2) == [b"event 2", b"event 3"]
