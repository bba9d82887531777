"""A three-node JetStream cluster on loopback: the stream and its consumers at three
replicas survive losing a node, including the one leading the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.js.errors import NoStreamResponseError

from schemas import subjects
from wegweiser.platform import topology
from wegweiser.platform.nats_server import EmbeddedCluster, servers

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    c = EmbeddedCluster(tmp_path / "nats").start()
    yield c
    c.stop()


async def publish(js, n: int) -> None:
    """Publish event `n` (its id as Nats-Msg-Id, as the outbox relay does), retrying while
    the stream elects a new leader."""
    for _ in range(100):
        try:
            await js.publish(
                subjects.CANCELLATION_REQUESTED,
                f"event-{n}".encode(),
                headers={"Nats-Msg-Id": f"event-{n}"},
                timeout=2,
            )
            return
        except (nats.errors.TimeoutError, NoStreamResponseError, nats.errors.NoRespondersError):
            await asyncio.sleep(0.2)
    raise AssertionError(f"event {n} could not be published")


def test_a_cluster_url_lists_every_node(cluster: EmbeddedCluster) -> None:
    assert servers(cluster.url) == [n.url for n in cluster.nodes]
    assert len({n.name for n in cluster.nodes}) == 3


async def test_the_stream_keeps_every_event_once_when_its_leader_dies(
    cluster: EmbeddedCluster,
) -> None:
    nc = await nats.connect(
        servers(cluster.url), max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    js = nc.jetstream(timeout=5)
    await topology.ensure_stream(js, replicas=3)
    spec = topology.ConsumerSpec(
        "cluster-test", "test", (subjects.CANCELLATION_REQUESTED,), ack_wait=5.0
    )
    await topology.ensure_consumers(js, [spec], max_deliver=5)
    info = await js.stream_info(subjects.STREAM)
    assert info.config.num_replicas == 3
    assert info.cluster is not None and len(info.cluster.replicas or []) == 2

    for n in range(100):
        await publish(js, n)
    leader = next(node for node in cluster.nodes if node.name == info.cluster.leader)
    leader.kill()
    for n in range(100, 200):
        await publish(js, n)
    for n in range(50, 70):  # a relay that crashed before marking these published
        await publish(js, n)
    leader.start()
    cluster.wait_healthy()

    sub = await js.pull_subscribe_bind("cluster-test", subjects.STREAM)
    seen: list[str] = []
    while len(seen) < 200:
        try:
            batch = await sub.fetch(1, timeout=5)  # max_ack_pending 1: one at a time
        except nats.errors.TimeoutError:
            break
        for msg in batch:
            seen.append(msg.data.decode())
            await msg.ack()
    after = await js.stream_info(subjects.STREAM)
    await nc.close()
    assert after.cluster is not None
    print(
        f"cluster: {len(seen)} events read once each after the leader "
        f"{leader.name} was killed; new leader {after.cluster.leader}"
    )
    assert seen == [f"event-{n}" for n in range(200)]
    assert after.state.messages == 200
