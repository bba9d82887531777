"""The partner gateway's two HTTP apps in this process, on a real migrated SQLite store, wired
as services/gateway/bootstrap.py wires them: the callback and portal app, and the FHIR
endpoint mounted at /fhir. What the broker would bring (an offer, a deletion) is put in place
by the gateway's own feed use cases, called directly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from jwcrypto import jwk
from sqlmodel import Session, select

from schemas import subjects
from schemas.envelope import Payload, new_event
from schemas.events import ReferralChange, ReferralOffered, SealedCase
from schemas.vocabulary import DataCategory, ReferralStatus
from services.gateway import handlers, http, links, mail, webhook
from services.gateway.application import Gateway
from services.gateway.fhir import codes, tasks
from services.gateway.fhir import http as fhir_http
from services.gateway.fhir.access import TokenFolder
from services.gateway.fhir.store import TaskRow
from services.gateway.fhir.subscriptions import Notifier
from services.gateway.store import AnswerRow, CallbackRow
from tests.support.databases import copied, count
from wegweiser.platform import sealing
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.outbox import OutboxRow

MAIL_AGENCY = handlers.MailAgency("oa-kleiner-verein", "Kleiner Verein e.V.", "post@verein.example")
HOOKED = "lup-fallsoftware"
"""The webhook agency: the only one with a signing secret."""
OFFICE = "office-1"
CANARY = "Zora Canary-4711"
FHIR_AGENCY, FHIR_OTHER = "lup-fhir-beratung", "oa-fhir-klinik"
NOTIFY_TO = {
    FHIR_AGENCY: "https://127.0.0.1:8443/wegweiser",
    FHIR_OTHER: "https://klinik.example/fhir-hooks",
}
"""Where the directory lists each FHIR agency's notifications (Subscriptions go there only)."""


class Clock:
    """The gateway's clock, moved on by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Listed:
    """The agencies the gateway serves, as Partners would have learnt them from the directory:
    webhook agencies with their secrets, e-mail agencies (the gateway holds their keys), FHIR
    agencies with their tokens and notification addresses."""

    ring: KeyRing
    webhooks: dict[str, str] = field(default_factory=dict)
    mail: dict[str, handlers.MailAgency] = field(default_factory=dict)
    tokens: TokenFolder | None = None
    notify_to: dict[str, str] = field(default_factory=dict)

    def secret(self, agency_id: str) -> str | None:
        return self.webhooks.get(agency_id)

    def mail_agency(self, agency_id: str) -> handlers.MailAgency | None:
        return self.mail.get(agency_id)

    def agency_key(self, agency_id: str) -> jwk.JWK | None:
        return self.ring.agency_private(agency_id) if agency_id in self.mail else None

    def fhir_admits(self, agency_id: str, token: str) -> bool:
        return self.tokens is not None and self.tokens.admits(agency_id, token)

    def fhir_address(self, agency_id: str) -> str | None:
        return self.notify_to.get(agency_id)


def application(
    db: Database,
    listed: Listed,
    folder: Path,
    notifications: httpx.AsyncClient,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    mailer: mail.Mailer | None = None,
) -> Gateway:
    """The gateway's use cases on `db` for the `listed` agencies, as the bootstrap wires them:
    mail by `mailer`, or written to `folder` (no SMTP); Subscriptions notified through
    `notifications`, signed with the webhook secrets."""
    mailer = mailer or mail.Mailer(
        "wegweiser@county.example", None, 25, folder, "http://portal.test", timedelta(days=7)
    )
    notifier = Notifier(
        db.run, notifications, listed.secret, lambda a: f"http://gateway.test/fhir/{a}"
    )
    return Gateway(db, listed, listed.ring, mailer, notifier, clock)


class GatewayApp:
    """The callback and portal app for HOOKED (webhook) and MAIL_AGENCY (e-mail), with OFFICE's
    keys on file."""

    def __init__(self, folder: Path) -> None:
        self.db = copied("gateway", folder / "gateway.db")
        self.ring = KeyRing(folder / "keys")
        self.ring.ensure_agency(MAIL_AGENCY.agency_id)
        self.ring.office_sealing(OFFICE)
        self.secret = webhook.new_secret()
        self.clock = Clock()
        listed = Listed(self.ring, {HOOKED: self.secret}, {MAIL_AGENCY.agency_id: MAIL_AGENCY})
        self.gateway = application(
            self.db, listed, folder / "mail", httpx.AsyncClient(), self.clock
        )
        self.app = http.create_app(self.gateway)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client of its own (a browser: its own cookies)."""
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
            yield c

    def signed(self, webhook_id: str, answer: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """A callback body and HOOKED's signature of it."""
        body = json.dumps(answer)
        return body, webhook.signed_headers(self.secret, webhook_id, body)

    def taken(self) -> tuple[int, int, int]:
        """How many webhook-ids, answer ids and outbox events the gateway holds."""
        return count(self.db, CallbackRow), count(self.db, AnswerRow), count(self.db, OutboxRow)

    def tell(self, referral_id: str, kind: str, data: dict[str, Any] | None = None) -> None:
        """News of a referral for MAIL_AGENCY, as its feed hands it on (without the mail)."""
        body = json.dumps(
            {
                "id": f"evt-{referral_id}-{kind}",
                "data": {"referral_id": referral_id, **(data or {})},
            }
        ).encode()
        subject = subjects.referral_event(MAIL_AGENCY.agency_id, kind)
        self.db.run_sync(
            lambda s: handlers.tell_by_mail(s, MAIL_AGENCY, subject, body, self.clock())
        )

    def offer(self, referral_id: str, office: str = OFFICE) -> None:
        """An offer to MAIL_AGENCY from `office`, its case sealed to the agency."""
        jwe = sealing.seal(
            {"client_name": CANARY, "needs": ["legal-aid"]},
            recipient=self.ring.agency_private(MAIL_AGENCY.agency_id),
            recipient_kid=MAIL_AGENCY.agency_id,
            signer=self.ring.office_signing(office),
            signer_kid=office,
        )
        self.tell(referral_id, "offered", {"office_id": office, "case": {"jwe": jwe}})

    def link(self, referral_id: str) -> str:
        """A fresh portal link (its path) to the referral, valid for a week."""

        def issue(session: Session) -> str:
            return links.issue(
                session, MAIL_AGENCY.agency_id, referral_id, self.clock(), timedelta(days=7)
            )

        return f"/portal/{self.db.run_sync(issue)}"


class FhirApp:
    """The FHIR endpoint for FHIR_AGENCY and FHIR_OTHER, each with its token, mounted at /fhir
    in an app of its own (as the gateway's app mounts it)."""

    def __init__(self, folder: Path, listed: dict[str, str] = NOTIFY_TO) -> None:
        """`listed`: each agency's notification address, as the directory lists it."""
        self.db = copied("gateway", folder / "gateway.db")
        self.ring = KeyRing(folder / "keys")
        for agency in (FHIR_AGENCY, FHIR_OTHER):
            self.ring.ensure_agency(agency)
        self.ring.office_sealing(OFFICE)
        folder_of_tokens = TokenFolder.under(folder / "keys")
        self.tokens = {a: folder_of_tokens.issue(a) for a in (FHIR_AGENCY, FHIR_OTHER)}
        self.base = "http://gateway.test/fhir"
        self.notifications = httpx.AsyncClient()  # never reached: no Subscription is made here
        agencies = Listed(self.ring, tokens=folder_of_tokens, notify_to=dict(listed))
        self.gateway = application(self.db, agencies, folder / "mail", self.notifications)
        endpoint = fhir_http.create_app(self.gateway)
        self.app = FastAPI()
        self.app.mount("/fhir", endpoint)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=self.base) as c:
            yield c

    def auth(self, agency: str = FHIR_AGENCY) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[agency]}"}

    def record(self, agency: str, kind: str, data: Payload) -> None:
        """A referral event for `agency`, as its feed takes it (without notifying anyone)."""
        event = new_event(data, source="/wegweiser/referral", subject="ref")
        body = event.model_dump_json().encode()
        subject = subjects.referral_event(agency, kind)
        self.db.run_sync(lambda s: tasks.record(s, agency, subject, body, datetime.now(UTC)))

    def offer(self, referral_id: str, agency: str = FHIR_AGENCY, office: str = OFFICE) -> None:
        """An offer to `agency` from `office`, its case sealed to the agency."""
        self.record(agency, "offered", fhir_offer(self.ring, referral_id, agency, office))

    def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self.db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
        return [(r.subject, json.loads(r.body)["data"]) for r in rows]

    def version(self, referral_id: str) -> int:
        row = self.db.read_sync(lambda s: s.get(TaskRow, referral_id))
        assert row is not None
        return row.version

    async def dispose(self) -> None:
        await self.notifications.aclose()
        self.db.dispose()


def fhir_offer(
    ring: KeyRing,
    referral_id: str,
    agency: str = FHIR_AGENCY,
    office: str = OFFICE,
    client_name: str = CANARY,
) -> ReferralOffered:
    """The referral service's offer to a FHIR agency, its case (psychosocial help for
    `client_name`) sealed by `office` to `agency` with the keys in `ring`: the FHIR tests in
    process and those on the broker hand the gateway the same offer."""
    jwe = sealing.seal(
        {"client_name": client_name, "needs": ["psychosocial"]},
        recipient=ring.agency_private(agency),
        recipient_kid=agency,
        signer=ring.office_signing(office),
        signer_kid=office,
    )
    now = datetime.now(UTC)
    return ReferralOffered(
        referral_id=referral_id,
        request_id=f"req-{referral_id}",
        agency_id=agency,
        status=ReferralStatus.REQUESTED,
        version=1,
        occurred_at=now,
        office_id=office,
        consent_id=f"con-{referral_id}",
        case=SealedCase(
            jwe=jwe,
            recipient_kid=agency,
            signer_kid=office,
            released_categories=(DataCategory.NAME,),
        ),
        acknowledge_by=now + timedelta(days=3),
    )


def fhir_change(
    kind: type[ReferralChange],
    status: ReferralStatus,
    version: int,
    referral_id: str = "ref-1",
    agency: str = FHIR_AGENCY,
) -> ReferralChange:
    """A change of the referral offered by `fhir_offer`, as the referral service publishes it
    (`version`: the referral's, the offer being 1)."""
    return kind(
        referral_id=referral_id,
        request_id=f"req-{referral_id}",
        agency_id=agency,
        status=status,
        version=version,
        occurred_at=datetime.now(UTC),
    )


def deletion_asked(referral_id: str = "ref-1", agency: str = FHIR_AGENCY) -> dict[str, Any]:
    """The fields of the referral service's request that `agency` delete the referral offered
    by `fhir_offer` (its consent withdrawn), to be confirmed within a week: a test sends them
    as `DeletionRequested` and compares what the agency is shown with them."""
    now = datetime.now(UTC)
    return {
        "referral_id": referral_id,
        "request_id": f"req-{referral_id}",
        "agency_id": agency,
        "consent_id": f"con-{referral_id}",
        "confirm_by": now + timedelta(days=7),
        "occurred_at": now,
    }


def subscription(endpoint: str, **change: Any) -> dict[str, Any]:
    """A FHIR Subscription to the referrals topic, as an agency sends it (`change`: what
    differs)."""
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "referrals",
        "criteria": codes.TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [
                    {"url": f"{codes.BACKPORT}/backport-payload-content", "valueCode": "id-only"}
                ]
            },
        },
        **change,
    }


def issue(response: httpx.Response) -> dict[str, Any]:
    """The one issue of an OperationOutcome answer, with Wegweiser's code beside it."""
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    (found,) = body["issue"]
    found["wegweiser"] = found["details"]["coding"][0]["code"]
    return dict(found)
