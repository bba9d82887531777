"""The referral service's side of a forward: the new referral opens and the first closes as
forwarded in one transaction; if the first ended meanwhile, the new one is refused to intake
(without the first one's id, since its agency reads that refusal) and the forwarding agency's
answer is refused after all. Real handlers on a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from schemas.events import (
    Forwarding,
    ReferralRequested,
)
from schemas.vocabulary import (
    ReasonCode,
    ReferralStatus,
)
from services.referral import handlers, store
from services.referral.domain import Said
from tests.support.databases import migrated
from tests.support.referrals import delivered, referral_requested
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.outbox import OutboxRow

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FIRST, OTHER = "agency-a", "agency-b"
ANSWER = "7c0d3e3a-7d7b-4f4f-9d43-0e8f3b7c2a11"


@pytest.fixture
def db(tmp_path):
    with migrated("referral", f"sqlite:///{tmp_path / 'referral.db'}") as database:
        yield database


def requested(
    referral_id: str, agency: str, forwarded_from: str | None = None
) -> Delivery[ReferralRequested]:
    forwarding = (
        None
        if forwarded_from is None
        else Forwarding(
            referral_id=forwarded_from,
            agency_id=FIRST,
            reason=ReasonCode.OUT_OF_AREA,
            answer_id=ANSWER,
        )
    )
    return delivered(
        referral_requested(referral_id, agency, given_at=NOW, forwarded_from=forwarding)
    )


def staged(session: Session) -> list[tuple[str, dict]]:
    rows = session.exec(select(OutboxRow).order_by(col(OutboxRow.seq))).all()
    return [(row.subject, json.loads(row.body)["data"]) for row in rows]


def test_the_new_referral_opens_and_the_first_closes_as_forwarded_together(db) -> None:
    ctx = handlers.Context(clock=lambda: NOW)
    first, second = "ref-33333333333333333333333333333333", "ref-44444444444444444444444444444444"
    db.run_sync(lambda s: handlers.open_referral(ctx, s, requested(first, FIRST)))
    db.run_sync(lambda s: handlers.open_referral(ctx, s, requested(second, OTHER, first)))
    assert db.read_sync(lambda s: store.load(s, first)).status is ReferralStatus.FORWARDED
    assert db.read_sync(lambda s: store.load(s, second)).status is ReferralStatus.REQUESTED
    kinds = [subject for subject, _ in db.read_sync(staged)]
    assert set(kinds[-2:]) == {"ww.referral.agency-b.offered", "ww.referral.agency-a.forwarded"}


def test_a_forward_whose_first_referral_ended_is_refused_to_both_without_leaking_its_id(
    db,
) -> None:
    ctx = handlers.Context(clock=lambda: NOW)
    first, second = "ref-55555555555555555555555555555555", "ref-66666666666666666666666666666666"
    db.run_sync(lambda s: handlers.open_referral(ctx, s, requested(first, FIRST)))

    def end_it(session: Session) -> None:
        referral = store.load(session, first)
        referral.cancel(Said(ReasonCode.NEED_MET), NOW)
        store.save(session, referral, referral.version - 1, ctx.policy)

    db.run_sync(end_it)
    store_verdict = lambda s: store.record_verdict(s, ANSWER, FIRST, first, "taken", NOW)  # noqa: E731
    db.run_sync(store_verdict)
    db.run_sync(lambda s: handlers.open_referral(ctx, s, requested(second, OTHER, first)))
    assert not db.read_sync(lambda s: store.exists(s, second))
    refusals = {subject: data for subject, data in db.read_sync(staged) if "refused" in subject}
    to_other = refusals["ww.referral.agency-b.refused"]
    assert to_other["code"] == "referral.forward-origin-closed" and first not in str(to_other)
    to_first = refusals["ww.referral.agency-a.refused"]
    assert (to_first["refused_event_id"], to_first["attempted"]) == (ANSWER, "forward")
    verdict = db.read_sync(lambda s: store.verdict_on(s, FIRST, ANSWER))
    assert verdict is not None and verdict.state == "refused"
