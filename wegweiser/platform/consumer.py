"""The edge between JetStream and a service's handlers: decode, de-duplicate, ack or dead-letter.

Ack policy, per message:
- undecodable or not the expected contract  -> dead-letter with the validation error, ack
- handler raised `Unprocessable`            -> dead-letter with its message, ack
- handler raised anything else (transient)  -> nak with a growing delay; on the last allowed
                                               delivery, dead-letter with the error, ack
- handled (or already in the inbox)         -> ack after the transaction committed

While a message is being handled, the edge tells the server every `heartbeat` seconds that it
is still at work on it (JetStream's "+WPI"), so that a consumer's ack_wait can be short: a
message a killed process held is redelivered after ack_wait (two seconds in infra/), not after
a margin for the slowest handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError
from sqlmodel import Session

from schemas import subjects, upcasting
from schemas.envelope import Envelope, Payload, new_event
from schemas.events import DeadLettered
from wegweiser.platform import inbox

P = TypeVar("P", bound=Payload)
log = structlog.get_logger()


class Unprocessable(Exception):
    """The message is well-formed but can never be processed; dead-letter it with this reason."""


@dataclass(frozen=True)
class Delivery(Generic[P]):
    """A decoded event and the subject it arrived on."""

    event: Envelope[P]
    subject: str


Handler = Callable[[Session, Delivery[P]], None]


def describe(error: ValidationError) -> str:
    """A validation error as one line naming every bad field."""
    parts = []
    for e in error.errors()[:10]:
        where = ".".join(str(p) for p in e["loc"]) or "(body)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


class ConsumerEdge:
    """Runs handlers for one service with inbox de-duplication and dead-lettering."""

    def __init__(
        self,
        service: str,
        run: Callable[[Callable[[Session], Any]], Any],
        js: JetStreamContext,
        max_deliver: int,
        letter_key: bytes | None = None,
        heartbeat: float = 0.5,
    ) -> None:
        """`letter_key`: the secret the ids of this service's dead letters are made with (see
        `letter_id`); stable across restarts, so a letter retried after a crash counts once.
        Without one, a random key for this process. `heartbeat`: how often a message at work
        is reported in progress (well under the shortest ack_wait of the consumers served)."""
        self.service = service
        self._run = run
        self._js = js
        self.max_deliver = max_deliver
        self._letter_key = letter_key or os.urandom(32)
        self.heartbeat = heartbeat

    async def handle(self, msg: Msg, consumer: str, contract: type[P], handler: Handler[P]) -> None:
        """Process one JetStream message to the end: it is acked, nak'ed or dead-lettered."""
        deliveries = msg.metadata.num_delivered
        structlog.contextvars.bind_contextvars(consumer=consumer, nats_subject=msg.subject)
        try:
            event = upcasting.read(msg.data, contract)
        except ValidationError as exc:
            await self.dead_letter(msg, consumer, f"malformed {contract.__name__}: {describe(exc)}")
            return
        structlog.contextvars.bind_contextvars(
            event_id=event.id, referral_id=event.subject, correlation_id=event.correlationid
        )
        delivery = Delivery(event, msg.subject)

        def transaction(session: Session) -> bool:
            if not inbox.first_time(session, consumer, event.id):
                return False
            handler(session, delivery)
            return True

        try:
            async with at_work(msg, self.heartbeat):
                fresh = await self._run(transaction)
        except Unprocessable as exc:
            await self.dead_letter(msg, consumer, str(exc), event.id)
            return
        except Exception as exc:  # noqa: BLE001 - every fault is either retried or parked
            if deliveries >= self.max_deliver:
                reason = f"gave up after {deliveries} deliveries: {exc!r}"
                await self.dead_letter(msg, consumer, reason, event.id)
            else:
                delay = min(0.25 * 2 ** (deliveries - 1), 30.0)
                log.warning("event.retry", error=repr(exc), deliveries=deliveries, delay=delay)
                await msg.nak(delay=delay)
            return
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "referral_id", "correlation_id")
        if not fresh:
            log.info("event.duplicate_ignored", event_id=event.id)
        await msg.ack()

    async def handle_raw(
        self, msg: Msg, consumer: str, handler: Callable[[Session, Msg], None]
    ) -> bool:
        """Process any message, decoded or not (the audit records everything): de-duplicated
        by what the stream says it is (its sequence and a hash of its body: a redelivery),
        never by an id the sender chose; retried on faults like `handle`. True if this
        delivery's effects were committed."""
        deliveries = msg.metadata.num_delivered
        digest = hashlib.sha256(msg.data).hexdigest()[:16]
        key = f"seq-{msg.metadata.sequence.stream}-{digest}"

        def transaction(session: Session) -> bool:
            if not inbox.first_time(session, consumer, key):
                return False
            handler(session, msg)
            return True

        try:
            async with at_work(msg, self.heartbeat):
                fresh = bool(await self._run(transaction))
        except Exception as exc:  # noqa: BLE001 - every fault is either retried or parked
            if deliveries >= self.max_deliver:
                reason = f"gave up after {deliveries} deliveries: {exc!r}"
                await self.dead_letter(msg, consumer, reason, key)
            else:
                await msg.nak(delay=min(0.25 * 2 ** (deliveries - 1), 30.0))
            return False
        await msg.ack()
        return fresh

    async def dead_letter(
        self, msg: Msg, consumer: str, reason: str, event_id: str | None = None
    ) -> None:
        """Park the message under ww.deadletter.<service> with the reason, then ack it."""
        meta = msg.metadata
        letter = DeadLettered(
            service=self.service,
            original_subject=msg.subject,
            original_event_id=event_id,
            stream_sequence=meta.sequence.stream,
            deliveries=meta.num_delivered,
            reason=reason,
            payload=msg.data.decode("utf-8", errors="replace"),
            occurred_at=datetime.now(UTC),
        )
        envelope = new_event(letter, source=f"/wegweiser/{self.service}", subject=msg.subject)
        await self._js.publish(
            subjects.dead_letter(self.service),
            envelope.model_dump_json().encode(),
            headers={"Nats-Msg-Id": letter_id(self._letter_key, consumer, meta.sequence.stream)},
        )
        log.error("event.dead_lettered", reason=reason, stream_sequence=meta.sequence.stream)
        await msg.ack()


@asynccontextmanager
async def at_work(msg: Msg, every: float) -> AsyncIterator[None]:
    """Tell the server every `every` seconds, while the body runs, that `msg` is in progress
    (its ack_wait starts again), so that it is not redelivered to another consumer meanwhile."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            with suppress(Exception):  # a lost beat only risks a redelivery the inbox absorbs
                await msg.in_progress()

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with suppress(asyncio.CancelledError):
            await beating


def letter_id(key: bytes, consumer: str, stream_sequence: int) -> str:
    """A dead letter's `Nats-Msg-Id`: the same for every attempt at the same message (the
    stream keeps one letter), and unguessable to anyone without the key. The stream drops a
    publish whose id it has seen, across all its subjects: an agency that could predict the id
    could publish under it first and so make the letter vanish as a duplicate."""
    mac = hmac.new(key, f"{consumer}:{stream_sequence}".encode(), hashlib.sha256)
    return f"dl-{mac.hexdigest()[:40]}"


def event_id_of(body: bytes) -> str | None:
    """The CloudEvents id of a message body, if it has a usable one."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    event_id = decoded.get("id") if isinstance(decoded, dict) else None
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 64 else None
