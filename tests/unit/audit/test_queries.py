"""The ombudsperson's views, computed from log entries alone."""

from __future__ import annotations

from services.audit import queries
from services.audit.ledger import Ledger
from services.audit.metadata import metadata

R1 = "ref-3f0c2b8e-6a1d-4c1e-9b7a-1d2e3f4a5b6c"
C1 = "con-8d9e0f1a-2b3c-4d5e-8f70-8192a3b4c5d6"


def log_of(*events: tuple[str, str, dict]) -> list[bytes]:
    ledger = Ledger()
    for n, (kind, subject, data) in enumerate(events, start=1):
        event = {
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "type": kind,
            "source": "/wegweiser/test",
            "subject": R1,
            "time": f"2026-11-21T09:00:{n:02d}+00:00",
            "data": data,
        }
        ledger.append(metadata(event, subject, n))
    return ledger.entries


REQUESTED = (
    "de.wegweiser.intake.referral.requested.v5",
    "ww.intake.referral.requested",
    {
        "referral_id": R1,
        "agency_id": "a1",
        "agency_kind": "legal-aid",
        "consent": {"consent_id": C1, "recipients": [{"kind": "legal-aid"}]},
        "case": {"jwe": "secret-ciphertext", "released_categories": ["needs"]},
    },
)
OFFERED = (
    "de.wegweiser.referral.offered.v3",
    "ww.referral.a1.offered",
    {
        "referral_id": R1,
        "agency_id": "a1",
        "status": "requested",
        "consent_id": C1,
        "occurred_at": "2026-11-21T09:00:02+00:00",
        "case": {"jwe": "secret-ciphertext", "released_categories": ["needs"]},
    },
)


def test_a_covered_offer_and_its_answers_are_no_anomaly():
    accepted = (
        "de.wegweiser.referral.accepted.v2",
        "ww.referral.a1.accepted",
        {
            "referral_id": R1,
            "agency_id": "a1",
            "status": "accepted",
            "occurred_at": "2026-11-21T09:01:02+00:00",
        },
    )
    answer = (
        "de.wegweiser.agency.answer.v2",
        "ww.answer.a1.accept",
        {
            "referral_id": R1,
            "agency_id": "a1",
            "action": "accept",
            "comment": {"jwe": "private-comment-ciphertext", "recipient_kid": "office-1"},
        },
    )
    raw = log_of(REQUESTED, OFFERED, answer, accepted)
    assert queries.anomalies(raw) == {
        "offers_without_covering_consent": [],
        "answers_for_referrals_never_received": [],
        "fields_withheld": [],
        "sequence_gaps": [],
    }
    [row] = queries.answer_times(raw)
    assert row == {
        "agency": "a1",
        "offers": 1,
        "median_seconds_to_acknowledge": 60.0,
        "median_seconds_to_answer": 60.0,
    }
    assert b"secret-ciphertext" not in b"".join(raw) and b"private" not in b"".join(raw)


def test_an_uncovered_offer_and_a_strangers_answer_are_reported():
    stranger = (
        "de.wegweiser.agency.answer.v2",
        "ww.answer.a2.accept",
        {"referral_id": R1, "agency_id": "a2", "action": "accept"},
    )
    other_kind = (REQUESTED[0], REQUESTED[1], {**REQUESTED[2], "agency_kind": "jobcenter"})
    found = queries.anomalies(log_of(other_kind, OFFERED, stranger))
    assert [a["referral_id"] for a in found["offers_without_covering_consent"]] == [R1]
    assert found["answers_for_referrals_never_received"] == [
        {"index": 3, "referral_id": R1, "agency": "a2"}
    ]
