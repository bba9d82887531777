"""The audit's HTTP API in this process, over the audit log on a real SQLite store: every
route but /health asks for the ombudsperson's token, no route writes (an export signs a head,
and only when the ombudsperson asks for one), and a request that does not fit is refused as a
problem that names what is wrong.

What needs the running system (a referral's whole trail, the export verified offline) stays
in tests/e2e/test_audit_e2e.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from services.audit.application import AuditLog
from services.audit.http import create_app
from services.audit.recorder import Recorder
from services.audit.store import HeadRow
from services.report.protection import K_LEAST
from tests.support.databases import copied, count
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

TOKEN = "the-ombudspersons-token"
PUBLIC = {"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
PERIOD = {"from": "2026-01-01", "to": "2026-03-31"}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    made = copied("audit", tmp_path / "audit.db")
    yield made
    made.dispose()


@pytest.fixture
async def app(db: Database) -> FastAPI:
    """The app as services/audit/bootstrap.py wires it, over an empty log."""
    audit = AuditLog(db, Recorder(Ed25519PrivateKey.generate()))
    await audit.load()
    return create_app(audit, TOKEN)


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://audit.test") as client:
        yield client


@pytest.fixture
async def ombuds(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://audit.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


def written(db: Database) -> tuple[int, int]:
    """The heads signed, and their announcements waiting in the outbox."""
    return count(db, HeadRow), count(db, OutboxRow)


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return dict(body)


async def test_every_route_but_health_needs_the_ombudsperson_s_token(
    app: FastAPI, anonymous: httpx.AsyncClient, db: Database
) -> None:
    paths = [
        re.sub(r"\{\w+\}", "ref-1", path) for path in app.openapi()["paths"] if path not in PUBLIC
    ]
    assert len(paths) >= 10, paths
    for path in paths:
        for headers in (
            {},
            {"Authorization": "Bearer not-the-token"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            params = PERIOD if path.startswith("/report") else None
            refused = await anonymous.get(path, params=params, headers=headers)
            assert problem(refused, 401)["code"] == "auth.required", path
            assert refused.headers["www-authenticate"] == "Bearer"
    assert (await anonymous.get("/health")).status_code == 200
    assert written(db) == (0, 0)  # no export's head was signed


async def test_the_e2e_s_ombudsperson_calls_refused_without_the_token(
    anonymous: httpx.AsyncClient, db: Database
) -> None:
    """The three refusals tests/e2e/test_audit_e2e.py asked of the running service."""
    assert (await anonymous.get("/referrals/ref-1/trail")).status_code == 401
    assert (await anonymous.get("/export", params={"since": 1})).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await anonymous.get("/referrals", headers=wrong)).status_code == 401
    assert written(db) == (0, 0)


async def test_no_route_takes_a_write(ombuds: httpx.AsyncClient, db: Database) -> None:
    for path in ("/referrals/ref-1/trail", "/referrals", "/export", "/report"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            refused = await ombuds.request(method, path)
            assert problem(refused, 405)["code"] == "method.not-allowed", (method, path)
            assert refused.headers["allow"] == "GET"
    assert written(db) == (0, 0)


async def test_an_export_since_a_negative_size_is_refused_and_signs_no_head(
    ombuds: httpx.AsyncClient, db: Database
) -> None:
    bad_since = await ombuds.get("/export", params={"since": -1})
    assert bad_since.status_code == 422 and "since" in bad_since.text
    assert problem(bad_since, 422)["errors"] == [
        {"loc": ["query", "since"], "msg": "Input should be greater than or equal to 0",
         "type": "greater_than_equal"}
    ]  # fmt: skip
    assert written(db) == (0, 0)
    taken = await ombuds.get("/export")
    assert taken.status_code == 200 and taken.json()["tree_head"]["size"] == 0
    assert count(db, HeadRow) == 1  # what the refused export would have written


async def test_the_trail_of_a_referral_not_in_the_log_is_not_found(
    ombuds: httpx.AsyncClient,
) -> None:
    missing = await ombuds.get("/referrals/ref-nope/trail")
    assert problem(missing, 404)["detail"] == "no referral ref-nope in the log"


async def test_an_unknown_route_or_query_parameter_is_refused(ombuds: httpx.AsyncClient) -> None:
    assert problem(await ombuds.get("/referrals/ref-1"), 404)["code"] == "not-found"
    typo = problem(await ombuds.get("/referrals", params={"sate": "completed"}), 422)
    assert typo["code"] == "request.unknown-parameter" and "sate" in str(typo["detail"])


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"to": "2026-03-31"}, "from: Field required"),
        ({"from": "2026-01-01"}, "to: Field required"),
        ({**PERIOD, "from": "2026-13-01"}, "from: Input should be a valid date"),
        ({"from": "2026-03-31", "to": "2026-01-01"}, "before it begins"),
        ({"from": "2001-01-01", "to": "2001-01-31"}, "a period lies between"),  # none before
        ({"from": "2001-01-01", "to": "2031-01-01"}, "years long"),
        ({**PERIOD, "county": "13"}, "county: String should match pattern"),
        ({**PERIOD, "county": "99001"}, "county: String should match pattern"),
        ({**PERIOD, "k": str(K_LEAST - 1)},
         f"k: Input should be greater than or equal to {K_LEAST}"),
        ({**PERIOD, "k": "101"}, "k: Input should be less than or equal to 100"),
    ],
)  # fmt: skip
async def test_a_report_for_a_period_it_cannot_show_is_refused(
    ombuds: httpx.AsyncClient, params: dict[str, str], said: str
) -> None:
    for path in ("/report", "/report.html"):
        refused = await ombuds.get(path, params=params)
        assert said in str(problem(refused, 422)["detail"]), (path, refused.text)
    assert (await ombuds.get("/report", params=PERIOD)).status_code == 200


async def test_a_report_page_in_a_language_it_has_not_is_refused(
    ombuds: httpx.AsyncClient,
) -> None:
    refused = await ombuds.get("/report.html", params={**PERIOD, "language": "fr"})
    assert "language: Input should be 'de' or 'en'" in str(problem(refused, 422)["detail"])
    shown = await ombuds.get("/report.html", params={**PERIOD, "language": "en"})
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
