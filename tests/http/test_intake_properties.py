"""A property of intake's API, over requests hypothesis makes up: a request intake refuses
changes no row, and one it records adds exactly one request and one consent.

The bodies are mutations of a valid body, so most are well formed and reach the checks
behind the schema (the consent's times, the gazetteer, the directory's agencies, special
categories), and arbitrary JSON objects with the request's field names."""

from __future__ import annotations

import asyncio
from datetime import UTC as UTC_ZONE
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.intake.api_models import RequestCreate
from tests.support.intake import HOST, IntakeApp
from wegweiser.demo import sample_request

OFFICE = "lup-integration-office"
FIELDS = st.sampled_from(sorted(RequestCreate.model_fields))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
PLACES = st.sampled_from(["13076090", "13076108", "13099999", "09780116", "16000000"])
POSTCODES = st.sampled_from(["19288", "19370", "19999", "87435", "01001"])


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid body with some fields replaced by plausible, doubtful or wrong values."""
    body = sample_request(client_reference=draw(st.from_regex(r"\A[a-z0-9-]{1,20}\Z")))
    consent = body["consent"]
    if draw(st.booleans()):
        body["municipality"] = draw(st.none() | PLACES)
    if draw(st.booleans()):
        body["postcode"] = draw(st.none() | POSTCODES)
    if draw(st.booleans()):
        consent["given_at"] = draw(st.datetimes(timezones=st.just(UTC_ZONE))).isoformat()
    if draw(st.booleans()):
        consent["expires_at"] = draw(st.datetimes(timezones=st.just(UTC_ZONE))).isoformat()
    if draw(st.booleans()):
        consent["recipients"] = draw(
            st.lists(
                st.sampled_from(
                    [
                        {"kind": "migration-counselling"},
                        {"kind": "psychosocial", "data_categories": ["health"]},
                        {"agency_id": "lup-mbe-ludwigslust"},
                        {"agency_id": "no-such-agency"},
                    ]
                ),
                min_size=1,
                max_size=3,
            )
        )
    if draw(st.booleans()):
        consent["explicit_special_categories"] = draw(st.booleans())
    return body


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    made = IntakeApp(Path(tmp_path_factory.mktemp("intake")))
    credential = made.add_client(OFFICE)  # one client for every example: no row of its own
    made.token, _ = made.tokens.issue(credential.client_id, OFFICE)  # type: ignore[attr-defined]
    yield made
    made.dispose()


async def _post(intake: Any, body: dict[str, Any]) -> int:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=intake.app),
        base_url=f"http://{HOST}",
        headers={"Authorization": f"Bearer {intake.token}"},
    ) as office:
        return (await office.post("/requests", json=body)).status_code


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=mutated() | st.dictionaries(FIELDS, JSON))
def test_a_refused_request_changes_no_row_and_a_recorded_one_adds_one(
    intake: IntakeApp, body: dict[str, Any]
) -> None:
    before = intake.rows()
    status = asyncio.run(_post(intake, body))
    after = intake.rows()
    assert status in (201, 422), (status, body)
    event(f"answered {status}")
    if status == 422:
        assert after == before, body
    else:
        assert after["requests"] == before["requests"] + 1
        assert after["consents"] == before["consents"] + 1
