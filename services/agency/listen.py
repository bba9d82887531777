"""`wegweiser agency listen`: print an agency's events as JSON lines, optionally acknowledging."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jwcrypto import jwk

from schemas.events import ReferralOffered
from services.agency.client import AgencyClient


async def listen(
    nats_url: str,
    agency_id: str,
    acknowledge: bool,
    key: jwk.JWK | list[jwk.JWK] | None = None,
    signers: dict[str, jwk.JWK] | None = None,
    seed: Path | None = None,
) -> None:
    """Run until interrupted; each event is printed once handled, then acked.

    An offer whose sealed data is refused is printed with the error and not acknowledged.
    """
    async with await AgencyClient.connect(nats_url, agency_id, key, signers, seed) as client:
        async for delivery in client.deliveries():
            data = delivery.event.data
            line: dict[str, Any] = {
                "kind": delivery.kind,
                "redelivered": delivery.redelivered,
                "event": json.loads(delivery.event.model_dump_json()),
            }
            if delivery.case is not None:
                line["case"] = delivery.case.model_dump(mode="json", exclude_none=True)
            if delivery.error is not None:
                line["error"] = {"code": delivery.error.code, "message": str(delivery.error)}
            elif acknowledge and isinstance(data, ReferralOffered):
                # a stable answer id: an offer delivered twice is acknowledged once
                await client.answer(
                    data.referral_id, "acknowledge", answer_id=f"ack-{delivery.event.id}"
                )
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            await delivery.ack()
