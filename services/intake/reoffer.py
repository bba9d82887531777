"""Automatic re-offer: under a legal deadline, when the office is alerted that no agency has
accepted while the margin is reached, intake offers the request to the next fitting agency
of the alerted referral's kind, without waiting for the office, if the office allowed it.

The office allows it per request (`auto_reoffer`), and only where the consent names a kind
of agency (admission refuses it otherwise): the next agency of that kind is then covered as
the first was. Intake records each urgent alert on such a request (`ReofferRow`, from the
referral service's `escalated` event with `urgent`); `Intake.follow_up` asks the directory
for the request's suggestions and calls `decide`, in one transaction per alert:

- an agency accepted meanwhile, or the consent was withdrawn, or the person's data erased:
  nothing to do (`not-needed`);
- the consent does not name the alerted agency's kind (it named that agency alone):
  `not-covered`, the office chooses;
- intake re-offered this request already: once is all (`not-again`; the office decides
  what follows);
- otherwise the best-ranked suggestion of that kind that the consent covers and that was
  never sent this request is offered, recorded as `requested-automatically` on the new
  referral and `re-offered-automatically` on the alerted one (`sent`); none left: the
  office is told on the alerted referral (`none-left`).

The alerted referral stays open: its agency may still answer, and the office decides
whether to withdraw it. The new referral's id comes from the alert's, so deciding twice
offers once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from schemas.queries import AgencyCard
from schemas.vocabulary import AgencyKind, ReferralStatus
from services.intake import case, commands, projection, views
from services.intake.office import Office
from services.intake.store import ReferralView, ReofferRow
from services.intake.vault import PersonErased
from wegweiser.platform.refusal import Refused

REOFFERED_REFERRALS = uuid.UUID("a4c1d7e2-59b3-4f0a-8e6d-1b2c3d4e5f60")


def new_referral_id(reoffer_id: str) -> str:
    """The id of the referral an alert re-offers: the same however often it is decided."""
    return f"ref-{uuid.uuid5(REOFFERED_REFERRALS, reoffer_id)}"


def pending(session: Session, limit: int = 100) -> list[tuple[str, str, str, str]]:
    """(alert id, request id, office id, alerted agency id) of each alert not yet decided."""
    rows = session.exec(
        select(ReofferRow.id, ReofferRow.request_id, ReferralView.office_id, ReferralView.agency_id)
        .join(ReferralView, col(ReferralView.id) == col(ReofferRow.referral_id))
        .where(ReofferRow.state == "pending")
        .order_by(col(ReofferRow.alerted_at))
        .limit(limit)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def decide(
    offices: Mapping[str, Office],
    session: Session,
    reoffer_id: str,
    kind: AgencyKind | None,
    suggested: Sequence[AgencyCard],
) -> str:
    """Offer the next agency of `kind` among `suggested` (sendable, best first), or record
    why not; returns the alert's state."""
    row = session.get(ReofferRow, reoffer_id, with_for_update=True)
    if row is None or row.state != "pending":
        return row.state if row is not None else "unknown"
    alerted = session.get(ReferralView, row.referral_id)
    office = offices.get(alerted.office_id) if alerted is not None else None
    now = datetime.now(UTC)
    if alerted is None or office is None:
        return _decided(session, row, "not-needed", now)
    parts = views.referrals_of(office, session, row.request_id)
    if any(ReferralStatus(p.status) in case.HELPING for p in parts):
        return _decided(session, row, "not-needed", now)
    if _offered_before(session, row):
        return _decided(session, row, "not-again", now)
    try:
        request = views.load_request(office, session, row.request_id)
    except PersonErased:
        return _decided(session, row, "not-needed", now)
    if request.consent_withdrawn:
        return _decided(session, row, "not-needed", now)
    named = {r.kind for r in request.terms.recipients if r.agency_id is None}
    if kind is None or kind not in named:
        return _decided(session, row, "not-covered", now)
    tried = {p.agency_id for p in parts}
    for agency in suggested:
        if agency.agency_id in tried or agency.kind != kind:
            continue
        try:
            view = commands.offer(
                office,
                session,
                request,
                agency,
                new_referral_id(row.id),
                trail_kind="requested-automatically",
            )
        except Refused:
            continue  # the directory changed since the suggestions: try the next
        view.plan_id = alerted.plan_id
        row.sent_referral_id = view.id
        projection.record(
            session, f"{row.id}:re-offered", alerted.id, None, "re-offered-automatically",
            None, None, now,
        )  # fmt: skip
        return _decided(session, row, "sent", now)
    alerted.problem = (
        "the legal deadline is close and no further agency of this kind fits: "
        "find one by hand, or call the agencies"
    )
    session.add(alerted)
    return _decided(session, row, "none-left", now)


def _offered_before(session: Session, row: ReofferRow) -> bool:
    """Whether intake already re-offered this request on its own: it does so once. An offer
    sent after the alert is escalated at once, and re-offering on that escalation would send
    the person's case to every agency of the kind in turn, none given time to answer."""
    earlier = session.exec(
        select(ReofferRow.id).where(
            ReofferRow.request_id == row.request_id, ReofferRow.state == "sent"
        )
    ).first()
    return earlier is not None


def _decided(session: Session, row: ReofferRow, state: str, now: datetime) -> str:
    row.state, row.decided_at = state, now
    session.add(row)
    return state
