"""A secured broker as `wegweiser up` builds it, for the isolation and attack tests.

The broker knows the administrator, every service on the broker, two agencies reading over
NATS (A and B) and a webhook agency (W, served by the gateway). The stream and every
declared consumer are provisioned as the administrator, who then publishes one seed message
on every stream subject family, so that every consumer has something an attacker could steal,
skip or destroy. `Network.snapshot()` and `Network.assert_intact()` say afterwards whether
anything happened to the stream or a consumer that the attacker's grant does not allow (they
and the other helpers the tests call are in tests/support/broker.py).

Only test_broker_isolation.py and test_broker_attacks.py use these fixtures; `server`, a plain
nats-server, is for test_healing.py and test_status.py (tests/support/nats_node.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from tests.support.broker import (
    AGENCIES,
    SEEDED,
    STREAM,
    Broker,
    Network,
    authorization_for,
    seed_body,
)
from tests.support.nats_node import server
from wegweiser import provisioning
from wegweiser.platform import topology
from wegweiser.platform.nats_server import EmbeddedCluster, EmbeddedNats
from wegweiser.settings import Settings

__all__ = ["server"]


def _build_broker(root: Path, cluster: bool) -> Iterator[Broker]:
    settings = Settings(data_dir=root, nats_cluster_size=3 if cluster else 1)
    authorization = authorization_for(settings)
    if cluster:
        running = EmbeddedCluster(root / "nats-cluster", authorization=authorization).start()
        broker = Broker(settings, running.nodes, running.url, cluster=True)
    else:
        node = EmbeddedNats(root / "nats", authorization=authorization).start()
        broker = Broker(settings, [node], node.url, cluster=False)
    try:
        yield broker
    finally:
        for node in broker.nodes:
            node.stop()


@pytest.fixture(scope="module")
def node_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One secured nats-server, shared by a module's tests (each test re-provisions)."""
    yield from _build_broker(tmp_path_factory.mktemp("node"), cluster=False)


@pytest.fixture(scope="module", params=["node", pytest.param("cluster", marks=pytest.mark.slow)])
def any_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """One secured nats-server, or a three-node cluster with the stream at three replicas."""
    yield from _build_broker(tmp_path_factory.mktemp(request.param), request.param == "cluster")


async def _network(broker: Broker) -> AsyncIterator[Network]:
    admin = await provisioning.connect_as(
        broker.url, broker.settings.nats_seed_path, "test-admin", within=20
    )
    js = admin.jetstream(timeout=5)
    async for attempt in topology.patiently():
        with attempt, contextlib.suppress(NotFoundError):  # a fresh stream and consumers
            await js.delete_stream(STREAM)
    await provisioning.provision(broker.settings, broker.url, AGENCIES)
    for subject in SEEDED:
        async for attempt in topology.patiently():
            with attempt:
                await js.publish(subject, seed_body(subject), timeout=5)
    network = Network(broker, admin)
    try:
        yield network
    finally:
        for nc in network.opened:
            if not nc.is_closed:
                await nc.close()
        await admin.drain()


@pytest.fixture
async def network(node_broker: Broker) -> AsyncIterator[Network]:
    """The provisioned, seeded broker on one node."""
    async for n in _network(node_broker):
        yield n


@pytest.fixture
async def any_network(any_broker: Broker) -> AsyncIterator[Network]:
    """The provisioned, seeded broker, on one node and on a three-node cluster."""
    async for n in _network(any_broker):
        yield n
