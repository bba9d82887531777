"""Withdrawal end to end: cancelled, deletion asked of every recipient, confirmed, erased."""

from __future__ import annotations

import nats
import pytest

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ConsentTerms, ReferralRequested, SealedCase
from tests.support.system import (
    agency_client,
    office_client,
    referral_status,
    request_and_referral,
    request_body,
    stream_events,
    until_status,
    wait_for,
)

pytestmark = pytest.mark.slow
AGENCIES = ("lup-mbe-ludwigslust", "lup-mbe-parchim")


async def test_withdrawing_consent_cancels_asks_every_recipient_to_delete_and_erases(system):
    async with office_client(system) as http:
        request = (await http.post("/requests", json=request_body())).json()
        send = f"/requests/{request['request_id']}/referrals"
        open_rid = (await http.post(send, json={"agency_id": AGENCIES[0]})).json()["referral_id"]
        done_rid = (await http.post(send, json={"agency_id": AGENCIES[1]})).json()["referral_id"]
        await until_status(http, open_rid, "requested")
        async with await agency_client(system, AGENCIES[1]) as agency:
            await agency.answer(done_rid, "accept")
            await agency.answer(done_rid, "complete", outcome="provided")
        await until_status(http, done_rid, "completed")

        receipt = await http.get(f"/consents/{request['consent_id']}/receipt?language=en")
        assert receipt.status_code == 200 and "withdraw this consent at any time" in receipt.text
        withdrawn = await http.post(f"/consents/{request['consent_id']}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["person_data_erased"] is True
        cancelled = await until_status(http, open_rid, "cancelled")
        assert cancelled["reason"] == "consent-withdrawn"
        asked = await wait_for(lambda: _deletions(system, 2))
        assert sorted(e["data"]["agency_id"] for e in asked) == sorted(AGENCIES)

        for agency_id, rid in zip(AGENCIES, (open_rid, done_rid), strict=True):
            async with await agency_client(system, agency_id) as agency:
                await agency.answer(rid, "confirm-deletion")

        async def confirmed():
            views = [await referral_status(http, rid) for rid in (open_rid, done_rid)]
            return views if all(v["deletion"] == "deletion-confirmed" for v in views) else None

        views = await wait_for(confirmed)
        assert views[1]["status"] == "completed"  # a closed referral stays closed, data deleted
        assert "deletion-confirmed" in [t["kind"] for t in views[0]["trail"]]

        gone = await http.get(f"/requests/{request['request_id']}/suggestions")
        assert gone.status_code == 410 and "erased" in gone.text
        again = await http.post(send, json={"agency_id": "lup-mbe-sonthofen"})
        assert again.status_code == 410
        twice = await http.post(f"/consents/{request['consent_id']}/withdraw")
        assert twice.status_code == 200
        after = await http.get(f"/consents/{request['consent_id']}/receipt?format=json")
        assert after.json()["withdrawnAt"] is not None
    withdrawals = await stream_events(system, "ww.intake.consent.withdrawn")
    assert [e["data"]["consent_id"] for e in withdrawals].count(request["consent_id"]) == 1


async def test_an_unconfirmed_deletion_is_reminded_and_escalated(system_factory):
    system = system_factory(
        WEGWEISER_DELETION_CONFIRM_WITHIN="PT1S",
        WEGWEISER_DELETION_ESCALATE_AFTER="PT2S",
        WEGWEISER_DEADLINE_CHECK_EVERY="0.2",
    )
    async with office_client(system) as http:
        request, rid = await request_and_referral(http, AGENCIES[0])
        await until_status(http, rid, "requested")
        await http.post(f"/consents/{request['consent_id']}/withdraw")

        async def escalated():
            view = await referral_status(http, rid)
            return view if view["deletion"] == "deletion-escalated" else None

        view = await wait_for(escalated)
    kinds = [t["kind"] for t in view["trail"]]
    assert (
        kinds.index("deletion-requested")
        < kinds.index("deletion-reminded")
        < kinds.index("deletion-escalated")
    )


async def test_a_referral_under_a_withdrawn_consent_is_refused_by_the_referral_service_too(system):
    """Defence in depth: a request that slipped past intake is refused downstream."""
    async with office_client(system) as http:
        request = (await http.post("/requests", json=request_body())).json()
        await http.post(f"/consents/{request['consent_id']}/withdraw")
    await wait_for(lambda: _withdrawal(system, request["consent_id"]))  # this one, not another
    consent = ConsentTerms.model_validate(
        {
            **request_body()["consent"],
            "consent_id": request["consent_id"],
            "person_reference": "p-x",
            "controller": "Landkreis",
        }
    )
    slipped = ReferralRequested(
        referral_id="ref-slipped",
        request_id=request["request_id"],
        office_id="o",
        agency_id=AGENCIES[0],
        agency_kind="migration-counselling",
        consent=consent,
        case=SealedCase(
            jwe="x" * 40, recipient_kid=AGENCIES[0], signer_kid="o", released_categories=("needs",)
        ),
    )
    nc = await nats.connect(system.nats_url, **system.nats_options)
    event = new_event(slipped, source="/wegweiser/intake", subject="ref-slipped")
    await nc.jetstream().publish(subjects.REFERRAL_REQUESTED, event.model_dump_json().encode())
    await nc.close()
    [refused] = await wait_for(lambda: _refusals(system, "ref-slipped"))
    assert refused["data"]["code"] == "consent.withdrawn"
    assert refused["data"]["referral_id"] == "ref-slipped"
    offered = await stream_events(system, "ww.referral.*.offered", idle=0.3)
    assert [e for e in offered if e["data"]["referral_id"] == "ref-slipped"] == []


async def _withdrawal(system, consent_id: str):
    found = await stream_events(system, "ww.intake.consent.withdrawn", idle=0.2)
    return [e for e in found if e["data"]["consent_id"] == consent_id] or None


async def _refusals(system, referral_id: str):
    found = await stream_events(system, "ww.referral.*.refused", idle=0.2)
    return [e for e in found if e["data"]["referral_id"] == referral_id] or None


async def _deletions(system, n: int):
    found = await stream_events(system, "ww.referral.*.deletion-requested", idle=0.2)
    return found if len(found) >= n else None
