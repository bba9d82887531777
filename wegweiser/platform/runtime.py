"""What every service process runs: database, NATS, outbox relay, consumer edge, broker.

Each service's bootstrap builds one ServiceRuntime, adds its subscribers and tasks, and runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import uvicorn
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from schemas import subjects
from schemas.catalogue import CATALOGUE
from schemas.envelope import Envelope
from schemas.queries import QueryFailed
from wegweiser.platform import inbox, outbox, topology
from wegweiser.platform.connect import connect, credentials, jetstream_options, secret_from
from wegweiser.platform.consumer import ConsumerEdge, Route, Work, describe, raw, routed
from wegweiser.platform.db import as_utc
from wegweiser.platform.lifecycle import mark_ready, reusable_socket, stop_on_signals
from wegweiser.platform.metrics import metrics
from wegweiser.platform.nats_server import servers
from wegweiser.platform.outbox import Relay
from wegweiser.platform.ownership import own
from wegweiser.platform.tracing import Tracing
from wegweiser.settings import Settings

if TYPE_CHECKING:
    from wegweiser.registry import Service

log = structlog.get_logger()
Q = TypeVar("Q", bound=BaseModel)


class ServiceRuntime:
    """One service process's shared machinery, built in one place."""

    def __init__(self, service: Service, settings: Settings) -> None:
        """`service`: the registry's entry (wegweiser/registry.py): its name, tables and
        schema revisions."""
        self.name = service.name
        self.settings = settings
        self.tracing = Tracing()
        """Off until `serve` starts it with `otlp_endpoint` (wegweiser/platform/tracing.py)."""
        self.db = service.database(settings)
        self.broker = NatsBroker(
            servers(settings.nats_url or ""),  # checked when connecting: wiring needs none
            logger=structlog.get_logger("faststream"),
            log_level=logging.DEBUG,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            js_options=jetstream_options(settings.service_seed_path(self.name)),
            **credentials(settings.service_seed_path(self.name)),
        )
        self.stream = JStream(subjects.STREAM, declare=False)
        self.specification = NatsBroker(servers(settings.nats_url or ""))
        """The service's JetStream consumers as documents (AsyncAPI); never connected."""
        self._document_outputs()
        self._tasks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._before_start: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.every(3600.0, self.forget_old_events)
        self.every(settings.metrics_every, self.measure)
        self.nc: Client
        self.js: JetStreamContext
        self.relay: Relay
        self.edge: ConsumerEdge
        self.provisions: bool

    async def measure(self) -> None:
        """Set the gauges that are read, not counted: the outbox's backlog, this service's
        consumers, the stream's use of its limit (wegweiser/platform/metrics.py)."""
        if not hasattr(self, "js"):
            return  # not connected yet
        found = metrics()
        count, oldest = await self.db.read(outbox.backlog)
        found.outbox_backlog.labels(self.name).set(count)
        age = (datetime.now(UTC) - as_utc(oldest)).total_seconds() if oldest else 0.0
        found.outbox_oldest_seconds.labels(self.name).set(age)
        for spec in topology.consumers(self.name):
            info = await self.js.consumer_info(subjects.STREAM, spec.durable)
            found.consumer_pending.labels(self.name, spec.durable).set(info.num_pending or 0)
            redelivered = info.num_redelivered or 0
            found.consumer_redelivered.labels(self.name, spec.durable).set(redelivered)
        stream = await self.js.stream_info(subjects.STREAM)
        found.stream_bytes.set(stream.state.bytes)
        found.stream_max_bytes.set(stream.config.max_bytes or 0)

    async def forget_old_events(self) -> None:
        """Keep the inbox from growing for ever: ids older than `inbox_keep` go."""
        cutoff = datetime.now(UTC) - self.settings.inbox_keep
        forgotten = await self.db.run(lambda s: inbox.forget_before(s, cutoff))
        if forgotten:
            log.info("inbox.forgotten", events=forgotten, before=cutoff.isoformat())

    def _document_outputs(self) -> None:
        """Declare what this service publishes (through its outbox) for the AsyncAPI document."""
        for spec in CATALOGUE:
            if spec.producer in (self.name, "every service"):
                subject = spec.subject.replace("<", "{").replace(">", "}")
                self.broker.publisher(
                    subject,
                    schema=Envelope[spec.model],  # type: ignore[name-defined]
                    title=spec.event_type,
                    description=spec.model.__doc__,
                )

    async def open(self, stack: AsyncExitStack) -> None:
        """Connect and provision; resources are released by `stack`."""
        if self.settings.nats_url is None:
            raise ValueError(
                "no NATS URL: set WEGWEISER_NATS_URL or NATS_URL, or use `wegweiser up`"
            )
        await asyncio.to_thread(self.db.migrate)
        stack.callback(self.db.dispose)
        seed = self.settings.service_seed_path(self.name)
        self.nc = await connect(self.settings.nats_url or "", f"wegweiser-{self.name}", seed)
        stack.push_async_callback(self.nc.drain)
        self.js = self.nc.jetstream(**jetstream_options(seed))
        self.provisions = seed is None
        """No credentials: a broker without accounts (some tests), where the service makes the
        stream and its consumers itself; with them, the administrator has made them."""
        if self.provisions:
            await topology.ensure_stream(self.js, self.settings.stream_replicas)
        await topology.require(
            self.js, topology.consumers(self.name), self.settings.max_deliver, self.provisions
        )
        self.relay = Relay(self.db.run, self.js, service=self.name, tracing=self.tracing)
        self.db.after_staging(self.relay.wake)
        self.edge = ConsumerEdge(
            self.name,
            self.db.run,
            self.js,
            self.settings.max_deliver,
            letter_key=None if seed is None else secret_from(seed, "dead-letter ids"),
            heartbeat=min(c.ack_wait for c in topology.consumers()) / 4,
            tracing=self.tracing,
        )

    def consume(self, durable: str, routes: list[Route]) -> None:
        """Own a durable consumer from infra/: its messages go to handlers by subject, in
        stream order, in batches (see wegweiser/platform/pull.py, ownership.py and consumer.py)."""
        description = ", ".join(f"{r.pattern}: {r.contract.event_type}" for r in routes)
        self._own(durable, lambda msg: routed(msg, routes), description)

    def consume_raw(
        self,
        durable: str,
        handler: Callable[[Session, Msg], None],
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        """Own a durable consumer whose one handler takes every message as it is;
        `committed` runs after each transaction that committed effects."""
        self._own(
            durable, lambda msg: raw(msg, handler), "every event, recorded as it is", committed
        )

    def _own(
        self,
        group: str,
        work: Callable[[Msg], Work],
        description: str,
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        """Run every partition of a consumer (`ownership.own`)."""
        specs = topology.partitions(group)
        self._document(specs[0], description)

        async def run() -> None:
            await own(
                self.nc,
                self.js,
                self.edge,
                specs,
                work,
                committed,
                (self.settings.instance, self.settings.instances),
                **jetstream_options(self.settings.service_seed_path(self.name)),
            )

        self.also(run)

    def _document(self, spec: topology.ConsumerSpec, description: str) -> None:
        """Describe the consumer for the AsyncAPI document (`specification`); FastStream never
        runs it: its pull subscriber cannot keep order within a batch or pull as an owner."""

        async def on_message(msg: NatsMessage) -> None:  # pragma: no cover - never started
            raise NotImplementedError

        on_message.__name__ = f"on_{spec.durable.replace('-', '_')}"
        self.specification.subscriber(
            spec.filter_subject,
            stream=self.stream,
            durable=spec.durable,
            config=spec.config(self.settings.max_deliver),
            pull_sub=PullSub(batch_size=spec.max_ack_pending),
            ack_policy=AckPolicy.MANUAL,
            title=spec.durable,
            description=description,
        )(on_message)

    def answer(
        self,
        subject: str,
        contract: type[Q],
        handler: Callable[[Session, Q, str], BaseModel],
    ) -> None:
        """Answer a core query (request/reply) on `subject` (a pattern: the handler gets the
        subject it came on), reading the database; a malformed query gets a QueryFailed."""

        async def on_query(msg: NatsMessage) -> Any:
            try:
                query = contract.model_validate_json(msg.body)
            except ValidationError as exc:
                log.warning("query.malformed", subject=msg.raw_message.subject, error=describe(exc))
                return QueryFailed(error=f"malformed {contract.__name__}: {describe(exc)}")
            asked_on = msg.raw_message.subject
            return await self.db.read(lambda s: handler(s, query, asked_on))

        on_query.__name__ = f"on_{contract.__name__}"
        self.broker.subscriber(subject, queue=self.name)(on_query)

    def serve_http(self, app: Any, host: str, port: int) -> None:
        """Serve an ASGI app beside the broker for as long as the service runs, each
        request's latency counted by its route (the route's template: no ids in labels)."""
        timed = metrics().http_seconds

        async def latency(request: Any, call_next: Any) -> Any:
            began = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            timed.labels(self.name, request.method, template, str(response.status_code)).observe(
                time.perf_counter() - began
            )
            return response

        app.middleware("http")(latency)

        async def serve() -> None:
            config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
            sock = reusable_socket(host, port)
            try:
                await uvicorn.Server(config).serve(sockets=[sock])
            finally:
                sock.close()

        self.also(serve)

    def every(self, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        """Run `job` periodically for as long as the service runs; a failure is logged."""

        async def loop() -> None:
            while True:
                try:
                    await job()
                except Exception as exc:
                    log.exception(
                        "job.failed", job=getattr(job, "__name__", "job"), error=repr(exc)
                    )
                await asyncio.sleep(seconds)

        self._tasks.append(loop)

    def before_start(self, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `step` once, after connecting and before serving."""
        self._before_start.append(step)

    def also(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run another long-lived task beside the broker (e.g. an HTTP server)."""
        self._tasks.append(task)

    async def _start_broker(self) -> None:
        """Start the subscribers; while a fresh cluster still elects a consumer's leader,
        binding to it times out: stop what did start and try again, patiently."""
        async for attempt in topology.patiently():
            with attempt:
                try:
                    await self.broker.start()
                except Exception:
                    with suppress(Exception):
                        await self.broker.stop()
                    raise

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until SIGINT/SIGTERM (or `stop`), then shut down in order."""
        stop = stop or stop_on_signals()
        self.tracing.start(self.settings.otlp_endpoint, self.name)
        async with AsyncExitStack() as stack:
            stack.callback(self.tracing.shutdown)  # last: what the others did is exported too
            await self.open(stack)
            for step in self._before_start:
                await step()
            await self._start_broker()
            stack.push_async_callback(self.broker.stop)
            tasks = [asyncio.create_task(self.relay.run_forever())]
            tasks += [asyncio.create_task(t()) for t in self._tasks]
            log.info("service.started", service=self.name)
            stack.callback(mark_ready(self.settings.data_dir, self.name, self.settings.instance))
            waiter: asyncio.Task[Any] = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if task is not waiter and task.exception():
                    raise task.exception()  # type: ignore[misc]
            log.info("service.stopping", service=self.name)
