"""The consent receipt says, in the person's language, what goes to whom and how to withdraw."""

from datetime import UTC, datetime

from schemas.events import ConsentTerms
from services.intake.receipt import receipt_json, receipt_text

TERMS = ConsentTerms.model_validate(
    {
        "consent_id": "con-42",
        "person_reference": "p-abc",
        "controller": "Landkreis Oberallgäu",
        "recipients": [
            {"agency_id": "oa-rechtshilfe", "data_categories": ["name", "residence-status"]},
            {"kind": "psychosocial", "data_categories": ["needs", "health"]},
        ],
        "purposes": ["referral"],
        "data_categories": ["needs"],
        "explicit_special_categories": True,
        "method": "witnessed-verbal",
        "given_at": datetime(2026, 11, 20, 10, tzinfo=UTC),
        "text_version": "2026-01",
        "text_language": "de",
    }
)


def test_the_german_receipt_lists_each_recipient_with_its_categories_and_how_to_withdraw():
    text = receipt_text(TERMS, "de")
    assert "Verantwortlich: Landkreis Oberallgäu" in text
    assert "  - Stelle oa-rechtshilfe: Aufenthaltsstatus, Name" in text
    assert "  - jede Stelle der Art psychosocial: Anliegen, Gesundheit" in text
    assert "besondere Kategorien (Art. 9 DSGVO)" in text
    assert "jederzeit ohne Angabe von Gründen widerrufen" in text and "con-42" in text


def test_the_english_receipt_says_the_same():
    text = receipt_text(TERMS, "en")
    assert "  - agency oa-rechtshilfe: name, residence status" in text
    assert "any agency of the kind psychosocial: health, needs" in text
    assert "withdraw this consent at any time" in text and "until withdrawn" in text


def test_the_json_receipt_uses_kantara_fields():
    data = receipt_json(TERMS, None)
    assert data["consentReceiptID"] == "con-42" and data["piiPrincipalId"] == "p-abc"
    assert data["piiControllers"] == [{"piiController": "Landkreis Oberallgäu"}]
    assert data["recipients"][1] == {
        "agency": None,
        "kind": "psychosocial",
        "piiCategories": ["health", "needs"],
    }
    assert data["sensitive"] is True and data["withdrawnAt"] is None
