"""A FHIR agency through the running system: its software, written with fhir.resources, httpx
and jwcrypto alone (no Wegweiser code), subscribes, is notified of a referral, reads it,
opens the sealed case, accepts and completes it; the office sees the trail it sees for an
agency on NATS."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.subscription import Subscription
from fhir.resources.R4B.task import Task
from jwcrypto import jwe, jwk, jws
from standardwebhooks.webhooks import Webhook

from tests.support.cli import wegweiser
from tests.support.system import (
    COMPLETED_TRAIL,
    office_client,
    reach_by,
    request_body,
    until_status,
    wait_for,
)

pytestmark = pytest.mark.slow

FHIR_AGENCY = "lup-psychosozial-ludwigslust"
TOPIC = "https://wegweiser.example/fhir/SubscriptionTopic/referral-task"
CODES = "https://wegweiser.example/fhir/CodeSystem"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
CANARY = "Yusuf Canary-7731"


async def refer(office: httpx.AsyncClient, agency: str, client_name: str) -> str:
    """A request for psychosocial help, with the person's explicit consent (it reveals
    health, GDPR Art. 9) for exactly this agency, sent there; the referral."""
    consent = {
        **request_body()["consent"],
        "recipients": [{"agency_id": agency}],
        "explicit_special_categories": True,
    }
    body = request_body(needs=["psychosocial"], consent=consent, client_name=client_name)
    request = (await office.post("/requests", json=body)).json()
    sent = await office.post(
        f"/requests/{request['request_id']}/referrals", json={"agency_id": agency}
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["referral_id"])


class FhirAgency:
    """The agency's own software: a FHIR client with its bearer token."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.http = httpx.AsyncClient(
            headers={"authorization": f"Bearer {token}", "accept": "application/fhir+json"},
            timeout=10,
        )

    async def read(self, url: str) -> dict[str, Any]:
        got = await self.http.get(url if url.startswith("http") else f"{self.base}/{url}")
        assert got.status_code == 200, got.text
        return dict(got.json())

    async def update(self, task: Task) -> Task:
        got = await self.http.put(
            f"{self.base}/Task/{task.id}",
            content=task.model_dump_json(exclude_none=True),
            headers={"content-type": "application/fhir+json"},
        )
        assert got.status_code == 200, got.text
        return Task.model_validate_json(got.content)


async def test_a_fhir_agency_is_notified_reads_opens_accepts_and_completes(
    system_factory, endpoint, tmp_path
):
    ca = tmp_path / "ca.pem"
    endpoint.ca.cert_pem.write_to_path(str(ca))
    system = system_factory(
        WEGWEISER_GATEWAY_REFRESH_EVERY="0.5", WEGWEISER_WEBHOOK_CA_FILE=str(ca)
    )
    # the address its Subscriptions may notify: the county's word, not the agency's
    reach_by(system, FHIR_AGENCY, "fhir", endpoint.url, tmp_path)
    issued, err = wegweiser(system, "agency", "credentials", FHIR_AGENCY).communicate(timeout=60)
    token = re.search(r"FHIR access token for \S+ .*: (\S+)", issued)
    secret = re.search(r"notification secret for \S+ .*: (whsec_\S+)", issued)
    base = re.search(r"FHIR base: (\S+)", issued)
    assert token and secret and base, (issued, err)
    agency = FhirAgency(base.group(1), token.group(1))
    # what the county handed the agency with its credentials: its key, the offices' keys
    keys = system.settings.keys_path
    own_key = jwk.JWK.from_json((keys / "agencies" / f"{FHIR_AGENCY}.jwk").read_text())
    office_keys = {p.name.removesuffix(".pub.jwk"): jwk.JWK.from_json(p.read_text())
                   for p in (keys / "office").glob("*.pub.jwk")}  # fmt: skip

    wanted = Subscription.model_validate(
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "our referrals",
            "criteria": TOPIC,
            "channel": {
                "type": "rest-hook",
                "endpoint": endpoint.url,
                "payload": "application/fhir+json",
                "_payload": {
                    "extension": [
                        {"url": f"{BACKPORT}/backport-payload-content", "valueCode": "id-only"}
                    ]
                },
            },
        }
    )

    async def subscribed() -> Subscription | None:  # once the gateway serves the agency
        got = await agency.http.post(
            f"{agency.base}/Subscription",
            content=wanted.model_dump_json(exclude_none=True),
            headers={"content-type": "application/fhir+json"},
        )
        assert got.status_code in (201, 401), got.text
        return Subscription.model_validate_json(got.content) if got.status_code == 201 else None

    subscription = await wait_for(subscribed, timeout=60, every=0.5)
    assert subscription.status == "active"

    async with office_client(system) as office:
        referral = await refer(office, FHIR_AGENCY, CANARY)

        async def notified() -> Bundle | None:
            for headers, body in endpoint.taken():
                Webhook(secret.group(1)).verify(body, headers)  # signed like a webhook
                bundle = Bundle.model_validate_json(body)
                focus = [e.fullUrl for e in bundle.entry or [] if e.resource is None]
                if any(str(f).endswith(f"/Task/{referral}") for f in focus):
                    return bundle
            return None

        note = await wait_for(notified, timeout=60)
        assert CANARY.encode() not in b"".join(b for _, b in endpoint.taken())
        task_url = str([e.fullUrl for e in note.entry or [] if e.resource is None][-1])
        task = Task.model_validate(await agency.read(task_url))
        assert task.status == "requested"
        assert task.focus is not None and task.focus.reference is not None
        request = ServiceRequest.model_validate(await agency.read(task.focus.reference))
        assert request.status == "active"
        sealed = [i.valueReference for i in task.input or [] if i.valueReference is not None]
        binary = Binary.model_validate(await agency.read(str(sealed[0].reference)))
        assert binary.contentType == "application/jose"
        # opening the case: decrypt with the agency's key, verify the office's signature
        token_ = jwe.JWE()
        token_.deserialize((binary.data or b"").decode(), key=own_key)  # base64 undone
        signed = jws.JWS()
        signed.deserialize(token_.payload.decode())
        signed.verify(office_keys[signed.jose_header["kid"]])
        case = json.loads(signed.payload)
        assert case["client_name"] == CANARY and "psychosocial" in case["needs"]

        for status in ("received", "accepted", "in-progress"):
            task = await agency.update(task.model_copy(update={"status": status}))
            assert task.status == status
            await until_status(office, referral, status)
        outcome = {
            "type": {"coding": [{"system": f"{CODES}/task-output", "code": "outcome"}]},
            "valueCodeableConcept": {
                "coding": [{"system": f"{CODES}/outcome", "code": "provided"}]
            },
        }
        done = Task.model_validate({**json.loads(task.model_dump_json()), "status": "completed",
                                    "output": [outcome]})  # fmt: skip
        await agency.update(done)
        view = await until_status(office, referral, "completed")
        assert [t["kind"] for t in view["trail"]] == COMPLETED_TRAIL
        assert view["outcome"] == "provided"
        # the agency sees the referral service's word: its Task is completed, found by polling
        search = await agency.read(f"Task?status=completed&_id={referral}")
        assert [e["resource"]["id"] for e in search.get("entry", [])] == [referral]

        # and a notification for each step the referral service confirmed (the gateway tells
        # of the last one as it takes the event in, not before intake does)
        async def told_each_step() -> int | None:
            taken = [Bundle.model_validate_json(b) for _, b in endpoint.taken()]
            told = sum(1 for b in taken for e in b.entry or [] if e.resource is None)
            return told if told >= 5 else None

        assert await wait_for(told_each_step) >= 5
    await agency.http.aclose()
