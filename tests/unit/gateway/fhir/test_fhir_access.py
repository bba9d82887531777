"""Who gets a FHIR agency's view: the bearer of its token, while the directory lists it as a
FHIR agency; and how its Task states map to Wegweiser's lifecycle."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from schemas.queries import AgencyCard
from schemas.vocabulary import ReferralStatus
from services.gateway.feed import Handle
from services.gateway.fhir import codes, search, subscriptions
from services.gateway.fhir.access import TokenFolder
from services.gateway.fhir.errors import FhirRefused
from services.gateway.partners import Partners
from services.gateway.webhook import SecretFolder
from services.referral.domain import RULES, Actor
from wegweiser.platform.keys import KeyRing


def test_a_token_admits_its_agency_alone_and_rests_only_as_a_digest(tmp_path: Path) -> None:
    folder = TokenFolder.under(tmp_path)
    token = folder.issue("fhir-a")
    other = folder.issue("fhir-b")
    assert folder.admits("fhir-a", token) and not folder.admits("fhir-a", other)
    assert not folder.admits("fhir-c", token)  # none issued
    stored = folder.path("fhir-a")
    assert token not in stored.read_text() and stat.S_IMODE(stored.stat().st_mode) == 0o600
    renewed = folder.issue("fhir-a")
    assert folder.admits("fhir-a", renewed) and not folder.admits("fhir-a", token)
    with pytest.raises(ValueError, match="subject token"):
        folder.path("../etc")


def card(agency_id: str, channel: str) -> AgencyCard:
    return AgencyCard(
        agency_id=agency_id,
        name=agency_id,
        kind="psychosocial",
        channel=channel,
        referral_address=None,
        capacity=5,
        waiting_days=3,
        active=True,
    )


async def test_a_fhir_agency_is_served_with_a_token_and_refused_once_it_is_no_longer_listed(
    tmp_path: Path,
) -> None:
    served: dict[str, Handle] = {}

    async def serve(agency_id: str, handle: Handle) -> None:
        served[agency_id] = handle
        await asyncio.Event().wait()

    def by_fhir(_agency_id: str) -> Handle:
        async def keep(_msg: Msg) -> None:
            return None

        return keep

    tokens = TokenFolder.under(tmp_path)
    partners = Partners(
        SecretFolder(tmp_path / "webhooks"),
        KeyRing(tmp_path),
        serve,
        lambda _a: by_fhir(""),
        lambda _u, _s: by_fhir(""),
        tokens=tokens,
        by_fhir=by_fhir,
    )
    token = tokens.issue("fhir-a")
    tokens.issue("nats-a")
    await partners.learn([card("fhir-a", "fhir"), card("fhir-b", "fhir"), card("nats-a", "nats")])
    await asyncio.sleep(0)
    assert set(served) == {"fhir-a"}  # fhir-b has no token yet; nats-a is no gateway agency
    assert partners.fhir_admits("fhir-a", token)
    assert not partners.fhir_admits("nats-a", tokens.issue("nats-a"))
    await partners.learn([])  # revoked: its token opens nothing from now on
    assert not partners.fhir_admits("fhir-a", token)
    await partners.stop()


def test_task_states_map_one_to_one_but_forwarded_which_fhir_lacks() -> None:
    for status in ReferralStatus:
        expected = "completed" if status is ReferralStatus.FORWARDED else status.value
        assert codes.TASK_STATUS[status] == expected


@pytest.mark.parametrize("task_status", sorted(codes.ANSWER_FOR))
def test_each_status_an_agency_sets_is_the_agency_answer_that_leads_there(task_status: str) -> None:
    for current in ReferralStatus:
        action = codes.answer_for(task_status, current)
        assert action is not None
        rule = RULES[action]
        assert rule.actor is Actor.AGENCY
        assert codes.TASK_STATUS[rule.target] == task_status


def test_no_agency_sets_a_state_of_the_office_or_of_fhir_alone() -> None:
    for task_status in ("draft", "requested", "cancelled", "ready", "entered-in-error"):
        assert codes.answer_for(task_status, ReferralStatus.REQUESTED) is None


def test_search_terms_are_parsed_strictly() -> None:
    terms = search.parse(
        [
            ("status", "requested,received"),
            ("status", "received,accepted"),
            ("_lastUpdated", "ge2026-12-05T10:00:00+01:00"),
            ("_count", "5"),
        ]
    )
    assert terms.statuses == frozenset({"received"})  # the same name twice: both hold
    assert terms.updated == (("ge", datetime(2026, 12, 5, 9, 0, tzinfo=UTC)),)
    assert terms.count == 5 and search.parse([]).statuses is None
    for bad in [("status", "done"), ("_sort", "-_lastUpdated"), ("_count", "-1")]:
        with pytest.raises(FhirRefused) as refused:
            search.parse([bad])
        assert refused.value.status == 400 and refused.value.expression == bad[0]


@pytest.mark.parametrize(
    ("endpoint", "under"),
    [
        ("https://agency.example/hooks", True),
        ("https://agency.example/hooks/fhir", True),
        ("https://agency.example/hooks-elsewhere", False),
        ("https://agency.example.evil.example/hooks", False),
        ("https://agency.example:8443/hooks", False),
        ("https://127.0.0.1/hooks", False),
    ],
)
def test_notifications_go_only_below_the_address_the_directory_lists(
    endpoint: str, under: bool
) -> None:
    assert subscriptions.under_address(endpoint, "https://agency.example/hooks") is under
    assert not subscriptions.under_address(endpoint, None)
    assert not subscriptions.under_address(endpoint, "http://agency.example/hooks")
