"""The NATS adapter for partner agencies: receive referrals, answer them.

async with await AgencyClient.connect("nats://…", "lup-mbe-ludwigslust") as agency:
    async for delivery in agency.deliveries():
        if isinstance(delivery.event.data, ReferralOffered):
            await agency.answer(delivery.event.data.referral_id, "acknowledge")
        await delivery.ack()
"""

from services.agency.client import AgencyClient, AgencyDelivery, AnswerInvalid

__all__ = ["AgencyClient", "AgencyDelivery", "AnswerInvalid"]
