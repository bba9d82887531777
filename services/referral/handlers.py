"""The referral service's use cases: one plain function per incoming command or event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlmodel import Session

from schemas import subjects
from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.envelope import Envelope, is_id, new_event
from schemas.events import (
    AgencyAnswer,
    ConsentWithdrawn,
    DeletionEvent,
    ReferralCancellationRequested,
    ReferralChange,
    ReferralForwardRefused,
    ReferralOffered,
    ReferralRequested,
    TransitionRefused,
)
from schemas.queries import AskVerdict, Verdict
from schemas.vocabulary import AgencyAction, DeadlineKind, Purpose, ReferralStatus
from services.consent import rules as consent
from services.referral import store
from services.referral.deletion import AlreadyConfirmed, Deletion, DeletionPolicy
from services.referral.domain import (
    OPEN,
    Change,
    Clock,
    DeadlinePolicy,
    NotTheRecipient,
    Referral,
    ReferralRuleViolation,
    Said,
)
from services.referral.legal_deadline import (
    DeadlinePassed,
    LegalClock,
    LegalClockPolicy,
    LegalDeadline,
    count_back,
)
from wegweiser.platform.consumer import Delivery, Unprocessable
from wegweiser.platform.outbox import stage

SOURCE = "/wegweiser/referral"
log = structlog.get_logger()

DELETION_MODELS: dict[str, type[DeletionEvent]] = {
    subject_suffix(spec.model): spec.model
    for spec in CATALOGUE
    if issubclass(spec.model, DeletionEvent)
}
CHANGE_MODELS: dict[str, type[ReferralChange]] = {
    subject_suffix(spec.model): spec.model
    for spec in CATALOGUE
    if issubclass(spec.model, ReferralChange) and spec.model is not ReferralOffered
}


@dataclass(frozen=True)
class Context:
    """What the handlers need besides the session: a clock and the deadline policies."""

    policy: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    legal: LegalClockPolicy = field(default_factory=LegalClockPolicy)
    deletion: DeletionPolicy = field(default_factory=DeletionPolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def open_referral(ctx: Context, session: Session, delivery: Delivery[ReferralRequested]) -> None:
    """Create the referral and offer it to its agency, if the consent covers that."""
    cmd = delivery.event.data
    if store.exists(session, cmd.referral_id):
        log.info("referral.already_open", referral_id=cmd.referral_id)
        return
    now = ctx.clock()
    try:
        if store.is_withdrawn(session, cmd.consent.consent_id):
            raise consent.ConsentWithdrawn(f"consent {cmd.consent.consent_id} was withdrawn")
        consent.check(
            cmd.consent,
            agency_id=cmd.agency_id,
            kind=cmd.agency_kind,
            purpose=Purpose.REFERRAL,
            categories=cmd.case.released_categories,
            now=now,
        )
    except consent.ConsentViolation as exc:
        _refuse(
            session,
            delivery.event,
            cmd.referral_id,
            cmd.agency_id,
            "office",
            "offer",
            None,
            exc.code,
            str(exc),
            now,
        )
        return
    origin = _forwarded(session, delivery, now)
    if cmd.forwarded_from is not None and origin is None:
        return
    referral = Referral(
        cmd.referral_id, cmd.request_id, cmd.agency_id, cmd.office_id, cmd.consent.consent_id
    )
    legal = _legal_clock(ctx, cmd, now)
    referral.offer(
        now,
        Clock(legal.remind_at, legal.escalate_at, legal.expire_at, legal.escalation_urgent)
        if legal
        else None,
    )
    store.save(session, referral, None, ctx.policy)
    if origin is not None:
        _commit(ctx, session, origin, origin.version - 1, delivery.event)
    [change] = referral.changes
    offered = ReferralOffered(
        **_change_fields(referral, change),
        office_id=cmd.office_id,
        consent_id=cmd.consent.consent_id,
        case=cmd.case,
        acknowledge_by=legal.ack_due if legal else now + ctx.policy.remind_after,
    )
    _stage(session, referral.agency_id, "offered", offered, delivery.event)
    log.info("referral.offered", referral_id=referral.id, agency_id=referral.agency_id)


def _forwarded(
    session: Session, delivery: Delivery[ReferralRequested], now: datetime
) -> Referral | None:
    """The referral a forwarded one continues, closed as forwarded (not yet saved); None
    when the request is no forward, or (refused to intake) when that one can no longer be
    forwarded: it ended meanwhile, or was forwarded already."""
    cmd = delivery.event.data
    if cmd.forwarded_from is None:
        return None
    origin_id = cmd.forwarded_from.referral_id
    try:
        origin = store.load(session, origin_id)
        said = Said(cmd.forwarded_from.reason, forward_to=cmd.agency_id)
        if origin.agency_id != cmd.forwarded_from.agency_id:
            raise NotTheRecipient(origin_id, cmd.forwarded_from.agency_id)
        origin.forward(cmd.referral_id, said, now)
    except (store.ReferralNotFound, ReferralRuleViolation) as exc:
        code = getattr(exc, "code", "referral.not-found")
        # to intake, on the new referral (whose agency must not learn the first one's id)
        _refuse(
            session, delivery.event, cmd.referral_id, cmd.agency_id, "office", "offer",
            None, "referral.forward-origin-closed",
            "the referral this one was to continue can no longer be forwarded", now,
        )  # fmt: skip
        # and to the forwarding agency, whose answer was taken when it came
        forwarding = cmd.forwarded_from.agency_id
        _refuse(
            session, delivery.event, origin_id, forwarding, f"agency:{forwarding}",
            AgencyAction.FORWARD, None, code, f"referral {origin_id} cannot be forwarded: {exc}",
            now, answer_id=cmd.forwarded_from.answer_id,
        )  # fmt: skip
        return None
    return origin


def forward_refused(
    ctx: Context, session: Session, delivery: Delivery[ReferralForwardRefused]
) -> None:
    """Intake could not forward a referral as its agency asked: tell the agency why (its
    answer, taken when it came, is now refused)."""
    refused = delivery.event.data
    now = ctx.clock()
    try:
        status: ReferralStatus | None = store.load(session, refused.referral_id).status
    except store.ReferralNotFound:
        status = None
    _refuse(
        session, delivery.event, refused.referral_id, refused.agency_id,
        f"agency:{refused.agency_id}", AgencyAction.FORWARD, status, refused.code,
        refused.message, now, answer_id=refused.answer_id,
    )  # fmt: skip


def _legal_clock(ctx: Context, cmd: ReferralRequested, now: datetime) -> LegalClock | None:
    """The offer's clock counted back from the request's legal deadline, if it is under one.
    A deadline that passed before the offer leaves the ordinary clock (intake refuses such a
    deadline when the request is recorded; a referral sent later still goes out)."""
    if cmd.deadline is None:
        return None
    deadline = LegalDeadline(DeadlineKind.OTHER, cmd.deadline.land, cmd.deadline.ends_on)
    try:
        return count_back(deadline, now, ctx.legal, ctx.policy)
    except DeadlinePassed:
        log.warning("referral.legal_deadline_passed", referral_id=cmd.referral_id)
        return None


def apply_answer(ctx: Context, session: Session, delivery: Delivery[AgencyAnswer]) -> None:
    """Apply an agency's answer, or send the agency a refusal saying why not."""
    answer = delivery.event.data
    sender = subjects.agency_from_subject(delivery.subject)
    now = ctx.clock()
    if sender != answer.agency_id:
        raise Unprocessable(f"answer names agency {answer.agency_id} but came from {sender}")
    if answer.action is AgencyAction.CONFIRM_DELETION:
        confirm_deletion(ctx, session, delivery, sender)
        return
    try:
        referral = store.load(session, answer.referral_id)
    except store.ReferralNotFound:
        referral = None
    loaded = referral.version if referral else None
    try:
        if referral is None or referral.agency_id != sender:
            raise NotTheRecipient(answer.referral_id, sender)
        referral.answer(answer.action, sender, now, _said(answer))
    except ReferralRuleViolation as exc:
        status = referral.status if referral and referral.agency_id == sender else None
        _refuse(
            session,
            delivery.event,
            answer.referral_id,
            sender,
            f"agency:{sender}",
            answer.action,
            status,
            exc.code,
            str(exc),
            now,
        )
        return
    _commit(ctx, session, referral, loaded, delivery.event)
    _taken(session, delivery.event, sender, referral.id, referral.status, now)


def cancel_referral(
    ctx: Context, session: Session, delivery: Delivery[ReferralCancellationRequested]
) -> None:
    """The office withdraws a referral."""
    cmd = delivery.event.data
    now = ctx.clock()
    try:
        referral = store.load(session, cmd.referral_id)
    except store.ReferralNotFound:
        raise Unprocessable(f"no referral {cmd.referral_id} to cancel") from None
    loaded = referral.version
    try:
        referral.cancel(_said(cmd), now)
    except ReferralRuleViolation as exc:
        _refuse(
            session,
            delivery.event,
            referral.id,
            referral.agency_id,
            "office",
            "cancel",
            referral.status,
            exc.code,
            str(exc),
            now,
        )
        return
    _commit(ctx, session, referral, loaded, delivery.event)


def withdraw_consent(ctx: Context, session: Session, delivery: Delivery[ConsentWithdrawn]) -> None:
    """Cancel every open referral under the consent; ask every agency that got data to delete."""
    withdrawal = delivery.event.data
    now = ctx.clock()
    if not store.record_withdrawal(session, withdrawal.consent_id, withdrawal.withdrawn_at):
        return
    for referral_id in store.under_consent(session, withdrawal.consent_id):
        referral = store.load(session, referral_id)
        loaded = referral.version
        if referral.status in OPEN:
            referral.withdraw_consent(now)
            _commit(ctx, session, referral, loaded, delivery.event)
        if referral.offered_at is not None and store.load_deletion(session, referral_id) is None:
            deletion = Deletion.request(referral_id, referral.agency_id, now)
            row = store.DeletionRow(
                referral_id=referral_id,
                agency_id=referral.agency_id,
                request_id=referral.request_id,
                consent_id=withdrawal.consent_id,
                requested_at=now,
            )
            store.save_deletion(session, deletion, row, ctx.deletion)
            _stage_deletion(ctx, session, deletion, row, delivery.event)
    log.info("consent.withdrawn", consent_id=withdrawal.consent_id)


def confirm_deletion(
    ctx: Context, session: Session, delivery: Delivery[AgencyAnswer], sender: str
) -> None:
    """Record an agency's confirmation that it deleted a referral's data."""
    referral_id = delivery.event.data.referral_id
    found = store.load_deletion(session, referral_id)
    if found is None or found[0].agency_id != sender:
        _refuse(
            session,
            delivery.event,
            referral_id,
            sender,
            f"agency:{sender}",
            AgencyAction.CONFIRM_DELETION,
            None,
            "deletion.not-requested",
            f"no deletion of referral {referral_id} was asked of agency {sender}",
            ctx.clock(),
        )
        return
    deletion, row = found
    _taken(session, delivery.event, sender, referral_id, None, ctx.clock())
    try:
        deletion.confirm(ctx.clock())
    except AlreadyConfirmed:
        log.info("deletion.already_confirmed", referral_id=referral_id)
        return
    store.save_deletion(session, deletion, row, ctx.deletion)
    _stage_deletion(ctx, session, deletion, row, delivery.event)


def check_deletion(ctx: Context, session: Session, *, referral_id: str) -> None:
    """Remind, then escalate, a deletion the agency has not confirmed."""
    found = store.load_deletion(session, referral_id)
    if found is None:
        return
    deletion, row = found
    deletion.check(ctx.clock(), ctx.deletion)
    store.save_deletion(session, deletion, row, ctx.deletion)
    _stage_deletion(ctx, session, deletion, row, None)


def _stage_deletion(
    ctx: Context,
    session: Session,
    deletion: Deletion,
    row: store.DeletionRow,
    cause: Envelope[Any] | None,
) -> None:
    for change in deletion.changes:
        data = DELETION_MODELS[change](
            referral_id=row.referral_id,
            request_id=row.request_id,
            agency_id=row.agency_id,
            consent_id=row.consent_id,
            confirm_by=deletion.confirm_by(ctx.deletion),
            occurred_at=ctx.clock(),
        )
        _stage(session, row.agency_id, change, data, cause, row.referral_id)
        log.info(f"referral.{change}", referral_id=row.referral_id, agency_id=row.agency_id)
    deletion.changes.clear()


def check_deadlines(ctx: Context, session: Session, *, referral_id: str) -> int:
    """Record the deadline steps a referral has passed; returns how many."""
    referral = store.load(session, referral_id)
    loaded = referral.version
    referral.check_deadlines(ctx.clock(), ctx.policy)
    if not referral.changes:
        store.save(session, referral, loaded, ctx.policy)  # refresh a stale next_deadline
        return 0
    _commit(ctx, session, referral, loaded, None)
    return len(referral.changes)


def _commit(
    ctx: Context,
    session: Session,
    referral: Referral,
    loaded: int | None,
    cause: Envelope[Any] | None,
) -> None:
    store.save(session, referral, loaded, ctx.policy)
    for change in referral.changes:
        model = CHANGE_MODELS[change.kind]
        _stage(
            session,
            referral.agency_id,
            change.kind,
            model(**_change_fields(referral, change)),
            cause,
            referral.id,
        )
        log.info(f"referral.{change.kind}", referral_id=referral.id, status=change.status)


def _said(command: AgencyAnswer | ReferralCancellationRequested) -> Said:
    """What a command says beside its action."""
    if isinstance(command, AgencyAnswer):
        return Said(command.reason, command.outcome, command.comment, command.forward_to)
    return Said(command.reason, None, command.comment)


def _change_fields(referral: Referral, change: Change) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "request_id": referral.request_id,
        "agency_id": referral.agency_id,
        "status": change.status,
        "version": change.version,
        "occurred_at": change.at,
        "reason": change.reason,
        "outcome": change.outcome,
        "comment": change.comment,
        **({"forward_to": change.forward_to} if change.forward_to else {}),
        **({"forwarded_to": change.forwarded_to} if change.forwarded_to else {}),
        **({"urgent": True} if change.urgent else {}),
    }


def _refuse(
    session: Session,
    cause: Envelope[Any],
    referral_id: str,
    agency_id: str,
    sender: str,
    attempted: str,
    status: Any,
    code: str,
    message: str,
    now: datetime,
    answer_id: str | None = None,
) -> None:
    """Send `sender` the refusal of its command `cause`, or of its earlier answer
    `answer_id` (taken when it came, refused on what followed)."""
    refused = TransitionRefused(
        referral_id=referral_id,
        agency_id=agency_id,
        refused_event_id=answer_id or cause.id,
        sender=sender,
        attempted=attempted,
        current_status=status,
        code=code,
        message=message,
        occurred_at=now,
    )
    _stage(session, agency_id, "refused", refused, cause, referral_id)
    log.warning("referral.refused", referral_id=referral_id, code=code, reason=message)
    if answer_id is not None:
        store.overrule_verdict(session, answer_id, code, message, now)
    elif sender.startswith("agency:"):  # an agency may ask after the verdict on its answer
        store.record_verdict(
            session, cause.id, agency_id, referral_id, "refused", now, status, code, message
        )


def _taken(
    session: Session,
    cause: Envelope[Any],
    agency_id: str,
    referral_id: str,
    status: ReferralStatus | None,
    now: datetime,
) -> None:
    """Keep that the agency's answer was taken, for the agency to ask after."""
    store.record_verdict(session, cause.id, agency_id, referral_id, "taken", now, status)


def verdict(session: Session, query: AskVerdict, agency_id: str) -> Verdict:
    """What became of one of the agency's answers (`unknown` for another agency's: its
    existence is not the asker's business)."""
    found = store.verdict_on(session, agency_id, query.answer_id)
    if found is None:
        return Verdict(state="unknown")
    return Verdict(
        state="taken" if found.state == "taken" else "refused",
        referral_id=found.referral_id,
        status=ReferralStatus(found.status) if found.status else None,
        code=found.code,
        message=found.message,
    )


def _stage(
    session: Session,
    agency_id: str,
    kind: str,
    data: Any,
    cause: Envelope[Any] | None,
    subject_id: str | None = None,
) -> None:
    event = new_event(
        data,
        source=SOURCE,
        subject=subject_id or data.referral_id,
        causation=cause,
        # its own id, never a sender's (nor one that is not an id: then the event's own)
        correlation_id=own if is_id(own := subject_id or data.referral_id) else None,
    )
    stage(session, subjects.referral_event(agency_id, kind), event)
