"""The administrator's pages in the web app, against the real directory (both in this process,
on SQLite): invite an agency, see its request, approve, refuse or withdraw, revoke; no other
role and no forged form gets in (issue "Partners own their identities", part 1)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from services.agency.enrolment import AgencyKeys, enrolment_request
from services.directory.store import EnrolmentRow
from services.web.accounts import Role
from tests.support.directory import Directory, directory
from tests.support.web import Browser, WebApp

AGENCY = "lup-mbe-ludwigslust"


@pytest.fixture
def found(tmp_path: Path) -> Iterator[Directory]:
    made = directory(tmp_path / "directory")
    yield made
    made.db.dispose()


@pytest.fixture
def web(tmp_path: Path, found: Directory) -> Iterator[WebApp]:
    token = tmp_path / "web" / "directory-admin.token"
    token.parent.mkdir()
    token.write_text(found.token + "\n")
    made = WebApp(tmp_path, found.app, token)
    yield made
    made.db.dispose()


@pytest.fixture
async def admin(web: WebApp) -> AsyncIterator[Browser]:
    browser = web.signed_in("verwaltung", Role.ADMINISTRATOR)
    yield browser
    await browser.http.aclose()


def enrolments(found: Directory) -> list[tuple[str, str]]:
    return found.db.read_sync(
        lambda s: [(r.agency_id, r.status) for r in s.exec(select(EnrolmentRow))]
    )


async def test_an_administrator_invites_an_agency_and_sees_the_code_once(
    admin: Browser, found: Directory
) -> None:
    page = await admin.http.get("/admin/agencies")
    assert page.status_code == 200
    assert f'data-agency="{AGENCY}"' in page.text and "Partnerstellen" in page.text
    invited = await admin.post(f"/admin/agencies/{AGENCY}/invitations", days="3")
    assert invited.status_code == 200, invited.text
    assert invited.headers["cache-control"] == "no-store"
    code = re.search(r'value="(wwe_[^"]+)"', invited.text)
    assert code, invited.text
    assert f"wegweiser-agency enrol {code[1]} --directory https://directory.example" in invited.text
    assert enrolments(found) == [(AGENCY, "invited")]
    listed = (await admin.http.get("/admin/agencies")).text
    assert code[1] not in listed and "Eingeladen, Code gültig bis" in listed


@pytest.mark.parametrize("days", ["0", "31", "seven", ""])
async def test_an_invitation_of_no_valid_length_is_refused_and_nothing_is_made(
    admin: Browser, found: Directory, days: str
) -> None:
    refused = await admin.post(f"/admin/agencies/{AGENCY}/invitations", days=days)
    assert refused.status_code == 422
    assert 'role="alert"' in refused.text and "Es wurde nichts angelegt" in refused.text
    assert enrolments(found) == []


async def test_an_agency_request_is_approved_from_the_page(
    admin: Browser, found: Directory, tmp_path: Path
) -> None:
    invited = await admin.post(f"/admin/agencies/{AGENCY}/invitations", days="7")
    code = re.search(r'value="(wwe_[^"]+)"', invited.text)[1]  # type: ignore[index]
    keys = AgencyKeys(tmp_path / "agency").ensure()
    from fastapi.testclient import TestClient

    with TestClient(found.app) as agency:  # the agency's own machine, over the public route
        assert agency.post("/enrolments", json=enrolment_request(keys, code)).status_code == 202
    page = (await admin.http.get("/admin/agencies")).text
    waiting = re.search(r'data-enrolment="(enr-[^"]+)"', page)
    assert waiting, page
    assert keys.sealing.thumbprint() in page and keys.broker_user in page  # to compare by phone
    approved = await admin.post(f"/admin/enrolments/{waiting[1]}/approve")
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/admin/agencies?done=approved&agency={AGENCY}"
    after = (await admin.http.get(approved.headers["location"])).text
    assert "nimmt jetzt mit eigenen Schlüsseln teil" in after
    row = after[after.index(f'data-agency="{AGENCY}"') :]
    assert "Die Fachstelle selbst" in row[: row.index("</tr>")]
    assert enrolments(found) == [(AGENCY, "approved")]


async def test_an_invitation_is_withdrawn_and_an_agency_revoked_after_confirmation(
    admin: Browser, found: Directory
) -> None:
    await admin.post(f"/admin/agencies/{AGENCY}/invitations", days="7")
    page = (await admin.http.get("/admin/agencies")).text
    enrolment = re.search(r'action="/admin/enrolments/(enr-[^"/]+)/refuse"', page)[1]  # type: ignore[index]
    withdrawn = await admin.post(f"/admin/enrolments/{enrolment}/refuse")
    assert withdrawn.status_code == 303
    assert enrolments(found) == [(AGENCY, "refused")]

    from services.directory import identities
    from wegweiser.platform import keys

    on_file = {AGENCY: keys.public_dict(keys.generate_encryption_key())}
    found.db.run_sync(lambda s: identities.publish_on_file(s, on_file))
    confirm = await admin.http.get(f"/admin/agencies/{AGENCY}/revoke")
    assert confirm.status_code == 200 and "sperren?" in confirm.text
    revoked = await admin.post(f"/admin/agencies/{AGENCY}/revoke")
    assert revoked.headers["location"] == f"/admin/agencies?done=revoked&agency={AGENCY}"
    assert found.db.read_sync(lambda s: identities.is_revoked(s, AGENCY))


async def test_a_refusal_of_the_directory_is_shown_not_hidden(admin: Browser) -> None:
    refused = await admin.post("/admin/enrolments/enr-nothing/approve")
    assert refused.status_code == 404
    assert "no enrolment enr-nothing" in refused.text


ADMIN_PAGES = [
    ("GET", "/admin/agencies"),
    ("GET", f"/admin/agencies/{AGENCY}/revoke"),
    ("POST", f"/admin/agencies/{AGENCY}/invitations"),
    ("POST", "/admin/enrolments/enr-x/approve"),
    ("POST", "/admin/enrolments/enr-x/refuse"),
    ("POST", f"/admin/agencies/{AGENCY}/revoke"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES)
async def test_no_other_role_and_no_forged_form_reaches_the_admin_pages(
    web: WebApp, admin: Browser, found: Directory, method: str, path: str
) -> None:
    async with web.anonymous() as anonymous:
        response = await anonymous.request(method, path, data={"days": "7"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    for name, role, office in [
        ("berater", Role.COUNSELLOR, "lup-integration-office"),
        ("ombud", Role.OMBUDSPERSON, None),
    ]:
        other = web.signed_in(name, role, office)
        response = await other.http.request(method, path, data={"csrf": other.csrf, "days": "7"})
        await other.http.aclose()
        assert response.status_code == 403, (name, response.text)
        assert "nur für die Verwaltung" in response.text
    if method == "POST":
        forged = await admin.http.post(path, data={"csrf": "forged", "days": "7"})
        assert forged.status_code == 403
    assert enrolments(found) == []


async def test_the_administrator_sees_no_office_or_audit_page(admin: Browser) -> None:
    for path in ("/office/referrals", "/office/requests/new", "/audit", "/audit/integrity"):
        response = await admin.http.get(path)
        assert response.status_code == 403, path
