"""With real nats-server permissions, an agency reads only its own referrals and answers only
for itself: by no route (subscribe, consumer creation, another's consumer, direct get, message
get, stream info, the shared inbox) can agency A see agency B's offers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig

from schemas import subjects
from wegweiser.platform import nats_auth, topology
from wegweiser.platform.connect import NotAuthorized, connect
from wegweiser.platform.nats_server import EmbeddedNats

A, B = "agency-a", "agency-b"
DENIED = (nats.errors.Error, asyncio.TimeoutError, TimeoutError)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[EmbeddedNats, nats_auth.Seeds]]:
    """A nats-server that knows the system user and agencies A and B, nothing else."""
    seeds = nats_auth.Seeds(tmp_path / "keys")
    for agency in (A, B):
        seeds.ensure(seeds.agency_path(agency))
    server = EmbeddedNats(tmp_path / "nats", authorization=nats_auth.render(seeds.users()))
    server.start()
    yield server, seeds
    server.stop()


@pytest.fixture
async def system(secured) -> AsyncIterator[Client]:
    """The network's side: the stream, each agency's consumer, and one offer for each."""
    server, seeds = secured
    nc = await connect(server.url, "system", seeds.path(nats_auth.SYSTEM))
    js = nc.jetstream()
    await topology.ensure_stream(js)
    await topology.ensure_consumers(
        js, [topology.agency_consumer(A), topology.agency_consumer(B)], max_deliver=3
    )
    for agency in (A, B):
        await js.publish(subjects.referral_event(agency, "offered"), f"offer for {agency}".encode())
    yield nc
    await nc.drain()


class Violations:
    """The permission errors the server reports to one connection."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def record(self, exc: Exception) -> None:
        self.seen.append(str(exc))


async def as_agency(
    server: EmbeddedNats, seeds: nats_auth.Seeds, agency: str
) -> tuple[Client, Violations]:
    violations = Violations()
    nc = await nats.connect(
        server.url,
        nkeys_seed=str(seeds.agency_path(agency)),
        inbox_prefix=nats_auth.inbox_prefix(agency),
        error_cb=violations.record,
        max_reconnect_attempts=0,
    )
    return nc, violations


async def test_an_agency_reads_its_own_offers_through_its_consumer(secured, system):
    server, seeds = secured
    # the route AgencyClient takes: fetch from its own durable, ack, on its own inbox
    nc, violations = await as_agency(server, seeds, A)
    sub = await nc.jetstream().pull_subscribe_bind(
        topology.agency_consumer(A).durable, subjects.STREAM
    )
    (msg,) = await sub.fetch(1, timeout=5)
    assert msg.data == b"offer for agency-a" and msg.subject == "ww.referral.agency-a.offered"
    await msg.ack()
    await nc.drain()
    assert violations.seen == []


async def test_agency_a_cannot_read_agency_b_offers_by_any_route(secured, system):
    server, seeds = secured
    nc, violations = await as_agency(server, seeds, A)
    js = nc.jetstream()
    received: list[bytes] = []

    async def keep(msg) -> None:
        received.append(msg.data)

    await nc.subscribe(f"ww.referral.{B}.>", cb=keep)
    await nc.subscribe("ww.>", cb=keep)
    await nc.subscribe("_INBOX.>", cb=keep)
    await nc.subscribe(f"{nats_auth.inbox_prefix(B)}.>", cb=keep)
    await nc.flush()
    routes = {
        "create a consumer on B's subjects": js.add_consumer(
            subjects.STREAM,
            ConsumerConfig(durable_name="sneaky", filter_subject=f"ww.referral.{B}.>"),
        ),
        "create an ephemeral consumer": js.add_consumer(subjects.STREAM, ConsumerConfig()),
        "stream info": js.stream_info(subjects.STREAM),
        "message get": js.get_msg(subjects.STREAM, 2),
        "direct get": js.get_msg(subjects.STREAM, 2, direct=True),
        "B's consumer info": js.consumer_info(subjects.STREAM, topology.agency_consumer(B).durable),
        "list consumers": js.consumers_info(subjects.STREAM),
        "fetch from B's consumer": _fetch(nc, topology.agency_consumer(B).durable),
    }
    for route, attempt in routes.items():
        with pytest.raises(DENIED):
            await asyncio.wait_for(attempt, 1.5)
            pytest.fail(f"{route} was allowed")
    await asyncio.sleep(0.3)
    assert received == []
    denied = {v.removeprefix("nats: permissions violation for ") for v in violations.seen}
    durable_b = topology.agency_consumer(B).durable
    assert denied >= {
        f'subscription to "ww.referral.{B}.>"',
        'subscription to "ww.>"',
        'subscription to "_inbox.>"',
        f'subscription to "_inbox_{B}.>"',
        'publish to "$js.api.consumer.durable.create.wegweiser.sneaky"',
        'publish to "$js.api.consumer.create.wegweiser"',
        'publish to "$js.api.stream.info.wegweiser"',
        'publish to "$js.api.stream.msg.get.wegweiser"',
        'publish to "$js.api.direct.get.wegweiser"',
        f'publish to "$js.api.consumer.info.wegweiser.{durable_b}"',
        'publish to "$js.api.consumer.list.wegweiser"',
        f'publish to "$js.api.consumer.msg.next.wegweiser.{durable_b}"',
    }, violations.seen
    # B's offer is still waiting for B alone
    info = await system.jetstream().consumer_info(
        subjects.STREAM, topology.agency_consumer(B).durable
    )
    assert info.num_pending == 1 and info.delivered.stream_seq == 0
    await nc.close()


async def _fetch(nc: Client, durable: str) -> list:
    sub = await nc.jetstream().pull_subscribe_bind(durable, subjects.STREAM)
    return await sub.fetch(1, timeout=2)


async def test_agency_a_cannot_publish_an_answer_for_agency_b(secured, system):
    server, seeds = secured
    nc, violations = await as_agency(server, seeds, A)
    js = nc.jetstream()
    with pytest.raises(DENIED):
        await js.publish(subjects.answer(B, "accept"), b"{}", timeout=2)
    with pytest.raises(DENIED):
        await js.publish(subjects.agency_capacity(B), b"{}", timeout=2)
    own = await js.publish(subjects.answer(A, "accept"), b"{}", timeout=5)  # control: allowed
    assert own.seq > 0
    await nc.close()
    stream = await system.jetstream().stream_info(subjects.STREAM, subjects_filter="ww.>")
    assert stream.state.subjects == {
        subjects.referral_event(A, "offered"): 1,
        subjects.referral_event(B, "offered"): 1,
        subjects.answer(A, "accept"): 1,
    }
    assert f'permissions violation for publish to "ww.answer.{B}.accept"' in violations.seen[0]


async def test_without_credentials_nobody_gets_in_and_connect_says_so(secured):
    server, _ = secured
    with pytest.raises(NotAuthorized, match="refused the credentials"):
        await asyncio.wait_for(connect(server.url, "stranger"), 10)
