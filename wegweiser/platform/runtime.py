"""What every service process runs: database, NATS, outbox relay, consumer edge, queries.

Each service's bootstrap builds one ServiceRuntime, adds its consumers, the queries it answers
and its tasks, and runs. What it reads and answers is also what its AsyncAPI document says
(`wegweiser/asyncapi.py` makes it from the same catalogue, infra/ and query contracts).
"""

from __future__ import annotations

import asyncio
import json
import time
import typing
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import structlog
import uvicorn
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from schemas import subjects
from schemas.queries import QueryFailed
from wegweiser.platform import inbox, outbox, topology
from wegweiser.platform.connect import connect, jetstream_options, secret_from
from wegweiser.platform.consumer import ConsumerEdge, Route, Work, describe, raw, routed
from wegweiser.platform.db import Database, as_utc
from wegweiser.platform.lifecycle import mark_ready, reusable_socket, stop_on_signals
from wegweiser.platform.metrics import metrics
from wegweiser.platform.outbox import Relay
from wegweiser.platform.ownership import own
from wegweiser.platform.tracing import Tracing
from wegweiser.settings import Settings

log = structlog.get_logger()
Q = TypeVar("Q", bound=BaseModel)


class Service(Protocol):
    """A service as its runtime needs it: the registry's entry (wegweiser/registry.py), handed
    in by the service's bootstrap."""

    @property
    def name(self) -> str: ...

    def database(self, settings: Settings) -> Database:
        """Its database, its tables and schema revisions."""
        ...


@dataclass(frozen=True)
class Answer:
    """A query this service answers: its contract (None: its body is ignored), how, and the
    type of its answers (for the AsyncAPI document)."""

    contract: type[BaseModel] | None
    respond: Callable[[Any, str], Awaitable[Any]]
    reply: Any


class ServiceRuntime:
    """One service process's shared machinery, built in one place."""

    def __init__(self, service: Service, settings: Settings) -> None:
        """`service`: the registry's entry (wegweiser/registry.py)."""
        self.name = service.name
        self.settings = settings
        self.tracing = Tracing()
        """Off until `serve` starts it with `otlp_endpoint` (wegweiser/platform/tracing.py)."""
        self.db = service.database(settings)
        self.consumers: dict[str, list[Route] | None] = {}
        """The service consumers this service reads (by group), with their routes (None: every
        event as it is)."""
        self.queries: dict[str, Answer] = {}
        """The core queries this service answers, by subject pattern."""
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
        self.consumers[durable] = routes
        self._own(durable, lambda msg: routed(msg, routes))

    def consume_raw(
        self,
        durable: str,
        handler: Callable[[Session, Msg], None],
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        """Own a durable consumer whose one handler takes every message as it is;
        `committed` runs after each transaction that committed effects."""
        self.consumers[durable] = None
        self._own(durable, lambda msg: raw(msg, handler), committed)

    def _own(
        self,
        group: str,
        work: Callable[[Msg], Work],
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        """Run every partition of a consumer (`ownership.own`)."""
        specs = topology.partitions(group)

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

    def answer(
        self,
        subject: str,
        contract: type[Q],
        handler: Callable[[Session, Q, str], BaseModel],
    ) -> None:
        """Answer a core query (request/reply) on `subject` (a pattern: the handler gets the
        subject it came on), reading the database; a malformed query gets a QueryFailed."""

        async def respond(query: Q, asked_on: str) -> BaseModel:
            answer: BaseModel = await self.db.read(lambda s: handler(s, query, asked_on))
            return answer

        self.queries[subject] = Answer(contract, respond, _returned(handler))

    def answer_plainly(self, subject: str, respond: Callable[[], Awaitable[Any]]) -> None:
        """Answer a core query that carries nothing (its body is ignored) with what `respond`
        returns (a model, or JSON-able data)."""
        self.queries[subject] = Answer(None, lambda _query, _subject: respond(), _returned(respond))

    async def _listen(self) -> None:
        """Subscribe to the queries this service answers, in its queue group (one instance
        answers each)."""
        for subject, answer in self.queries.items():
            await self.nc.subscribe(subject, queue=self.name, cb=partial(self._reply, answer))

    async def _reply(self, answer: Answer, msg: Msg) -> None:
        if not msg.reply:
            return  # a publish, not a request: nobody to answer
        reply: Any
        if answer.contract is None:
            query = None
        else:
            try:
                query = answer.contract.model_validate_json(msg.data)
            except ValidationError as exc:
                log.warning("query.malformed", subject=msg.subject, error=describe(exc))
                name = answer.contract.__name__
                reply = QueryFailed(error=f"malformed {name}: {describe(exc)}")
                await msg.respond(reply.model_dump_json().encode())
                return
        try:
            reply = await answer.respond(query, msg.subject)
        except Exception:
            log.exception("query.failed", subject=msg.subject)
            return
        body = reply.model_dump_json() if isinstance(reply, BaseModel) else json.dumps(reply)
        await msg.respond(body.encode())

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
        """Run another long-lived task beside the consumers (e.g. an HTTP server)."""
        self._tasks.append(task)

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until SIGINT/SIGTERM (or `stop`), then shut down in order."""
        stop = stop or stop_on_signals()
        self.tracing.start(self.settings.otlp_endpoint, self.name)
        async with AsyncExitStack() as stack:
            stack.callback(self.tracing.shutdown)  # last: what the others did is exported too
            await self.open(stack)
            for step in self._before_start:
                await step()
            await self._listen()
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


def _returned(handler: Callable[..., Any]) -> Any:
    """The type `handler` is annotated to return (an awaitable's result for a coroutine)."""
    hint = typing.get_type_hints(handler).get("return")
    if typing.get_origin(hint) in (Awaitable, Coroutine):
        hint = typing.get_args(hint)[-1]
    return hint
