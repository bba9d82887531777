"""Bad input gets a precise error and changes nothing; poison events are dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import nats
import pytest
import sqlalchemy

from tests.e2e.conftest import (
    AGENCY,
    office_auth,
    request_body,
    send_referral,
    stream_events,
    until_status,
    wait_for,
)

pytestmark = pytest.mark.slow


def rows(system, table: str) -> int:
    engine = sqlalchemy.create_engine(f"sqlite:///{system.data_dir / 'intake.db'}")
    with engine.connect() as conn:
        n = conn.exec_driver_sql(f"select count(*) from {table}").scalar_one()
    engine.dispose()
    return int(n)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consent": None}, "consent"),
        ({"municipality": "1307609"}, "municipality"),
        ({"needs": ["astrology"]}, "needs.0"),
        ({"age": -1}, "age"),
        ({"surprise": 1}, "surprise"),
        (
            {"municipality": None, "postcode": None},
            "give the person's municipality (AGS) or postcode",
        ),
    ],
)
async def test_a_malformed_request_gets_422_naming_the_field_and_nothing_is_stored(
    system, change, field
):
    body = request_body(**change)
    if body.get("consent") is None:
        del body["consent"]
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as http:
        response = await http.post("/requests", json=body)
        broken_json = await http.post(
            "/requests", content=b'{"needs": [', headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    named = [".".join(map(str, e["loc"][1:])) + " " + e["msg"] for e in response.json()["detail"]]
    assert any(field in n for n in named), named
    assert broken_json.status_code == 422 and "json_invalid" in broken_json.text
    assert rows(system, "requests") == 0 and rows(system, "consents") == 0
    assert rows(system, "outbox") == 0
    assert await stream_events(system, "ww.intake.>", idle=0.3) == []


async def test_referrals_to_unknown_or_uncovered_agencies_are_refused_and_nothing_is_sent(system):
    expired = request_body()
    expired["consent"]["given_at"] = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    expired["consent"]["expires_at"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as http:
        request = (await http.post("/requests", json=request_body())).json()
        old = (await http.post("/requests", json=expired)).json()
        send = f"/requests/{request['request_id']}/referrals"
        unknown = await http.post(send, json={"agency_id": "no-such-agency"})
        uncovered = await http.post(send, json={"agency_id": "lup-jobcenter"})
        lapsed = await http.post(
            f"/requests/{old['request_id']}/referrals", json={"agency_id": AGENCY}
        )
        missing = await http.post("/requests/req-nope/referrals", json={"agency_id": AGENCY})
        no_referral = await http.get("/referrals/ref-nope")
    assert unknown.status_code == 422
    assert "unknown agency 'no-such-agency'" in unknown.json()["detail"]
    assert uncovered.status_code == 422
    assert uncovered.json()["detail"].startswith("consent.not-covered: consent con-")
    assert "does not cover agency lup-jobcenter (kind jobcenter)" in uncovered.json()["detail"]
    assert lapsed.status_code == 422 and "expired at" in lapsed.json()["detail"]
    assert missing.status_code == 404 and no_referral.status_code == 404
    assert rows(system, "referral_views") == 0
    assert await stream_events(system, "ww.intake.referral.>", idle=0.3) == []


async def test_a_referral_sent_twice_to_the_same_agency_is_one_referral(system):
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as http:
        request = (await http.post("/requests", json=request_body())).json()
        send = f"/requests/{request['request_id']}/referrals"
        first = await http.post(send, json={"agency_id": AGENCY})
        second = await http.post(send, json={"agency_id": AGENCY})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["referral_id"] == second.json()["referral_id"]
    assert len(await stream_events(system, "ww.intake.referral.requested")) == 1


async def test_malformed_events_are_dead_lettered_with_the_reason_and_service_keeps_serving(system):
    nc = await nats.connect(system.nats_url, **system.nats_options)
    js = nc.jetstream()
    await js.publish("ww.intake.referral.requested", b"not json at all")
    await js.publish("ww.intake.referral.requested", b'{"specversion": "1.0", "id": "x"}')
    await js.publish("ww.answer.lup-jobcenter.accept", b'{"specversion": "0.3"}')
    await nc.close()
    letters = await wait_for(lambda: _letters(system, 3))
    by_subject = {}
    for letter in letters:
        by_subject.setdefault(letter["data"]["original_subject"], []).append(letter["data"])
    requested = by_subject["ww.intake.referral.requested"]
    assert all(d["service"] == "referral" and d["deliveries"] == 1 for d in requested)
    assert "Invalid JSON" in requested[0]["reason"]
    assert "source: Field required" in requested[1]["reason"]
    assert requested[0]["payload"] == "not json at all"
    assert "specversion" in by_subject["ww.answer.lup-jobcenter.accept"][0]["reason"]
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as http:
        rid = await send_referral(http)
        await until_status(http, rid, "requested")
    assert all(c.alive() for c in system.children.values())


async def _letters(system, n: int):
    found = await stream_events(system, "ww.deadletter.>", idle=0.2)
    return found if len(found) >= n else None


async def test_without_the_directory_intake_answers_503_and_records_no_referral(system):
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as http:
        request = (await http.post("/requests", json=request_body())).json()
        system.children["directory"].kill()
        found = await http.get(f"/requests/{request['request_id']}/suggestions")
        sent = await http.post(
            f"/requests/{request['request_id']}/referrals", json={"agency_id": AGENCY}
        )
    assert found.status_code == 503 and "directory did not answer" in found.text
    assert sent.status_code == 503
    assert rows(system, "referral_views") == 0
