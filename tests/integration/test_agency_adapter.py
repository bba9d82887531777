"""The agency adapter over a real nats-server: it unseals its offers and refuses bad ones."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import UTC, datetime

import nats

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralOffered, SealedCase
from services.agency import AgencyClient
from wegweiser.platform import keys, topology
from wegweiser.platform.sealing import seal

A_KEY, B_KEY = keys.generate_encryption_key(), keys.generate_encryption_key()
OFFICE = keys.generate_signing_key()
NOW = datetime.now(UTC)


def offer(n: int, token: str, recipient: str = "agency-a") -> bytes:
    data = ReferralOffered(
        referral_id=f"r{n}",
        request_id="q1",
        agency_id="agency-a",
        status="requested",
        version=1,
        occurred_at=NOW,
        office_id="office-1",
        consent_id="c1",
        acknowledge_by=NOW,
        case=SealedCase(
            jwe=token, recipient_kid=recipient, signer_kid="office-1", released_categories=("name",)
        ),
    )
    return new_event(data, source="/wegweiser/referral", subject=f"r{n}").model_dump_json().encode()


def sealed_for(key, kid: str, signer=OFFICE) -> str:
    return seal(
        {"client_name": "Lina S.", "released_categories": ["name"]},
        recipient=keys.from_dict(keys.public_dict(key)),
        recipient_kid=kid,
        signer=signer,
        signer_kid="office-1",
    )


async def test_the_adapter_opens_its_offers_and_names_what_is_wrong_with_bad_ones(nats_server):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await topology.ensure_stream(js)
    good = sealed_for(A_KEY, "agency-a")
    parts = good.split(".")
    tampered = ".".join(
        [*parts[:3], parts[3][:-4] + ("AAAA" if parts[3][-4:] != "AAAA" else "BBBB"), parts[4]]
    )
    for n, token in enumerate(
        [
            good,
            sealed_for(B_KEY, "agency-b"),
            tampered,
            sealed_for(A_KEY, "agency-a", signer=keys.generate_signing_key()),
        ]
    ):
        await js.publish(subjects.referral_event("agency-a", "offered"), offer(n, token))
    client = AgencyClient(nc, "agency-a", A_KEY, {"office-1": OFFICE})
    seen = []

    async def collect() -> None:
        async for delivery in client.deliveries():
            seen.append(delivery)
            await delivery.ack()
            if len(seen) == 4:
                return

    await asyncio.wait_for(collect(), 30)
    assert seen[0].error is None and seen[0].case is not None
    assert seen[0].case.client_name == "Lina S."
    assert [d.error.code for d in seen[1:] if d.error is not None] == [
        "seal.wrong-recipient",
        "seal.undecryptable",
        "seal.bad-signature",
    ]
    assert all(d.case is None for d in seen[1:])
    assert "sealed for 'agency-b', not for 'agency-a'" in str(seen[1].error)
    await nc.close()


async def test_an_event_handed_back_comes_again_before_anything_behind_it(nats_server):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await topology.ensure_stream(js)
    for n in (1, 2):
        await js.publish(
            subjects.referral_event("agency-a", "offered"),
            offer(n, sealed_for(A_KEY, "agency-a")),
        )
    client = AgencyClient(nc, "agency-a", A_KEY, {"office-1": OFFICE})
    seen: list[tuple[str, bool]] = []

    async def collect() -> None:
        async with aclosing(client.deliveries()) as deliveries:
            async for delivery in deliveries:
                seen.append((delivery.event.data.referral_id, delivery.redelivered))
                if len(seen) == 1:
                    await delivery.retry_later()  # the partners' first pause (half a second)
                    continue
                await delivery.ack()
                if len(seen) == 3:
                    return

    await asyncio.wait_for(collect(), 30)
    assert seen == [("r1", False), ("r1", True), ("r2", False)]
    await nc.close()
