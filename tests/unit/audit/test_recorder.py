"""The audit's use case without NATS: each stream message one entry by its sequence (a reused
id too), a gap entry for sequences never received, heads announced through the outbox and
signed again only when the log grew by more than its own announcements."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import select

from schemas import subjects
from services.audit import store
from services.audit.queries import SEQUENCE_GAP, anomalies
from services.audit.recorder import HEAD_SIGNED_TYPE, Recorder
from services.audit.verification import verify_entries
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

KEY = Ed25519PrivateKey.generate()
ANSWER = "ww.answer.lup-jobcenter.acknowledge"


def body(event_id: str, kind: str = "de.wegweiser.agency.answer.v2") -> bytes:
    return json.dumps({"id": event_id, "type": kind, "data": {}}).encode()


def record(db: Database, recorder: Recorder, sequence: int, raw: bytes, subject=ANSWER) -> None:
    db.run_sync(lambda s: recorder.record(s, subject, raw, sequence))
    recorder.committed()


def entries(db: Database) -> list[dict]:
    return [json.loads(e) for e in db.run_sync(store.all_entries)]


def test_two_messages_under_one_id_are_two_entries(db: Database) -> None:
    recorder = Recorder(KEY)
    same = "4b2a7c1e-9d3f-4e5a-8b6c-7d8e9f0a1b2c"
    record(db, recorder, 1, body(same, "de.wegweiser.referral.offered.v3"))
    record(db, recorder, 2, body(same))
    assert [(e["stream_sequence"], e["id"]) for e in entries(db)] == [(1, same), (2, same)]


def test_a_skipped_sequence_is_written_as_a_gap_before_the_next_entry(db: Database) -> None:
    recorder = Recorder(KEY)
    record(db, recorder, 1, body("4b2a7c1e-9d3f-4e5a-8b6c-000000000001"))
    record(db, recorder, 5, b"not even json")
    found = entries(db)
    assert [e.get("type") for e in found][1] == SEQUENCE_GAP
    assert (found[1]["missing_from"], found[1]["missing_to"]) == (2, 4)
    assert found[2]["stream_sequence"] == 5 and "unparseable_sha256" in found[2]
    assert anomalies(db.run_sync(store.all_entries))["sequence_gaps"] == [
        {"index": 2, "missing_from": 2, "missing_to": 4}
    ]
    # the gap and the entry after it were one transaction, and the chain holds
    head = db.run_sync(recorder.sign_head)
    assert verify_entries(db.run_sync(store.all_entries), head, KEY.public_key()).ok


def test_a_head_is_announced_and_its_own_announcement_asks_for_no_new_head(db: Database):
    recorder = Recorder(KEY, now=lambda: datetime(2026, 12, 1, 9, tzinfo=UTC))
    record(db, recorder, 1, body("4b2a7c1e-9d3f-4e5a-8b6c-000000000001"))
    assert recorder.needs_head(None)
    head = db.run_sync(recorder.sign_head)
    (staged,) = db.run_sync(lambda s: list(s.exec(select(OutboxRow))))
    assert staged.subject == subjects.AUDIT_HEAD_SIGNED
    announced = json.loads(staged.body)
    assert announced["type"] == HEAD_SIGNED_TYPE and announced["data"]["size"] == head.size
    # the announcement comes back through the stream and is recorded like any message
    record(db, recorder, 2, staged.body, subject=subjects.AUDIT_HEAD_SIGNED)
    assert not recorder.needs_head(head)
    record(db, recorder, 3, body("4b2a7c1e-9d3f-4e5a-8b6c-000000000003"))
    assert recorder.needs_head(head)
    # signing again at the same size returns the stored head and announces nothing new
    again = db.run_sync(recorder.sign_head)
    assert again.size == 3
    assert db.run_sync(recorder.sign_head) == again
    assert len(db.run_sync(lambda s: list(s.exec(select(OutboxRow))))) == 2


def test_a_second_instance_takes_in_what_the_first_appended(db: Database) -> None:
    first, second = Recorder(KEY), Recorder(KEY)
    record(db, first, 1, body("4b2a7c1e-9d3f-4e5a-8b6c-000000000001"))
    record(db, second, 2, body("4b2a7c1e-9d3f-4e5a-8b6c-000000000002"))
    assert [e["index"] for e in entries(db)] == [1, 2]
    db.run_sync(first.catch_up)
    assert first.ledger.root() == second.ledger.root()
