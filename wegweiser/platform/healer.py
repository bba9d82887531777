"""Keeps the stream and every declared consumer in existence, and says loudly when it had to.

Run by the administrator only (`wegweiser up` beside its services, `wegweiser broker watch`
in production). Every round it reads the stream's state and every consumer's position; what
is missing it recreates from the declaration (infra/jetstream.toml and the agencies the broker
knows):

* a lost consumer comes back where its predecessor had acknowledged up to, the last position
  this watch saw (kept on disk): the messages after it are delivered again, so nothing is
  lost, and the services' inboxes drop what they had already processed, so nothing counts
  twice (agencies must be idempotent anyway: delivery is at least once);
* a lost stream is created again, empty. What it held is gone: this watch logs
  `broker.stream_recreated` with the last sequence it knew, consumers restart from the new
  stream's beginning, and the operator restores the events from the backup (see README,
  Operations). The outboxes still hold what the services could not publish meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ServiceUnavailableError

from schemas import subjects
from wegweiser.platform import topology
from wegweiser.platform.files import write_private
from wegweiser.platform.topology import ConsumerSpec

log = structlog.get_logger()
UNAVAILABLE = (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)


@dataclass
class Positions:
    """The stream's identity (its creation time) and each consumer's acknowledged position."""

    path: Path | None = None
    stream_created: str | None = None
    last_sequence: int = 0
    first_sequence: int = 0
    first_time: str | None = None
    """When the oldest event still in the stream was stored: it may only go by age."""
    acked: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Positions:
        if path is None or not path.exists():
            return cls(path)
        return cls(path, **json.loads(path.read_text()))

    def save(self) -> None:
        if self.path is None:
            return
        body = {
            "stream_created": self.stream_created,
            "last_sequence": self.last_sequence,
            "first_sequence": self.first_sequence,
            "first_time": self.first_time,
            "acked": self.acked,
        }
        write_private(self.path, json.dumps(body, indent=1, sort_keys=True))


class Healer:
    """One watch over the stream and the consumers that `declared` names."""

    def __init__(
        self,
        js: JetStreamContext,
        declared: Callable[[], list[ConsumerSpec]],
        max_deliver: int,
        replicas: int | None = None,
        state: Path | None = None,
    ) -> None:
        self.js = js
        self.declared = declared
        self.max_deliver = max_deliver
        self.replicas = replicas
        self.positions = Positions.load(state)

    async def check_once(self) -> list[str]:
        """One round: what was missing and is back (empty when all was well)."""
        repaired: list[str] = []
        try:
            info = await self.js.stream_info(subjects.STREAM)
        except NotFoundError:
            log.error(
                "broker.stream_missing",
                stream=subjects.STREAM,
                last_sequence_known=self.positions.last_sequence,
                why="recreating it empty; restore its events from the backup",
            )
            await topology.ensure_stream(self.js, self.replicas)
            info = await self.js.stream_info(subjects.STREAM)
            repaired.append(f"stream {subjects.STREAM}")
        created = info.created.isoformat() if info.created else None
        if created != self.positions.stream_created:
            if self.positions.stream_created is not None:
                log.error(
                    "broker.stream_recreated",
                    stream=subjects.STREAM,
                    was_created=self.positions.stream_created,
                    last_sequence_known=self.positions.last_sequence,
                )
            self.positions.stream_created, self.positions.acked = created, {}
        first, last = info.state.first_seq, info.state.last_seq
        if first != self.positions.first_sequence:
            await self._first_moved(first, info.state.messages, info.config.max_age or 0)
        self.positions.last_sequence = last
        found = {c.name: c for c in await self.js.consumers_info(subjects.STREAM)}
        for spec in self.declared():
            consumer = found.get(spec.durable)
            if consumer is not None:
                floor = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
                self.positions.acked[spec.durable] = floor or 0
                continue
            if await self._exists(spec.durable):  # a listing while a node restarts can miss one
                continue
            acked = self.positions.acked.get(spec.durable)
            start = None if not acked else min(acked + 1, last + 1)
            await self.js.add_consumer(
                subjects.STREAM, spec.config(self.max_deliver, start_sequence=start)
            )
            log.error(
                "broker.consumer_recreated",
                durable=spec.durable,
                start_sequence=start or first,
                why="it was missing (deleted?); redelivering from its last acknowledged position",
            )
            repaired.append(f"consumer {spec.durable}")
        self.positions.save()
        return repaired

    async def _exists(self, durable: str) -> bool:
        try:
            await self.js.consumer_info(subjects.STREAM, durable)
        except NotFoundError:
            return False
        return True

    async def _first_moved(self, first: int, messages: int, max_age: float) -> None:
        """The oldest events left the stream: by age, or removed (purged, deleted)."""
        before = self.positions.first_time
        if before is not None and first > self.positions.first_sequence:
            age = (datetime.now(UTC) - datetime.fromisoformat(before)).total_seconds()
            if not max_age or age < max_age - 3600:
                log.error(
                    "broker.stream_purged",
                    stream=subjects.STREAM,
                    removed_from=self.positions.first_sequence,
                    removed_to=first - 1,
                    why="events younger than the stream's max_age were removed: "
                    "restore them from the backup",
                )
        self.positions.first_sequence = first
        self.positions.first_time = None
        if messages:
            oldest = await self.js.get_msg(subjects.STREAM, first)
            self.positions.first_time = oldest.time.isoformat() if oldest.time else None
