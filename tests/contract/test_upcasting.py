"""Every older version of an event still in use is read as the newest: the stream keeps a
year of events and partners update on their own schedule (schemas/upcasting.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas.catalogue import BY_TYPE
from schemas.events import (
    AgencyAnswer,
    ConsentRecorded,
    ConsentWithdrawn,
    ReferralCancellationRequested,
    ReferralExpired,
    ReferralOffered,
)
from schemas.upcasting import UPCASTERS, read, upcast
from schemas.vocabulary import Outcome, ReasonCode, WithdrawnBy

ENVELOPE = {
    "specversion": "1.0",
    "id": "4b2a7c1e-9d3f-4e5a-8b6c-7d8e9f0a1b2c",
    "source": "/wegweiser/agency/lup-jobcenter",
    "subject": "ref-1",
    "time": "2026-11-20T09:00:00Z",
    "datacontenttype": "application/json",
    "correlationid": "4b2a7c1e-9d3f-4e5a-8b6c-7d8e9f0a1b2c",
}


def old(event_type: str, data: dict) -> bytes:
    return json.dumps({**ENVELOPE, "type": event_type, "data": data}).encode()


def test_every_upcaster_leads_to_a_type_of_the_catalogue():
    for old_type, (newer, _step) in UPCASTERS.items():
        assert old_type not in BY_TYPE
        final = upcast({"type": old_type, "data": {}})["type"]
        assert final in BY_TYPE, (old_type, newer, final)


def test_a_version_1_answer_keeps_its_meaning_but_not_its_free_text():
    body = old(
        "de.wegweiser.agency.answer.v1",
        {"referral_id": "ref-1", "agency_id": "lup-jobcenter", "action": "reject",
         "reason": "full until March, call Frau K."},
    )  # fmt: skip
    event = read(body, AgencyAnswer)
    assert event.type == "de.wegweiser.agency.answer.v3" and event.id == ENVELOPE["id"]
    assert event.data.reason is ReasonCode.OTHER and event.data.comment is None
    assert "Frau K." not in event.model_dump_json()


def test_a_version_1_answer_that_named_a_code_keeps_it_and_a_completion_was_provided():
    said = {"referral_id": "ref-1", "agency_id": "lup-jobcenter"}
    held = read(
        old("de.wegweiser.agency.answer.v1", {**said, "action": "hold", "reason": "no-capacity"}),
        AgencyAnswer,
    )
    assert held.data.reason is ReasonCode.NO_CAPACITY
    done = read(old("de.wegweiser.agency.answer.v1", {**said, "action": "complete"}), AgencyAnswer)
    assert done.data.outcome is Outcome.PROVIDED and done.data.reason is None


def test_a_version_1_cancellation_and_the_referral_services_own_texts_map_to_their_codes():
    cancel = read(
        old("de.wegweiser.intake.referral.cancellation-requested.v1",
            {"referral_id": "ref-1", "office_id": "office-1", "reason": "moved away"}),
        ReferralCancellationRequested,
    )  # fmt: skip
    assert cancel.data.reason is ReasonCode.OTHER
    change = {
        "referral_id": "ref-1", "request_id": "req-1", "agency_id": "lup-jobcenter",
        "status": "cancelled", "version": 4, "occurred_at": "2026-11-20T09:00:00Z",
    }  # fmt: skip
    expired = read(
        old(
            "de.wegweiser.referral.expired.v1",
            {**change, "reason": "not acknowledged within 14 days"},
        ),
        ReferralExpired,
    )
    assert expired.data.reason is ReasonCode.NOT_ACKNOWLEDGED


def test_a_version_2_offer_names_its_office_from_the_cases_signer():
    data = {
        "referral_id": "ref-1", "request_id": "req-1", "agency_id": "lup-jobcenter",
        "status": "requested", "version": 1, "occurred_at": "2026-11-20T09:00:00Z",
        "consent_id": "c-1", "acknowledge_by": "2026-11-23T09:00:00Z",
        "case": {"jwe": "a" * 40, "recipient_kid": "lup-jobcenter", "signer_kid": "office-1",
                 "released_categories": ["name"]},
    }  # fmt: skip
    offer = read(old("de.wegweiser.referral.offered.v2", data), ReferralOffered)
    assert offer.data.office_id == "office-1" and offer.type.endswith("offered.v3")


def test_an_older_version_of_another_event_is_still_refused():
    body = old("de.wegweiser.agency.answer.v1", {"referral_id": "ref-1", "agency_id": "x",
                                                 "action": "accept"})  # fmt: skip
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        read(body, ReferralCancellationRequested)


def test_what_is_not_json_is_refused_as_before():
    with pytest.raises(ValidationError, match="Invalid JSON"):
        read(b"\xff not json", AgencyAnswer)


def test_consent_terms_from_before_the_text_fingerprint_are_read_without_one():
    terms = {
        "consent_id": "con-1", "person_reference": "p-1", "controller": "Landkreis",
        "recipients": [{"kind": "legal-aid"}], "purposes": ["referral"],
        "data_categories": ["needs"], "method": "signed-form",
        "given_at": "2026-11-20T09:00:00Z", "text_version": "2026-11", "text_language": "fa",
    }  # fmt: skip
    event = read(
        old("de.wegweiser.intake.consent.recorded.v2", {"request_id": "req-1", "terms": terms}),
        ConsentRecorded,
    )
    assert event.type.endswith("consent.recorded.v3") and event.data.terms.text_sha256 is None


def test_a_version_1_withdrawal_was_the_offices():
    data = {
        "consent_id": "con-1",
        "request_id": "req-1",
        "office_id": "lup-integration-office",
        "withdrawn_at": "2026-11-20T09:00:00Z",
    }
    event = read(old("de.wegweiser.intake.consent.withdrawn.v1", data), ConsentWithdrawn)
    assert event.data.withdrawn_by is WithdrawnBy.OFFICE
    with pytest.raises(ValidationError):  # the current version must say who withdrew
        read(old("de.wegweiser.intake.consent.withdrawn.v2", data), ConsentWithdrawn)
