"""Every door of intake checks who knocks: no token, another office's token, a revoked client,
a foreign Host or Origin (issue "Partners own their identities", part 4)."""

from __future__ import annotations

import re

import httpx
import pytest

from services.intake.credential import Credential
from tests.e2e.conftest import AGENCY, office_auth, request_body, start_system, wait_for
from tests.e2e.test_cli_e2e import wegweiser

pytestmark = pytest.mark.slow

PUBLIC = {"/health", "/token", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
OTHER_OFFICE = "oa-integration-office"


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = start_system(tmp_path_factory.mktemp("access"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mine(system):
    """A request, consent and referral of the default office."""
    with httpx.Client(base_url=system.settings.intake_url, auth=office_auth(system)) as http:
        request = http.post("/requests", json=request_body()).json()
        sent = http.post(f"/requests/{request['request_id']}/referrals", json={"agency_id": AGENCY})
        assert sent.status_code == 202, sent.text
    return {
        "request_id": request["request_id"],
        "consent_id": request["consent_id"],
        "referral_id": sent.json()["referral_id"],
    }


def routes(system, ids):
    """Every (method, path) of the API but the public ones, with the default office's ids."""
    schema = httpx.get(f"{system.settings.intake_url}/openapi.json").json()
    out = []
    for path, methods in schema["paths"].items():
        if path in PUBLIC:
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        out += [(method.upper(), concrete) for method in methods]
    assert len(out) >= 10, out
    return out


def test_every_route_but_health_and_token_refuses_a_call_without_a_valid_token(system, mine):
    forged = "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.AAAA"
    for method, path in routes(system, mine):
        for headers in [{}, {"Authorization": forged}, {"X-Wegweiser-Office": OTHER_OFFICE}]:
            response = httpx.request(
                method, f"{system.settings.intake_url}{path}", headers=headers, json={}
            )
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{system.settings.intake_url}/health").json() == {"status": "ok"}


def test_another_offices_token_reads_and_changes_none_of_this_offices_cases(system, mine):
    other = office_auth(system, OTHER_OFFICE)
    with httpx.Client(base_url=system.settings.intake_url, auth=other) as http:
        for method, path in routes(system, mine):
            if path in ("/requests", "/referrals"):
                continue  # the other office's own collection: its own, not ours
            body = {"agency_id": AGENCY} if path.endswith("/referrals") else {"reason": "mine"}
            response = http.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
        listed = http.get("/referrals").json()
        assert mine["referral_id"] not in [r["referral_id"] for r in listed]
    with httpx.Client(base_url=system.settings.intake_url, auth=office_auth(system)) as http:
        detail = http.get(f"/requests/{mine['request_id']}").json()
        assert detail["consent_withdrawn_at"] is None and not detail["erased"] and detail["needs"]
        referral = http.get(f"/referrals/{mine['referral_id']}").json()
        assert referral["status"] != "cancelled"
        assert len(http.get(f"/requests/{mine['request_id']}/referrals").json()) == 1


def test_an_office_credential_gets_no_token_for_another_office(system):
    credential = Credential.load(system.settings.demo_intake_credential_path)
    token = httpx.post(
        f"{system.settings.intake_url}/token",
        data={"grant_type": "client_credentials", "scope": f"office:{OTHER_OFFICE}"},
        auth=(credential.client_id, credential.client_secret),
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_scope"
    wrong = httpx.post(
        f"{system.settings.intake_url}/token",
        data={"grant_type": "client_credentials"},
        auth=(credential.client_id, credential.client_secret + "x"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    implicit = httpx.post(
        f"{system.settings.intake_url}/token",
        data={"grant_type": "password"},
        auth=(credential.client_id, credential.client_secret),
    )
    assert implicit.status_code == 400
    assert implicit.json()["error"] == "unsupported_grant_type"


def test_a_foreign_host_or_a_browser_page_of_another_origin_is_refused(system, mine):
    with httpx.Client(base_url=system.settings.intake_url, auth=office_auth(system)) as http:
        rebound = http.get(f"/requests/{mine['request_id']}", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        withdraw = http.post(
            f"/consents/{mine['consent_id']}/withdraw", headers={"Origin": "https://evil.example"}
        )
        assert withdraw.status_code == 403
        assert http.get(f"/requests/{mine['request_id']}").json()["consent_withdrawn_at"] is None


async def test_an_office_client_is_added_used_and_revoked_from_the_command_line(system, tmp_path):
    out = tmp_path / "office-software.json"
    added = wegweiser(system, "api-client", "add", "--office", OTHER_OFFICE, "--out", str(out))
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
