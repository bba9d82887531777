"""Does a consent cover sending this data to this agency for this purpose, now?"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.events import ConsentTerms
from schemas.vocabulary import SPECIAL_CATEGORIES, AgencyKind, DataCategory, Need, Purpose
from wegweiser.platform.refusal import Refused


class ConsentViolation(Refused):
    """A consent does not cover what is being attempted."""

    code = "consent.not-covered"


class ConsentWithdrawn(ConsentViolation):
    """The person withdrew the consent."""

    code = "consent.withdrawn"


# Being referred to these agencies, or needing their help, reveals health data (DOMAIN.md:
# psychosocial help, violence protection): GDPR Art. 9 asks for explicit consent.
REVEALING_KINDS = frozenset(
    {AgencyKind.PSYCHOSOCIAL, AgencyKind.VIOLENCE_PROTECTION, AgencyKind.HEALTH}
)
REVEALING_NEEDS = frozenset({Need.PSYCHOSOCIAL, Need.VIOLENCE_PROTECTION, Need.HEALTH})
"""Top-level needs whose mention reveals health or violence; their sub-needs reveal it too."""


def covers_recipient(terms: ConsentTerms, agency_id: str, kind: AgencyKind) -> bool:
    """True if the consent names the agency or its kind."""
    return any(r.agency_id == agency_id or r.kind == kind for r in terms.recipients)


def check(
    terms: ConsentTerms,
    *,
    agency_id: str,
    kind: AgencyKind,
    purpose: Purpose,
    categories: Iterable[DataCategory],
    now: datetime,
) -> None:
    """Raise ConsentViolation naming the first rule the attempt breaks."""
    if now < terms.given_at:
        raise ConsentViolation(
            f"consent {terms.consent_id} is dated in the future", "consent.not-yet-given"
        )
    if terms.expires_at is not None and now >= terms.expires_at:
        raise ConsentViolation(
            f"consent {terms.consent_id} expired at {terms.expires_at}", "consent.expired"
        )
    if not covers_recipient(terms, agency_id, kind):
        raise ConsentViolation(
            f"consent {terms.consent_id} does not cover agency {agency_id} (kind {kind})"
        )
    if kind in REVEALING_KINDS and not terms.explicit_special_categories:
        raise ConsentViolation(
            f"a referral to a {kind} agency reveals health data: consent {terms.consent_id} "
            "must explicitly cover special categories (GDPR Art. 9)",
            "consent.not-explicit",
        )
    if purpose not in terms.purposes:
        raise ConsentViolation(
            f"consent {terms.consent_id} does not cover the purpose {purpose}", "consent.purpose"
        )
    uncovered = sorted(set(categories) - releasable_to(terms, agency_id, kind))
    if uncovered:
        raise ConsentViolation(
            f"consent {terms.consent_id} does not release {', '.join(uncovered)} to {agency_id}",
            "consent.categories",
        )


def releasable_needs(terms: ConsentTerms, needs: Iterable[Need]) -> tuple[Need, ...]:
    """The needs that may be shown to an agency: revealing ones only under explicit consent."""
    if terms.explicit_special_categories:
        return tuple(needs)
    return tuple(n for n in needs if n.root not in REVEALING_NEEDS)


def releasable_to(terms: ConsentTerms, agency_id: str, kind: AgencyKind) -> frozenset[DataCategory]:
    """What this agency may receive: the categories of the entry naming it, else of the entry
    naming its kind, else the consent's own; special categories only under explicit consent."""
    named = [r for r in terms.recipients if r.agency_id == agency_id]
    by_kind = [r for r in terms.recipients if r.kind == kind]
    entries = named or by_kind
    if not entries:
        return frozenset()
    entry = entries[0]
    allowed = frozenset(entry.data_categories or terms.data_categories)
    return allowed if terms.explicit_special_categories else allowed - SPECIAL_CATEGORIES
