"""The consent receipt handed to the person: in their language with the binding German text
after it (text), and machine-readable (JSON).

The JSON follows the Kantara Consent Receipt v1.1 fields where they apply; the texts come from
the person-facing catalogues (services/consent/texts.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.events import ConsentTerms
from schemas.vocabulary import DataCategory
from services.consent import texts
from services.consent.rules import releasable_to
from services.consent.texts import SEPARATOR, PersonLanguage
from services.intake.api_models import (
    ReceiptDocument,
    ReceiptFact,
    ReceiptPart,
    ReceiptRecipient,
)


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
        "consentTextSha256": terms.text_sha256,
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


def document(
    terms: ConsentTerms,
    language: PersonLanguage,
    withdrawn_at: datetime | None = None,
    names: dict[str, str] | None = None,
) -> ReceiptDocument:
    """The receipt in words: in the person's language, then in German (the binding text); a
    draft translation says so. `names`: the agencies' names by id (else the id shows)."""
    parts = [
        _part(terms, texts.catalogue(lang), withdrawn_at, names or {})
        for lang in texts.printed_in(language)
    ]
    return ReceiptDocument(consent_id=terms.consent_id, parts=parts)


def receipt_text(
    terms: ConsentTerms,
    language: PersonLanguage,
    withdrawn_at: datetime | None = None,
    names: dict[str, str] | None = None,
) -> str:
    """The receipt as plain text, part after part (the document's words, line by line)."""
    return SEPARATOR.join(
        _text(part) for part in document(terms, language, withdrawn_at, names).parts
    )


def _text(part: ReceiptPart) -> str:
    lines = [part.title, ""]
    if part.draft:
        lines += [part.draft, ""]
    lines += [f"{fact.label}: {fact.value}" for fact in part.facts]
    lines += ["", f"{part.recipients_heading}:"]
    lines += [f"  - {r.who}: " + ", ".join(r.receives) for r in part.recipients]
    if part.special_categories:
        lines += ["", part.special_categories]
    lines += ["", part.withdrawal]
    return "\n".join(lines) + "\n"


def _part(
    terms: ConsentTerms,
    t: texts.Catalogue,
    withdrawn_at: datetime | None,
    names: dict[str, str],
) -> ReceiptPart:
    def ltr(value: str) -> str:
        return texts.left_to_right(value, t.language)

    def at(moment: datetime) -> str:
        return ltr(texts.local_time(moment))

    facts = [
        (t("Controller"), ltr(terms.controller)),
        (t("Given on"), at(terms.given_at)),
        (t("Method"), t(texts.METHODS[terms.method])),
        (t("Consent text"), ltr(f"{terms.text_version} ({terms.text_language})")),
        (t("Valid until"), at(terms.expires_at) if terms.expires_at else t("until withdrawn")),
        (t("Purposes"), ", ".join(t(texts.PURPOSES[p]) for p in terms.purposes)),
    ]
    if withdrawn_at is not None:
        facts.append((t("Withdrawn on"), at(withdrawn_at)))
    recipients = []
    for recipient in terms.recipients:
        if recipient.kind is not None:
            who = t("Any agency of this kind: {kind}", kind=t(texts.KINDS[recipient.kind]))
        else:
            agency_id = str(recipient.agency_id)
            who = t("Agency {agency}", agency=ltr(names.get(agency_id, agency_id)))
        received = categories_for(terms, recipient)
        what = sorted(t(texts.CATEGORIES[DataCategory(c)]) for c in received)
        recipients.append(ReceiptRecipient(who=who, receives=what))
    special = (
        t("You explicitly agreed that special categories of data (GDPR Art. 9) may be shared.")
        if terms.explicit_special_categories
        else None
    )
    withdraw = (
        "You can withdraw this consent at any time without giving reasons: contact "
        "{controller} and quote the number {consent_id}. Every agency that received your data "
        "will then be asked to delete it."
    )
    draft = (
        "This translation has not yet been checked by a translator. "
        "The German text that follows is binding."
    )
    return ReceiptPart(
        language=t.language,
        right_to_left=texts.SCRIPTS[t.language].rtl,
        title=t("Your consent – receipt"),
        draft=t(draft) if t.review.draft else None,
        facts=[ReceiptFact(label=label, value=value) for label, value in facts],
        recipients_heading=t("Recipients and what they receive"),
        recipients=recipients,
        special_categories=special,
        withdrawal=t(withdraw, controller=ltr(terms.controller), consent_id=ltr(terms.consent_id)),
    )


def categories_for(terms: ConsentTerms, recipient: Any) -> set[str]:
    """The data categories one recipient of the consent receives."""
    if recipient.agency_id:
        return {c.value for c in releasable_to(terms, recipient.agency_id, None)}  # type: ignore[arg-type]
    return {c.value for c in releasable_to(terms, "", recipient.kind)}


def _recipient(terms: ConsentTerms, recipient: Any) -> dict[str, Any]:
    return {
        "agency": recipient.agency_id,
        "kind": recipient.kind.value if recipient.kind else None,
        "piiCategories": sorted(categories_for(terms, recipient)),
    }
