"""The consent receipt handed to the person: in their language with the binding German text
after it (text), and machine-readable (JSON).

The JSON follows the Kantara Consent Receipt v1.1 fields where they apply; the texts come from
the person-facing catalogues (services/consent/texts.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import ConsentTerms
from schemas.vocabulary import DataCategory
from services.consent import texts
from services.consent.rules import releasable_to
from services.consent.texts import SEPARATOR, PersonLanguage

BERLIN = ZoneInfo("Europe/Berlin")
"""Times on a receipt are the person's local time, with the zone (never bare UTC)."""


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


def receipt_text(
    terms: ConsentTerms,
    language: PersonLanguage,
    withdrawn_at: datetime | None = None,
    names: dict[str, str] | None = None,
) -> str:
    """The receipt as plain text for printing: in the person's language, then in German (the
    binding text); a draft translation says so at its top. `names`: the agencies' names by
    id (an agency without one shows its id)."""
    sections = [
        _section(terms, texts.catalogue(lang), withdrawn_at, names or {})
        for lang in texts.printed_in(language)
    ]
    return SEPARATOR.join(sections)


def _section(
    terms: ConsentTerms,
    t: texts.Catalogue,
    withdrawn_at: datetime | None,
    names: dict[str, str],
) -> str:
    def ltr(value: str) -> str:
        return texts.left_to_right(value, t.language)

    lines = [t("Your consent – receipt"), ""]
    if t.review.draft:
        lines += [
            t(
                "This translation has not yet been checked by a translator. "
                "The German text that follows is binding."
            ),
            "",
        ]
    lines += [
        f"{t('Controller')}: {ltr(terms.controller)}",
        f"{t('Given on')}: {ltr(_local(terms.given_at))}",
        f"{t('Method')}: {t(texts.METHODS[terms.method])}",
        f"{t('Consent text')}: {ltr(f'{terms.text_version} ({terms.text_language})')}",
        f"{t('Valid until')}: "
        + (ltr(_local(terms.expires_at)) if terms.expires_at else t("until withdrawn")),
        f"{t('Purposes')}: " + ", ".join(t(texts.PURPOSES[p]) for p in terms.purposes),
    ]
    if withdrawn_at is not None:
        lines.append(f"{t('Withdrawn on')}: {ltr(_local(withdrawn_at))}")
    lines += ["", f"{t('Recipients and what they receive')}:"]
    for recipient in terms.recipients:
        if recipient.kind is not None:
            who = t("Any agency of this kind: {kind}", kind=t(texts.KINDS[recipient.kind]))
        else:
            agency_id = str(recipient.agency_id)
            who = t("Agency {agency}", agency=ltr(names.get(agency_id, agency_id)))
        what = sorted(t(texts.CATEGORIES[DataCategory(c)]) for c in _categories(terms, recipient))
        lines.append(f"  - {who}: " + ", ".join(what))
    if terms.explicit_special_categories:
        lines += [
            "",
            t("You explicitly agreed that special categories of data (GDPR Art. 9) may be shared."),
        ]
    withdraw = (
        "You can withdraw this consent at any time without giving reasons: contact "
        "{controller} and quote the number {consent_id}. Every agency that received your data "
        "will then be asked to delete it."
    )
    said = t(withdraw, controller=ltr(terms.controller), consent_id=ltr(terms.consent_id))
    lines += ["", said]
    return "\n".join(lines) + "\n"


def _local(moment: datetime) -> str:
    """A time as the person's clock shows it, with its zone."""
    return f"{moment.astimezone(BERLIN):%Y-%m-%d %H:%M %Z}"


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
