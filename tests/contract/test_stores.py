"""Every store passes the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from schemas.envelope import new_event
from schemas.events import (
    ReferralAccepted,
    ReferralReceived,
    ReferralRequested,
    TransitionRefused,
)
from schemas.queries import AgencyCard, AskVerdict
from schemas.vocabulary import AgencyKind, ReasonCode, ReferralStatus, WithdrawnBy
from services.consent.rules import ConsentViolation
from services.consent.texts import PersonLanguage
from services.intake import commands, person, projection, retention, views
from services.intake.api_models import RequestCreate
from services.intake.case import NotSealable
from services.intake.office import Forbidden, Office
from services.intake.store import PersonLink, ReferralView, RequestRow
from services.intake.vault import PersonErased, Vault, VaultError
from services.referral import handlers, store
from services.referral.domain import DeadlinePolicy, Referral, Said
from tests.support.databases import service_database
from wegweiser.platform import inbox, keys, sealing
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import as_utc
from wegweiser.platform.inbox import first_time
from wegweiser.platform.outbox import OutboxRow, pending_count

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY = DeadlinePolicy(timedelta(hours=1), timedelta(hours=2), timedelta(hours=3))


@pytest.fixture
def referral_db(database_url):
    db = service_database("referral", database_url)
    db.migrate()
    yield db
    db.dispose()


def offered(referral_id: str = "r1") -> Referral:
    referral = Referral(referral_id, "q1", "agency-a", "office-1", "c1")
    referral.offer(NOW)
    return referral


def test_a_saved_referral_loads_back_equal_with_aware_times(referral_db):
    referral_db.run_sync(lambda s: store.save(s, offered(), None, POLICY))
    loaded = referral_db.run_sync(lambda s: store.load(s, "r1"))
    assert (loaded.status, loaded.version, loaded.agency_id) == (
        ReferralStatus.REQUESTED,
        1,
        "agency-a",
    )
    assert loaded.offered_at == NOW and loaded.offered_at.tzinfo is not None


def test_a_stale_update_is_refused_and_the_newer_state_kept(referral_db):
    referral_db.run_sync(lambda s: store.save(s, offered(), None, POLICY))
    first = referral_db.run_sync(lambda s: store.load(s, "r1"))
    second = referral_db.run_sync(lambda s: store.load(s, "r1"))
    first.answer("accept", "agency-a", NOW)
    referral_db.run_sync(lambda s: store.save(s, first, 1, POLICY))
    second.answer("reject", "agency-a", NOW, Said(ReasonCode.NO_CAPACITY))
    with pytest.raises(store.ConcurrentUpdate):
        referral_db.run_sync(lambda s: store.save(s, second, 1, POLICY))
    assert referral_db.run_sync(lambda s: store.load(s, "r1")).status is ReferralStatus.ACCEPTED


def test_only_referrals_whose_deadline_passed_are_due(referral_db):
    def setup(s):
        store.save(s, offered("r1"), None, POLICY)
        answered = offered("r2")
        answered.answer("acknowledge", "agency-a", NOW)
        store.save(s, answered, None, POLICY)

    referral_db.run_sync(setup)
    assert referral_db.run_sync(lambda s: store.due(s, NOW + timedelta(minutes=59))) == []
    assert referral_db.run_sync(lambda s: store.due(s, NOW + timedelta(hours=1))) == ["r1"]


def test_missing_referral_is_named(referral_db):
    with pytest.raises(store.ReferralNotFound, match="nope"):
        referral_db.run_sync(lambda s: store.load(s, "nope"))


def test_the_inbox_remembers_per_consumer(referral_db):
    assert referral_db.run_sync(lambda s: first_time(s, "c1", "e1"))
    assert not referral_db.run_sync(lambda s: first_time(s, "c1", "e1"))
    assert referral_db.run_sync(lambda s: first_time(s, "c2", "e1"))


def test_the_inbox_answers_for_a_whole_batch_and_refuses_a_second_record(referral_db):
    referral_db.run_sync(lambda s: inbox.record(s, "c1", "e2"))
    assert referral_db.run_sync(lambda s: inbox.seen(s, "c1", ["e1", "e2", "e3"])) == {"e2"}
    assert referral_db.run_sync(lambda s: inbox.seen(s, "c2", ["e2"])) == set()
    with pytest.raises(IntegrityError):  # another instance's batch recorded it first
        referral_db.run_sync(lambda s: inbox.record(s, "c1", "e2"))


@pytest.fixture
def intake_db(database_url):
    db = service_database("intake", database_url)
    db.migrate()
    yield db
    db.dispose()


AGENCY_KEY = keys.generate_encryption_key()
CTX = Office(
    "office-1", Vault(os.urandom(32)), keys.generate_signing_key(), keys.generate_encryption_key()
)


def body(**consent: object) -> RequestCreate:
    return RequestCreate.model_validate(
        {
            "client_reference": "client-1",
            "client_name": "Nadia Example",
            "needs": ["legal-aid"],
            "languages": ["fa"],
            "municipality": "09780139",
            "age": 19,
            "note": "private detail",
            "consent": {
                "recipients": [{"kind": "legal-aid"}],
                "purposes": ["referral"],
                "data_categories": ["needs", "languages"],
                "method": "electronic",
                "given_at": NOW.isoformat(),
                "text_version": "v1",
                **consent,
            },
        }
    )


CARD = AgencyCard(
    agency_id="oa-rechtshilfe",
    name="Rechtshilfe",
    kind=AgencyKind.LEGAL_AID,
    channel="nats",
    capacity=3,
    waiting_days=2,
    active=True,
    public_key=keys.public_dict(AGENCY_KEY),
)


def test_personal_data_is_stored_encrypted_and_read_back(intake_db):
    row, _ = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))
    stored = intake_db.run_sync(lambda s: s.get(RequestRow, row.id))
    assert b"Nadia" not in stored.personal and b"private detail" not in stored.personal
    loaded = intake_db.run_sync(lambda s: views.load_request(CTX, s, row.id))
    assert (loaded.person.client_name, loaded.person.note) == ("Nadia Example", "private detail")


def test_destroying_the_person_key_makes_the_data_unreadable(intake_db):
    row, _ = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))
    assert intake_db.run_sync(lambda s: CTX.vault.shred(s, "client-1"))
    with pytest.raises(PersonErased):
        intake_db.run_sync(lambda s: views.load_request(CTX, s, row.id))
    other = Office("office-1", Vault(os.urandom(32)), CTX.signer, CTX.sealing)
    fresh, _ = intake_db.run_sync(
        lambda s: commands.record_request(CTX, s, body(text_version="v2"))
    )
    with pytest.raises(VaultError):
        intake_db.run_sync(lambda s: views.load_request(other, s, fresh.id))


def test_a_request_and_its_events_are_stored_in_one_transaction(intake_db):
    row, _ = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))
    assert intake_db.run_sync(pending_count) == 2
    view, created = intake_db.run_sync(lambda s: commands.request_referral(CTX, s, row.id, CARD))
    again, created_again = intake_db.run_sync(
        lambda s: commands.request_referral(CTX, s, row.id, CARD)
    )
    assert created and not created_again and again.id == view.id
    assert intake_db.run_sync(pending_count) == 3
    outbox = intake_db.run_sync(lambda s: list(s.exec(select(OutboxRow))))
    sent = next(o for o in outbox if o.subject == "ww.intake.referral.requested").body
    assert b"private detail" not in sent and b"client-1" not in sent and b"Nadia" not in sent
    sealed = ReferralRequested.model_validate(json.loads(sent)["data"]).case
    opened = sealing.unseal(
        sealed.jwe, key=AGENCY_KEY, kid="oa-rechtshilfe", signers={"office-1": CTX.signer}
    )
    assert opened == {
        "needs": ["legal-aid"],
        "languages": ["fa"],
        "urgency": "routine",
        "released_categories": ["needs", "languages"],
    }


def test_a_referral_the_consent_does_not_cover_writes_nothing(intake_db):
    row, _ = intake_db.run_sync(
        lambda s: commands.record_request(CTX, s, body(recipients=[{"kind": "jobcenter"}]))
    )
    with pytest.raises(ConsentViolation, match="does not cover agency oa-rechtshilfe"):
        intake_db.run_sync(lambda s: commands.request_referral(CTX, s, row.id, CARD))
    keyless = CARD.model_copy(update={"public_key": None, "kind": AgencyKind.JOBCENTER})
    with pytest.raises(NotSealable, match="no public key"):
        intake_db.run_sync(lambda s: commands.request_referral(CTX, s, row.id, keyless))
    assert intake_db.run_sync(pending_count) == 2
    elsewhere = Office("other-office", CTX.vault, CTX.signer, CTX.sealing)
    with pytest.raises(Forbidden, match="belongs to another office"):
        intake_db.run_sync(lambda s: commands.request_referral(elsewhere, s, row.id, CARD))


def test_events_arriving_out_of_order_leave_the_newest_state(intake_db):
    row, _ = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))
    view, _ = intake_db.run_sync(lambda s: commands.request_referral(CTX, s, row.id, CARD))
    common = {
        "referral_id": view.id,
        "request_id": row.id,
        "agency_id": CARD.agency_id,
        "occurred_at": NOW,
    }
    accepted = ReferralAccepted(status="accepted", version=3, **common)
    received = ReferralReceived(status="received", version=2, **common)
    for data, subject in ((accepted, "accepted"), (received, "received")):
        event = new_event(data, source="/wegweiser/referral", subject=view.id)
        delivery = Delivery(event, f"ww.referral.{CARD.agency_id}.{subject}")
        intake_db.run_sync(lambda s, d=delivery: projection.project_change(s, d))
    final = intake_db.run_sync(lambda s: views.load_referral(s, "office-1", view.id))
    assert (final.status, final.version) == ("accepted", 3)
    kinds = [t.kind for t in intake_db.run_sync(lambda s: views.trail(s, view.id))]
    assert sorted(kinds) == ["accepted", "received", "requested-by-office"]


def test_a_cancellation_on_its_way_is_asked_once_and_again_after_it_was_refused(intake_db):
    row, _ = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))
    view, _ = intake_db.run_sync(lambda s: commands.request_referral(CTX, s, row.id, CARD))

    def cancel() -> bool:
        _, asked = intake_db.run_sync(
            lambda s: commands.request_cancellation(CTX, s, view.id, ReasonCode.NEED_MET)
        )
        return asked

    before = intake_db.run_sync(pending_count)
    assert [cancel(), cancel()] == [True, False]
    refused = TransitionRefused(
        referral_id=view.id,
        agency_id=CARD.agency_id,
        refused_event_id="evt-00000000000000000000000000000001",
        sender="office",
        attempted="cancel",
        current_status=ReferralStatus.REQUESTED,
        code="transition.not-allowed",
        message="'cancel' is not allowed from there",
        occurred_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    event = new_event(refused, source="/wegweiser/referral", subject=view.id)
    delivery = Delivery(event, f"ww.referral.{CARD.agency_id}.refused")
    intake_db.run_sync(lambda s: projection.project_refusal(s, delivery))
    assert cancel() is True  # the refusal ended the first request: the office may ask again
    assert intake_db.run_sync(pending_count) == before + 2  # two cancellations asked, not three


def _close(db, view_id: str, status: str, at: datetime) -> None:
    def update(s):
        view = s.get(ReferralView, view_id)
        view.status, view.updated_at = status, at
        s.add(view)

    db.run_sync(update)


def test_retention_erases_closed_requests_after_the_period_and_keeps_the_rest(intake_db):
    old, _ = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))
    still_open, _ = intake_db.run_sync(
        lambda s: commands.record_request(CTX, s, body(text_version="2"))
    )
    closed, _ = intake_db.run_sync(lambda s: commands.request_referral(CTX, s, old.id, CARD))
    pending, _ = intake_db.run_sync(
        lambda s: commands.request_referral(CTX, s, still_open.id, CARD)
    )
    _close(intake_db, closed.id, "completed", NOW - timedelta(days=200))
    _close(intake_db, pending.id, "accepted", NOW - timedelta(days=300))
    later = NOW + timedelta(days=1)
    due = intake_db.run_sync(lambda s: retention.due(s, later, timedelta(days=180)))
    assert [d.request_id for d in due] == [old.id]
    assert due[0].closed_at == NOW - timedelta(days=200) and due[0].referrals == 1
    assert intake_db.run_sync(lambda s: retention.due(s, later, timedelta(days=365))) == []
    assert intake_db.run_sync(lambda s: retention.erase(s, vault=CTX.vault, request_id=old.id))
    assert not intake_db.run_sync(lambda s: retention.erase(s, vault=CTX.vault, request_id=old.id))
    with pytest.raises(PersonErased):
        intake_db.run_sync(lambda s: views.load_request(CTX, s, old.id))
    assert intake_db.run_sync(lambda s: views.load_request(CTX, s, still_open.id)).person.note
    assert intake_db.run_sync(lambda s: retention.due(s, later, timedelta(days=180))) == []
    assert intake_db.run_sync(lambda s: CTX.vault.has_key(s, "client-1"))  # still needed


def test_a_verdict_is_told_to_its_agency_only_and_forgotten_after_its_time(referral_db):

    answer_id = "4b2a7c1e-9d3f-4e5a-8b6c-7d8e9f0a1b2c"
    referral_db.run_sync(
        lambda s: store.record_verdict(
            s,
            answer_id,
            "agency-a",
            "r1",
            "refused",
            NOW,
            status="requested",
            code="referral.forbidden-transition",
            message="referral r1 is requested: 'complete' is not allowed from there",
        )
    )
    ask = AskVerdict(answer_id=answer_id)
    mine = referral_db.read_sync(lambda s: handlers.verdict(s, ask, "agency-a"))
    assert (mine.state, mine.code, mine.status) == (
        "refused",
        "referral.forbidden-transition",
        ReferralStatus.REQUESTED,
    )
    theirs = referral_db.read_sync(lambda s: handlers.verdict(s, ask, "agency-b"))
    assert theirs.state == "unknown" and theirs.referral_id is None
    assert referral_db.run_sync(lambda s: store.forget_verdicts_before(s, NOW)) == 0
    later = NOW + timedelta(seconds=1)
    assert referral_db.run_sync(lambda s: store.forget_verdicts_before(s, later)) == 1
    gone = referral_db.read_sync(lambda s: handlers.verdict(s, ask, "agency-a"))
    assert gone.state == "unknown"


def test_withdrawals_and_new_links_of_one_consent_at_once_take_turns(intake_db):
    """A double tap on the person's page, or two instances: one withdrawal event, one link."""
    row, consent_id = intake_db.run_sync(lambda s: commands.record_request(CTX, s, body()))

    def staged(subject: str) -> int:
        rows = intake_db.run_sync(lambda s: list(s.exec(select(OutboxRow))))
        return sum(1 for r in rows if r.subject == subject)

    with ThreadPoolExecutor(max_workers=6) as pool:
        withdrawn = list(
            pool.map(
                lambda _: (
                    intake_db.run_sync(
                        lambda s: commands.withdraw_consent(CTX, s, consent_id, WithdrawnBy.PERSON)
                    ).consent.withdrawn_at
                ),
                range(6),
            )
        )
        links = list(
            pool.map(
                lambda _: intake_db.run_sync(
                    lambda s: person.issue(CTX, s, consent_id, PersonLanguage.AR).token
                ),
                range(6),
            )
        )
    assert staged("ww.intake.consent.withdrawn") == 1
    assert staged("ww.intake.person-link.issued") == 6  # each new link, one after another
    assert len({as_utc(at) for at in withdrawn}) == 1  # the first withdrawal stands
    stored = intake_db.run_sync(lambda s: list(s.exec(select(PersonLink))))
    assert [link.token_sha256 for link in stored] in [[person.digest(t)] for t in links]
    assert stored[0].request_id == row.id
