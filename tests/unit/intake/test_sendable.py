"""The one rule whether a request may go to an agency now, case by case: each refusal has
its own code, and the first rule broken is the one named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import ConsentTerms, Recipient
from schemas.queries import AgencyCard
from schemas.vocabulary import AgencyKind, ConsentMethod, DataCategory, Need, Purpose
from services.consent.rules import ConsentViolation
from services.intake.case import NotSendable, Person, Request, sendable_case, why_not_sendable
from wegweiser.platform import keys

NOW = datetime(2026, 12, 4, 10, tzinfo=UTC)
KEY = keys.public_dict(keys.generate_encryption_key())
MBE = AgencyCard(
    agency_id="lup-mbe",
    name="MBE",
    kind=AgencyKind.MIGRATION_COUNSELLING,
    channel="nats",
    capacity=3,
    waiting_days=5,
    active=True,
    public_key=KEY,
)
PSY = MBE.model_copy(update={"agency_id": "lup-psy", "kind": AgencyKind.PSYCHOSOCIAL})


def request(
    recipients: tuple[Recipient, ...] = (Recipient(kind=AgencyKind.MIGRATION_COUNSELLING),),
    withdrawn: bool = False,
    **terms: object,
) -> Request:
    given: dict[str, object] = {
        "consent_id": "con-1",
        "person_reference": "client-1",
        "controller": "Office",
        "recipients": recipients,
        "purposes": (Purpose.REFERRAL,),
        "data_categories": (DataCategory.CLIENT_REFERENCE, DataCategory.NEEDS, DataCategory.AREA),
        "method": ConsentMethod.SIGNED_FORM,
        "given_at": NOW - timedelta(days=1),
        "text_version": "2026-01",
        "text_language": "de",
    }
    consent = ConsentTerms.model_validate(given | terms)
    person = Person(needs=[Need.MIGRATION_COUNSELLING], languages=["ar"], municipality="13076090")
    return Request("req-1", "client-1", "soon", person, consent, withdrawn)


def test_a_covered_active_agency_with_a_key_and_room_gets_only_what_the_consent_releases():
    case = sendable_case(request(), MBE, NOW)
    assert set(case.released_categories) == {
        DataCategory.CLIENT_REFERENCE,
        DataCategory.NEEDS,
        DataCategory.AREA,
    }
    assert case.client_name is None and case.languages == ()  # not released: not sent
    assert why_not_sendable(request(), MBE, NOW) is None
    full = MBE.model_copy(update={"capacity": 0})  # the agency decides, not its last report
    assert why_not_sendable(request(), full, NOW) is None


@pytest.mark.parametrize(
    ("the_request", "agency", "code"),
    [
        (request(), MBE.model_copy(update={"active": False}), "agency.inactive"),
        (request(), MBE.model_copy(update={"public_key": None}), "agency.no-key"),
        (request(withdrawn=True), MBE, "consent.withdrawn"),
        (request(given_at=NOW + timedelta(hours=1)), MBE, "consent.not-yet-given"),
        (request(expires_at=NOW - timedelta(seconds=1)), MBE, "consent.expired"),
        (request(recipients=(Recipient(agency_id="lup-other"),)), MBE, "consent.not-covered"),
        (
            request(recipients=(Recipient(kind=AgencyKind.PSYCHOSOCIAL),)),
            PSY,
            "consent.not-explicit",
        ),
        (request(purposes=(Purpose.FOLLOW_UP,)), MBE, "consent.purpose"),
        # an inactive agency is refused as such, even when the consent does not cover it
        (request(withdrawn=True), PSY.model_copy(update={"active": False}), "agency.inactive"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_reason_not_to_send_has_its_code(the_request, agency, code):
    refused = why_not_sendable(the_request, agency, NOW)
    assert refused is not None and refused.code == code, refused
    with pytest.raises((NotSendable, ConsentViolation)) as raised:
        sendable_case(the_request, agency, NOW)
    assert isinstance(raised.value, NotSendable | ConsentViolation)
    assert raised.value.code == code
