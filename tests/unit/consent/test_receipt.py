"""The consent receipt says, in the person's language, what goes to whom and how to withdraw."""

from datetime import UTC, datetime

import pytest

from schemas.events import ConsentTerms
from services.consent.texts import PersonLanguage
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
    text = receipt_text(TERMS, PersonLanguage.DE)
    assert text.count("Ihre Einwilligung – Quittung") == 1  # German alone: no second part
    assert "Verantwortlich: Landkreis Oberallgäu" in text
    assert "  - Stelle oa-rechtshilfe: Aufenthaltsstatus, Name" in text
    assert "  - Jede Stelle dieser Art: psychosoziale Beratung: Anliegen, Gesundheit" in text
    assert "besondere Kategorien von Daten (Art. 9 DSGVO)" in text
    assert "jederzeit ohne Angabe von Gründen widerrufen" in text and "con-42" in text
    assert "Erteilt am: 2026-11-20 11:00 CET" in text  # local time with its zone, not UTC
    assert "psychosocial" not in text and "witnessed-verbal" not in text  # no codes


def test_a_receipt_in_another_language_comes_first_and_the_binding_german_follows():
    text = receipt_text(TERMS, PersonLanguage.FA)
    farsi, german = text.split("—" * 40)
    assert farsi.strip().startswith("رضایت شما – رسید")
    assert "این ترجمه هنوز توسط مترجم بررسی نشده است" in farsi  # a draft says so
    assert "con-42" in farsi and "Landkreis Oberallgäu" in farsi
    assert "Ihre Einwilligung – Quittung" in german and "Diese Übersetzung" not in german


def test_the_english_receipt_says_the_same_and_shows_a_withdrawal():
    withdrawn = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    text = receipt_text(TERMS, PersonLanguage.EN, withdrawn)
    english = text.split("—" * 40)[0]
    assert "  - Agency oa-rechtshilfe: name, residence status" in english
    assert "Any agency of this kind: psychosocial support: health, needs" in english
    assert "withdraw this consent at any time" in english and "until withdrawn" in english
    assert "Withdrawn on: 2026-07-01 10:30 CEST" in english
    assert "has not yet been checked" not in english  # English is a source text


@pytest.mark.parametrize("language", list(PersonLanguage))
def test_every_language_prints_a_whole_receipt_without_a_code_or_an_english_label(language):
    text = receipt_text(TERMS, language)
    mine = text.split("—" * 40)[0]
    for code in ("residence-status", "witnessed-verbal", "referral\n", "signed-form"):
        assert code not in mine, (language, code)
    if language not in (PersonLanguage.EN, PersonLanguage.DE):
        assert "Controller" not in mine and "Recipients" not in mine, language


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


def test_in_right_to_left_text_times_and_ids_stay_left_to_right():
    arabic = receipt_text(TERMS, PersonLanguage.AR).split("—" * 40)[0]
    assert "\u20662026-11-20 11:00 CET\u2069" in arabic and "\u2066con-42\u2069" in arabic
    german = receipt_text(TERMS, PersonLanguage.DE)
    assert "\u2066" not in german  # left-to-right text needs no isolates


def test_the_person_reads_an_agency_s_name_where_the_directory_gave_one():
    named = receipt_text(TERMS, PersonLanguage.DE, names={"oa-rechtshilfe": "Rechtshilfe e. V."})
    assert "  - Stelle Rechtshilfe e. V.: Aufenthaltsstatus, Name" in named
    assert "oa-rechtshilfe" not in named
    assert "  - Stelle oa-rechtshilfe:" in receipt_text(TERMS, PersonLanguage.DE)  # no name
