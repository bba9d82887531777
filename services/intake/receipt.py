"""The consent receipt handed to the person, in German or English (text and JSON).

The JSON follows the Kantara Consent Receipt v1.1 fields where they apply; the labels come
from the message catalogue below (the web app issue moves all UI strings to gettext).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from schemas.events import ConsentTerms
from services.consent.rules import releasable_to

Language = Literal["de", "en"]

LABELS: dict[str, dict[str, str]] = {
    "de": {
        "title": "Ihre Einwilligung – Quittung",
        "controller": "Verantwortlich",
        "given": "Erteilt am",
        "method": "Form",
        "text": "Einwilligungstext",
        "expires": "Gültig bis",
        "no_expiry": "bis zum Widerruf",
        "purposes": "Zwecke",
        "recipients": "Empfänger und was sie erhalten",
        "special": "Ausdrücklich eingewilligt in besondere Kategorien (Art. 9 DSGVO)",
        "withdraw": "Sie können diese Einwilligung jederzeit ohne Angabe von Gründen widerrufen: "
        "Wenden Sie sich an {controller} und nennen Sie die Nummer {consent_id}. Alle Stellen, "
        "die Daten erhalten haben, werden dann zur Löschung aufgefordert.",
        "agency": "Stelle",
        "kind": "jede Stelle der Art",
    },
    "en": {
        "title": "Your consent – receipt",
        "controller": "Controller",
        "given": "Given on",
        "method": "Method",
        "text": "Consent text",
        "expires": "Valid until",
        "no_expiry": "until withdrawn",
        "purposes": "Purposes",
        "recipients": "Recipients and what they receive",
        "special": "Explicit consent to special categories (GDPR Art. 9)",
        "withdraw": "You can withdraw this consent at any time without giving reasons: contact "
        "{controller} and quote number {consent_id}. Every agency that received data will then "
        "be asked to delete it.",
        "agency": "agency",
        "kind": "any agency of the kind",
    },
}
TERMS: dict[str, dict[str, str]] = {
    "de": {
        "referral": "Vermittlung an eine Fachstelle",
        "follow-up": "Nachverfolgung",
        "signed-form": "unterschriebenes Formular",
        "witnessed-verbal": "mündlich, bezeugt",
        "electronic": "elektronisch",
        "client-reference": "Aktenzeichen",
        "name": "Name",
        "needs": "Anliegen",
        "languages": "Sprachen",
        "age": "Alter",
        "area": "Wohnort",
        "case-note": "Notiz zum Fall",
        "contact": "Kontaktdaten",
        "residence-status": "Aufenthaltsstatus",
        "health": "Gesundheit",
        "ethnic-origin": "ethnische Herkunft",
        "religion": "Religion",
    },
    "en": {
        "referral": "referral to a specialist agency",
        "follow-up": "follow-up",
        "signed-form": "signed form",
        "witnessed-verbal": "verbal, witnessed",
        "electronic": "electronic",
        "client-reference": "file reference",
        "name": "name",
        "needs": "needs",
        "languages": "languages",
        "age": "age",
        "area": "place of residence",
        "case-note": "case note",
        "contact": "contact details",
        "residence-status": "residence status",
        "health": "health",
        "ethnic-origin": "ethnic origin",
        "religion": "religion",
    },
}


def receipt_json(terms: ConsentTerms, withdrawn_at: datetime | None) -> dict[str, Any]:
    """A machine-readable receipt (Kantara Consent Receipt v1.1 field names)."""
    return {
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "DE",
        "consentTimestamp": int(terms.given_at.timestamp()),
        "collectionMethod": terms.method.value,
        "consentReceiptID": terms.consent_id,
        "language": terms.text_language,
        "piiPrincipalId": terms.person_reference,
        "piiControllers": [{"piiController": terms.controller}],
        "policyUrl": f"consent-text:{terms.text_version}",
        "services": [
            {
                "service": "wegweiser-referral",
                "purposes": [{"purpose": p.value} for p in terms.purposes],
            }
        ],
        "recipients": [_recipient(terms, r) for r in terms.recipients],
        "sensitive": terms.explicit_special_categories,
        "expiresAt": terms.expires_at.isoformat() if terms.expires_at else None,
        "withdrawnAt": withdrawn_at.isoformat() if withdrawn_at else None,
    }


def receipt_text(terms: ConsentTerms, language: Language) -> str:
    """The receipt as plain text for printing."""
    label, term = LABELS[language], TERMS[language]
    lines = [
        label["title"],
        "",
        f"{label['controller']}: {terms.controller}",
        f"{label['given']}: {terms.given_at:%Y-%m-%d %H:%M} UTC",
        f"{label['method']}: {term[terms.method.value]}",
        f"{label['text']}: {terms.text_version} ({terms.text_language})",
        f"{label['expires']}: "
        + (f"{terms.expires_at:%Y-%m-%d}" if terms.expires_at else label["no_expiry"]),
        f"{label['purposes']}: " + ", ".join(term[p.value] for p in terms.purposes),
        "",
        f"{label['recipients']}:",
    ]
    for recipient in terms.recipients:
        who = (
            f"{label['agency']} {recipient.agency_id}"
            if recipient.agency_id
            else f"{label['kind']} {recipient.kind}"
        )
        what = sorted(term[c] for c in _categories(terms, recipient))
        lines.append(f"  - {who}: " + ", ".join(what))
    if terms.explicit_special_categories:
        lines += ["", label["special"]]
    lines += [
        "",
        label["withdraw"].format(controller=terms.controller, consent_id=terms.consent_id),
    ]
    return "\n".join(lines) + "\n"


def _categories(terms: ConsentTerms, recipient: Any) -> set[str]:
    if recipient.agency_id:
        return {c.value for c in releasable_to(terms, recipient.agency_id, None)}  # type: ignore[arg-type]
    return {c.value for c in releasable_to(terms, "", recipient.kind)}


def _recipient(terms: ConsentTerms, recipient: Any) -> dict[str, Any]:
    return {
        "agency": recipient.agency_id,
        "kind": recipient.kind.value if recipient.kind else None,
        "piiCategories": sorted(_categories(terms, recipient)),
    }
