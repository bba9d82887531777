"""The referral service's tables and the mapping to the domain object."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, inspect
from sqlmodel import Field, Session, SQLModel, col, delete, func, select, update

from schemas.vocabulary import ReferralStatus
from services.referral.deletion import Deletion, DeletionPolicy
from services.referral.domain import Clock, DeadlinePolicy, Referral
from wegweiser.platform.db import as_utc


class ConcurrentUpdate(Exception):
    """Someone else changed the referral since it was loaded; retry."""


class ReferralNotFound(Exception):
    """No referral with this id."""


class ReferralRow(SQLModel, table=True):
    """One referral's current state (metadata only: no personal data)."""

    __tablename__ = "referrals"
    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    agency_id: str = Field(max_length=64, index=True)
    office_id: str = Field(max_length=64)
    consent_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    version: int
    offered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    deadline_stage: int = 0
    next_deadline: datetime | None = Field(
        default=None, index=True, sa_type=DateTime(timezone=True)
    )
    remind_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    escalate_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    expire_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    escalation_urgent: bool = False
    """Whether its escalation is the alert that a legal deadline's margin is reached."""
    """The three are set for an offer under a legal deadline (domain.Clock), else null."""
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


def _aware(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def load(session: Session, referral_id: str) -> Referral:
    """The referral as a domain object."""
    row = session.get(ReferralRow, referral_id)
    if row is None:
        raise ReferralNotFound(referral_id)
    return Referral(
        id=row.id,
        request_id=row.request_id,
        agency_id=row.agency_id,
        office_id=row.office_id,
        consent_id=row.consent_id,
        status=ReferralStatus(row.status),
        version=row.version,
        offered_at=_aware(row.offered_at),
        deadline_stage=row.deadline_stage,
        clock=_clock(row),
    )


def _clock(row: ReferralRow) -> Clock | None:
    if row.remind_at is None or row.escalate_at is None or row.expire_at is None:
        return None
    return Clock(
        as_utc(row.remind_at),
        as_utc(row.escalate_at),
        as_utc(row.expire_at),
        row.escalation_urgent,
    )


def exists(session: Session, referral_id: str) -> bool:
    return session.get(ReferralRow, referral_id) is not None


def save(
    session: Session, referral: Referral, loaded_version: int | None, policy: DeadlinePolicy
) -> None:
    """Insert a new referral, or update one only if nobody changed it since it was loaded."""
    status, next_deadline = referral.status.value, referral.next_deadline(policy)
    now = datetime.now(UTC)
    if loaded_version is None:
        session.add(
            ReferralRow(
                id=referral.id,
                request_id=referral.request_id,
                agency_id=referral.agency_id,
                office_id=referral.office_id,
                consent_id=referral.consent_id,
                status=status,
                version=referral.version,
                offered_at=referral.offered_at,
                deadline_stage=referral.deadline_stage,
                next_deadline=next_deadline,
                remind_at=referral.clock.remind_at if referral.clock else None,
                escalate_at=referral.clock.escalate_at if referral.clock else None,
                expire_at=referral.clock.expire_at if referral.clock else None,
                escalation_urgent=referral.clock.urgent if referral.clock else False,
                updated_at=now,
            )
        )
        session.flush()
        return
    result = session.exec(
        update(ReferralRow)
        .where(col(ReferralRow.id) == referral.id, col(ReferralRow.version) == loaded_version)
        .values(
            status=status,
            version=referral.version,
            offered_at=referral.offered_at,
            deadline_stage=referral.deadline_stage,
            next_deadline=next_deadline,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(referral.id)


def due(session: Session, now: datetime, limit: int = 500) -> list[str]:
    """Ids of referrals whose next deadline has passed."""
    stmt = (
        select(ReferralRow.id)
        .where(col(ReferralRow.next_deadline).is_not(None), col(ReferralRow.next_deadline) <= now)
        .order_by(col(ReferralRow.next_deadline))
        .limit(limit)
    )
    return list(session.exec(stmt))


def counts_by_status(session: Session) -> dict[str, int]:
    """How many referrals are in each state."""
    stmt = select(ReferralRow.status, func.count()).group_by(ReferralRow.status)
    return dict(session.exec(stmt).all())


class WithdrawnConsent(SQLModel, table=True):
    """A consent the person withdrew: nothing more may be offered under it."""

    __tablename__ = "withdrawn_consents"
    consent_id: str = Field(primary_key=True, max_length=64)
    withdrawn_at: datetime = Field(sa_type=DateTime(timezone=True))


class DeletionRow(SQLModel, table=True):
    """An agency's duty to delete one referral's data, and whether it confirmed."""

    __tablename__ = "deletions"
    referral_id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64)
    request_id: str = Field(max_length=64)
    consent_id: str = Field(max_length=64, index=True)
    requested_at: datetime = Field(sa_type=DateTime(timezone=True))
    stage: int = 0
    confirmed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    next_check: datetime | None = Field(default=None, index=True, sa_type=DateTime(timezone=True))


class AnswerVerdict(SQLModel, table=True):
    """What the service decided on one agency's answer, for the agency to ask after
    (`wwq.referral.verdict.<agency>`); kept as long as the inbox keeps the answer's id."""

    __tablename__ = "answer_verdicts"
    answer_id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64)
    referral_id: str = Field(max_length=64)
    state: str = Field(max_length=8)  # taken or refused
    status: str | None = Field(default=None, max_length=16)
    code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=500)
    decided_at: datetime = Field(index=True, sa_type=DateTime(timezone=True))


TABLES: list[type[SQLModel]] = [ReferralRow, WithdrawnConsent, DeletionRow, AnswerVerdict]


def record_verdict(
    session: Session,
    answer_id: str,
    agency_id: str,
    referral_id: str,
    state: str,
    at: datetime,
    status: str | None = None,
    code: str | None = None,
    message: str | None = None,
) -> None:
    """Keep the verdict on an answer (each answer is handled once: the inbox sees to it):
    `taken` with the referral's state after it, or `refused` with the rule's code."""
    session.add(
        AnswerVerdict(
            answer_id=answer_id,
            agency_id=agency_id,
            referral_id=referral_id,
            state=state,
            status=status,
            code=code,
            message=message[:500] if message else None,
            decided_at=at,
        )
    )


def census(session: Session) -> tuple[dict[str, int], int, int]:
    """Referrals by state, offers unacknowledged past their first deadline step, and
    deletions unconfirmed past theirs (for the metrics)."""
    states = counts_by_status(session)
    late_offers = session.exec(
        select(func.count()).where(
            ReferralRow.status == ReferralStatus.REQUESTED, col(ReferralRow.deadline_stage) >= 1
        )
    ).one()
    late_deletions = session.exec(
        select(func.count()).where(
            col(DeletionRow.confirmed_at).is_(None), col(DeletionRow.stage) >= 1
        )
    ).one()
    return states, int(late_offers), int(late_deletions)


def overrule_verdict(
    session: Session, answer_id: str, code: str, message: str, at: datetime
) -> None:
    """An answer taken when it came was refused later (a forward intake could not make)."""
    found = session.get(AnswerVerdict, answer_id)
    if found is not None:
        found.state, found.code, found.message = "refused", code, message[:500]
        found.decided_at = at
        session.add(found)


def verdict_on(session: Session, agency_id: str, answer_id: str) -> AnswerVerdict | None:
    """The verdict on one of this agency's answers; None for another agency's."""
    found = session.get(AnswerVerdict, answer_id)
    return found if found is not None and found.agency_id == agency_id else None


def forget_verdicts_before(session: Session, cutoff: datetime) -> int:
    """Drop verdicts decided before `cutoff`; how many."""
    result = session.exec(delete(AnswerVerdict).where(col(AnswerVerdict.decided_at) < cutoff))
    return int(result.rowcount or 0)


def is_withdrawn(session: Session, consent_id: str) -> bool:
    return session.get(WithdrawnConsent, consent_id) is not None


def record_withdrawal(session: Session, consent_id: str, at: datetime) -> bool:
    """Remember the withdrawal; False if it was already known."""
    if is_withdrawn(session, consent_id):
        return False
    session.add(WithdrawnConsent(consent_id=consent_id, withdrawn_at=at))
    session.flush()
    return True


def under_consent(session: Session, consent_id: str) -> list[str]:
    """Ids of every referral made under a consent."""
    stmt = select(ReferralRow.id).where(ReferralRow.consent_id == consent_id)
    return list(session.exec(stmt.order_by(col(ReferralRow.id))))


def load_deletion(session: Session, referral_id: str) -> tuple[Deletion, DeletionRow] | None:
    row = session.get(DeletionRow, referral_id)
    if row is None:
        return None
    deletion = Deletion(
        row.referral_id,
        row.agency_id,
        _aware(row.requested_at) or row.requested_at,
        row.stage,
        _aware(row.confirmed_at),
    )
    return deletion, row


def save_deletion(
    session: Session, deletion: Deletion, row: DeletionRow, policy: DeletionPolicy
) -> None:
    """Save only if nobody moved the deletion on since it was loaded (another instance's
    timer, or the agency's confirmation): ConcurrentUpdate otherwise."""
    if not inspect(row).persistent:  # a new duty to delete
        row.stage, row.confirmed_at = deletion.stage, deletion.confirmed_at
        row.next_check = deletion.next_check(policy)
        session.add(row)
        session.flush()
        return
    confirmed = col(DeletionRow.confirmed_at)
    result = session.exec(
        update(DeletionRow)
        .where(
            col(DeletionRow.referral_id) == row.referral_id,
            col(DeletionRow.stage) == row.stage,
            confirmed.is_(None) if row.confirmed_at is None else confirmed.is_not(None),
        )
        .values(
            stage=deletion.stage,
            confirmed_at=deletion.confirmed_at,
            next_check=deletion.next_check(policy),
        )
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(row.referral_id)
    session.expire(row)


def deletions_due(session: Session, now: datetime, limit: int = 500) -> list[str]:
    stmt = (
        select(DeletionRow.referral_id)
        .where(col(DeletionRow.next_check).is_not(None), col(DeletionRow.next_check) <= now)
        .limit(limit)
    )
    return list(session.exec(stmt))
