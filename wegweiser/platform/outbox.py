"""Transactional outbox: events are staged with the state change, a relay publishes them.

The relay publishes with `Nats-Msg-Id` = event id, so a row published twice (crash between
publish and delete) is dropped by the stream's duplicate window; consumers' inboxes catch the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from sqlalchemy import DateTime
from sqlmodel import Field, Session, SQLModel, col, delete, func, select

from schemas.envelope import Envelope
from wegweiser.platform import topology
from wegweiser.platform.db import STAGED
from wegweiser.platform.metrics import metrics
from wegweiser.platform.tracing import Tracing, published

log = structlog.get_logger()


class OutboxRow(SQLModel, table=True):
    """An event waiting to be published."""

    __tablename__ = "outbox"
    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    subject: str = Field(max_length=255)
    body: bytes
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )


def stage(session: Session, subject: str, event: Envelope[Any]) -> None:
    """Add an event to the outbox inside the caller's transaction; the relay is woken once
    it commits (`Database.after_staging`)."""
    session.add(
        OutboxRow(event_id=event.id, subject=subject, body=event.model_dump_json().encode())
    )
    session.info[STAGED] = True


def is_staged(session: Session, event_id: str) -> bool:
    """Whether the event waits in the outbox (staged, not yet published)."""
    found = session.exec(select(OutboxRow.seq).where(OutboxRow.event_id == event_id)).first()
    return found is not None


def pending_count(session: Session) -> int:
    """How many events wait to be published."""
    return session.exec(select(func.count()).select_from(OutboxRow)).one()


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many events wait, and when the oldest of them was staged."""
    count, oldest = session.exec(select(func.count(), func.min(OutboxRow.created_at))).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no zone: it was UTC
        oldest = oldest.replace(tzinfo=UTC)
    return count, oldest


class Relay:
    """Publishes staged events in order, many in flight at once, and deletes them once acked."""

    def __init__(
        self,
        run: Callable[[Callable[[Session], Any]], Any],
        js: JetStreamContext,
        batch: int = 256,
        ack_timeout: float = 5.0,
        idle_poll: float = 0.5,
        service: str = "",
        tracing: Tracing | None = None,
    ) -> None:
        self.service = service
        """Whose outbox: the label of its metrics."""
        self.tracing = tracing or Tracing()
        """Each publish of an event that carries a trace is a span in it."""
        self._run = run
        self._js = js
        self._batch = batch
        self._ack_timeout = ack_timeout
        self._idle_poll = idle_poll
        self._retry = topology.retry("broker")
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    def wake(self) -> None:
        """Tell the relay that a transaction just staged events (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not running: it publishes what is staged when it starts
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self) -> None:
        """Publish until cancelled; back off while NATS is unreachable."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                sent = await self.publish_pending()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any outage
                failures += 1
                log.warning("outbox.publish_failed", error=repr(exc), attempt=failures)
                await asyncio.sleep(self._retry.pause(failures))
                continue
            if sent == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many were acked by the stream."""
        rows: list[OutboxRow] = await self._run(
            lambda s: list(
                s.exec(select(OutboxRow).order_by(col(OutboxRow.seq)).limit(self._batch))
            )
        )
        if not rows:
            return 0
        spans = [self.tracing.publishing(row.subject, row.body) for row in rows]
        try:
            futures = [
                await self._js.publish_async(
                    row.subject, row.body, headers={"Nats-Msg-Id": row.event_id}
                )
                for row in rows
            ]
        except BaseException as exc:
            for span in spans:
                published(span, type(exc).__name__)
            raise
        done, not_done = await asyncio.wait(futures, timeout=self._ack_timeout)
        for future in not_done:
            future.cancel()
        for span, future in zip(spans, futures, strict=True):
            published(span, None if _acked(future, done) else "not acknowledged")
        acked = [row.seq for row, f in zip(rows, futures, strict=True) if _acked(f, done)]
        if acked:
            await self._run(
                lambda s: s.exec(delete(OutboxRow).where(col(OutboxRow.seq).in_(acked)))
            )
            self.published += len(acked)
            metrics().published.labels(self.service).inc(len(acked))
        if len(acked) < len(rows):
            raise RuntimeError(f"{len(rows) - len(acked)} of {len(rows)} events not acked")
        return len(acked)


def _acked(future: asyncio.Future[Any], done: set[asyncio.Future[Any]]) -> bool:
    return future in done and not future.cancelled() and future.exception() is None
