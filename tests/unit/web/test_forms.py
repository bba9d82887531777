"""The request-and-consent form: what the counsellor typed becomes intake's request, or a
message per field, and never half of one."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.datastructures import FormData, UploadFile

from services.consent import texts
from services.intake.api_models import RequestCreate
from services.web import forms

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def form(**changes: object) -> FormData:
    fields: dict[str, object] = {
        "client_reference": "LUP-2026-0147",
        "client_name": "Amal K.",
        "needs": ["legal-aid.asylum"],
        "languages": ["fa"],
        "other_languages": "dar",
        "municipality": "13076090",
        "age": "29",
        "urgency": "soon",
        "note": "Anhörung am Montag",
        "recipient_kinds": ["legal-aid"],
        "recipient_agencies": "lup-rechtsberatung-parchim",
        "data_categories": ["client-reference", "needs", "languages", "area"],
        "purposes": ["referral"],
        "method": "signed-form",
        "text_language": "fa",
        "consent_read": "yes",
    }
    fields.update(changes)
    items: list[tuple[str, str | UploadFile]] = [
        (name, str(v))
        for name, value in fields.items()
        if value is not None
        for v in (value if isinstance(value, list) else [value])
    ]
    return FormData(items)


def test_a_complete_form_becomes_intakes_request_with_the_shown_consent_text():
    parsed = forms.parse(form(), NOW)
    assert parsed.errors == {}
    body = RequestCreate.model_validate(parsed.body)
    assert body.languages == ["fa", "dar"]
    assert body.age == 29
    assert body.consent.text_version == texts.CONSENT_TEXT_VERSION
    assert body.consent.text_language == "fa"
    assert body.consent.given_at == NOW
    assert [(r.kind, r.agency_id) for r in body.consent.recipients] == [
        ("legal-aid", None),
        (None, "lup-rechtsberatung-parchim"),
    ]


def test_without_a_place_the_form_asks_for_one_and_yields_no_request():
    parsed = forms.parse(form(municipality="", postcode=""), NOW)
    assert parsed.body is None
    assert "municipality" in parsed.errors
    assert parsed.values["client_reference"] == "LUP-2026-0147"


def test_special_categories_need_the_explicit_consent_box():
    parsed = forms.parse(form(data_categories=["needs", "health"]), NOW)
    assert parsed.body is None
    assert set(parsed.errors) == {"explicit_special_categories"}
    ticked = forms.parse(
        form(data_categories=["needs", "health"], explicit_special_categories="yes"), NOW
    )
    assert ticked.errors == {} and ticked.body is not None


def test_the_consent_text_must_have_been_shown():
    parsed = forms.parse(form(consent_read=None), NOW)
    assert parsed.body is None and set(parsed.errors) == {"consent_read"}


def test_each_malformed_field_is_named():
    parsed = forms.parse(
        form(
            client_reference="a b",
            age="old",
            needs=[],
            method="",
            recipient_kinds=[],
            recipient_agencies="",
        ),
        NOW,
    )
    assert parsed.body is None
    assert {"client_reference", "age", "needs", "method", "recipient_kinds"} <= set(parsed.errors)


def test_contact_and_residence_go_to_intake_only_when_given_and_errors_find_their_field():
    assert "contact" not in (forms.parse(form(), NOW).body or {"contact": "missing"})
    given = forms.parse(
        form(phone="+49 3874 123456", preferred_channel="sms", residence_status="toleration"),
        NOW,
    )
    assert given.errors == {}
    body = RequestCreate.model_validate(given.body)
    assert body.contact is not None and body.contact.phone == "+49 3874 123456"
    assert body.residence is not None and body.residence.status == "toleration"
    wrong = forms.parse(form(email="nadia-at-example", legal_basis="§ 25 Abs. 2"), NOW)
    assert set(wrong.errors) == {"email", "residence_status"}
    unreachable = forms.parse(form(preferred_channel="post"), NOW)
    assert set(unreachable.errors) == {"phone"}


def test_a_legal_deadline_goes_to_intake_as_given_and_none_when_left_empty():
    parsed = forms.parse(
        form(
            deadline_kind="asylum-lawsuit-2w",
            deadline_land="MV",
            deadline_delivered_on="2026-11-20",
        ),
        NOW,
    )
    assert parsed.errors == {}
    assert parsed.body is not None
    assert parsed.body["legal_deadline"] == {
        "kind": "asylum-lawsuit-2w",
        "land": "MV",
        "delivered_on": "2026-11-20",
    }
    assert "legal_deadline" not in (forms.parse(form(), NOW).body or {})


def test_a_legal_deadline_without_its_land_or_of_an_unknown_kind_is_asked_for_at_its_field():
    parsed = forms.parse(form(deadline_kind="asylum-lawsuit-2w"), NOW)
    assert parsed.body is None and set(parsed.errors) == {"deadline_land"}
    parsed = forms.parse(form(deadline_kind="asylum-lawsuit-9w", deadline_land="MV"), NOW)
    assert parsed.body is None and set(parsed.errors) == {"deadline_kind"}


def test_automatic_re_offer_is_asked_for_by_its_box():
    ticked = forms.parse(form(deadline_kind="other", deadline_land="MV", auto_reoffer="yes"), NOW)
    assert ticked.body is not None and ticked.body["auto_reoffer"] is True
    assert (forms.parse(form(), NOW).body or {}).get("auto_reoffer") in (None, False)
