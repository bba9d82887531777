"""Does a consent cover sending this data to this agency for this purpose, now?"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.events import ConsentTerms
from schemas.vocabulary import SPECIAL_CATEGORIES, AgencyKind, DataCategory, Purpose


class ConsentViolation(Exception):
    """A consent does not cover what is being attempted."""

    code = "consent.not-covered"


class ConsentWithdrawn(ConsentViolation):
    """The person withdrew the consent."""

    code = "consent.withdrawn"


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
        raise ConsentViolation(f"consent {terms.consent_id} is dated in the future")
    if terms.expires_at is not None and now >= terms.expires_at:
        raise ConsentViolation(f"consent {terms.consent_id} expired at {terms.expires_at}")
    if not covers_recipient(terms, agency_id, kind):
        raise ConsentViolation(
            f"consent {terms.consent_id} does not cover agency {agency_id} (kind {kind})"
        )
    if purpose not in terms.purposes:
        raise ConsentViolation(f"consent {terms.consent_id} does not cover the purpose {purpose}")
    uncovered = sorted(set(categories) - set(terms.data_categories))
    if uncovered:
        raise ConsentViolation(
            f"consent {terms.consent_id} does not release {', '.join(uncovered)}"
        )


def releasable(terms: ConsentTerms) -> frozenset[DataCategory]:
    """The categories this consent lets travel; special ones only if named explicitly."""
    allowed = frozenset(terms.data_categories)
    return allowed - (SPECIAL_CATEGORIES - allowed)
