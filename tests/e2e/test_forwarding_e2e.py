"""An agency forwards a referral to another agency, across the real processes: intake checks
the consent, seals the case afresh to the other agency, and the first referral closes as
forwarded; a forward the consent does not cover comes back to the agency as a refusal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.support.system import (
    AGENCY,
    agency_client,
    first_delivery,
    office_client,
    referral_status,
    requested_referral,
    stream_events,
    until_status,
    wait_for,
)
from wegweiser.platform.sealing import SealError

pytestmark = pytest.mark.slow

OTHER = "lup-mbe-parchim"
"""Migration counselling too: the demo consent (any agency of that kind) covers it."""
UNCOVERED = "lup-jobcenter"
"""A Jobcenter: the demo consent does not name it or its kind."""


async def test_a_forward_reaches_the_other_agency_sealed_to_it_and_closes_the_first(system):
    async with office_client(system) as http:
        first = await requested_referral(http)
        async with await agency_client(system, keys=True) as forwarding:
            await forwarding.answer(first, "acknowledge")
            await until_status(http, first, "received")
            asked = await forwarding.forward(
                first,
                OTHER,
                "out-of-area",
                comment="Parchim is closer to where she lives",
                office=system.settings.office_id,
            )
            assert (await forwarding.verdict(asked)).state == "taken"
            closed = await until_status(http, first, "forwarded")
            second = closed["forwarded_to"]
            assert closed["reason"] == "out-of-area"
            assert closed["comment"]["text"] == "Parchim is closer to where she lives"
            told = await asyncio.wait_for(first_delivery(forwarding, "forwarded", first), 30)
            assert told.event.data.forwarded_to == second
            assert told.event.data.forward_to == OTHER
            continued = await until_status(http, second, "requested")
            assert (continued["agency_id"], continued["forwarded_from"]) == (OTHER, first)

            async with await agency_client(system, OTHER, keys=True) as receiving:
                offer = await asyncio.wait_for(first_delivery(receiving, "offered", second), 30)
            assert offer.error is None and offer.case is not None
            assert offer.case.client_reference == "client-42"  # opened by the other agency
            with pytest.raises(SealError, match=f"sealed for .{OTHER}., not for .{AGENCY}."):
                forwarding.open_case(offer.event.data.case)  # the first agency cannot

        kinds = [t["kind"] for t in (await referral_status(http, first))["trail"]]
        assert kinds[-2:] == ["forward-requested", "forwarded"]
        assert continued["trail"][0]["kind"] == "requested-by-forward"
    requested = await stream_events(system, "ww.intake.referral.requested")
    forwarded = [e["data"] for e in requested if e["data"]["referral_id"] == second]
    assert forwarded[0]["forwarded_from"] == {
        "referral_id": first,
        "agency_id": AGENCY,
        "reason": "out-of-area",
        "answer_id": asked,  # the agency's answer, refused after all should the forward fail
    }
    assert "closer to where she lives" not in json.dumps(requested)

    token = (system.settings.keys_path / "audit" / "ombudsperson.token").read_text().strip()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{system.settings.audit_port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as ombudsperson:

        async def chain() -> tuple[set, set] | None:
            on = [(await ombudsperson.get(f"/referrals/{r}/trail")).json() for r in (first, second)]
            to = {row["forwarded_to"] for row in on[0]} - {None}
            back = {row["forwarded_from"] for row in on[1]} - {None}
            return (to, back) if to and back else None

        assert await wait_for(chain) == ({second}, {first})  # the ombudsperson sees the chain


async def test_a_forward_the_consent_does_not_cover_is_refused_and_nothing_moves(system):
    async with office_client(system) as http:
        rid = await requested_referral(http)
        async with await agency_client(system, keys=True) as forwarding:
            uncovered = await forwarding.forward(rid, UNCOVERED, "not-eligible")
            unknown = await forwarding.forward(rid, "lup-nowhere", "other")
            itself = await forwarding.forward(rid, AGENCY, "other")

            async def refused(answer_id: str) -> Any:
                verdict = await forwarding.verdict(answer_id, within=2)
                return verdict if verdict.state == "refused" else None

            assert (await wait_for(lambda: refused(uncovered))).code == "consent.not-covered"
            assert (await wait_for(lambda: refused(unknown))).code == "forward.unknown-agency"
            assert (await wait_for(lambda: refused(itself))).code == "referral.forward-target"
            view = await referral_status(http, rid)
            assert view["status"] == "requested" and view["forwarded_to"] is None
            assert "asked to forward this referral to" in view["problem"]  # the latest
            told = [t["reason"] for t in view["trail"] if t["kind"] == "forward-refused"]
            assert len(told) == 2 and any(UNCOVERED in why for why in told)
            await forwarding.answer(rid, "reject", "no-capacity")
            await until_status(http, rid, "rejected")
            late = await forwarding.forward(rid, OTHER, "other")
            verdict = await wait_for(lambda: refused(late))
            assert verdict.code == "referral.forbidden-transition"
        request_id = view["request_id"]
        sent = (await http.get(f"/requests/{request_id}/referrals")).json()
        assert [r["agency_id"] for r in sent] == [AGENCY]  # nobody else got anything

    # the verdicts are the referral service's database; its refusals reach the stream after
    # them, through its outbox
    async def refusals() -> set[str] | None:
        found = await stream_events(system, f"ww.referral.{AGENCY}.refused")
        mine = {r["data"]["refused_event_id"] for r in found if r["data"]["referral_id"] == rid}
        return mine if {uncovered, unknown, itself, late} <= mine else None

    assert {uncovered, unknown, itself, late} <= await wait_for(refusals)
