"""A new agency joins from its own machine: its keys are made there, the county approves, it
receives and opens a referral with its own key, and once revoked it is out within seconds
(issue "Partners own their identities", parts 1 and 3)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from contextlib import aclosing

import httpx
import nats.errors
import pytest

from services.agency import AgencyClient
from services.agency.enrolment import AgencyKeys
from tests.support.cli import wegweiser
from tests.support.system import (
    office_client,
    request_body,
    start_system,
    stream_events,
    wait_for,
)
from tests.support.web import sign_in
from wegweiser.platform import keys as keyfiles
from wegweiser.platform.connect import NotAuthorized
from wegweiser.platform.sealing import SealError

pytestmark = pytest.mark.slow

AGENCY = "lup-mbe-ludwigslust"
OTHER = "lup-mbe-parchim"
THIRD = "lup-jmd-hagenow"


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = start_system(tmp_path_factory.mktemp("enrolment"))
    yield s
    s.stop()


def agency_machine(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    """`wegweiser` on the agency's own machine: its own, empty data directory."""
    env = {**os.environ, "WEGWEISER_DATA_DIR": str(tmp_path / "agency-data")}
    return subprocess.run(
        [sys.executable, "-m", "wegweiser", "agency", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def county(system, *args: str) -> str:
    done = wegweiser(system, "agency", *args)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    return out


async def offer(system, agency: str) -> httpx.Response:
    async with office_client(system) as http:
        body = request_body(
            consent={**request_body()["consent"], "recipients": [{"agency_id": agency}]}
        )
        request = (await http.post("/requests", json=body)).json()
        return await http.post(
            f"/requests/{request['request_id']}/referrals", json={"agency_id": agency}
        )


async def test_an_agency_enrols_from_its_own_machine_receives_and_is_revoked(system, tmp_path):
    folder = tmp_path / "agency-keys"
    invited = county(system, "invite", AGENCY, "--valid-for", "PT1H")
    found = re.search(r"code \(give it to the agency only\): (\S+)", invited)
    assert found is not None
    code = found.group(1)
    directory = system.settings.directory_url

    asked = agency_machine(tmp_path, "enrol", code, "--directory", directory, "--keys", str(folder))
    assert asked.returncode == 0, asked.stderr
    assert "requested" in asked.stdout
    again = agency_machine(tmp_path, "enrol", code, "--directory", directory, "--keys", str(folder))
    assert again.returncode == 2 and "enrolment.code-used" in again.stderr
    assert "Traceback" not in again.stderr

    own = AgencyKeys(folder)
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    county_folder = system.settings.keys_path
    assert own.sealing.thumbprint() not in {
        keyfiles.load(p).thumbprint() for p in (county_folder / "agencies").glob("*.jwk")
    }  # the county never held this key

    pending = county(system, "enrolments")
    found = re.search(rf"(enr-\S+)\s+{AGENCY}\s+requested", pending)
    assert found is not None
    enrolment_id = found.group(1)
    county(system, "approve", enrolment_id)
    collected = agency_machine(tmp_path, "collect", "--keys", str(folder))
    assert collected.returncode == 0, collected.stderr + collected.stdout
    connection = json.loads((folder / "connection.json").read_text())
    assert connection["stream"] == "WEGWEISER" and connection["durable"] == f"agency-{AGENCY}"

    async with httpx.AsyncClient(base_url=directory) as http:
        jwks = (await http.get(f"/agencies/{AGENCY}/jwks.json")).json()["keys"]
    assert {k["kid"] for k in jwks} == {own.sealing.thumbprint(), own.signing.thumbprint()}
    assert all(k["wegweiser:custody"] == "agency" and "d" not in k for k in jwks)

    # a referral sent now is sealed to the agency's own key, and only that key opens it
    sent = await offer(system, AGENCY)
    assert sent.status_code == 202, sent.text
    client = await AgencyClient.connect(
        system.nats_url, AGENCY, own.sealing, own.offices, seed=own.broker_seed
    )
    county_copy = keyfiles.load(county_folder / "agencies" / f"{AGENCY}.jwk")
    stale = AgencyClient(client._nc, AGENCY, county_copy, own.offices, provision=False)

    async def offer_of(referral_id: str, reader: AgencyClient):
        async with aclosing(reader.deliveries()) as deliveries:  # no pull left behind
            async for delivery in deliveries:
                if delivery.kind == "offered" and delivery.event.data.referral_id == referral_id:
                    return delivery
                await delivery.ack()
        return None

    delivery = await asyncio.wait_for(offer_of(sent.json()["referral_id"], client), 30)
    case = client.open_case(delivery.event.data.case)
    assert case.client_reference == "client-42"
    with pytest.raises(SealError):
        stale.open_case(delivery.event.data.case)
    await delivery.ack()

    # the agency rotates: later offers are sealed to its new key, and the replaced key still
    # opens what was sealed to it during the overlap
    before = own.sealing
    rotated = agency_machine(tmp_path, "rotate", "--agency", AGENCY, "--keys", str(folder))
    assert rotated.returncode == 0, rotated.stderr
    after = AgencyKeys(folder)
    assert after.sealing.thumbprint() != before.thumbprint()
    assert [k.thumbprint() for k in after.sealing_keys] == [
        after.sealing.thumbprint(), before.thumbprint()
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=directory) as http:
        published = (await http.get(f"/agencies/{AGENCY}/jwks.json")).json()["keys"]
    retiring = {k["kid"]: k["wegweiser:valid_until"] for k in published}
    assert retiring[before.thumbprint()] is not None  # retires after the overlap
    assert retiring[after.sealing.thumbprint()] is None
    second = await offer(system, AGENCY)
    assert second.status_code == 202, second.text
    reader = AgencyClient(client._nc, AGENCY, after.sealing_keys, own.offices, provision=False)
    delivery = await asyncio.wait_for(offer_of(second.json()["referral_id"], reader), 30)
    assert reader.open_case(delivery.event.data.case).client_reference == "client-42"
    old_only = AgencyClient(client._nc, AGENCY, before, own.offices, provision=False)
    with pytest.raises(SealError):
        old_only.open_case(delivery.event.data.case)
    await delivery.ack()

    # revoked: its connection closes within seconds, it cannot come back, nothing is sealed to it
    county(system, "revoke", AGENCY)

    async def cut_off() -> bool:
        return client._nc.is_closed or not client._nc.is_connected

    await wait_for(cut_off, timeout=15)
    await client._nc.close()  # else it keeps trying to reconnect, refused, until the loop ends
    with pytest.raises((NotAuthorized, nats.errors.NoServersError, OSError)):
        await AgencyClient.connect(system.nats_url, AGENCY, seed=own.broker_seed)
    async with httpx.AsyncClient(base_url=directory) as http:
        assert (await http.get(f"/agencies/{AGENCY}/jwks.json")).json() == {"keys": []}
        for _ in range(2):  # refused again: the first refusal changed nothing
            late = AgencyKeys(folder)
            rotation = await http.post(
                f"/agencies/{AGENCY}/keys",
                json={
                    "sealing_key": late.sealing.export_public(as_dict=True),
                    "signing_key": late.signing.export_public(as_dict=True),
                    "valid_from": "2026-12-02T00:00:00+00:00",
                    "proof": "x",
                    "new_proof": "x",
                },
            )
            assert rotation.status_code == 403
            assert rotation.json()["code"] == "rotation.not-enrolled"
    refused = await offer(system, AGENCY)
    assert refused.status_code == 422 and "no public key" in refused.text

    # the audit log was told of each change to the agency's identity, in order
    async def told():
        events = await stream_events(system, f"ww.directory.{AGENCY}.>")
        return events if any(e["type"].endswith("agency-revoked.v1") for e in events) else None

    events = await wait_for(told, timeout=15)
    assert [e["data"].get("change", e["type"]) for e in events] == [
        "on-file", "enrolled", "rotated", "de.wegweiser.directory.agency-revoked.v1"
    ]  # fmt: skip


def test_an_unknown_expired_or_forged_enrolment_is_refused_in_one_line(system, tmp_path):
    directory = system.settings.directory_url
    guessed = agency_machine(
        tmp_path,
        "enrol",
        "wwe_guessed-guessed-guessed",
        "--directory",
        directory,
        "--keys",
        str(tmp_path / "k1"),
    )
    assert guessed.returncode == 2 and guessed.stderr.strip().startswith(
        "enrolment failed: enrolment.unknown-code"
    )
    invited = county(system, "invite", OTHER, "--valid-for", "PT1S")
    found = re.search(r"code \(give it to the agency only\): (\S+)", invited)
    assert found is not None
    code = found.group(1)
    import time

    time.sleep(1.5)  # the code's validity, not a test timing
    expired = agency_machine(
        tmp_path, "enrol", code, "--directory", directory, "--keys", str(tmp_path / "k2")
    )
    assert "enrolment.code-expired" in expired.stderr and expired.returncode == 2
    approve = wegweiser(system, "agency", "approve", "enr-00000000")
    _, err = approve.communicate(timeout=60)
    assert (
        approve.returncode == 2
        and err.strip() == "refused (enrolment.unknown): no enrolment enr-00000000"
    )
    forged = httpx.post(
        f"{directory}/enrolments",
        json={
            "code": "wwe_x" * 3,
            "sealing_key": {},
            "signing_key": {},
            "nats_user": "U" * 56,
            "proof": "x",
            "nats_proof": "x",
            "extra": 1,
        },
    )
    assert forged.status_code == 422


async def test_an_administrator_approves_in_the_web_app_and_the_broker_follows_by_itself(
    system, tmp_path
):
    """No command runs on the county's machine: the web app holds no broker key, and the
    broker watch gives the approved agency its user, and takes it away on revocation."""
    added = wegweiser(
        system,
        *("user", "add", "kreis-admin", "--role", "administrator", "--password-stdin"),
        stdin=subprocess.PIPE,
    )
    _, err = added.communicate("ein langes Passwort 1\n", timeout=60)
    assert added.returncode == 0, err
    web, csrf = sign_in(system.settings.web_url, "kreis-admin", "ein langes Passwort 1")
    invited = web.post(f"/admin/agencies/{THIRD}/invitations", data={"csrf": csrf, "days": "1"})
    found = re.search(r'value="(wwe_[^"]+)"', invited.text)
    assert found is not None
    code = found.group(1)
    folder = tmp_path / "agency-keys"
    directory = system.settings.directory_url
    asked = agency_machine(tmp_path, "enrol", code, "--directory", directory, "--keys", str(folder))
    assert asked.returncode == 0, asked.stderr
    own = AgencyKeys(folder)
    assert own.sealing.thumbprint() in asked.stdout  # to read out to the county
    page = web.get("/admin/agencies").text
    assert own.broker_user in page and own.sealing.thumbprint() in page
    found = re.search(r'data-enrolment="(enr-[^"]+)"', page)
    assert found is not None
    enrolment_id = found.group(1)
    approved = web.post(f"/admin/enrolments/{enrolment_id}/approve", data={"csrf": csrf})
    assert approved.status_code == 303, approved.text
    assert agency_machine(tmp_path, "collect", "--keys", str(folder)).returncode == 0

    async def connected() -> AgencyClient | None:
        try:
            return await AgencyClient.connect(
                system.nats_url, THIRD, own.sealing, own.offices, seed=own.broker_seed
            )
        except NotAuthorized:
            return None

    client = await wait_for(connected, timeout=15, every=0.5)
    sent = await offer(system, THIRD)
    assert sent.status_code == 202, sent.text
    async for delivery in client.deliveries():  # its durable was made by the watch too
        if delivery.kind == "offered":
            assert client.open_case(delivery.event.data.case).client_reference == "client-42"
            await delivery.ack()
            break
        await delivery.ack()

    revoked = web.post(f"/admin/agencies/{THIRD}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303

    async def cut_off() -> bool:
        return client._nc.is_closed or not client._nc.is_connected

    await wait_for(cut_off, timeout=15)
    await client._nc.close()  # else it keeps trying to reconnect, refused, until the loop ends
    web.close()
