"""Subscriptions, R4 backport style: an agency subscribes to the topic of its Tasks' changes
with a rest-hook to its HTTPS endpoint and id-only payloads (the notification names the Task;
the agency reads it with its token). Each notification is signed like a webhook (Standard
Webhooks, the agency's webhook secret) and retried for `GIVE_UP_AFTER` seconds; after that the
Subscription is in `error` and the agency polls (at least once per business day, not more
often than every 15 minutes, as the SDOH Clinical Care guide says) until it subscribes anew.
A failed notification never holds up the feed: the Task is already in the view."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.subscription import Subscription
from sqlmodel import Session, col, select

from services.gateway import webhook
from services.gateway.fhir import codes
from services.gateway.fhir.errors import invalid, not_found
from services.gateway.fhir.store import SubscriptionRow
from wegweiser.platform import topology
from wegweiser.platform.retry import Retry

log = structlog.get_logger()

Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]
GIVE_UP_AFTER = 30.0
ID_ONLY = "id-only"
PAYLOAD = "application/fhir+json"
STATUS_PROFILE = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-status-r4"
)


def _payload_content(submitted: Subscription) -> str | None:
    found = getattr(submitted.channel, "payload__ext", None)
    for extension in (found.extension or []) if found is not None else []:
        if extension.url == f"{codes.BACKPORT}/backport-payload-content":
            return str(extension.valueCode)
    return None


def under_address(endpoint: str, allowed: str | None) -> bool:
    """Whether `endpoint` is at or below the https address `allowed`: same host and port, and
    a path within the allowed one (the gateway posts nowhere else: no agency can point it at
    another host)."""
    if not allowed:
        return False
    there, here = urlsplit(allowed), urlsplit(endpoint)
    path = there.path.rstrip("/")
    return (
        there.scheme == "https"
        and (here.hostname, here.port) == (there.hostname, there.port)
        and (here.path == path or here.path.startswith(path + "/") or not path)
    )


def open_subscription(
    session: Session, agency_id: str, submitted: Subscription, allowed: str | None
) -> str:
    """Record a new Subscription as `requested` (its handshake activates it); its id.
    `allowed`: the agency's notification address as the directory lists it."""
    if submitted.criteria != codes.TOPIC:
        raise invalid(
            "fhir.subscription-topic",
            f"unknown topic {submitted.criteria!r}: this server offers {codes.TOPIC}",
            "Subscription.criteria",
        )
    channel = submitted.channel
    if channel.type != "rest-hook":
        raise invalid(
            "fhir.subscription-channel",
            f"channel type {channel.type!r}: only rest-hook",
            "Subscription.channel.type",
        )
    endpoint = str(channel.endpoint or "")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or len(endpoint) > 2000:
        raise invalid(
            "fhir.subscription-endpoint",
            "the endpoint must be an https URL (notifications are not sent in clear)",
            "Subscription.channel.endpoint",
        )
    if not under_address(endpoint, allowed):
        raise invalid(
            "fhir.subscription-endpoint",
            f"notifications go only to the address the county's directory lists for this "
            f"agency ({allowed})"
            if allowed
            else "the county's directory lists no https address for this agency's notifications",
            "Subscription.channel.endpoint",
        )
    if channel.payload not in (None, PAYLOAD):
        raise invalid(
            "fhir.subscription-payload",
            f"payload type {channel.payload!r}: only {PAYLOAD}",
            "Subscription.channel.payload",
        )
    content = _payload_content(submitted)
    if content not in (None, ID_ONLY):
        raise invalid(
            "fhir.subscription-payload",
            f"payload content {content!r}: only {ID_ONLY} (the agency reads what changed)",
            "Subscription.channel.payload",
        )
    row = SubscriptionRow(
        id=str(uuid.uuid4()), agency_id=agency_id, endpoint=endpoint, status="requested"
    )
    session.add(row)
    return row.id


def owned(session: Session, agency_id: str, subscription_id: str) -> SubscriptionRow:
    row = session.get(SubscriptionRow, subscription_id)
    if row is None or row.agency_id != agency_id:
        raise not_found("Subscription", subscription_id)
    return row


def close(session: Session, agency_id: str, subscription_id: str) -> None:
    """End a Subscription: nothing more is sent to it."""
    session.delete(owned(session, agency_id, subscription_id))


def resource(row: SubscriptionRow) -> Subscription:
    """The Subscription as the agency sees it (R4 backport)."""
    body: dict[str, Any] = {
        "resourceType": "Subscription",
        "id": row.id,
        "status": row.status,
        "reason": "changes to the agency's referral Tasks",
        "criteria": codes.TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": row.endpoint,
            "payload": PAYLOAD,
            "_payload": {
                "extension": [
                    {"url": f"{codes.BACKPORT}/backport-payload-content", "valueCode": ID_ONLY}
                ]
            },
        },
    }
    if row.error:
        body["error"] = row.error
    return Subscription.model_validate(body)


def notification(
    base: str, row: SubscriptionRow, kind: str, number: int, focus: str | None, at: datetime
) -> Bundle:
    """A backport notification Bundle (id-only): the subscription's status and, for an
    event, the Task that changed, by its URL alone."""
    status: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{row.id}"}},
        {"name": "topic", "valueCanonical": codes.TOPIC},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(number)},
    ]
    entries: list[dict[str, Any]] = []
    if focus is not None:
        status.append(
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": str(number)},
                    {"name": "timestamp", "valueInstant": at},
                    {"name": "focus", "valueReference": {"reference": f"{base}/Task/{focus}"}},
                ],
            }
        )
        entries.append(
            {
                "fullUrl": f"{base}/Task/{focus}",
                "request": {"method": "PUT", "url": f"Task/{focus}"},
                "response": {"status": "200"},
            }
        )
    parameters = {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": status,
    }
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "history",
            "timestamp": at,
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{parameters['id']}",
                    "resource": parameters,
                    "request": {"method": "GET", "url": f"Subscription/{row.id}/$status"},
                    "response": {"status": "200"},
                },
                *entries,
            ],
        }
    )


@dataclass
class Notifier:
    """Sends each of an agency's active Subscriptions what changed, signed with its secret."""

    run: Run
    client: httpx.AsyncClient
    secret: Callable[[str], str | None]
    """The agency's webhook secret (services.gateway.webhook.SecretFolder)."""
    base_url: Callable[[str], str]
    """The agency's FHIR base URL, absolute: `<gateway>/fhir/<agency>`."""
    give_up_after: float = GIVE_UP_AFTER
    retry: Retry = field(default_factory=lambda: topology.retry("notification"))
    """The pauses between attempts at a notification."""
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def task_changed(self, agency_id: str, task_id: str) -> None:
        """Notify every active Subscription of the agency that the Task changed."""
        ids = await self.run(
            lambda s: list(
                s.exec(
                    select(SubscriptionRow.id).where(
                        SubscriptionRow.agency_id == agency_id,
                        col(SubscriptionRow.status) == "active",
                    )
                )
            )
        )
        for subscription_id in ids:
            await self.send(agency_id, subscription_id, "event-notification", task_id)

    async def handshake(self, agency_id: str, subscription_id: str) -> None:
        """The first notification: its endpoint answers 2xx, or the Subscription is in error."""
        await self.send(agency_id, subscription_id, "handshake", None)

    async def send(
        self, agency_id: str, subscription_id: str, kind: str, focus: str | None
    ) -> bool:
        def count(session: Session) -> tuple[SubscriptionRow, int] | None:
            row = session.get(SubscriptionRow, subscription_id)
            if row is None:
                return None
            if focus is not None:
                row.events_since_start += 1
                session.add(row)
            session.flush()
            session.expunge(row)
            return row, row.events_since_start

        found = await self.run(count)
        if found is None:
            return False
        row, number = found
        secret = self.secret(agency_id)
        if secret is None:
            await self._settle(subscription_id, "no webhook secret issued to sign notifications")
            return False
        note = notification(self.base_url(agency_id), row, kind, number, focus, self.now())
        body = note.model_dump_json(exclude_none=True)
        sent = await webhook.deliver(
            self.client,
            row.endpoint,
            secret,
            f"{subscription_id}-{kind}-{number}",
            body,
            self.give_up_after,
            self.retry,
        )
        error = None if sent.delivered else f"not delivered: {sent.last_error}"[:500]
        await self._settle(subscription_id, error)
        log.info(
            "gateway.fhir_notified",
            subscription=subscription_id,
            kind=kind,
            delivered=sent.delivered,
            attempts=sent.attempts,
        )
        return sent.delivered

    async def _settle(self, subscription_id: str, error: str | None) -> None:
        def settle(session: Session) -> None:
            row = session.get(SubscriptionRow, subscription_id)
            if row is not None:
                row.status, row.error = ("error", error) if error else ("active", None)
                session.add(row)

        await self.run(settle)
