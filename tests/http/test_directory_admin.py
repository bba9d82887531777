"""The directory's admin routes over HTTP, on a real SQLite store: only an admin token gets in,
never from a browser page; each of the county's decisions is one call with a stable code when
it is refused, and a refusal changes nothing (issue "Partners own their identities")."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jwcrypto import jwe

from services.agency.enrolment import AgencyKeys, enrolment_request
from tests.support.directory import WEBHOOK_AGENCY, Directory, directory

AGENCY = "lup-mbe-ludwigslust"
ROUTES = [
    ("GET", "/admin/agencies", None),
    ("GET", "/admin/enrolments", None),
    ("POST", f"/admin/agencies/{AGENCY}/invitations", {"valid_for": "P7D"}),
    ("POST", "/admin/enrolments/enr-x/approve", None),
    ("POST", "/admin/enrolments/enr-x/refuse", None),
    ("POST", f"/admin/agencies/{AGENCY}/revoke", None),
]


@pytest.fixture
def found(tmp_path: Path) -> Iterator[Directory]:
    made = directory(tmp_path)
    yield made
    made.db.dispose()


@pytest.fixture
def api(found: Directory) -> Iterator[TestClient]:
    with TestClient(found.app, headers={"Authorization": f"Bearer {found.token}"}) as client:
        yield client


def rows(found: Directory, table: str) -> int:
    db = sqlite3.connect(found.db.url.removeprefix("sqlite:///"))
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wwa_guessed"}, 401),
        ({"Authorization": "Basic d2ViOndlYg=="}, 401),
        ("token from a page", 403),
    ],
)
def test_no_route_lets_in_a_caller_without_an_admin_token_or_a_browser_page(
    found: Directory, method, path, body, headers, status
) -> None:
    if headers == "token from a page":  # even the right token, sent by a page of another site
        headers = {"Authorization": f"Bearer {found.token}", "Origin": "https://evil.example"}
    with TestClient(found.app) as client:
        response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert rows(found, "enrolments") == 0 and rows(found, "agency_keys") == 0


def test_a_token_whose_line_is_deleted_is_refused_at_once(found: Directory, api) -> None:
    assert api.get("/admin/agencies").status_code == 200
    found.tokens.path.write_text("")
    assert api.get("/admin/agencies").status_code == 401


def test_the_directory_keeps_only_a_digest_of_each_token(found: Directory) -> None:
    assert found.token not in found.tokens.path.read_text()
    assert found.tokens.path.stat().st_mode & 0o077 == 0


def test_an_invitation_is_shown_once_and_only_its_digest_is_stored(found: Directory, api) -> None:
    response = api.post(f"/admin/agencies/{AGENCY}/invitations", json={"valid_for": "P3D"})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    invited = response.json()
    assert invited["code"].startswith("wwe_") and invited["agency_id"] == AGENCY
    assert (
        invited["code"].encode() not in Path(found.db.url.removeprefix("sqlite:///")).read_bytes()
    )
    standing = {a["agency_id"]: a for a in api.get("/admin/agencies").json()}[AGENCY]
    assert [e["status"] for e in standing["pending"]] == ["invited"]
    assert api.get("/admin/enrolments").json()[0]["enrolment_id"] == invited["enrolment_id"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/admin/agencies/nobody/invitations", {}, 404, "enrolment.unknown-agency"),
        (
            f"/admin/agencies/{AGENCY}/invitations",
            {"valid_for": "P40D"},
            422,
            "enrolment.bad-validity",
        ),
        ("/admin/enrolments/enr-nothing/approve", None, 404, "enrolment.unknown"),
        ("/admin/enrolments/enr-nothing/refuse", None, 404, "enrolment.unknown"),
        ("/admin/agencies/nobody/revoke", None, 404, "agency.unknown"),
    ],
)
def test_a_refused_step_says_why_with_a_stable_code_and_changes_nothing(
    found: Directory, api, path, body, status, code
) -> None:
    response = api.post(path, json=body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert rows(found, "enrolments") == 0 and rows(found, "outbox") == 0


def test_malformed_input_gets_422_naming_the_field(api) -> None:
    response = api.post(f"/admin/agencies/{AGENCY}/invitations", json={"valid_for": "soon"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "valid_for"]
    response = api.get("/admin/agencies", headers={"X-Wegweiser-Acting-User": "a b\nc"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "X-Wegweiser-Acting-User"]


def enrol(api: TestClient, folder: Path, agency: str) -> tuple[AgencyKeys, str]:
    """Invite `agency` and send its enrolment from its own key folder; (keys, enrolment id)."""
    code = api.post(f"/admin/agencies/{agency}/invitations", json={}).json()["code"]
    keys = AgencyKeys(folder).ensure()
    asked = api.post("/enrolments", json=enrolment_request(keys, code))
    assert asked.status_code == 202, asked.text
    return keys, asked.json()["enrolment_id"]


def test_an_approved_agency_is_published_with_its_own_keys(found: Directory, api, tmp_path) -> None:
    keys, enrolment_id = enrol(api, tmp_path / "agency", AGENCY)
    waiting = api.get("/admin/enrolments").json()
    assert waiting[0]["sealing_kid"] == keys.sealing.thumbprint()
    assert waiting[0]["broker_user"] == keys.broker_user
    decided = api.post(f"/admin/enrolments/{enrolment_id}/approve")
    assert decided.json() == {
        "enrolment_id": enrolment_id, "agency_id": AGENCY, "channel": "nats", "status": "approved"
    }  # fmt: skip
    standing = {a["agency_id"]: a for a in api.get("/admin/agencies").json()}[AGENCY]
    assert (standing["custody"], standing["pending"], standing["revoked"]) == ("agency", [], False)
    again = api.post(f"/admin/enrolments/{enrolment_id}/approve")
    assert (again.status_code, again.json()["code"]) == (409, "enrolment.not-requested")
    assert found.secrets.get(AGENCY) is None  # a NATS agency gets no webhook secret


def test_a_webhook_agency_gets_its_secret_kept_for_the_gateway_and_sealed_to_it(
    found: Directory, api, tmp_path
) -> None:
    keys, enrolment_id = enrol(api, tmp_path / "agency", WEBHOOK_AGENCY)
    assert api.post(f"/admin/enrolments/{enrolment_id}/approve").status_code == 200
    kept = found.secrets.get(WEBHOOK_AGENCY)
    assert kept is not None and kept.startswith("whsec_")
    delivery = api.get(f"/enrolments/{enrolment_id}").json()["sealed_delivery"]
    opened = jwe.JWE()
    opened.deserialize(delivery, key=keys.sealing)
    assert kept in opened.payload.decode()


def test_a_withdrawn_invitation_refuses_its_code(api, tmp_path) -> None:
    invited = api.post(f"/admin/agencies/{AGENCY}/invitations", json={}).json()
    refused = api.post(f"/admin/enrolments/{invited['enrolment_id']}/refuse")
    assert refused.json()["status"] == "refused"
    keys = AgencyKeys(tmp_path / "agency").ensure()
    late = api.post("/enrolments", json=enrolment_request(keys, invited["code"]))
    assert (late.status_code, late.json()["code"]) == (410, "enrolment.code-withdrawn")
    twice = api.post(f"/admin/enrolments/{invited['enrolment_id']}/refuse")
    assert (twice.status_code, twice.json()["code"]) == (409, "enrolment.decided")


def test_a_revoked_agency_has_no_key_and_says_so(api, tmp_path) -> None:
    _, enrolment_id = enrol(api, tmp_path / "agency", AGENCY)
    api.post(f"/admin/enrolments/{enrolment_id}/approve")
    assert api.post(f"/admin/agencies/{AGENCY}/revoke").json() == {
        "agency_id": AGENCY, "keys_ended": 3
    }  # fmt: skip
    standing = {a["agency_id"]: a for a in api.get("/admin/agencies").json()}[AGENCY]
    assert (standing["custody"], standing["revoked"]) == (None, True)
    assert api.get(f"/agencies/{AGENCY}/jwks.json").json() == {"keys": []}


def test_a_query_parameter_no_admin_route_takes_is_refused_naming_it(api: TestClient) -> None:
    answer = api.get("/admin/agencies", params={"statuss": "active"})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "request.unknown-parameter" and "statuss" in problem["detail"]
    assert api.get("/admin/agencies").status_code == 200


def test_who_may_not_come_in_learns_nothing_of_the_parameters(found: Directory) -> None:
    with TestClient(found.app) as stranger:
        answer = stranger.get("/admin/agencies", params={"statuss": "active"})
    assert answer.status_code == 401 and "statuss" not in answer.text


def test_a_method_an_admin_route_does_not_take_names_those_it_does(api: TestClient) -> None:
    answer = api.delete("/admin/agencies")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET"
    invited = api.put(f"/admin/agencies/{AGENCY}/invitations")
    assert invited.status_code == 405 and invited.headers["Allow"] == "POST"
