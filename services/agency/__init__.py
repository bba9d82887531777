"""The NATS adapter for partner agencies: receive referrals, answer them.

async with await AgencyClient.connect("nats://…", "lup-mbe-ludwigslust") as agency:
    async for delivery in agency.deliveries():
        if isinstance(delivery.event.data, ReferralOffered):
            await agency.answer(delivery.event.data.referral_id, "acknowledge")
        await delivery.ack()
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.agency.client import AgencyClient, AgencyDelivery, AnswerInvalid

__all__ = ["AgencyClient", "AgencyDelivery", "AnswerInvalid"]


def __getattr__(name: str) -> object:
    """The client loads when it is first used, not with the package: `wegweiser` and
    `wegweiser-agency` import this package for their commands, and most never connect."""
    if name in __all__:
        from services.agency import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
