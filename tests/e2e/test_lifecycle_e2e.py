"""A referral's whole life across the real processes, and what the office sees of it."""

from __future__ import annotations

import asyncio
import json
import stat

import httpx
import pytest

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import AgencyAnswer
from schemas.vocabulary import AgencyAction
from services.agency import AnswerInvalid
from tests.support.system import (
    AGENCY,
    COMPLETED_TRAIL,
    agency_client,
    first_delivery,
    office_client,
    referral_status,
    requested_referral,
    run_demo,
    send_referral,
    stream_events,
    until_status,
    wait_for,
)
from wegweiser.platform import grants
from wegweiser.platform.connect import connect
from wegweiser.platform.grants import JS_API_PREFIX

pytestmark = pytest.mark.slow


async def test_the_demo_takes_a_referral_from_intake_to_completion_and_the_trail_shows_it(system):
    final = await run_demo(system, say=print)
    assert final["status"] == "completed"
    assert [t["kind"] for t in final["trail"]] == COMPLETED_TRAIL
    assert [t["version"] for t in final["trail"][1:]] == [1, 2, 3, 4, 5]
    assert all(t["occurred_at"].endswith("Z") for t in final["trail"])
    offers = await stream_events(system, "ww.referral.*.offered")
    assert len(offers) == 1
    sealed = offers[0]["data"]["case"]
    assert (
        sealed["recipient_kid"] == offers[0]["data"]["agency_id"] and sealed["jwe"].count(".") == 4
    )
    assert "Needs help" not in json.dumps(offers) and "Demo Client" not in json.dumps(offers)


@pytest.mark.postgres
async def test_the_demo_passes_with_every_service_on_postgresql(system_factory, postgres_databases):
    system = system_factory(
        **{
            f"WEGWEISER_{name.upper()}_DB_URL": postgres_databases()
            for name in ("intake", "referral", "directory")
        }
    )
    final = await run_demo(system, say=print)
    assert final["status"] == "completed"
    assert not (system.data_dir / "referral.db").exists()


async def test_forbidden_answers_come_back_to_the_sender_as_refusals(system):
    async with office_client(system) as http:
        rid = await requested_referral(http)
        async with await agency_client(system) as agency:
            await agency.answer(rid, "complete", outcome="provided")  # not accepted yet
            with pytest.raises(AnswerInvalid, match="'reject' needs a reason"):
                await agency.answer(rid, "reject")  # the SDK does not send it ...
        # ... but an agency on the raw nats-py path can: the referral service refuses it too
        raw = await connect(
            system.nats_url, "raw", system.agency_seed(AGENCY), grants.inbox_prefix(AGENCY)
        )
        unreasoned = new_event(
            AgencyAnswer(referral_id=rid, agency_id=AGENCY, action=AgencyAction.REJECT),
            source=f"/wegweiser/agency/{AGENCY}",
            subject=rid,
        )
        await raw.jetstream(prefix=JS_API_PREFIX).publish(
            subjects.answer(AGENCY, "reject"), unreasoned.model_dump_json().encode()
        )
        await raw.close()
        async with await agency_client(system, "lup-jobcenter") as other:
            await other.answer(rid, "accept")  # never received it
        refusals = await wait_for(lambda: _refusals(system, 3))
        by_agency = {(r["data"]["agency_id"], r["data"]["attempted"]): r["data"] for r in refusals}
        assert by_agency[(AGENCY, "complete")]["code"] == "referral.forbidden-transition"
        assert (
            "is requested: 'complete' is not allowed" in by_agency[(AGENCY, "complete")]["message"]
        )
        assert by_agency[(AGENCY, "reject")]["code"] == "referral.reason-required"
        stranger = by_agency[("lup-jobcenter", "accept")]
        assert stranger["message"] == f"agency lup-jobcenter never received referral {rid}"
        assert stranger["current_status"] is None  # nothing about another agency's referral leaks
        refused_subjects = {r["nats_subject"] for r in refusals}
        assert "ww.referral.lup-jobcenter.refused" in refused_subjects
        assert (await referral_status(http, rid))["status"] == "requested"


async def test_the_office_cancels_a_referral_and_the_agency_is_told(system):
    async with office_client(system) as http:
        rid = await requested_referral(http)
        said = {"reason": "referred-elsewhere", "comment": "She moved to Schwerin; call first"}
        assert (await http.post(f"/referrals/{rid}/cancel", json=said)).status_code == 202
        view = await until_status(http, rid, "cancelled")
        assert view["reason"] == "referred-elsewhere"
        again = await http.post(f"/referrals/{rid}/cancel", json={"reason": "other"})
        assert again.status_code == 200 and again.json()["status"] == "cancelled"  # as it is
    cancelled = await stream_events(system, f"ww.referral.{AGENCY}.cancelled")
    assert [c["data"]["referral_id"] for c in cancelled] == [rid]
    assert "Schwerin" not in json.dumps(cancelled)
    async with await agency_client(system, keys=True) as agency:
        told = await asyncio.wait_for(first_delivery(agency, "cancelled"), 30)
    assert told.comment == "She moved to Schwerin; call first"  # opened by the agency only


async def test_an_agency_on_the_previous_version_is_still_understood(system):
    """Answers of version 1 (free-text reasons, no outcome) still in the stream, or sent by an
    agency that has not updated its software, are read as version 2: the reason becomes
    `other` (its text is not carried on), a completion's outcome `provided`."""
    async with office_client(system) as http:
        rejected, completed = await send_referral(http), await send_referral(http)
        await until_status(http, completed, "requested")
        raw = await connect(
            system.nats_url, "old-sdk", system.agency_seed(AGENCY), grants.inbox_prefix(AGENCY)
        )
        js = raw.jetstream(prefix=JS_API_PREFIX)
        for rid, action, reason in [
            (rejected, "reject", "no capacity until March, call Frau K."),
            (completed, "accept", None),
            (completed, "complete", None),
        ]:
            old = json.loads(
                new_event(
                    AgencyAnswer(referral_id=rid, agency_id=AGENCY, action=action),
                    source=f"/wegweiser/agency/{AGENCY}",
                    subject=rid,
                ).model_dump_json()
            )
            old["type"] = "de.wegweiser.agency.answer.v1"
            old["data"] = {"referral_id": rid, "agency_id": AGENCY, "action": action}
            old["data"] |= {"reason": reason} if reason else {}
            await js.publish(subjects.answer(AGENCY, action), json.dumps(old).encode())
        await raw.close()
        view = await until_status(http, rejected, "rejected")
        assert view["reason"] == "other" and view["comment"] is None
        done = await until_status(http, completed, "completed")
        assert done["outcome"] == "provided"
    letters = await stream_events(system, "ww.deadletter.>", idle=0.2)
    assert letters == []
    changes = await stream_events(system, f"ww.referral.{AGENCY}.rejected")
    assert "Frau K." not in json.dumps(changes)  # the old free text went no further


async def test_an_unanswered_offer_is_reminded_escalated_and_expires(system_factory):
    system = system_factory(
        WEGWEISER_REMIND_AFTER="PT1S",
        WEGWEISER_ESCALATE_AFTER="PT2S",
        WEGWEISER_EXPIRE_AFTER="PT3S",
        WEGWEISER_DEADLINE_CHECK_EVERY="0.2",
    )
    async with office_client(system) as http:
        rid = await send_referral(http)
        view = await until_status(http, rid, "cancelled")
    assert [t["kind"] for t in view["trail"]] == [
        "requested-by-office",
        "offered",
        "reminded",
        "escalated",
        "expired",
    ]
    assert view["overdue"] == "expired"
    assert view["reason"] == "not-acknowledged"


async def _refusals(system, n: int):
    found = await stream_events(system, "ww.referral.*.refused", idle=0.2)
    return found if len(found) >= n else None


async def test_the_metrics_count_what_the_services_did_summed_over_their_processes(system):
    """`up` serves every service's metrics on the loopback for Prometheus: the events each
    consumer handled, the outbox's publications, the HTTP requests, the referrals by state."""
    async with office_client(system) as http:
        await requested_referral(http)
    url = f"http://{system.settings.metrics_host}:{system.settings.metrics_port}/metrics"
    assert system.settings.metrics_host == "127.0.0.1"  # for the operator, not the network

    async def scraped() -> dict[str, float] | None:
        async with httpx.AsyncClient() as client:
            text = (await client.get(url)).text
        found = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("wegweiser_")
        }
        wanted = [
            'wegweiser_events_handled_total{consumer="referral-intake-commands",service="referral"}',
            'wegweiser_outbox_published_total{service="intake"}',
            'wegweiser_referrals{state="requested"}',
        ]
        return found if all(found.get(w, 0) >= 1 for w in wanted) else None

    found = await wait_for(scraped, timeout=30)
    requests = [k for k in found if k.startswith("wegweiser_http_request_seconds_count")]
    assert any('route="/requests"' in k and 'service="intake"' in k for k in requests)
    assert not any("ref-" in k or "req-" in k for k in found)  # no ids in the labels
    assert found["wegweiser_stream_max_bytes"] > 0
    folder = system.data_dir / "run" / "metrics"  # where each process writes its values
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
