"""Intake's use cases: record a request with consent, send and cancel referrals, project events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import structlog
from jwcrypto import jwk
from pydantic import BaseModel
from sqlmodel import Session, col, select

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import (
    CaseDetails,
    ConsentRecorded,
    ConsentTerms,
    ConsentWithdrawn,
    DeletionEvent,
    ReferralCancellationRequested,
    ReferralChange,
    ReferralRequested,
    RequestRecorded,
    SealedCase,
    TransitionRefused,
)
from schemas.queries import AgencyCard
from schemas.vocabulary import CLOSED_STATES, DataCategory, Need, Purpose, ReferralStatus
from services.consent import rules as consent
from services.intake.api_models import RequestCreate
from services.intake.store import ConsentRow, ReferralView, RequestRow, TrailEntry
from services.intake.vault import PersonErased, Vault
from wegweiser.platform import keys, sealing
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.outbox import stage

SOURCE = "/wegweiser/intake"
TERMINAL = CLOSED_STATES
log = structlog.get_logger()


class NotFound(Exception):
    """No such request or referral (for this office)."""


class Forbidden(Exception):
    """The request, consent or referral exists but belongs to another office."""


class Conflict(Exception):
    """The command contradicts the referral's known state."""


class Owned(Protocol):
    office_id: str


OwnedRow = TypeVar("OwnedRow", bound=Owned)


def _owned(row: OwnedRow | None, office_id: str, what: str) -> OwnedRow:
    """`row` if it exists and is this office's; NotFound or Forbidden otherwise."""
    if row is None:
        raise NotFound(f"no {what}")
    if row.office_id != office_id:
        raise Forbidden(f"{what} belongs to another office")
    return row


@dataclass(frozen=True)
class Context:
    """What intake's handlers need besides a session: who we are, the vault, our signing key."""

    office_id: str
    vault: Vault
    signer: jwk.JWK
    controller: str = "Wegweiser counselling office"


class Person(BaseModel):
    """The personal part of a request, as stored encrypted in `RequestRow.personal`."""

    client_name: str | None = None
    needs: list[Need]
    languages: list[str]
    municipality: str | None = None
    postcode: str | None = None
    age: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class LoadedRequest:
    row: RequestRow
    person: Person
    terms: ConsentTerms


class NotSealable(Exception):
    """The agency has no public key in the directory, so nothing can be sent to it."""


def record_request(ctx: Context, session: Session, body: RequestCreate) -> tuple[RequestRow, str]:
    """Store a request (personal part encrypted) and its consent; emit metadata events."""
    now = datetime.now(UTC)
    request_id, consent_id = f"req-{uuid.uuid4()}", f"con-{uuid.uuid4()}"
    person = Person.model_validate(body.model_dump(include=set(Person.model_fields)))
    row = RequestRow(
        id=request_id,
        office_id=ctx.office_id,
        client_reference=body.client_reference,
        urgency=body.urgency.value,
        personal=ctx.vault.seal(
            session, body.client_reference, request_id, person.model_dump(mode="json")
        ),
        recorded_at=now,
    )
    terms = ConsentTerms(
        consent_id=consent_id,
        person_reference=ctx.vault.pseudonym(body.client_reference),
        controller=ctx.controller,
        **body.consent.model_dump(),
    )
    session.add(row)
    session.add(
        ConsentRow(id=consent_id, request_id=request_id, terms=terms.model_dump(mode="json"))
    )
    recorded = new_event(
        RequestRecorded(
            request_id=request_id, office_id=ctx.office_id, urgency=body.urgency, recorded_at=now
        ),
        source=SOURCE,
        subject=request_id,
    )
    stage(session, subjects.REQUEST_RECORDED, recorded)
    stage(
        session,
        subjects.CONSENT_RECORDED,
        new_event(
            ConsentRecorded(request_id=request_id, terms=terms),
            source=SOURCE,
            subject=request_id,
            causation=recorded,
        ),
    )
    return row, consent_id


def load_request(ctx: Context, session: Session, request_id: str) -> LoadedRequest:
    """A request of this office with its decrypted personal part and its consent."""
    row = _owned(session.get(RequestRow, request_id), ctx.office_id, f"request {request_id}")
    consent_row = session.exec(select(ConsentRow).where(ConsentRow.request_id == request_id)).one()
    if row.erased_at is not None:
        raise PersonErased(f"the personal data of request {request_id} has been erased")
    person = Person.model_validate(
        ctx.vault.open(session, row.client_reference, request_id, row.personal)
    )
    return LoadedRequest(row, person, ConsentTerms.model_validate(consent_row.terms))


def case_for(request: LoadedRequest, agency: AgencyCard) -> CaseDetails:
    """Only what the consent releases to this agency (data minimisation)."""
    allowed = consent.releasable_to(request.terms, agency.agency_id, agency.kind)
    person = request.person
    fields: dict[str, object] = {"urgency": request.row.urgency}
    released: list[DataCategory] = []
    for category, values in (
        (DataCategory.CLIENT_REFERENCE, {"client_reference": request.row.client_reference}),
        (DataCategory.NAME, {"client_name": person.client_name}),
        (DataCategory.NEEDS, {"needs": consent.releasable_needs(request.terms, person.needs)}),
        (DataCategory.LANGUAGES, {"languages": tuple(person.languages)}),
        (DataCategory.AREA, {"municipality": person.municipality, "postcode": person.postcode}),
        (DataCategory.AGE, {"age": person.age}),
        (DataCategory.CASE_NOTE, {"note": person.note}),
    ):
        if category in allowed and any(v not in (None, ()) for v in values.values()):
            fields.update(values)
            released.append(category)
    return CaseDetails(**fields, released_categories=tuple(released))  # type: ignore[arg-type]


def seal_case(ctx: Context, case: CaseDetails, agency: AgencyCard) -> SealedCase:
    """Sign the case as this office and encrypt it to the agency's public key."""
    if not agency.public_key:
        raise NotSealable(f"agency {agency.agency_id!r} has no public key in the directory")
    token = sealing.seal(
        case.model_dump(mode="json", exclude_none=True),
        recipient=keys.from_dict(agency.public_key),
        recipient_kid=agency.agency_id,
        signer=ctx.signer,
        signer_kid=ctx.office_id,
    )
    return SealedCase(
        jwe=token,
        recipient_kid=agency.agency_id,
        signer_kid=ctx.office_id,
        released_categories=case.released_categories,
    )


def request_referral(
    ctx: Context, session: Session, request_id: str, agency: AgencyCard
) -> tuple[ReferralView, bool]:
    """Ask the referral service to offer the request to the agency; idempotent per agency."""
    request = load_request(ctx, session, request_id)
    existing = session.exec(
        select(ReferralView).where(
            ReferralView.request_id == request_id,
            ReferralView.agency_id == agency.agency_id,
            col(ReferralView.open_key).is_not(None),
        )
    ).first()
    if existing is not None:
        return existing, False
    case = case_for(request, agency)
    now = datetime.now(UTC)
    if session.get(ConsentRow, request.terms.consent_id).withdrawn_at is not None:  # type: ignore[union-attr]
        raise consent.ConsentWithdrawn(f"consent {request.terms.consent_id} was withdrawn")
    consent.check(
        request.terms,
        agency_id=agency.agency_id,
        kind=agency.kind,
        purpose=Purpose.REFERRAL,
        categories=case.released_categories,
        now=now,
    )
    sealed = seal_case(ctx, case, agency)
    referral_id = f"ref-{uuid.uuid4()}"
    view = ReferralView(
        id=referral_id,
        request_id=request_id,
        office_id=ctx.office_id,
        agency_id=agency.agency_id,
        agency_name=agency.name,
        status=ReferralStatus.DRAFT.value,
    )
    session.add(view)
    event = new_event(
        ReferralRequested(
            referral_id=referral_id,
            request_id=request_id,
            office_id=ctx.office_id,
            agency_id=agency.agency_id,
            agency_kind=agency.kind,
            consent=request.terms,
            case=sealed,
        ),
        source=SOURCE,
        subject=referral_id,
        correlation_id=request_id,
    )
    stage(session, subjects.REFERRAL_REQUESTED, event)
    _trail(session, event.id, referral_id, None, "requested-by-office", "draft", None, now)
    return view, True


def _own_consent(ctx: Context, session: Session, consent_id: str) -> tuple[ConsentRow, RequestRow]:
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFound(f"no consent {consent_id}")
    request = _owned(
        session.get(RequestRow, row.request_id), ctx.office_id, f"consent {consent_id}"
    )
    return row, request


def load_consent(
    ctx: Context, session: Session, consent_id: str
) -> tuple[ConsentTerms, datetime | None]:
    """A consent of this office and when it was withdrawn, if it was."""
    row, request = _own_consent(ctx, session, consent_id)
    return ConsentTerms.model_validate(row.terms), row.withdrawn_at


@dataclass(frozen=True)
class Withdrawal:
    consent: ConsentRow
    person_data_erased: bool
    referrals: list[ReferralView]


def withdraw_consent(ctx: Context, session: Session, consent_id: str) -> Withdrawal:
    """Withdraw a consent: emit the withdrawal; erase the person's data unless another of
    their consents still stands. Withdrawing twice changes nothing more."""
    row, request = _own_consent(ctx, session, consent_id)
    person = request.client_reference
    if row.withdrawn_at is None:
        row.withdrawn_at = datetime.now(UTC)
        session.add(row)
        event = new_event(
            ConsentWithdrawn(
                consent_id=consent_id,
                request_id=row.request_id,
                office_id=ctx.office_id,
                withdrawn_at=row.withdrawn_at,
            ),
            source=SOURCE,
            subject=row.request_id,
        )
        stage(session, subjects.CONSENT_WITHDRAWN, event)
        session.flush()
        if not _other_consents_stand(session, person):
            ctx.vault.shred(session, person)
    erased = not _other_consents_stand(session, person) and not ctx.vault.has_key(session, person)
    views = list(
        session.exec(select(ReferralView).where(ReferralView.request_id == row.request_id))
    )
    return Withdrawal(row, erased, views)


def _other_consents_stand(session: Session, person_ref: str) -> bool:
    stmt = (
        select(ConsentRow.id)
        .join(RequestRow, col(RequestRow.id) == col(ConsentRow.request_id))
        .where(RequestRow.client_reference == person_ref, col(ConsentRow.withdrawn_at).is_(None))
    )
    return session.exec(stmt).first() is not None


def request_cancellation(
    ctx: Context, session: Session, referral_id: str, reason: str
) -> ReferralView:
    """Ask the referral service to cancel a referral this office sent."""
    view = load_referral(session, ctx.office_id, referral_id)
    if view.status in TERMINAL:
        raise Conflict(f"referral {referral_id} is already {view.status}")
    event = new_event(
        ReferralCancellationRequested(
            referral_id=referral_id, office_id=ctx.office_id, reason=reason
        ),
        source=SOURCE,
        subject=referral_id,
        correlation_id=view.request_id,
    )
    stage(session, subjects.CANCELLATION_REQUESTED, event)
    return view


def load_referral(session: Session, office_id: str, referral_id: str) -> ReferralView:
    return _owned(session.get(ReferralView, referral_id), office_id, f"referral {referral_id}")


def request_detail(ctx: Context, session: Session, request_id: str) -> dict[str, object]:
    """A request of this office with its person's data, or marked erased once it is gone."""
    row = _owned(session.get(RequestRow, request_id), ctx.office_id, f"request {request_id}")
    consent_row = session.exec(select(ConsentRow).where(ConsentRow.request_id == request_id)).one()
    out: dict[str, object] = {
        "request_id": row.id,
        "client_reference": row.client_reference,
        "recorded_at": row.recorded_at,
        "urgency": row.urgency,
        "consent_id": consent_row.id,
        "consent_withdrawn_at": consent_row.withdrawn_at,
        "erased": row.erased_at is not None,
    }
    try:
        out.update(load_request(ctx, session, request_id).person.model_dump())
    except PersonErased:
        out["erased"] = True
    return out


def office_referrals(
    ctx: Context,
    session: Session,
    status: ReferralStatus | None = None,
    *,
    overdue: bool = False,
    limit: int = 100,
) -> list[tuple[ReferralView, str]]:
    """This office's referrals, newest first, each with its request's client reference."""
    stmt = (
        select(ReferralView, RequestRow.client_reference)
        .join(RequestRow, col(RequestRow.id) == col(ReferralView.request_id))
        .where(ReferralView.office_id == ctx.office_id)
        .order_by(col(ReferralView.created_at).desc(), col(ReferralView.id))
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(ReferralView.status == status.value)
    if overdue:
        stmt = stmt.where(col(ReferralView.overdue).is_not(None))
    return [(view, reference) for view, reference in session.exec(stmt)]


def referrals_of(ctx: Context, session: Session, request_id: str) -> list[ReferralView]:
    """The referrals this office sent for one of its requests (also once its data is erased)."""
    _owned(session.get(RequestRow, request_id), ctx.office_id, f"request {request_id}")
    stmt = select(ReferralView).where(ReferralView.request_id == request_id)
    return list(session.exec(stmt))


def trail(session: Session, referral_id: str) -> list[TrailEntry]:
    stmt = (
        select(TrailEntry)
        .where(TrailEntry.referral_id == referral_id)
        .order_by(col(TrailEntry.occurred_at), col(TrailEntry.version))
    )
    return list(session.exec(stmt))


def project_change(session: Session, delivery: Delivery[ReferralChange]) -> None:
    """Fold a referral event into intake's view; versions keep out-of-order events harmless."""
    change, event = delivery.event.data, delivery.event
    kind = subjects.referral_kind(delivery.subject)
    _trail(
        session,
        event.id,
        change.referral_id,
        change.version,
        kind,
        change.status.value,
        change.reason,
        change.occurred_at,
    )
    view = session.get(ReferralView, change.referral_id)
    if view is None:
        log.warning("intake.unknown_referral", referral_id=change.referral_id)
        return
    if change.version <= view.version:
        return  # an older event arrived late; the trail has it, the view is already newer
    view.version, view.status = change.version, change.status.value
    view.updated_at = change.occurred_at
    if kind in {"reminded", "escalated", "expired"}:
        view.overdue = kind
    elif change.status is not ReferralStatus.REQUESTED:
        view.overdue = None
    if change.reason and kind not in {"reminded", "escalated"}:
        view.reason = change.reason
    view.open_key = None if view.status in TERMINAL else "open"
    session.add(view)


def project_deletion(session: Session, delivery: Delivery[DeletionEvent]) -> None:
    """Show the office whether each agency confirmed it deleted the person's data."""
    event = delivery.event.data
    kind = subjects.referral_kind(delivery.subject)
    _trail(session, delivery.event.id, event.referral_id, None, kind, None, None, event.occurred_at)
    view = session.get(ReferralView, event.referral_id)
    if view is not None and view.deletion != "deletion-confirmed":
        view.deletion = kind
        session.add(view)


def project_refusal(session: Session, delivery: Delivery[TransitionRefused]) -> None:
    """Show the office why a command on its referral was refused."""
    refused = delivery.event.data
    _trail(
        session,
        delivery.event.id,
        refused.referral_id,
        None,
        f"refused:{refused.attempted}",
        None,
        refused.message,
        refused.occurred_at,
    )
    view = session.get(ReferralView, refused.referral_id)
    if view is not None and refused.sender == "office":
        view.problem = refused.message
        if view.status == ReferralStatus.DRAFT.value:
            view.open_key = None
        session.add(view)


def _trail(
    session: Session,
    event_id: str,
    referral_id: str,
    version: int | None,
    kind: str,
    status: str | None,
    reason: str | None,
    at: datetime,
) -> None:
    session.add(
        TrailEntry(
            event_id=event_id,
            referral_id=referral_id,
            version=version,
            kind=kind,
            status=status,
            reason=reason,
            occurred_at=at,
        )
    )
