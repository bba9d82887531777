"""The command line against the running processes: status and the agency adapter."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess

import httpx
import pytest

from services.intake.credential import Credential
from tests.support.cli import wegweiser
from tests.support.system import (
    AGENCY,
    agency_client,
    office_client,
    referral_status,
    request_and_referral,
    request_body,
    requested_referral,
    send_referral,
    stream_events,
    until_status,
    wait_for,
)

pytestmark = pytest.mark.slow
OTHER_OFFICE = "oa-integration-office"


# The tests share one system: the status test runs first (it counts every dead letter), then
# retention (it erases whatever is due).


def test_status_reports_every_service_and_the_stream_and_fails_when_one_is_down(system):
    out, _ = wegweiser(system, "status").communicate(timeout=30)
    assert "service referral   up" in out and "intake HTTP" in out and " ok" in out
    assert "consumer referral-answers" in out and "0 dead letters" in out
    system.children["referral"].kill()
    down = wegweiser(system, "status")
    out, _ = down.communicate(timeout=30)
    assert down.returncode == 1 and "service referral   DOWN" in out
    system.restart("referral")  # for the tests that share the system after this one
    assert system.wait_ready(60)


async def test_retention_shows_what_is_due_and_erases_it(system):
    async with office_client(system) as http:
        request, rid = await request_and_referral(http)
        await until_status(http, rid, "requested")
        await http.post(f"/referrals/{rid}/cancel", json={"reason": "need-met"})
        await until_status(http, rid, "cancelled")
        env = {"WEGWEISER_RETENTION_AFTER_CLOSURE": "PT0S"}
        shown, _ = wegweiser(system, "retention", env_extra=env).communicate(timeout=30)
        assert f"  {request['request_id']}  closed" in shown and "erased" not in shown
        assert (await http.get(f"/requests/{request['request_id']}/suggestions")).status_code == 200
        ran, _ = wegweiser(system, "retention", "--run", env_extra=env).communicate(timeout=30)
        assert "erased the personal data of 1 request(s)" in ran
        gone = await http.get(f"/requests/{request['request_id']}/suggestions")
        assert gone.status_code == 410


async def test_agency_listen_prints_offers_and_acknowledges_them(system):
    listener = wegweiser(system, "agency", "listen", "--agency", AGENCY, "--acknowledge")
    try:
        async with office_client(system) as http:
            rid = await send_referral(http)
            printed = await asyncio.wait_for(asyncio.to_thread(_offer_printed, listener, rid), 30)
            assert printed["kind"] == "offered" and printed["event"]["data"]["referral_id"] == rid
            assert printed["case"]["client_reference"] == "client-42"  # unsealed by the adapter
            assert "client-42" not in json.dumps(printed["event"])  # the event held ciphertext

            await until_status(http, rid, "received")
        answer = wegweiser(
            system,
            "agency",
            "answer",
            rid,
            "reject",
            "--agency",
            AGENCY,
            "--reason",
            "no-capacity",
            "--comment",
            "Full until March; the MBE in Parchim has places",
            "--office",
            printed["event"]["data"]["office_id"],  # the offer names the office to seal to
        )
        _out, err = answer.communicate(timeout=30)
        assert answer.returncode == 0, err
        async with office_client(system) as http:
            view = await until_status(http, rid, "rejected")
        assert view["reason"] == "no-capacity"
        # typed on the agency's side, sealed to the office there, opened by the office only
        assert view["comment"]["text"] == "Full until March; the MBE in Parchim has places"
        answers = await stream_events(system, f"ww.answer.{AGENCY}.reject")
        assert "Parchim" not in json.dumps(answers) and answers[0]["data"]["comment"]["jwe"]
    finally:
        listener.terminate()
        listener.wait(10)


async def test_agency_listen_acknowledges_an_offer_in_its_backlog_only_if_still_open(system):
    async with office_client(system) as http:
        still_open = await send_referral(http)
        closed = await requested_referral(http)
        said = {"reason": "need-met", "comment": "Found a course nearer home"}
        await http.post(f"/referrals/{closed}/cancel", json=said)
        await until_status(http, closed, "cancelled")
        listener = wegweiser(system, "agency", "listen", "--agency", AGENCY, "--acknowledge")
        try:
            printed = await asyncio.wait_for(
                asyncio.to_thread(_printed, listener, closed, "cancelled"), 30
            )
            assert printed["event"]["data"]["referral_id"] == closed
            assert printed["comment"] == "Found a course nearer home"  # opened by the agency
            assert "nearer home" not in json.dumps(printed["event"])  # it travelled sealed
            await until_status(http, still_open, "received")
        finally:
            listener.terminate()
            listener.wait(10)
        refused = await stream_events(system, f"ww.referral.{AGENCY}.refused", idle=0.5)
        assert [r for r in refused if r["data"]["referral_id"] == closed] == []
        assert (await referral_status(http, closed))["status"] == "cancelled"


async def test_an_agency_reports_no_capacity_and_suggestions_exclude_it_at_once(system):
    async with office_client(system) as http:
        request = (await http.post("/requests", json=request_body())).json()
        path = f"/requests/{request['request_id']}/suggestions"
        before = (await http.get(path)).json()
        assert AGENCY in [s["candidate"]["agency"]["agency_id"] for s in before["suggestions"]]
        full = wegweiser(system, "agency", "capacity", "0", "30", "--agency", AGENCY)
        said, complaints = full.communicate(timeout=30)
        assert full.returncode == 0 and said.startswith("capacity update ")
        assert complaints == ""  # nothing on stderr: no warning on a normal exit

        async def excluded():
            found = (await http.get(path)).json()
            reasons = {
                e["agency"]["agency_id"]: [r["code"] for r in e["reasons"]]
                for e in found["excluded"]
            }
            return reasons.get(AGENCY)

        assert await wait_for(excluded) == ["capacity.none"]
        wegweiser(system, "agency", "capacity", "3", "2", "--agency", AGENCY).wait(30)

        async def back():
            found = (await http.get(path)).json()
            cards = [s["candidate"]["agency"] for s in found["suggestions"]]
            return [c for c in cards if c["agency_id"] == AGENCY and c["waiting_days"] == 2]

        assert await wait_for(back)
    stranger = wegweiser(system, "agency", "capacity", "1", "1", "--agency", "no-such-agency")
    _, err = stranger.communicate(timeout=30)
    assert stranger.returncode == 2 and "refused the credentials" in err  # no nkey, no entry
    system_seed = str(system.settings.nats_seed_path)
    bogus = wegweiser(
        system, "agency", "capacity", "1", "1", "--agency", "no-such-agency", "--seed", system_seed
    )
    assert bogus.wait(30) == 0  # published; the directory dead-letters it with the reason
    letters = await wait_for(lambda: _letters(system))
    assert "unknown agency 'no-such-agency'" in letters[0]["data"]["reason"]


async def test_an_office_client_is_added_used_and_revoked_from_the_command_line(system, tmp_path):
    out = tmp_path / "office-software.json"
    added = wegweiser(system, "api-client", "add", "--office", OTHER_OFFICE, "--out", str(out))
    assert added.stderr is not None
    assert added.wait(60) == 0, added.stderr.read()
    assert out.stat().st_mode & 0o077 == 0
    credential = Credential.load(out)
    assert credential.offices == (OTHER_OFFICE,)
    assert credential.client_secret not in (system.data_dir / "intake.db").read_bytes().decode(
        "latin-1"
    )

    async with httpx.AsyncClient(base_url=system.settings.intake_url) as http:
        basic = (credential.client_id, credential.client_secret)
        grant = {"grant_type": "client_credentials"}
        issued = (await http.post("/token", data=grant, auth=basic)).json()
        assert issued["scope"] == f"office:{OTHER_OFFICE}" and issued["expires_in"] > 0
        bearer = {"Authorization": f"Bearer {issued['access_token']}"}
        created = await http.post("/requests", json=request_body(), headers=bearer)
        assert created.status_code == 201, created.text
        revoked = wegweiser(system, "api-client", "revoke", credential.client_id)
        assert revoked.stderr is not None
        assert revoked.wait(60) == 0, revoked.stderr.read()

        async def refused() -> bool:
            path = f"/requests/{created.json()['request_id']}"
            return (await http.get(path, headers=bearer)).status_code == 401

        await wait_for(refused, timeout=15)  # the token it holds, within seconds
        token = await http.post("/token", data=grant, auth=basic)  # and no new one
        assert token.status_code == 401 and "revoked" in token.json()["error_description"]

    listed = wegweiser(system, "api-client", "list")
    stdout, _ = listed.communicate(timeout=60)
    assert re.search(rf"{credential.client_id}\s+revoked", stdout)
    assert credential.client_secret not in stdout


def test_a_client_for_an_unknown_office_is_refused_in_one_line(system):
    added = wegweiser(system, "api-client", "add", "--office", "nowhere-office")
    stdout, stderr = added.communicate(timeout=60)
    assert added.returncode == 2 and stdout == ""
    assert stderr.strip() == "refused: unknown office nowhere-office"
    listed = wegweiser(system, "api-client", "list")
    assert "nowhere-office" not in listed.communicate(timeout=60)[0]


def _offer_printed(listener: subprocess.Popen[str], referral_id: str) -> dict:
    """The line the listener printed for the offer of `referral_id` (it prints every event of
    the agency, older ones of the shared system first)."""
    assert listener.stdout is not None
    while True:
        printed = json.loads(listener.stdout.readline())
        if printed["event"]["data"].get("referral_id") == referral_id:
            return printed


def _printed(listener: subprocess.Popen[str], referral_id: str, kind: str) -> dict:
    """The line the listener printed for the event `kind` of `referral_id`."""
    assert listener.stdout is not None
    while True:
        printed = json.loads(listener.stdout.readline())
        data = printed["event"]["data"]
        if data.get("referral_id") == referral_id and printed["kind"] == kind:
            return printed


async def _letters(system):
    return await stream_events(system, "ww.deadletter.directory", idle=0.2) or None


async def test_agency_answer_waits_for_the_verdict_and_says_it(system):
    """`agency answer --wait` (the default on a terminal) prints what the referral service
    made of the answer: taken with the referral's new state (exit 0), or refused with the
    rule's code (exit 1); nobody learns the verdicts on another agency's answers."""
    async with office_client(system) as http:
        rid = await requested_referral(http)

    def answer(*args: str) -> tuple[int, str, str]:
        done = wegweiser(system, "agency", "answer", rid, *args, "--agency", AGENCY, "--wait")
        out, err = done.communicate(timeout=60)
        return done.returncode, out, err

    code, out, err = answer("complete", "--outcome", "provided")  # never accepted
    assert code == 1, (out, err)
    assert "refused: referral.forbidden-transition:" in err and "is requested" in err
    assert "Traceback" not in err
    code, out, err = answer("accept")
    assert code == 0, err
    assert re.search(rf"answer \S+ taken: referral {rid} is now accepted", out), out
    sent_id = out.split()[1]
    async with (
        await agency_client(system, "lup-jobcenter") as other,
        await agency_client(system) as own,
    ):
        assert (await own.verdict(sent_id, within=5)).state == "taken"
        assert (await other.verdict(sent_id, within=1)).state == "unknown"  # not its answer


def test_agency_answer_without_a_running_referral_service_says_so_in_one_line(system):
    system.children["referral"].kill()
    try:
        done = wegweiser(
            system, "agency", "answer", "ref-00000000000000000000000000000000", "accept",
            "--agency", AGENCY, "--wait", "--within", "1",
        )  # fmt: skip
        out, err = done.communicate(timeout=60)
        assert done.returncode == 3, (out, err)
        assert "no verdict within 1 s" in err and "Traceback" not in err
    finally:
        system.restart("referral")
        assert system.wait_ready(60)
