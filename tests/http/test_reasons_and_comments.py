"""Reasons travel as codes; free text only as a comment sealed to its one reader.

The office withdraws a referral with a code from the closed vocabulary and, if it likes, a
comment that intake seals to the agency before anything is written; an agency's comment
reaches the office sealed to the office's key and is opened only to be shown. Neither rests
in intake's database in clear."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralRejected, SealedNote
from schemas.vocabulary import REASONS_FOR, ReasonCode, ReferralStatus
from services.intake.store import TrailEntry
from tests.support.intake import IntakeApp
from wegweiser.demo import sample_request
from wegweiser.platform import keys, sealing

OFFICE = "lup-integration-office"
AGENCY = "lup-mbe-ludwigslust"
SECRET = "Zora-canary lives at Hauptstraße 5 and is afraid of her landlord"


@pytest.fixture
async def referral_id(office: httpx.AsyncClient) -> str:
    request = (await office.post("/requests", json=sample_request())).json()
    sent = await office.post(
        f"/requests/{request['request_id']}/referrals", json={"agency_id": AGENCY}
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["referral_id"])


def at_rest(tmp_path: Path) -> bytes:
    """Everything intake keeps on disk (the database and its journal)."""
    found = list((tmp_path / "intake").glob("intake.db*"))
    assert found, "intake keeps its database elsewhere: this search would find nothing"
    return b"".join(p.read_bytes() for p in found)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "moved away"}, "reason"),  # free text: not a code
        ({"reason": "no-capacity"}, "body"),  # a code, but an agency's, not the office's
        ({"reason": "consent-withdrawn"}, "body"),  # only a withdrawal says so
        ({"reason": "need-met", "comment": ""}, "comment"),
        ({"reason": "need-met", "comment": "x" * 2001}, "comment"),
    ],
)
async def test_a_cancellation_without_a_fitting_code_is_refused_and_nothing_is_asked(
    intake: IntakeApp, office: httpx.AsyncClient, referral_id: str, body: dict, field: str
) -> None:
    before = intake.rows()
    answer = await office.post(f"/referrals/{referral_id}/cancel", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert any(field in ".".join(map(str, e["loc"])) for e in problem["errors"]), problem
    assert intake.rows() == before


async def test_every_reason_the_office_may_give_is_taken(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    for code in sorted(REASONS_FOR["cancel"]):
        request = (await office.post("/requests", json=sample_request())).json()
        sent = await office.post(
            f"/requests/{request['request_id']}/referrals", json={"agency_id": AGENCY}
        )
        rid = sent.json()["referral_id"]
        answer = await office.post(f"/referrals/{rid}/cancel", json={"reason": code})
        assert answer.status_code == 202, (code, answer.text)
    reasons = [e["data"]["reason"] for e in intake.staged_events(subjects.CANCELLATION_REQUESTED)]
    assert sorted(reasons) == sorted(REASONS_FOR["cancel"])


async def test_the_offices_comment_is_sealed_to_the_agency_and_rests_nowhere_in_clear(
    intake: IntakeApp, office: httpx.AsyncClient, referral_id: str, tmp_path: Path
) -> None:
    answer = await office.post(
        f"/referrals/{referral_id}/cancel", json={"reason": "need-met", "comment": SECRET}
    )
    assert answer.status_code == 202, answer.text
    [event] = intake.staged_events(subjects.CANCELLATION_REQUESTED)
    note = event["data"]["comment"]
    assert note["recipient_kid"] == AGENCY and note["signer_kid"] == OFFICE
    signers = {o: office_.signer for o, office_ in intake.offices.items()}
    opened = sealing.open_comment(
        SealedNote.model_validate(note),
        referral_id,
        key=intake.agency_keys[AGENCY],
        kid=AGENCY,
        signers=signers,
    )
    assert opened == SECRET
    with pytest.raises(sealing.SealError, match="another referral"):
        sealing.open_comment(
            SealedNote.model_validate(note),
            "ref-other",
            key=intake.agency_keys[AGENCY],
            kid=AGENCY,
            signers=signers,
        )
    assert b"Zora-canary" not in at_rest(tmp_path)
    trail = (await office.get(f"/referrals/{referral_id}")).json()["trail"]
    asked = next(t for t in trail if t["kind"] == "cancellation-requested")
    assert asked["reason"] == "need-met"
    assert asked["comment"] == {"text": None, "unreadable": "sealed-to-agency"}


async def rejected_with_comment(
    intake: IntakeApp, office: httpx.AsyncClient, referral_id: str, text: str, sealed_to
) -> str:
    """The referral service's rejection of the referral, with the agency's comment sealed to
    the key `sealed_to` (a private key: its public half is used), handed to intake; the
    event's id."""
    public = keys.from_dict(keys.public_dict(sealed_to))
    rejected = ReferralRejected(
        referral_id=referral_id,
        request_id=(await office.get(f"/referrals/{referral_id}")).json()["request_id"],
        agency_id=AGENCY,
        status=ReferralStatus.REJECTED,
        version=2,
        occurred_at=datetime.now(UTC),
        reason=ReasonCode.NO_CAPACITY,
        comment=sealing.comment_to_office(text, referral_id, {OFFICE: public}),
    )
    event = new_event(rejected, source="/wegweiser/referral", subject=referral_id)
    intake.project(subjects.referral_event(AGENCY, "rejected"), event)
    return event.id


async def test_an_agencys_comment_is_opened_for_the_office_only_when_shown(
    intake: IntakeApp, office: httpx.AsyncClient, referral_id: str, tmp_path: Path
) -> None:
    office_key = intake.offices[OFFICE].sealing
    event_id = await rejected_with_comment(intake, office, referral_id, SECRET, office_key)
    shown = (await office.get(f"/referrals/{referral_id}")).json()
    assert shown["status"] == "rejected" and shown["reason"] == "no-capacity"
    assert shown["comment"] == {"text": SECRET, "unreadable": None}
    assert shown["trail"][-1]["comment"]["text"] == SECRET
    assert b"Zora-canary" not in at_rest(tmp_path)
    stored = intake.db.read_sync(lambda s: s.get(TrailEntry, event_id))
    assert stored is not None and stored.comment is not None and "jwe" in stored.comment


async def test_a_comment_the_office_cannot_open_says_why_instead_of_vanishing(
    intake: IntakeApp, office: httpx.AsyncClient, referral_id: str
) -> None:
    stranger = keys.generate_encryption_key()  # sealed to a key that is not the office's
    await rejected_with_comment(intake, office, referral_id, "hello", stranger)
    shown = (await office.get(f"/referrals/{referral_id}")).json()
    assert shown["comment"] == {"text": None, "unreadable": "seal.undecryptable"}
