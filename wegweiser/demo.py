"""`wegweiser demo`: one referral through its whole life against the running system."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors

from schemas import subjects
from schemas.events import SealedCase
from services.agency import AgencyClient
from services.intake.credential import OfficeAuth
from wegweiser.platform.connect import credentials
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.nats_server import servers
from wegweiser.platform.sealing import SealError


class DemoFailed(Exception):
    """A step of the demo did not happen."""


REQUEST = {
    "client_reference": "demo-client-0001",
    "needs": ["migration-counselling"],
    "languages": ["ar", "de"],
    "municipality": "13076090",
    "age": 34,
    "urgency": "soon",
    "note": "Needs help with the residence permit renewal; prefers Arabic.",
    "contact": {"phone": "+49 3874 000000", "preferred_channel": "sms", "interpreter_needed": True},
    "residence": {"status": "residence-permit", "legal_basis": "§ 25 Abs. 2 AufenthG"},
    "consent": {
        "recipients": [{"kind": "migration-counselling"}],
        "purposes": ["referral"],
        "data_categories": [
            "client-reference",
            "name",
            "needs",
            "languages",
            "area",
            "age",
            "case-note",
            "contact",
            "residence-status",
        ],
        "method": "signed-form",
        "given_at": None,
        "text_version": "2026-01",
        "text_language": "de",
    },
}


def sample_request(**overrides: Any) -> dict[str, Any]:
    """A request body as a counsellor would send it, consent given now; fields overridable."""
    body: dict[str, Any] = json.loads(json.dumps(REQUEST))
    body["consent"]["given_at"] = datetime.now(UTC).isoformat()
    body.update(overrides)
    return body


async def demo(
    intake_url: str,
    nats_url: str,
    keys: KeyRing,
    say: Any = print,
    timeout: float = 30.0,
    client_name: str = "Demo Client",
    note: str | None = None,
    seed: Path | None = None,
    agency_seed: Callable[[str], Path | None] = lambda _agency: None,
    intake_credential: Path | None = None,
    person: dict[str, Any] | None = None,
    comment: str = "Recognition started; the diploma's translation is missing.",
) -> dict[str, Any]:
    """Run the demo as the office's software with `intake_credential`, playing the agency
    with its key from `keys` (and its NATS credentials from `agency_seed`, watching as the
    `seed` user), which closes the referral with `comment` sealed to the office; returns the
    final referral with its trail, or raises DemoFailed."""
    body = sample_request(client_name=client_name, **({"note": note} if note else {}))
    body |= person or {}
    auth = OfficeAuth(intake_credential) if intake_credential else None
    async with httpx.AsyncClient(base_url=intake_url, timeout=10, auth=auth) as http:
        request = _ok(await http.post("/requests", json=body), 201)
        say(
            f"1. office recorded request {request['request_id']} "
            f"with consent {request['consent_id']}"
        )
        found = _ok(await http.get(f"/requests/{request['request_id']}/suggestions"), 200)
        usable = [s for s in found["suggestions"] if s["sendable"]]
        if not usable:
            raise DemoFailed(f"no suggested agency is covered by the consent: {found}")
        agency = usable[0]["candidate"]["agency"]
        reasons = "; ".join(r["text"] for r in usable[0]["candidate"]["reasons"])
        say(f"2. directory suggests {agency['name']} ({agency['agency_id']}): {reasons}")
        nc = await nats.connect(servers(nats_url), **credentials(seed))
        js = nc.jetstream()
        offers = await js.subscribe(
            subjects.referral_event(agency["agency_id"], "offered"),
            ordered_consumer=True,
            deliver_policy=nats.js.api.DeliverPolicy.NEW,
        )
        referral = _ok(
            await http.post(
                f"/requests/{request['request_id']}/referrals",
                json={"agency_id": agency["agency_id"]},
            ),
            202,
        )
        rid = referral["referral_id"]
        say(f"3. office sent referral {rid}")
        offer = await _offer_for(offers, rid, timeout)
        agency_id = agency["agency_id"]
        await nc.drain()
        client = await AgencyClient.connect(
            nats_url,
            agency_id,
            keys.agency_private(agency_id),
            keys.office_public(),
            agency_seed(agency_id),
            office_keys=keys.office_sealing_public(),
        )
        try:
            case = client.open_case(SealedCase.model_validate(offer["data"]["case"]))
        except SealError as exc:
            raise DemoFailed(f"the agency could not open the offer: {exc.code}: {exc}") from None
        reach = (
            f"; reach them by {case.contact.preferred_channel or 'what they gave'}"
            if case.contact
            else ""
        )
        say(
            f"4. agency unsealed the offer for {case.client_name}{reach}; it may see: "
            + ", ".join(case.released_categories)
        )
        async with client:
            steps: list[tuple[str, str, dict[str, str]]] = [
                ("acknowledge", "received", {}),
                ("accept", "accepted", {}),
                ("start", "in-progress", {}),
                (
                    "complete",
                    "completed",
                    {
                        "outcome": "partly-provided",
                        "reason": "missing-documents",
                        "comment": comment,
                        "office": offer["data"]["office_id"],
                    },
                ),
            ]
            for n, (action, expected, said) in enumerate(steps, start=5):
                await client.answer(rid, action, **said)
                await _until(http, rid, expected, timeout)
                say(f"{n}. agency answered {action!r}; the office sees {expected!r}")
        final: dict[str, Any] = _ok(await http.get(f"/referrals/{rid}"), 200)
    opened = (final.get("comment") or {}).get("text")
    say(
        f"outcome {final['outcome']} ({final['reason']}); the agency's comment, sealed to the "
        f"office and opened by it: {opened!r}"
    )
    say("trail:")
    for item in final["trail"]:
        say(
            f"   v{item['version'] or '-'} {item['occurred_at']}  "
            f"{item['kind']:<22} {item['status'] or ''}"
        )
    return final


def _ok(response: httpx.Response, expected: int) -> Any:
    if response.status_code != expected:
        raise DemoFailed(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


async def _offer_for(sub: Any, referral_id: str, timeout: float) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            msg = await sub.next_msg(timeout=1)
        except nats.errors.TimeoutError:
            continue
        event: dict[str, Any] = json.loads(msg.data)
        if event["data"]["referral_id"] == referral_id:
            return event
    raise DemoFailed(f"the agency never received referral {referral_id}")


async def _until(http: httpx.AsyncClient, referral_id: str, status: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    seen = None
    while asyncio.get_running_loop().time() < deadline:
        seen = _ok(await http.get(f"/referrals/{referral_id}"), 200)
        if seen["status"] == status:
            return
        if seen.get("problem"):
            raise DemoFailed(f"referral {referral_id} refused: {seen['problem']}")
        await asyncio.sleep(0.1)
    raise DemoFailed(
        f"referral {referral_id} stayed {seen and seen['status']!r}, expected {status!r}"
    )
