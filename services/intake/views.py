"""What an office reads of its requests, consents and referrals: each query scoped to the
office, a request's person opened from the vault only where the answer shows it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from schemas.events import ConsentTerms
from schemas.vocabulary import ReferralStatus
from services.intake.case import HELPING, Person, Request
from services.intake.office import NotFound, Office, owned
from services.intake.store import ConsentRow, PlanRow, ReferralView, RequestRow, TrailEntry
from services.intake.vault import PersonErased
from services.referral import legal_deadline as law
from services.referral.legal_deadline import LegalClockPolicy


def request_row(office: Office, session: Session, request_id: str) -> RequestRow:
    """A request of this office, its person's data still sealed."""
    return owned(session.get(RequestRow, request_id), office.office_id, f"request {request_id}")


def readable_request(office: Office, session: Session, request_id: str) -> RequestRow:
    """A request of this office whose person's data is still there (PersonErased if not),
    checked without opening it."""
    row = request_row(office, session, request_id)
    if row.erased_at is not None or office.vault.erased(
        session, row.client_reference, row.personal
    ):
        raise PersonErased(f"the personal data of request {request_id} has been erased")
    return row


def consent_of(session: Session, request_id: str) -> ConsentRow:
    return session.exec(select(ConsentRow).where(ConsentRow.request_id == request_id)).one()


def load_request(office: Office, session: Session, request_id: str) -> Request:
    """A request of this office with its person's data opened, and its consent's terms."""
    row = request_row(office, session, request_id)
    if row.erased_at is not None:
        raise PersonErased(f"the personal data of request {request_id} has been erased")
    person = Person.model_validate(
        office.vault.open(session, row.client_reference, request_id, row.personal)
    )
    consent = consent_of(session, request_id)
    terms = ConsentTerms.model_validate(consent.terms)
    withdrawn = consent.withdrawn_at is not None
    return Request(row.id, row.client_reference, row.urgency, person, terms, withdrawn)


def request_detail(
    office: Office,
    session: Session,
    request_id: str,
    legal: LegalClockPolicy,
    now: datetime,
) -> dict[str, object]:
    """A request of this office with its person's data, or marked erased once it is gone;
    under a legal deadline, whether it needs another agency now (`legal`: when the office is
    alerted)."""
    row = request_row(office, session, request_id)
    consent = consent_of(session, request_id)
    out: dict[str, object] = {
        "request_id": row.id,
        "client_reference": row.client_reference,
        "recorded_at": row.recorded_at,
        "urgency": row.urgency,
        "consent_id": consent.id,
        "consent_withdrawn_at": consent.withdrawn_at,
        "erased": row.erased_at is not None,
        "auto_reoffer": row.auto_reoffer,
    }
    try:
        person = load_request(office, session, request_id).person
    except PersonErased:
        out["erased"] = True
        return out
    out.update(person.model_dump())
    if (given := person.legal_deadline) is not None:
        deadline = law.LegalDeadline(given.kind, given.land, given.ends_on)
        statuses = session.exec(
            select(ReferralView.status).where(ReferralView.request_id == request_id)
        ).all()
        accepted = any(ReferralStatus(status) in HELPING for status in statuses)
        out["needs_another_agency"] = law.needs_another_agency(deadline, legal, now, accepted)
    return out


def own_consent(
    office: Office, session: Session, consent_id: str, *, lock: bool = False
) -> tuple[ConsentRow, RequestRow]:
    """A consent of this office, with the request it was given for; `lock`: its row locked
    until the transaction ends (PostgreSQL's FOR UPDATE; SQLite's writer lock holds already),
    so that two withdrawals or two new links of one consent take turns."""
    row = session.get(ConsentRow, consent_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"no consent {consent_id}")
    request = owned(
        session.get(RequestRow, row.request_id), office.office_id, f"consent {consent_id}"
    )
    return row, request


def load_consent(
    office: Office, session: Session, consent_id: str
) -> tuple[ConsentTerms, datetime | None]:
    """A consent of this office and when it was withdrawn, if it was."""
    row, _request = own_consent(office, session, consent_id)
    return ConsentTerms.model_validate(row.terms), row.withdrawn_at


def load_referral(session: Session, office_id: str, referral_id: str) -> ReferralView:
    return owned(session.get(ReferralView, referral_id), office_id, f"referral {referral_id}")


def office_referrals(
    office: Office,
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
        .where(ReferralView.office_id == office.office_id)
        .order_by(col(ReferralView.created_at).desc(), col(ReferralView.id))
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(ReferralView.status == status.value)
    if overdue:
        stmt = stmt.where(col(ReferralView.overdue).is_not(None))
    return [(view, reference) for view, reference in session.exec(stmt)]


def referrals_of(office: Office, session: Session, request_id: str) -> list[ReferralView]:
    """The referrals this office sent for one of its requests (also once its data is erased)."""
    request_row(office, session, request_id)
    return list(session.exec(select(ReferralView).where(ReferralView.request_id == request_id)))


def load_plan(session: Session, office_id: str, plan_id: str) -> tuple[PlanRow, list[ReferralView]]:
    """A plan of this office, with its referrals (oldest first)."""
    plan = owned(session.get(PlanRow, plan_id), office_id, f"plan {plan_id}")
    return plan, _parts(session, plan.id)


def plans_of(
    office: Office, session: Session, request_id: str
) -> list[tuple[PlanRow, list[ReferralView]]]:
    """The plans this office sent for one of its requests, oldest first."""
    request_row(office, session, request_id)
    stmt = select(PlanRow).where(PlanRow.request_id == request_id).order_by(col(PlanRow.created_at))
    return [(plan, _parts(session, plan.id)) for plan in session.exec(stmt)]


def _parts(session: Session, plan_id: str) -> list[ReferralView]:
    stmt = (
        select(ReferralView)
        .where(ReferralView.plan_id == plan_id)
        .order_by(col(ReferralView.created_at), col(ReferralView.id))
    )
    return list(session.exec(stmt))


def trail(session: Session, referral_id: str) -> list[TrailEntry]:
    stmt = (
        select(TrailEntry)
        .where(TrailEntry.referral_id == referral_id)
        .order_by(col(TrailEntry.occurred_at), col(TrailEntry.version))
    )
    return list(session.exec(stmt))
