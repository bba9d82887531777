"""A person's case as intake holds it, what of it travels to an agency, and how intake follows
what became of each referral.

Pure domain: no database, no NATS, no HTTP.

- `Person` is the personal part of a request, kept encrypted under the person's own key.
- `case_for` is data minimisation: an agency receives only the categories its consent entry
  releases, and only the needs the consent lets it learn.
- `seal` signs the case as the office and encrypts it to the agency's key; nothing is sent to
  an agency without one.
- `seal_comment` and `open_comment`: a free-text comment travels and rests only sealed.
- `fold_change`, `fold_deletion` and `fold_refusal` fold the referral service's events into
  the office's view of a referral; versions keep a late event from undoing a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from jwcrypto import jwk
from pydantic import BaseModel

from schemas.events import (
    CaseDetails,
    ConsentTerms,
    Contact,
    LegalDeadline,
    ReferralChange,
    Residence,
    SealedCase,
    SealedNote,
)
from schemas.queries import AgencyCard, Candidate
from schemas.vocabulary import (
    CLOSED_STATES,
    OVERDUE_KINDS,
    REMINDER_KINDS,
    AgencyKind,
    DataCategory,
    DeletionKind,
    Need,
    Purpose,
    ReferralStatus,
)
from services.consent import rules as consent
from wegweiser.platform import keys, sealing
from wegweiser.platform.refusal import Refused


class Person(BaseModel):
    """The personal part of a request, as stored encrypted in the request's row."""

    client_name: str | None = None
    needs: list[Need]
    languages: list[str]
    municipality: str | None = None
    postcode: str | None = None
    age: int | None = None
    note: str | None = None
    contact: Contact | None = None
    residence: Residence | None = None
    legal_deadline: LegalDeadline | None = None


@dataclass(frozen=True)
class Request:
    """A request of an office with its person's data opened, and the consent's terms."""

    request_id: str
    client_reference: str
    urgency: str
    person: Person
    terms: ConsentTerms
    consent_withdrawn: bool = False


HELPING = frozenset(
    {ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD,
     ReferralStatus.COMPLETED}
)  # fmt: skip
"""The states of a referral whose agency took the person on."""


def plan_state(statuses: Iterable[str]) -> str:
    """A plan's state from its referrals': `done` once every one is closed, `under-way` once
    an agency has taken the person on while others are open, `open` before."""
    found = [ReferralStatus(s) for s in statuses]
    if all(s in CLOSED_STATES for s in found):
        return "done"
    if any(s in HELPING for s in found):
        return "under-way"
    return "open"


class Suggested(Protocol):
    """A suggestion as `next_to_try` reads it (api_models.Suggestion)."""

    @property
    def candidate(self) -> Candidate: ...

    @property
    def sendable(self) -> bool: ...


def next_to_try(
    suggestions: Iterable[Suggested], tried: set[str], kind: AgencyKind | None = None, most: int = 3
) -> list[AgencyCard]:
    """The agencies to offer the request to next, best ranked first: suggested, sendable
    (the consent covers them), of `kind` if given, and never sent this request before (an
    agency that declined or let the offer lapse is not asked again)."""
    found: dict[str, AgencyCard] = {}
    for s in suggestions:
        agency = s.candidate.agency
        if s.sendable and agency.agency_id not in tried and kind in (None, agency.kind):
            found.setdefault(agency.agency_id, agency)
    return list(found.values())[:most]


class NotSendable(Refused):
    """The request cannot go to this agency."""

    code = "agency.not-sendable"


class NotSealable(NotSendable):
    """The agency has no public key in the directory, so nothing can be sent to it."""

    code = "agency.no-key"


def sendable_case(request: Request, agency: AgencyCard, now: datetime) -> CaseDetails:
    """The one rule whether this request may go to this agency now: the suggestions show its
    verdict beside each agency, and sending enforces it. Returns the case that would travel;
    raises `NotSendable` (the agency cannot take it) or `consent.ConsentViolation` (the
    consent does not let it go there).

    Capacity does not block: an agency that reports no free place is not suggested (the
    directory excludes it and says so), but a counsellor who knows better (a waiting list,
    an urgent case agreed by phone) may still send to it, and the agency decides."""
    if not agency.active:
        raise NotSendable(f"agency {agency.agency_id!r} is not active", "agency.inactive")
    if not agency.public_key:
        raise NotSealable(f"agency {agency.agency_id!r} has no public key in the directory")
    if request.consent_withdrawn:
        raise consent.ConsentWithdrawn(f"consent {request.terms.consent_id} was withdrawn")
    details = case_for(request, agency)
    consent.check(
        request.terms,
        agency_id=agency.agency_id,
        kind=agency.kind,
        purpose=Purpose.REFERRAL,
        categories=details.released_categories,
        now=now,
    )
    return details


def why_not_sendable(
    request: Request, agency: AgencyCard, now: datetime
) -> NotSendable | consent.ConsentViolation | None:
    """`sendable_case`'s verdict as a value: None when the request may go to the agency."""
    try:
        sendable_case(request, agency, now)
    except (NotSendable, consent.ConsentViolation) as refused:
        return refused
    return None


def case_for(request: Request, agency: AgencyCard) -> CaseDetails:
    """Only what the consent releases to this agency (data minimisation)."""
    allowed = consent.releasable_to(request.terms, agency.agency_id, agency.kind)
    person = request.person
    fields: dict[str, object] = {"urgency": request.urgency}
    released: list[DataCategory] = []
    for category, values in (
        (DataCategory.CLIENT_REFERENCE, {"client_reference": request.client_reference}),
        (DataCategory.NAME, {"client_name": person.client_name}),
        (DataCategory.NEEDS, {"needs": consent.releasable_needs(request.terms, person.needs)}),
        (DataCategory.LANGUAGES, {"languages": tuple(person.languages)}),
        (DataCategory.AREA, {"municipality": person.municipality, "postcode": person.postcode}),
        (DataCategory.AGE, {"age": person.age}),
        (DataCategory.CASE_NOTE, {"note": person.note}),
        (DataCategory.CONTACT, {"contact": person.contact}),
        (
            DataCategory.RESIDENCE_STATUS,  # the deadline's kind tells of the asylum decision
            {"residence": person.residence, "legal_deadline": person.legal_deadline},
        ),
    ):
        if category in allowed and any(v not in (None, ()) for v in values.values()):
            fields.update(values)
            released.append(category)
    return CaseDetails(**fields, released_categories=tuple(released))


def seal(case: CaseDetails, agency: AgencyCard, signer: jwk.JWK, office_id: str) -> SealedCase:
    """Sign the case as the office and encrypt it to the agency's public key."""
    if not agency.public_key:
        raise NotSealable(f"agency {agency.agency_id!r} has no public key in the directory")
    token = sealing.seal(
        case.model_dump(mode="json", exclude_none=True),
        recipient=keys.from_dict(agency.public_key),
        recipient_kid=agency.agency_id,
        signer=signer,
        signer_kid=office_id,
    )
    return SealedCase(
        jwe=token,
        recipient_kid=agency.agency_id,
        signer_kid=office_id,
        released_categories=case.released_categories,
    )


def seal_comment(
    text: str, referral_id: str, agency: AgencyCard, signer: jwk.JWK, office_id: str
) -> SealedNote:
    """The office's comment on a referral, signed as the office and sealed to its agency."""
    if not agency.public_key:
        raise NotSealable(f"agency {agency.agency_id!r} has no public key in the directory")
    return sealing.seal_comment(
        text,
        referral_id,
        recipient=keys.from_dict(agency.public_key),
        recipient_kid=agency.agency_id,
        signer=signer,
        signer_kid=office_id,
    )


@dataclass(frozen=True)
class Comment:
    """A comment as the office reads it: its text, or why it cannot be read (`unreadable`:
    a seal error's code; `sealed-to-agency` for the office's own, which only the agency
    opens)."""

    text: str | None = None
    unreadable: str | None = None


def open_comment(
    stored: dict[str, object] | None, referral_id: str, key: jwk.JWK, office_id: str
) -> Comment | None:
    """Open a comment kept sealed (a SealedNote's JSON) with the office's key, to be shown."""
    if stored is None:
        return None
    note = SealedNote.model_validate(stored)
    if note.recipient_kid != office_id:
        return Comment(unreadable="sealed-to-agency")
    try:
        return Comment(sealing.open_comment(note, referral_id, key=key, kid=office_id))
    except sealing.SealError as exc:
        return Comment(unreadable=exc.code)


class View(Protocol):
    """The office's view of one referral, as the folds change it."""

    office_id: str
    version: int
    status: str
    updated_at: datetime
    overdue: str | None
    reason: str | None
    outcome: str | None
    comment: dict[str, object] | None
    problem: str | None
    deletion: str | None
    open_key: str | None


def fold_change(view: View, kind: str, change: ReferralChange) -> bool:
    """Apply a change of the referral's state; False when it is older than what the view
    shows (it arrived late: the trail keeps it, the view stays)."""
    if change.version <= view.version:
        return False
    view.version, view.status = change.version, change.status.value
    view.updated_at = change.occurred_at
    if kind in OVERDUE_KINDS:
        view.overdue = kind
    elif change.status is not ReferralStatus.REQUESTED:
        view.overdue = None
    if change.reason and kind not in REMINDER_KINDS:
        view.reason = change.reason
    if change.outcome:
        view.outcome = change.outcome
    if change.comment and change.comment.recipient_kid == view.office_id:
        view.comment = change.comment.model_dump(mode="json")
    view.open_key = None if view.status in CLOSED_STATES else "open"
    return True


def fold_deletion(view: View, kind: str) -> None:
    """Follow the agency's deletion after a withdrawal until it is confirmed."""
    if view.deletion != DeletionKind.CONFIRMED:
        view.deletion = kind


def fold_refusal(view: View, message: str) -> None:
    """Show why the referral service refused the office's command; a referral refused
    before it was ever offered no longer blocks a new one to the same agency."""
    view.problem = message
    if view.status == ReferralStatus.DRAFT.value:
        view.open_key = None
