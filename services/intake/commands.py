"""What an office changes: record a request with its consent, ask for a referral, withdraw a
consent, ask for a cancellation. Each runs in one transaction with the events it causes
(staged in the outbox); a refusal raises before anything is written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import (
    ConsentRecorded,
    ConsentTerms,
    ConsentWithdrawn,
    DeadlineDate,
    Forwarding,
    LegalDeadline,
    ReferralCancellationRequested,
    ReferralRequested,
    RequestRecorded,
    SealedNote,
)
from schemas.queries import AgencyCard
from schemas.vocabulary import CLOSED_STATES, ReasonCode, ReferralStatus, WithdrawnBy
from services.consent import texts
from services.intake import SOURCE, case, projection, views
from services.intake.api_models import RequestCreate
from services.intake.case import Person
from services.intake.office import Conflict, Office
from services.intake.store import ConsentRow, PlanRow, ReferralView, RequestRow, TrailEntry
from wegweiser.platform.outbox import stage


def record_request(
    office: Office, session: Session, body: RequestCreate, deadline: LegalDeadline | None = None
) -> tuple[RequestRow, str]:
    """Store a request (personal part encrypted, with its legal `deadline` as counted) and
    its consent; emit metadata events."""
    now = datetime.now(UTC)
    request_id, consent_id = f"req-{uuid.uuid4()}", f"con-{uuid.uuid4()}"
    personal = body.model_dump(include=set(Person.model_fields) - {"legal_deadline"})
    person = Person.model_validate({**personal, "legal_deadline": deadline})
    row = RequestRow(
        id=request_id,
        office_id=office.office_id,
        client_reference=body.client_reference,
        urgency=body.urgency.value,
        personal=office.vault.seal(
            session, body.client_reference, request_id, person.model_dump(mode="json")
        ),
        auto_reoffer=body.auto_reoffer,
        unmet_check="none-fitting",
        recorded_at=now,
    )
    terms = ConsentTerms(
        consent_id=consent_id,
        person_reference=office.vault.pseudonym(body.client_reference),
        controller=office.controller,
        text_sha256=shown_text_sha256(body.consent.text_version, body.consent.text_language),
        **body.consent.model_dump(),
    )
    session.add(row)
    session.add(
        ConsentRow(id=consent_id, request_id=request_id, terms=terms.model_dump(mode="json"))
    )
    recorded = new_event(
        RequestRecorded(
            request_id=request_id,
            office_id=office.office_id,
            urgency=body.urgency,
            recorded_at=now,
            county=body.municipality[:5] if body.municipality else None,
            language=body.languages[0] if body.languages else None,
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


def request_referral(
    office: Office, session: Session, request_id: str, agency: AgencyCard
) -> tuple[ReferralView, bool]:
    """Ask the referral service to offer the request to the agency: only what the consent
    releases to it, sealed to its key. Idempotent per agency: while a referral to it is open,
    that one is returned (False: nothing new)."""
    request = views.load_request(office, session, request_id)
    existing = open_referral_to(session, request_id, agency.agency_id)
    if existing is not None:
        return existing, False
    return offer(office, session, request, agency, f"ref-{uuid.uuid4()}"), True


def open_referral_to(session: Session, request_id: str, agency_id: str) -> ReferralView | None:
    """The request's open referral to this agency, if it has one."""
    return session.exec(
        select(ReferralView).where(
            ReferralView.request_id == request_id,
            ReferralView.agency_id == agency_id,
            col(ReferralView.open_key).is_not(None),
        )
    ).first()


def offer(
    office: Office,
    session: Session,
    request: case.Request,
    agency: AgencyCard,
    referral_id: str,
    forwarded_from: Forwarding | None = None,
    trail_kind: str = "requested-by-office",
) -> ReferralView:
    """Seal the case to the agency (`case.sendable_case` refuses what may not go) and ask
    the referral service to offer it, as the office or for the agency that forwarded it."""
    now = datetime.now(UTC)
    case_details = case.sendable_case(request, agency, now)
    deadline = request.person.legal_deadline
    sealed = case.seal(case_details, agency, office.signer, office.office_id)
    view = ReferralView(
        id=referral_id,
        request_id=request.request_id,
        office_id=office.office_id,
        agency_id=agency.agency_id,
        agency_name=agency.name,
        status=ReferralStatus.DRAFT.value,
        deadline_on=deadline.ends_on if deadline else None,
        forwarded_from=forwarded_from.referral_id if forwarded_from else None,
    )
    session.add(view)
    event = new_event(
        ReferralRequested(
            referral_id=referral_id,
            request_id=request.request_id,
            office_id=office.office_id,
            agency_id=agency.agency_id,
            agency_kind=agency.kind,
            consent=request.terms,
            case=sealed,
            deadline=_deadline_date(deadline),
            forwarded_from=forwarded_from,
        ),
        source=SOURCE,
        subject=referral_id,
        correlation_id=request.request_id,
    )
    stage(session, subjects.REFERRAL_REQUESTED, event)
    projection.record(session, event.id, referral_id, None, trail_kind, "draft", None, now)
    return view


def request_plan(
    office: Office, session: Session, request_id: str, agencies: list[AgencyCard]
) -> tuple[PlanRow, list[ReferralView]]:
    """Offer the request to several agencies as one plan, all or none: if the request may
    not go to one of them, nothing is sent. An agency with an open referral of the request
    outside any plan joins the plan with that referral (as sending twice returns it)."""
    plan = PlanRow(id=f"plan-{uuid.uuid4()}", request_id=request_id, office_id=office.office_id)
    session.add(plan)
    parts = []
    for agency in agencies:
        view, _ = request_referral(office, session, request_id, agency)
        if view.plan_id not in (None, plan.id):
            raise Conflict(
                f"agency {agency.agency_id!r} has an open referral of this request in plan "
                f"{view.plan_id}"
            )
        view.plan_id = plan.id
        session.add(view)
        parts.append(view)
    return plan, parts


def request_plan_cancellation(
    office: Office, session: Session, plan_id: str, reason: ReasonCode
) -> tuple[PlanRow, list[ReferralView]]:
    """Ask the referral service to cancel every open referral of the plan, with one reason;
    those that ended already stay as they are."""
    plan, parts = views.load_plan(session, office.office_id, plan_id)
    for view in parts:
        if view.status not in CLOSED_STATES:
            request_cancellation(office, session, view.id, reason)
    return plan, parts


def _deadline_date(deadline: LegalDeadline | None) -> DeadlineDate | None:
    """What the referral service learns of a legal deadline: its day and Land, for the
    offer's clock; the kind (the matter) stays in the sealed case."""
    if deadline is None:
        return None
    return DeadlineDate(ends_on=deadline.ends_on, land=deadline.land)


@dataclass(frozen=True)
class Withdrawal:
    consent: ConsentRow
    person_data_erased: bool
    referrals: list[ReferralView]


def withdraw_consent(
    office: Office, session: Session, consent_id: str, by: WithdrawnBy = WithdrawnBy.OFFICE
) -> Withdrawal:
    """Withdraw a consent (`by` the office or the person): emit the withdrawal; erase the
    person's data unless another of their consents still stands. Withdrawing twice changes
    nothing more (the first withdrawal, and who made it, stands)."""
    row, request = views.own_consent(office, session, consent_id, lock=True)
    person = request.client_reference
    if row.withdrawn_at is None:
        row.withdrawn_at = datetime.now(UTC)
        session.add(row)
        event = new_event(
            ConsentWithdrawn(
                consent_id=consent_id,
                request_id=row.request_id,
                office_id=office.office_id,
                withdrawn_at=row.withdrawn_at,
                withdrawn_by=by,
            ),
            source=SOURCE,
            subject=row.request_id,
        )
        stage(session, subjects.CONSENT_WITHDRAWN, event)
        session.flush()
        if not _other_consents_stand(session, person):
            office.vault.shred(session, person)
    erased = not _other_consents_stand(session, person) and not office.vault.has_key(
        session, person
    )
    referrals = list(
        session.exec(select(ReferralView).where(ReferralView.request_id == row.request_id))
    )
    return Withdrawal(row, erased, referrals)


def _other_consents_stand(session: Session, person_ref: str) -> bool:
    stmt = (
        select(ConsentRow.id)
        .join(RequestRow, col(RequestRow.id) == col(ConsentRow.request_id))
        .where(RequestRow.client_reference == person_ref, col(ConsentRow.withdrawn_at).is_(None))
    )
    return session.exec(stmt).first() is not None


def shown_text_sha256(version: str, language: str) -> str | None:
    """The fingerprint of the consent text the person was shown, if it was Wegweiser's own
    text of this version in this language (an office's own text has none here)."""
    if version != texts.CONSENT_TEXT_VERSION or language not in set(texts.PersonLanguage):
        return None
    return texts.consent_text_sha256(texts.PersonLanguage(language))


CANCELLATION_REQUESTED = "cancellation-requested"
"""The trail's entry for the office's own request to cancel (the referral service answers)."""


def request_cancellation(
    office: Office,
    session: Session,
    referral_id: str,
    reason: ReasonCode,
    comment: SealedNote | None = None,
) -> tuple[ReferralView, bool]:
    """Ask the referral service to cancel a referral this office sent; (the referral, whether
    anything new was asked). Idempotent: a referral already cancelled, or whose cancellation
    is on its way (a double click), is returned as it is; one that ended otherwise is a
    conflict."""
    view = views.load_referral(session, office.office_id, referral_id)
    if view.status == ReferralStatus.CANCELLED.value or _cancellation_pending(session, view):
        return view, False
    if view.status in CLOSED_STATES:
        raise Conflict(f"referral {referral_id} is already {view.status}")
    now = datetime.now(UTC)
    event = new_event(
        ReferralCancellationRequested(
            referral_id=referral_id, office_id=office.office_id, reason=reason, comment=comment
        ),
        source=SOURCE,
        subject=referral_id,
        correlation_id=view.request_id,
    )
    stage(session, subjects.CANCELLATION_REQUESTED, event)
    projection.record(
        session,
        event.id,
        referral_id,
        None,
        CANCELLATION_REQUESTED,
        None,
        reason,
        now,
        None,
        comment,
    )
    return view, True


def _cancellation_pending(session: Session, view: ReferralView) -> bool:
    """The office asked to cancel and the referral service has not refused it since."""
    latest = session.exec(
        select(TrailEntry.kind)
        .where(
            TrailEntry.referral_id == view.id,
            col(TrailEntry.kind).in_([CANCELLATION_REQUESTED, "refused:cancel"]),
        )
        .order_by(col(TrailEntry.occurred_at).desc())
    ).first()
    return latest == CANCELLATION_REQUESTED
