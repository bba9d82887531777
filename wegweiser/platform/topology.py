"""Applies infra/jetstream.toml: the stream and the durable consumers, created or updated.

Only the administrator may create or update them (`wegweiser up`'s provisioning, the broker
watch, the admin CLI); services and agencies find them made and wait when one is missing.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError, ServiceUnavailableError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from infra import jetstream_settings as _toml
from schemas import subjects

DAY = 86_400
log = structlog.get_logger()


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

    @property
    def filter_subject(self) -> str:
        """The first filter (the consumer's address in documents and logs)."""
        return self.filter_subjects[0]

    def config(self, max_deliver: int, start_sequence: int | None = None) -> ConsumerConfig:
        """The consumer's configuration; `start_sequence` recreates a lost consumer where its
        predecessor had got to (a consumer that exists keeps its position regardless)."""
        one = len(self.filter_subjects) == 1
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subject if one else None,
            filter_subjects=None if one else list(self.filter_subjects),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL
            if start_sequence is None
            else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start_sequence,
            ack_wait=self.ack_wait,
            max_deliver=max_deliver,
            max_ack_pending=self.max_ack_pending,
        )


def consumers(service: str | None = None) -> list[ConsumerSpec]:
    """The service consumers from infra/, optionally of one service."""
    specs = [
        ConsumerSpec(
            name,
            c["service"],
            tuple(c["filter_subjects"]),
            float(c["ack_wait_seconds"]),
            int(c["max_ack_pending"]),
        )
        for name, c in _toml()["consumers"].items()
    ]
    return [s for s in specs if service is None or s.service == service]


def consumer(durable: str) -> ConsumerSpec:
    """One consumer spec by durable name."""
    return next(s for s in consumers() if s.durable == durable)


def agency_consumer(agency_id: str) -> ConsumerSpec:
    """The durable consumer through which one agency reads its referrals."""
    return ConsumerSpec(
        f"agency-{subjects.token(agency_id)}",
        "agency",
        (subjects.agency_referrals(agency_id),),
        float(_toml()["agency_consumer"]["ack_wait_seconds"]),
        int(_toml()["agency_consumer"]["max_ack_pending"]),
    )


def patiently() -> AsyncRetrying:
    """JetStream's API may not answer while a fresh cluster elects its leaders: keep asking."""
    return AsyncRetrying(
        retry=retry_if_exception_type(
            (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)
        ),
        wait=wait_exponential(multiplier=0.2, max=2),
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
                    current = (await js.consumer_info(subjects.STREAM, spec.durable)).config
                except NotFoundError:
                    pass
                else:
                    config.deliver_policy = current.deliver_policy
                    config.opt_start_seq = current.opt_start_seq
                await js.add_consumer(subjects.STREAM, config)


async def require(
    js: JetStreamContext, specs: list[ConsumerSpec], max_deliver: int, provision: bool
) -> None:
    """Make sure `specs` exist before reading from them: create them when this process may
    (`provision`: a broker without accounts, as in some tests), else wait until the
    administrator's provisioning has made them, saying loudly what is missing."""
    if provision:
        await ensure_consumers(js, specs, max_deliver)
        return
    for spec in specs:
        for attempt in itertools.count():
            try:
                await js.consumer_info(subjects.STREAM, spec.durable)
                break
            except (NotFoundError, ServiceUnavailableError, nats.errors.TimeoutError) as exc:
                if attempt % 10 == 0:
                    log.error(
                        "broker.consumer_missing",
                        durable=spec.durable,
                        error=repr(exc),
                        why="waiting for the provisioning to (re)create it",
                    )
                await asyncio.sleep(1.0)
