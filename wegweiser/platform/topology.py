"""Applies infra/jetstream.toml: the stream and the durable consumers, created or updated.

Only the administrator may create or update them (`wegweiser up`'s provisioning, the broker
watch, the admin CLI); services and agencies find them made and wait when one is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
)

from infra import jetstream_settings as _toml
from schemas import subjects
from wegweiser.platform.retry import Retry

DAY = 86_400
OWNER_GROUP = "owner"
"""The priority group of every service consumer's pulls (see `ConsumerSpec.owner_timeout`)."""
log = structlog.get_logger()


@dataclass
class OwnedConsumerConfig(ConsumerConfig):
    """A consumer configuration with a pinned-client priority group (ADR-42, nats-server
    2.11+), which nats-py's `ConsumerConfig` does not know yet: the server hands the
    consumer's messages to one client, the pinned one, and pins another when that one has
    not pulled for `priority_timeout` seconds."""

    priority_groups: list[str] | None = None
    priority_policy: str | None = None
    priority_timeout: float | None = None

    def as_dict(self) -> dict[str, object]:
        result = super().as_dict()
        if self.priority_timeout is not None:
            result["priority_timeout"] = self._to_nanoseconds(self.priority_timeout)
        return result


def stream_config(replicas: int | None = None) -> StreamConfig:
    """The WEGWEISER stream as configured in infra/."""
    s = _toml()["stream"]
    return StreamConfig(
        name=subjects.STREAM,
        subjects=list(subjects.STREAM_SUBJECTS),
        storage=StorageType(s["storage"]),
        retention=RetentionPolicy(s["retention"]),
        max_age=s["max_age_days"] * DAY,
        duplicate_window=s["duplicate_window_seconds"],
        num_replicas=replicas or s["replicas"],
        max_bytes=s["max_bytes"],
        discard=DiscardPolicy(s["discard"]),
    )


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer of one service."""

    durable: str
    service: str
    filter_subjects: tuple[str, ...]
    ack_wait: float
    max_ack_pending: int = 1
    batch: int = 1
    """The most messages handled in one transaction (an owned consumer's)."""
    owner_timeout: float | None = None
    """With a value: one instance at a time owns the consumer (a pinned client), and another
    takes over when the owner has not pulled for this many seconds."""
    group: str = ""
    """The consumer of the service this is a partition of (its own name when unpartitioned);
    the inbox knows events by it."""
    partition: int = 0
    partitions: int = 1
    """A partitioned consumer is `partitions` consumers with the same filter (`group`,
    `group-p1`, ...); each handles the events whose key falls in its partition
    (`partition_of`) and acks the others unhandled."""

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.durable)

    def handles(self, key: str | None) -> bool:
        """Whether this partition handles events with this key (no key: the first does)."""
        return partition_of(key, self.partitions) == self.partition

    @property
    def filter_subject(self) -> str:
        """The first filter (the consumer's address in documents and logs)."""
        return self.filter_subjects[0]

    def config(self, max_deliver: int, start_sequence: int | None = None) -> ConsumerConfig:
        """The consumer's configuration; `start_sequence` recreates a lost consumer where its
        predecessor had got to (a consumer that exists keeps its position regardless)."""
        one = len(self.filter_subjects) == 1
        owned: dict[str, Any] = {}
        if self.owner_timeout is not None:
            owned = {
                "priority_groups": [OWNER_GROUP],
                "priority_policy": "pinned_client",
                "priority_timeout": self.owner_timeout,
            }
        return OwnedConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subject if one else None,
            filter_subjects=None if one else list(self.filter_subjects),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL
            if start_sequence is None
            else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start_sequence,
            ack_wait=self.ack_wait,
            # an owned consumer's service counts its own attempts and dead-letters (with the
            # reason); the server's limit would drop a message silently, and handovers (naks)
            # spend deliveries that were never attempts
            max_deliver=-1 if self.owner_timeout is not None else max_deliver,
            max_ack_pending=self.max_ack_pending,
            **owned,
        )


def partition_of(key: str | None, partitions: int) -> int:
    """The partition of an event's key: the same in every process and release (a hash of
    the key's bytes, not Python's salted `hash`)."""
    if not key or partitions == 1:
        return 0
    return zlib.crc32(key.encode()) % partitions


def consumers(service: str | None = None) -> list[ConsumerSpec]:
    """The service consumers from infra/, optionally of one service, each partition one."""
    specs = []
    for name, c in _toml()["consumers"].items():
        partitions = int(c.get("partitions", 1))
        specs += [
            ConsumerSpec(
                name if p == 0 else f"{name}-p{p}",
                c["service"],
                tuple(c["filter_subjects"]),
                float(c["ack_wait_seconds"]),
                int(c["max_ack_pending"]),
                int(c["batch"]),
                float(c["owner_timeout_seconds"]),
                group=name,
                partition=p,
                partitions=partitions,
            )
            for p in range(partitions)
        ]
    return [s for s in specs if service is None or s.service == service]


def partitions(group: str) -> list[ConsumerSpec]:
    """The partitions of one service consumer (one, if it is not partitioned)."""
    return [s for s in consumers() if s.group == group]


def agency_consumer(agency_id: str) -> ConsumerSpec:
    """The durable consumer through which one agency reads its referrals."""
    return ConsumerSpec(
        f"agency-{subjects.token(agency_id)}",
        "agency",
        (subjects.agency_referrals(agency_id),),
        float(_toml()["agency_consumer"]["ack_wait_seconds"]),
        int(_toml()["agency_consumer"]["max_ack_pending"]),
    )


RetryKind = Literal["handler", "partner", "redelivery", "notification", "broker"]


def retry(kind: RetryKind) -> Retry:
    """The pauses for one kind of waiting, from infra/jetstream.toml (see `retry`)."""
    figures = _toml()["retry"][kind]
    return Retry(float(figures["first_seconds"]), float(figures["longest_seconds"]))


def patiently() -> AsyncRetrying:
    """JetStream's API may not answer while a fresh cluster elects its leaders: keep asking."""
    return AsyncRetrying(
        retry=retry_if_exception_type(
            (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)
        ),
        wait=retry("broker").wait(),
        stop=stop_after_delay(60),
        reraise=True,
    )


async def ensure_stream(js: JetStreamContext, replicas: int | None = None) -> None:
    """Create the stream, or update it to what infra/ says (at `replicas` in a cluster)."""
    async for attempt in patiently():
        with attempt:
            await _ensure_stream(js, replicas)


async def _ensure_stream(js: JetStreamContext, replicas: int | None) -> None:
    config = stream_config(replicas)
    try:
        await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


async def ensure_consumers(
    js: JetStreamContext, specs: list[ConsumerSpec], max_deliver: int
) -> None:
    """Create or update durable consumers (add_consumer is idempotent for a durable). An
    existing consumer keeps where it starts from: JetStream refuses to change that."""
    for spec in specs:
        async for attempt in patiently():
            with attempt:
                config = spec.config(max_deliver)
                try:
                    current = await js.consumer_info(subjects.STREAM, spec.durable)
                except NotFoundError:
                    start = await _group_position(js, spec)
                    await js.add_consumer(subjects.STREAM, spec.config(max_deliver, start))
                    continue
                config.deliver_policy = current.config.deliver_policy
                config.opt_start_seq = current.config.opt_start_seq
                try:
                    await js.add_consumer(subjects.STREAM, config)
                except BadRequestError as exc:
                    if "priority" not in str(exc).lower():
                        raise
                    await _recreate_owned(js, spec, max_deliver, current)


async def _group_position(js: JetStreamContext, spec: ConsumerSpec) -> int | None:
    """Where a new partition starts: where the group's first partition had got to, so that a
    network that adds partitions does not hand its whole history to the new ones (what the
    first had handed out and not seen acknowledged, the inboxes drop). None: from the start."""
    if spec.partition == 0:
        return None
    try:
        first = await js.consumer_info(subjects.STREAM, spec.group)
    except NotFoundError:
        return None
    floor = first.ack_floor.stream_seq if first.ack_floor else 0
    floor = max(floor, (first.config.opt_start_seq or 1) - 1)
    return floor + 1 if floor else None


async def _recreate_owned(
    js: JetStreamContext, spec: ConsumerSpec, max_deliver: int, current: ConsumerInfo
) -> None:
    """A consumer made before its owner group, which this server will not give one: make it
    anew where the old one had got to. Whatever the old one had handed out
    and not seen acknowledged comes again, and the services' inboxes drop what they had
    done."""
    floor = current.ack_floor.stream_seq if current.ack_floor else 0
    await js.delete_consumer(subjects.STREAM, spec.durable)
    start = floor + 1 if floor else None
    await js.add_consumer(subjects.STREAM, spec.config(max_deliver, start_sequence=start))
    log.warning("broker.consumer_recreated", durable=spec.durable, start_sequence=start)


async def require(
    js: JetStreamContext, specs: list[ConsumerSpec], max_deliver: int, provision: bool
) -> None:
    """Make sure `specs` exist before reading from them: create them when this process may
    (`provision`: a broker without accounts, as in some tests), else wait until the
    administrator's provisioning has made them, saying loudly what is missing."""
    if provision:
        await ensure_consumers(js, specs, max_deliver)
        return
    pauses = retry("broker")
    for spec in specs:
        for attempt in itertools.count(1):
            try:
                await js.consumer_info(subjects.STREAM, spec.durable)
                break
            except (NotFoundError, ServiceUnavailableError, nats.errors.TimeoutError) as exc:
                if attempt % 10 == 1:
                    log.error(
                        "broker.consumer_missing",
                        durable=spec.durable,
                        error=repr(exc),
                        why="waiting for the provisioning to (re)create it",
                    )
                await asyncio.sleep(pauses.pause(attempt))
