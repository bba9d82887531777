"""`wegweiser agency listen`: print an agency's events as JSON lines, optionally acknowledging."""

from __future__ import annotations

import json
import sys

from schemas.events import ReferralOffered
from services.agency.client import AgencyClient


async def listen(nats_url: str, agency_id: str, acknowledge: bool) -> None:
    """Run until interrupted; each event is printed once it is handled, then acked."""
    async with await AgencyClient.connect(nats_url, agency_id) as client:
        async for delivery in client.deliveries():
            data = delivery.event.data
            if acknowledge and isinstance(data, ReferralOffered):
                # a stable answer id: an offer delivered twice is acknowledged once
                await client.answer(
                    data.referral_id, "acknowledge", answer_id=f"ack-{delivery.event.id}"
                )
            line = {
                "kind": delivery.kind,
                "redelivered": delivery.redelivered,
                "event": json.loads(delivery.event.model_dump_json()),
            }
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            await delivery.ack()
