"""The gateway's feed to a partner over a real nats-server: the one pull loop (unowned) and
the handlers' retry policy, as a service has them: a failing handler is tried again in place,
nothing behind it overtakes it, and after max_deliver attempts it is dead-lettered with the
reason while the feed goes on."""

from __future__ import annotations

import asyncio
import json

from nats.aio.msg import Msg

from schemas import subjects
from schemas.envelope import Envelope
from schemas.events import DeadLettered
from services.gateway.feed import Feed
from tests.support.waiting import until
from wegweiser.platform import topology
from wegweiser.platform.connect import connect
from wegweiser.platform.consumer import ConsumerEdge

AGENCY = "lup-feed-agency"


async def feed_of(nats_server, fail: dict[str, int]):
    """Three offers for the agency and a feed whose handler fails `fail[id]` times for an
    event (-1: always); (task, connection, what the handler saw, in order)."""
    nc = await connect(nats_server.url, "gateway-test")
    js = nc.jetstream()
    await topology.ensure_stream(js)
    for n in (1, 2, 3):
        body = json.dumps({"id": f"evt-{n}", "type": "de.wegweiser.referral.offered.v2"})
        await js.publish(subjects.referral_event(AGENCY, "offered"), body.encode())
    seen: list[tuple[str, int]] = []

    async def handle(msg: Msg) -> None:
        event = json.loads(msg.data)["id"]
        seen.append((event, msg.metadata.num_delivered))
        if fail.get(event, 0) != 0:
            fail[event] -= 1
            raise RuntimeError(f"the database is busy ({event})")

    edge = ConsumerEdge("gateway", lambda _fn: None, js, max_deliver=3)
    return asyncio.create_task(Feed(nc, AGENCY, handle, edge).run()), nc, seen


async def drained(nc) -> bool:
    """Whether the agency's consumer has nothing pending and nothing unacknowledged."""
    info = await nc.jetstream().consumer_info(subjects.STREAM, f"agency-{AGENCY}")
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_handler_that_fails_twice_is_tried_in_place_and_nothing_overtakes_it(
    nats_server,
):
    task, nc, seen = await feed_of(nats_server, {"evt-1": 2})
    await until(lambda: len(seen) == 5)
    # the handler saw the last event before the feed acked it: the ack is still on its way
    await until(lambda: drained(nc), what="the feed acked every event")
    await asyncio.sleep(0.5)  # anything more would come now
    task.cancel()
    # three attempts at the first event, in place (one delivery), then the others in order
    assert seen == [("evt-1", 1), ("evt-1", 1), ("evt-1", 1), ("evt-2", 1), ("evt-3", 1)]
    assert await drained(nc)
    await nc.close()


async def test_a_handler_that_keeps_failing_is_dead_lettered_with_the_reason_and_the_feed_goes_on(
    nats_server,
):
    task, nc, seen = await feed_of(nats_server, {"evt-2": -1})
    await until(lambda: [e for e, _ in seen].count("evt-3") == 1)
    task.cancel()
    assert [e for e, _ in seen] == ["evt-1", "evt-2", "evt-2", "evt-2", "evt-3"]
    stored = await nc.jetstream().get_last_msg(subjects.STREAM, subjects.dead_letter("gateway"))
    letter = Envelope[DeadLettered].model_validate_json(stored.data or b"").data
    assert letter.original_event_id == "evt-2" and letter.deliveries == 3
    assert letter.reason == "gave up after 3 attempts: RuntimeError('the database is busy (evt-2)')"
    await nc.close()
