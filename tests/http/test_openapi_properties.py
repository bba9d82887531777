"""Intake's API against its own OpenAPI document, by Schemathesis: every operation with many
generated requests, valid and not, and every check it has (no server error, answers that
match the documented status, content type, headers and body, missing credentials refused,
schema-violating requests refused, ...).

Each operation runs as the office's client on a real store with the real directory's
answers (tests/support/intake.py); examples are bounded so that it stays a minute or two.

One check is told more: a request that matches the JSON Schema may still be refused with
422, because intake's rules go beyond what a schema can say (a municipality the gazetteer
knows, an agency the directory knows, a consent that expires after it was given)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.support.audit import empty_audit_app
from tests.support.directory import directory
from tests.support.intake import HOST, IntakeApp

OFFICE = "lup-integration-office"
EXAMPLES = int(os.environ.get("WEGWEISER_OPENAPI_EXAMPLES", "0"))
"""Per operation: by default 40 chosen the same way on every run (a suite that passed passes
again); WEGWEISER_OPENAPI_EXAMPLES=500 explores anew each time (before a release)."""
SEARCH = settings(
    max_examples=EXAMPLES or 40,
    derandomize=not EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


FOLDER = Path(tempfile.mkdtemp(prefix="wegweiser-openapi-"))
INTAKE = IntakeApp(FOLDER)  # Schemathesis reads the document when the module is collected
CREDENTIAL = INTAKE.add_client(OFFICE)


def office_token() -> str:
    """A fresh token of the office: one made when the module is collected expires after ten
    minutes, and a slow suite reaches these tests later than that."""
    return INTAKE.tokens.issue(CREDENTIAL.client_id, OFFICE)[0]


CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "410", "422"]
"""
)
schema = schemathesis.openapi.from_dict(INTAKE.app.openapi(), config=CONFIG)
schema.app = INTAKE.app


def bearer(token: str | Callable[[], str]) -> type:
    """A Schemathesis auth provider: `token` (or one made anew for each request, for a token
    that expires) on every request but those meant to go without one (Schemathesis checks
    that those are refused)."""

    class Bearer:
        def get(self, _case: Any, _context: Any) -> str:
            return token if isinstance(token, str) else token()

        def set(self, case: Any, data: str, _context: Any) -> None:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"

    return Bearer


schema.auth()(bearer(office_token))  # the office's


@pytest.fixture(scope="module", autouse=True)
def cleaned_up() -> Iterator[None]:
    yield
    INTAKE.dispose()
    DIRECTORY.db.dispose()
    shutil.rmtree(FOLDER, ignore_errors=True)


@schema.parametrize()
@SEARCH
def test_every_operation_answers_as_its_document_says(case: Any) -> None:
    response = case.call_and_validate(base_url=f"http://{HOST}", headers={"Host": HOST})
    ANSWERED.setdefault(case.operation.label, set()).add(response.status_code)


ANSWERED: dict[str, set[int]] = {}


def test_the_generated_requests_got_in_and_were_answered() -> None:
    """Not a vacuous run: the office's token got the requests in, many were answered."""
    assert 200 in ANSWERED["GET /referrals"], ANSWERED
    assert 201 in ANSWERED["POST /requests"] or 422 in ANSWERED["POST /requests"], ANSWERED
    assert all(codes != {401} for codes in ANSWERED.values()), ANSWERED


DIRECTORY = directory(FOLDER / "directory")
directory_schema = schemathesis.openapi.from_dict(DIRECTORY.app.openapi(), config=CONFIG)
directory_schema.app = DIRECTORY.app


directory_schema.auth()(bearer(DIRECTORY.token))  # the county's admin (the read API needs none)


@directory_schema.parametrize()
@SEARCH
def test_every_directory_operation_answers_as_its_document_says(case: Any) -> None:
    case.call_and_validate(base_url="http://directory.test")


AUDIT = empty_audit_app(FOLDER / "audit", "a-token-of-the-ombudsperson")
audit_schema = schemathesis.openapi.from_dict(AUDIT.openapi(), config=CONFIG)
audit_schema.app = AUDIT


audit_schema.auth()(bearer("a-token-of-the-ombudsperson"))


@audit_schema.parametrize()
@SEARCH
def test_every_audit_operation_answers_as_its_document_says(case: Any) -> None:
    case.call_and_validate(base_url="http://audit.test")


@pytest.mark.parametrize("path", ["/report", "/report.html"])
@pytest.mark.parametrize("token", [None, "a-guess", "a-token-of-the-ombudsperson-not"])
async def test_the_monitoring_report_is_the_ombudspersons_alone(path: str, token: str | None):
    """The report holds figures of the whole network: without the ombudsperson's token, no
    answer (the web app asks for it on behalf of offices and the ombudsperson only)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=AUDIT)
    async with httpx.AsyncClient(transport=transport, base_url="http://audit.test") as http:
        refused = await http.get(path, params={"from": "2026-01-01", "to": "2026-12-31"},
                                 headers=headers)  # fmt: skip
        assert refused.status_code == 401, refused.text
        allowed = await http.get(
            path,
            params={"from": "2026-01-01", "to": "2026-12-31"},
            headers={"Authorization": "Bearer a-token-of-the-ombudsperson"},
        )
        assert allowed.status_code == 200, allowed.text
