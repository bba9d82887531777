"""The edge between JetStream and a service's handlers: decode, de-duplicate, ack or dead-letter.

A service handles its consumer's messages in batches (wegweiser/platform/pull.py hands them
over in stream order), all of a batch in one transaction: one commit, one fsync, for the
effects, the inbox rows and the outbox rows of every message in it. Then, per message:
- undecodable or not the expected contract  -> dead-letter with the validation error, ack
- handled (or already in the inbox)         -> ack after the batch committed
If the batch's transaction fails, nothing of it is kept and its messages are handled again
one by one, in order, each in its own transaction:
- handler raised `Unprocessable`            -> dead-letter with its message, ack
- handler raised anything else (transient)  -> try again in place, with a growing pause
                                               (`retry.Retry`), so that nothing behind it
                                               overtakes it; after max_deliver attempts,
                                               dead-letter, ack
The others' work is kept: one bad message costs its batch a second pass, never its effects.

While a message is held, it is reported in progress to the server (JetStream's "+WPI") every
`heartbeat` seconds, so that a consumer's ack_wait can be short: a message a killed process
held is redelivered after ack_wait (1 s in infra/), not after a margin for the slowest
handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.trace import StatusCode
from pydantic import ValidationError
from sqlmodel import Session

from schemas import subjects, upcasting
from schemas.envelope import Envelope, Payload, new_event
from schemas.events import DeadLettered
from schemas.subjects import matches
from wegweiser.platform import inbox, topology
from wegweiser.platform.metrics import metrics
from wegweiser.platform.retry import Retry
from wegweiser.platform.tracing import Carried, Tracing, carried_by

P = TypeVar("P", bound=Payload)
T = TypeVar("T")
CRASH_DELIVERIES = 20
"""A message delivered more often than this without an ack is dead-lettered before it is
tried again: its handling kills the process (an attempt that fails is counted and retried in
place, so it never comes this far), or it kept changing hands. The server's own limit is off
for owned consumers, since it would drop the message without a word."""
log = structlog.get_logger()


class Unprocessable(Exception):
    """The message is well-formed but can never be processed; dead-letter it with this reason."""


@dataclass(frozen=True)
class Delivery(Generic[P]):
    """A decoded event and the subject it arrived on."""

    event: Envelope[P]
    subject: str


Handler = Callable[[Session, Delivery[P]], None]


@dataclass(frozen=True)
class Route:
    """Which contract arrives on a subject pattern, and which handler takes it."""

    pattern: str
    contract: type[Payload]
    handler: Handler[Any]


@dataclass
class Work:
    """One message of a batch: what the inbox knows it by and what handling it does, or why
    it can never be handled."""

    msg: Msg
    key: str = ""
    apply: Callable[[Session], None] | None = None
    refused: str = ""
    event_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    """Bound to the log while it is handled."""
    carried: Carried | None = None
    """The event's trace context, id and type, if it was decoded."""

    def trace(self) -> Carried:
        """What a span of its handling continues: as decoded, else read from the body."""
        return self.carried or carried_by(self.msg.data)


def describe(error: ValidationError) -> str:
    """A validation error as one line naming every bad field."""
    parts = []
    for e in error.errors()[:10]:
        where = ".".join(str(p) for p in e["loc"]) or "(body)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def routed(msg: Msg, routes: Sequence[Route]) -> Work:
    """A message decoded by the route its subject takes."""
    route = next((r for r in routes if matches(r.pattern, msg.subject)), None)
    if route is None:
        return Work(msg, refused=f"no handler for subject {msg.subject}")
    try:
        event = upcasting.read(msg.data, route.contract)
    except ValidationError as exc:
        return Work(msg, refused=f"malformed {route.contract.__name__}: {describe(exc)}")
    delivery = Delivery(event, msg.subject)
    return Work(
        msg,
        key=event.id,
        apply=lambda session: route.handler(session, delivery),
        event_id=event.id,
        context={
            "event_id": event.id,
            "referral_id": event.subject,
            "correlation_id": event.correlationid,
        },
        carried=Carried.of(event),
    )


def raw(msg: Msg, handler: Callable[[Session, Msg], None]) -> Work:
    """A message taken as it is (the audit records everything), known to the inbox by what
    the stream says it is (its sequence and a hash of its body: a redelivery), never by an id
    the sender chose."""
    digest = hashlib.sha256(msg.data).hexdigest()[:16]
    key = f"seq-{msg.metadata.sequence.stream}-{digest}"
    return Work(msg, key=key, apply=lambda session: handler(session, msg))


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
        tracing: Tracing | None = None,
        retry: Retry | None = None,
    ) -> None:
        """`letter_key`: the secret the ids of this service's dead letters are made with (see
        `letter_id`); stable across restarts, so a letter retried after a crash counts once.
        Without one, a random key for this process. `heartbeat`: how often a message at work
        is reported in progress (well under the shortest ack_wait of the consumers served).
        `tracing`: each message handled, and each dead-lettered, is a span in the trace its
        event carries (wegweiser/platform/tracing.py); off without it. `retry`: the pauses
        between attempts at a failing message (a handler's, from infra/, if not given)."""
        self.service = service
        self._run = run
        self._js = js
        self.max_deliver = max_deliver
        self._letter_key = letter_key or os.urandom(32)
        self.heartbeat = heartbeat
        self.tracing = tracing or Tracing()
        self.retry = retry or topology.retry("handler")

    async def handle_batch(
        self,
        consumer: str,
        works: Sequence[Work],
        committed: Callable[[], None] = lambda: None,
    ) -> list[Work]:
        """Handle a batch in stream order, as the module says: every message ends acked or
        dead-lettered; `committed` runs after each transaction that committed. Returns the
        works whose effects this call committed (not those the inbox had seen)."""
        structlog.contextvars.bind_contextvars(consumer=consumer)
        began = time.perf_counter()
        for w in works:
            if w.apply is not None and w.msg.metadata.num_delivered > CRASH_DELIVERIES:
                w.apply, w.refused = (
                    None,
                    (
                        f"delivered {w.msg.metadata.num_delivered} times and never acknowledged: "
                        "its handling ends the process, or it keeps changing hands"
                    ),
                )
        todo = [w for w in works if w.apply is not None]
        fresh: list[Work] = []
        if todo:
            try:
                fresh = await self._run(lambda s: self._apply_all(s, consumer, todo))
            except Exception as exc:  # noqa: BLE001 - redone one by one, where each fault is placed
                if len(todo) == 1:
                    fresh = [w for w in todo if await self._one(consumer, w, committed, exc)]
                else:
                    log.warning("batch.redone_one_by_one", size=len(todo), error=repr(exc))
                    fresh = [w for w in todo if await self._one(consumer, w, committed)]
            else:
                committed()
                for w in todo:
                    await w.msg.ack()
        for w in works:
            if w.apply is None:
                await self.dead_letter(w.msg, consumer, w.refused, w.event_id)
        counted = metrics().handled.labels(self.service, consumer)
        counted.inc(sum(1 for w in works if w.apply is not None))
        took = time.perf_counter() - began
        metrics().batch_seconds.labels(self.service, consumer).observe(took)
        structlog.contextvars.unbind_contextvars("consumer")
        return fresh

    def _apply_all(self, session: Session, consumer: str, works: Sequence[Work]) -> list[Work]:
        """The messages' effects in order, in the caller's transaction; those that were new."""
        done = inbox.seen(session, consumer, [w.key for w in works])
        return [w for w in works if self._apply(session, consumer, w, done)]

    def _apply(self, session: Session, consumer: str, work: Work, done: set[str]) -> bool:
        """One message's effects in the caller's transaction; False if the inbox had it."""
        assert work.apply is not None
        with structlog.contextvars.bound_contextvars(nats_subject=work.msg.subject, **work.context):
            if work.key in done:
                log.info("event.duplicate_ignored")
                return False
            done.add(work.key)
            inbox.record(session, consumer, work.key)
            with self.tracing.consuming(work.msg.subject, consumer, work.trace):
                work.apply(session)
            return True

    async def _one(
        self,
        consumer: str,
        work: Work,
        committed: Callable[[], None],
        failed: Exception | None = None,
    ) -> bool:
        """One message in its own transaction, tried in place until it commits, can never be
        processed, or has used up its attempts; True if it committed fresh effects. `failed`:
        how its first attempt here already failed (a batch of it alone)."""

        async def once() -> bool:
            return bool(await self._run(lambda s: self._apply_all(s, consumer, [work])))

        done, fresh = await self.attempt(work.msg, consumer, work.event_id, once, failed=failed)
        if done:
            committed()
            await work.msg.ack()
        return bool(fresh)

    async def attempt(
        self,
        msg: Msg,
        consumer: str,
        event_id: str | None,
        once: Callable[[], Awaitable[T]],
        tried: int = 0,
        failed: Exception | None = None,
    ) -> tuple[bool, T | None]:
        """Run `once` for the message until it succeeds: a failure is tried again in place
        after the handlers' pause (`retry`), so that nothing behind the message overtakes it;
        `Unprocessable`, or a failure of the max_deliver-th attempt, dead-letters the message
        (which acks it). `tried`: attempts already spent (deliveries that a crash cut short, on
        a consumer whose server counts them); `failed`: how the first attempt here already
        failed. Returns whether `once` succeeded, and what it returned."""
        attempts = tried
        while True:
            attempts += 1
            try:
                if failed is not None:
                    error, failed = failed, None
                    raise error
                return True, await once()
            except Unprocessable as exc:
                metrics().failed.labels(self.service, consumer).inc()
                await self.dead_letter(msg, consumer, str(exc), event_id)
                return False, None
            except Exception as exc:  # noqa: BLE001 - retried in place, then parked
                metrics().failed.labels(self.service, consumer).inc()
                if attempts >= self.max_deliver:
                    reason = f"gave up after {attempts} attempts: {exc!r}"
                    await self.dead_letter(msg, consumer, reason, event_id, attempts)
                    return False, None
                delay = self.retry.pause(attempts)
                log.warning("event.retry", error=repr(exc), attempts=attempts, delay=delay)
                await asyncio.sleep(delay)

    async def dead_letter(
        self,
        msg: Msg,
        consumer: str,
        reason: str,
        event_id: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """Park the message under ww.deadletter.<service> with the reason, then ack it; the
        letter continues the trace of the event it parks."""
        with self.tracing.consuming(msg.subject, consumer, lambda: carried_by(msg.data)) as span:
            if span is not None:
                span.set_status(StatusCode.ERROR, "dead-lettered")
            await self._dead_letter(msg, consumer, reason, event_id, attempts)

    async def _dead_letter(
        self, msg: Msg, consumer: str, reason: str, event_id: str | None, attempts: int | None
    ) -> None:
        meta = msg.metadata
        letter = DeadLettered(
            service=self.service,
            original_subject=msg.subject,
            original_event_id=event_id,
            stream_sequence=meta.sequence.stream,
            deliveries=attempts or meta.num_delivered,
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
        metrics().dead_letters.labels(self.service, consumer).inc()
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


def key_of(body: bytes) -> str | None:
    """What a message's order is kept by: its CloudEvents `subject` (a referral's id for the
    events of a referral), if it has a usable one."""
    return _field(body, "subject", 128)


def event_id_of(body: bytes) -> str | None:
    """The CloudEvents id of a message body, if it has a usable one."""
    return _field(body, "id", 64)


def _field(body: bytes, name: str, longest: int) -> str | None:
    """A string field of a JSON object body, if it is there, not empty and not too long."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    value = decoded.get(name) if isinstance(decoded, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= longest else None
