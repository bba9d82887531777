"""A referral service command as intake sends it, for tests that drive the referral
service's use cases on a real store."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import (
    ConsentTerms,
    DeadlineDate,
    Forwarding,
    Recipient,
    ReferralRequested,
    SealedCase,
)
from schemas.vocabulary import AgencyKind, ConsentMethod, DataCategory, Purpose
from wegweiser.platform.consumer import Delivery


def referral_requested(
    referral_id: str,
    agency: str,
    *,
    given_at: datetime,
    kind: AgencyKind = AgencyKind.MIGRATION_COUNSELLING,
    recipient: Recipient | None = None,
    deadline: DeadlineDate | None = None,
    forwarded_from: Forwarding | None = None,
    request_id: str = "req-22222222222222222222222222222222",
    consent_id: str = "con-11111111111111111111111111111111",
) -> ReferralRequested:
    """The command to open `referral_id` at `agency`, under a consent given an hour before
    `given_at` that covers agencies of `kind` (or only `recipient`)."""
    return ReferralRequested(
        referral_id=referral_id,
        request_id=request_id,
        office_id="office-1",
        agency_id=agency,
        agency_kind=kind,
        consent=ConsentTerms(
            consent_id=consent_id,
            person_reference="p1",
            controller="Landkreis",
            recipients=(recipient or Recipient(kind=kind),),
            purposes=(Purpose.REFERRAL,),
            data_categories=(DataCategory.NEEDS,),
            method=ConsentMethod.SIGNED_FORM,
            given_at=given_at - timedelta(hours=1),
            text_version="1",
            text_language="de",
        ),
        case=SealedCase(
            jwe="x" * 30,
            recipient_kid=agency,
            signer_kid="office-1",
            released_categories=(DataCategory.NEEDS,),
        ),
        deadline=deadline,
        forwarded_from=forwarded_from,
    )


def delivered(command: ReferralRequested) -> Delivery[ReferralRequested]:
    """The command as the referral service's consumer hands it in."""
    event = new_event(command, source="/wegweiser/intake", subject=command.referral_id)
    return Delivery(event, subjects.REFERRAL_REQUESTED)
