"""The webhook adapter against a real nats-server and a local HTTPS endpoint."""

from __future__ import annotations

import asyncio
import json
import ssl

import httpx
import pytest

from schemas import subjects
from services.gateway import webhook
from services.gateway.feed import Feed
from tests.support.waiting import until
from tests.support.webhook_endpoint import Endpoint
from wegweiser.platform import topology
from wegweiser.platform.connect import connect
from wegweiser.platform.consumer import ConsumerEdge
from wegweiser.platform.retry import Retry

AGENCY = "lup-webhook-agency"


async def run_adapter(nats_server, endpoint: Endpoint, secret: str, give_up_after: float):
    """Publish two offers for the agency and start its webhook feed; (task, connection)."""
    nc = await connect(nats_server.url, "gateway-test")
    js = nc.jetstream()
    await topology.ensure_stream(js)
    for n in (1, 2):
        body = json.dumps({"id": f"evt-{n}", "type": "de.wegweiser.referral.offered.v2"})
        await js.publish(subjects.referral_event(AGENCY, "offered"), body.encode())
    context = ssl.create_default_context()
    endpoint.ca.configure_trust(context)
    client = httpx.AsyncClient(verify=context, timeout=5)
    handle = webhook.handler(client, endpoint.url, secret, give_up_after, Retry(0.05, 0.2))
    feed = Feed(nc, AGENCY, handle, ConsumerEdge("gateway", lambda _fn: None, js, max_deliver=3))
    return asyncio.create_task(feed.run()), nc, client


async def drained(nc) -> bool:
    """Whether the agency's consumer has nothing pending and nothing unacknowledged."""
    info = await nc.jetstream().consumer_info(subjects.STREAM, f"agency-{AGENCY}")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_an_endpoint_that_fails_five_times_then_recovers_gets_each_offer_exactly_once(
    nats_server, endpoint
):
    endpoint.failures = 5
    secret = webhook.new_secret()
    task, nc, client = await run_adapter(nats_server, endpoint, secret, give_up_after=60)
    await until(lambda: len(endpoint.taken()) == 2)
    # the endpoint took the last offer before the adapter had its answer and acked it
    await until(lambda: drained(nc), what="the adapter acked every offer")
    await asyncio.sleep(1.0)  # anything still in flight would arrive now
    task.cancel()
    taken = endpoint.taken()
    assert [h["webhook-id"] for h, _ in taken] == ["evt-1", "evt-2"]
    assert len(endpoint.requests) == 7  # five refused, then one each
    for headers, body in taken:
        webhook.verify(secret, body, headers)  # as the agency checks it
        assert json.loads(body)["id"] == headers["webhook-id"]
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify(webhook.new_secret(), taken[0][1], taken[0][0])
    assert await drained(nc)
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    await nc.close()


async def test_an_endpoint_that_never_recovers_ends_in_the_dead_letter_with_the_reason(
    nats_server, endpoint
):
    endpoint.failures = None
    task, nc, client = await run_adapter(nats_server, endpoint, webhook.new_secret(), 1.0)
    js = nc.jetstream()
    sub = await js.subscribe(subjects.dead_letter("gateway"), ordered_consumer=True)
    letters = [json.loads((await sub.next_msg(timeout=30)).data) for _ in range(2)]
    task.cancel()
    assert endpoint.taken() == []
    for letter, event_id in zip(letters, ["evt-1", "evt-2"], strict=True):
        data = letter["data"]
        assert data["original_event_id"] == event_id
        assert data["original_subject"] == subjects.referral_event(AGENCY, "offered")
        assert f"webhook {endpoint.url} did not take" in data["reason"]
        assert "last: HTTP 503" in data["reason"]
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    await nc.close()
