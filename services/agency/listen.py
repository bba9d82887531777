"""`wegweiser agency listen`: print an agency's events as JSON lines, optionally acknowledging."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jwcrypto import jwk

from schemas.events import ReferralOffered
from schemas.vocabulary import DeletionKind, OverdueKind, ReferralStatus
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
    With `acknowledge`, an offer read from a backlog (events were waiting behind it) is
    acknowledged once the listener has caught up, unless the backlog closed it meanwhile
    (cancelled, expired: acknowledging it would only be refused); stopped before it caught
    up, the listener acknowledges those still open as it stops.
    """
    backlog = Backlog()
    async with await AgencyClient.connect(nats_url, agency_id, key, signers, seed) as client:
        try:
            async for delivery in client.deliveries():
                data = delivery.event.data
                line: dict[str, Any] = {
                    "kind": delivery.kind,
                    "redelivered": delivery.redelivered,
                    "event": json.loads(delivery.event.model_dump_json()),
                }
                if delivery.case is not None:
                    line["case"] = delivery.case.model_dump(mode="json", exclude_none=True)
                if delivery.comment is not None:  # the office's, opened with this agency's key
                    line["comment"] = delivery.comment
                if delivery.error is not None:
                    line["error"] = {"code": delivery.error.code, "message": str(delivery.error)}
                elif acknowledge:
                    backlog.saw(delivery.kind, data)
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()
                await delivery.ack()
                if acknowledge and delivery.msg.metadata.num_pending == 0:
                    await backlog.acknowledge(client)
        finally:
            if acknowledge:
                await backlog.acknowledge(client)


CLOSING = frozenset({ReferralStatus.CANCELLED, OverdueKind.EXPIRED, DeletionKind.REQUESTED})
"""Events after which acknowledging an offer is refused: it is no longer open."""


class Backlog:
    """Referrals whose offer is to be acknowledged, in the order they came (a dict keeps it);
    closed ones leave."""

    def __init__(self) -> None:
        self.open: dict[str, None] = {}

    def saw(self, kind: str, data: Any) -> None:
        if isinstance(data, ReferralOffered):
            self.open[data.referral_id] = None
        elif kind in CLOSING:
            self.open.pop(getattr(data, "referral_id", ""), None)

    async def acknowledge(self, client: AgencyClient) -> None:
        """Acknowledge every open offer (a stable answer id: an offer acknowledged twice, as
        after a restart, counts once)."""
        while self.open:
            referral_id = next(iter(self.open))
            await client.answer(referral_id, "acknowledge", answer_id=f"ack-{referral_id}")
            del self.open[referral_id]
