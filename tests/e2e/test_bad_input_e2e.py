"""What bad input does to the running processes: poison events are dead-lettered with the
reason and every service keeps serving; without the directory, intake answers 503 and sends
nothing, but a counsellor can still record a request (with a warning of what went unchecked).
(Bad input to intake's API itself: tests/http/test_intake_api.py.)"""

from __future__ import annotations

from typing import Any

import nats
import pytest
import sqlalchemy

from tests.support.system import (
    AGENCY,
    office_client,
    request_body,
    requested_referral,
    stream_events,
    wait_for,
)

pytestmark = pytest.mark.slow


def referrals_of(system, request_id: str) -> int:
    """How many referrals intake holds for one request."""
    engine = sqlalchemy.create_engine(f"sqlite:///{system.data_dir / 'intake.db'}")
    with engine.connect() as conn:
        n = conn.exec_driver_sql(
            "select count(*) from referral_views where request_id = ?", (request_id,)
        ).scalar_one()
    engine.dispose()
    return int(n)


async def test_malformed_events_are_dead_lettered_with_the_reason_and_service_keeps_serving(system):
    nc = await nats.connect(system.nats_url, **system.nats_options)
    js = nc.jetstream()
    await js.publish("ww.intake.referral.requested", b"not json at all")
    await js.publish("ww.intake.referral.requested", b'{"specversion": "1.0", "id": "x"}')
    await js.publish("ww.answer.lup-jobcenter.accept", b'{"specversion": "0.3"}')
    await nc.close()
    letters = await wait_for(lambda: _letters(system, 3))
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for letter in letters:
        by_subject.setdefault(letter["data"]["original_subject"], []).append(letter["data"])
    requested = by_subject["ww.intake.referral.requested"]
    assert all(d["service"] == "referral" and d["deliveries"] == 1 for d in requested)
    assert "Invalid JSON" in requested[0]["reason"]
    assert "source: Field required" in requested[1]["reason"]
    assert requested[0]["payload"] == "not json at all"
    assert "specversion" in by_subject["ww.answer.lup-jobcenter.accept"][0]["reason"]
    async with office_client(system) as http:
        await requested_referral(http)
    assert all(c.alive() for c in system.children.values())


async def _letters(system, n: int):
    found = await stream_events(system, "ww.deadletter.>", idle=0.2)
    return found if len(found) >= n else None


async def test_without_the_directory_intake_answers_503_and_records_no_referral(system):
    async with office_client(system) as http:
        request = (await http.post("/requests", json=request_body())).json()
        system.children["directory"].kill()
        found = await http.get(f"/requests/{request['request_id']}/suggestions")
        sent = await http.post(
            f"/requests/{request['request_id']}/referrals", json={"agency_id": AGENCY}
        )
        # the counsellor can still record: what went unchecked is said
        unchecked = await http.post("/requests", json=request_body(client_reference="k-2"))
    assert unchecked.status_code == 201, unchecked.text
    assert [w["code"] for w in unchecked.json()["warnings"]] == ["place.unchecked"]
    assert found.status_code == 503 and "directory did not answer" in found.text
    assert sent.status_code == 503
    assert referrals_of(system, request["request_id"]) == 0
    system.restart("directory")  # for whoever shares the system after this test
