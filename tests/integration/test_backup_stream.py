"""The stream's part of a backup against real nats-servers: JetStream's snapshot holds the
stream and its consumers' positions, the tail holds what came after, and both together
rebuild the same stream on another server, each message under its sequence and id."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from schemas import subjects
from wegweiser.backup import jetstream
from wegweiser.backup.archive import Refused
from wegweiser.platform import topology
from wegweiser.platform.nats_server import EmbeddedNats

STREAM = subjects.STREAM


async def publish(js, first: int, count: int) -> None:
    for n in range(first, first + count):
        await js.publish(
            subjects.REQUEST_RECORDED, f"event {n}".encode(), headers={"Nats-Msg-Id": f"ev-{n}"}
        )


async def test_snapshot_and_tail_rebuild_the_stream_and_its_consumers_elsewhere(
    nats_server, tmp_path
):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await topology.ensure_stream(js)
    await js.add_consumer(
        STREAM,
        ConsumerConfig(durable_name="reader", ack_policy=AckPolicy.EXPLICIT, filter_subject="ww.>"),
    )
    await publish(js, 1, 30)
    reader = await js.pull_subscribe_bind("reader", STREAM)
    for msg in await reader.fetch(10, timeout=5):
        await msg.ack_sync()
    meta = await jetstream.snapshot(nc, STREAM, tmp_path / "snapshot.tar.s2")
    assert meta["state"]["last_seq"] == 30 and meta["config"]["name"] == STREAM
    await publish(js, 31, 5)
    point = await jetstream.last_sequence(js, STREAM)
    tail = await jetstream.read(js, STREAM, 31, point)
    assert [m["seq"] for m in tail] == [31, 32, 33, 34, 35]
    assert list(jetstream.ids_of(tail)) == [f"ev-{n}" for n in range(31, 36)]
    twentieth = await js.get_msg(STREAM, seq=20)
    assert await jetstream.first_since(js, STREAM, jetstream.seconds_of(twentieth.time)) <= 20
    assert (
        await jetstream.first_since(js, STREAM, jetstream.seconds_of(twentieth.time) + 3600) == 36
    )
    await nc.drain()

    elsewhere = EmbeddedNats(tmp_path / "elsewhere").start()
    try:
        nc2 = await nats.connect(elsewhere.url)
        js2 = nc2.jetstream()
        state = await jetstream.restore(nc2, meta, tmp_path / "snapshot.tar.s2", replicas=1)
        assert state["last_seq"] == 30
        assert await jetstream.republish(js2, tail) == 5
        assert await jetstream.republish(js2, tail) == 0  # within the window: no duplicate
        for n in range(1, 36):
            stored = await js2.get_msg(STREAM, seq=n)
            assert stored.data == f"event {n}".encode()
            assert (stored.headers or {}).get("Nats-Msg-Id") == f"ev-{n}"
        reader2 = await js2.pull_subscribe_bind("reader", STREAM)
        nxt = (await reader2.fetch(1, timeout=5))[0]
        assert nxt.metadata.sequence.stream == 11  # its position came along
        with pytest.raises(Refused, match="refused"):
            await jetstream.restore(nc2, meta, tmp_path / "snapshot.tar.s2", replicas=1)
        await nc2.drain()
    finally:
        elsewhere.stop()


async def test_a_snapshot_of_a_stream_that_is_not_there_is_refused(nats_server, tmp_path):
    nc = await nats.connect(nats_server.url)
    try:
        with pytest.raises(Refused, match="stream not found"):
            await jetstream.snapshot(nc, STREAM, tmp_path / "snapshot.tar.s2")
    finally:
        await nc.drain()
