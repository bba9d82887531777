"""The person's own page: what they agreed to, who received what, where each referral
stands, their data to take away, and their own withdrawal, without an account.

The page is reached by a link that holds a token of 128 random bits. Intake keeps only the
token's SHA-256 (a token that long needs no slow hash: nobody can try enough of them), so
neither its database nor a backup of it lets anyone open a page. An office issues the link
for one consent; issuing again replaces it (a lost receipt: the old link stops working). A
link works until the request's record is erased by retention; after a withdrawal it still
shows the agencies' deletions, with no personal data, which the withdrawal erased.

Every way a token can fail (never issued, replaced, erased, malformed) is one refusal,
`UnknownLink`. A well-formed token is looked up the same way whether it was never issued,
replaced or erased, so those answers are alike in words and in time; a malformed one is
refused before any lookup (its form is no secret).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, delete

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ConsentTerms, PersonLinkIssued
from services.consent.texts import PersonLanguage
from services.intake import SOURCE, views
from services.intake.office import Office
from services.intake.store import PersonLink, ReferralView, RequestRow
from services.intake.vault import PersonErased
from wegweiser.platform.outbox import stage

TOKEN_BYTES = 16
"""128 bits: guessing one token among a million live ones takes about 2^107 tries."""
TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
"""The form of every token `issue` makes (`secrets.token_urlsafe(16)`)."""


def plausible(token: str) -> bool:
    """Whether `token` has the form of a token (not whether one was issued)."""
    return TOKEN.fullmatch(token) is not None


class UnknownLink(Exception):
    """No page behind this token: never issued, replaced, malformed, or its request erased."""


@dataclass(frozen=True)
class Issued:
    token: str
    link: PersonLink


@dataclass(frozen=True)
class Page:
    """What the person's page shows: metadata only, never the person's data itself."""

    link: PersonLink
    terms: ConsentTerms
    withdrawn_at: datetime | None
    referrals: list[ReferralView]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(office: Office, session: Session, consent_id: str, language: PersonLanguage) -> Issued:
    """A new link to the page of one of the office's consents, replacing any earlier one."""
    _consent, request = views.own_consent(office, session, consent_id, lock=True)
    if request.erased_at is not None:
        raise PersonErased(f"request {request.id} has been erased")
    session.exec(delete(PersonLink).where(col(PersonLink.consent_id) == consent_id))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = PersonLink(
        token_sha256=digest(token),
        consent_id=consent_id,
        request_id=request.id,
        office_id=office.office_id,
        language=language.value,
        issued_at=datetime.now(UTC),
    )
    session.add(link)
    issued = PersonLinkIssued(
        consent_id=consent_id,
        request_id=request.id,
        office_id=office.office_id,
        issued_at=link.issued_at,
    )
    stage(
        session, subjects.PERSON_LINK_ISSUED, new_event(issued, source=SOURCE, subject=request.id)
    )
    session.flush()
    return Issued(token, link)


def find(session: Session, token: str) -> PersonLink:
    """The live link a token opens; `UnknownLink` for every token that opens none."""
    if not plausible(token):
        raise UnknownLink("this link opens no page")
    link = session.get(PersonLink, digest(token))
    request = session.get(RequestRow, link.request_id) if link else None
    if link is None or request is None or request.erased_at is not None:
        raise UnknownLink("this link opens no page")
    return link


def page(office: Office, session: Session, link: PersonLink) -> Page:
    terms, withdrawn_at = views.load_consent(office, session, link.consent_id)
    referrals = sorted(
        views.referrals_of(office, session, link.request_id), key=lambda r: r.created_at
    )
    return Page(link, terms, withdrawn_at, referrals)


def forget(session: Session, request_id: str) -> None:
    """The request is erased: its links open nothing any more."""
    session.exec(delete(PersonLink).where(col(PersonLink.request_id) == request_id))
