"""The one pull loop: every consumer's messages, in stream order, for as long as the caller reads.

Services, the gateway's feed to each partner and the agency SDK all read through `Pull`, in
one of two modes:

- **Owned** (a service's consumers, infra/jetstream.toml): batches, one owner at a time, in
  stream order across instances and crashes, by three rules:
  1. **One owner at a time.** Every pull belongs to the consumer's priority group `owner` with
     the `pinned_client` policy: the server delivers only to the instance it pinned (the
     deliveries carry the pin in `Nats-Pin-Id`, and the owner's later pulls name it). An
     owner keeps a pull open, renewed every half second; one that stops (killed, cut off)
     loses the pin after the consumer's owner timeout, and the server pins a waiting instance.
  2. **Nothing out with anyone else.** The server does not promise that an old owner has
     finished when it pins a new one (ADR-42: "there is no such guarantee"). So whenever this
     instance becomes owner, it handles nothing until the consumer's unacknowledged messages
     (`num_ack_pending`) are all in its own hands: an old owner's finish and ack them, a dead
     owner's come again after ack_wait, to the new owner, since it alone is pinned.
  3. **In stream order, whatever arrived.** Redeliveries and new messages can arrive in any
     order; the owner handles what it holds sorted by stream sequence, a batch at a time.
  Each held message is reported in progress while it waits and while it is handled, so a
  living owner keeps what it holds. See infra/CLUSTER.md, "Order and ownership".
- **Unowned** (an agency's consumer, `agency-<id>`, which partners' software of earlier
  releases reads with plain pulls, so it can have no owner group): the server hands out one
  message at a time (its max_ack_pending), which keeps the order. The loop asks only when it
  holds nothing, in the caller's own task: nothing runs behind the caller's back, so a reader
  that stops reading leaves no task behind.

In both modes an empty pull is normal, and a consumer or stream that is gone for a moment (the
network's provisioning recreates it, see `healer`), a leader being elected or a connection
that is reconnecting is waited out with the broker's growing pauses (`retry`); the consumer
then goes on from its acknowledged position, so nothing acknowledged comes again and nothing
unacknowledged is skipped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header

from schemas import subjects
from wegweiser.platform.topology import OWNER_GROUP, retry

log = structlog.get_logger()

PIN_HEADER = "Nats-Pin-Id"
PULL_EXPIRES = 0.5
"""Seconds each pull of an owner waits for messages; the owner renews its pin this often."""
BROKER = retry("broker")
"""The pauses after a refused pull."""
ASK_EXPIRES = 1.0
"""Seconds each pull of an unowned reader waits for a message."""
ENDED = ("404", "408", "423")
"""Statuses that end a pull as pulls end (no messages, expired, our pin taken): ask again at
once. Any other answer (503 no responders: the consumer is gone or a leader is being
elected; 409 the consumer deleted or a limit met; a refusal) is waited out."""


class Pull:
    """Messages of one durable consumer, in stream order. `async for batch in pull.batches()`,
    then `done(batch)` once each message of the batch is acked, nak'd or dead-lettered; or
    `async for msg in pull.messages()` for one at a time."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        durable: str,
        *,
        owned: bool = True,
        batch: int = 1,
        room: int = 1,
        heartbeat: float = 0.5,
        prefix: str = "$JS.API",
        settle: float = 0.05,
        stand_back: Callable[[], bool] | None = None,
        rest: float = 3.0,
        elsewhere: Callable[[bytes], bool] | None = None,
    ) -> None:
        """`owned`: pull as an owner (a service's consumer) or plainly (an agency's).
        `batch`: most messages in one batch. `room`: most messages to hold (the consumer's
        max_ack_pending, which bounds what the server hands out): what a pull asks for, so
        that the next batch is at hand, and what a new owner takes back of its dead
        predecessor's in one pull. `heartbeat`: how often an owner reports a held message in
        progress. `prefix`: where this principal reaches JetStream's API
        (`connect.jetstream_options`). `settle`: how long to wait before asking the server
        again whether an old owner still holds messages. `elsewhere`: for a partition, whether
        a message (its data) is another partition's to handle: such a message is acknowledged
        as it arrives and never held, so that it is neither reported in progress nor carried
        through a batch. `stand_back`: for a consumer another instance should rather own (see
        infra/CLUSTER.md): asked every `rest` seconds while we own it; when it says yes and
        another instance waits, we step aside (`_step_aside`)."""
        self._nc, self._js, self.durable = nc, js, durable
        self._owned = owned
        self._batch, self._room = batch, room
        self._heartbeat, self._settle = heartbeat, settle
        self._next = f"{prefix}.CONSUMER.MSG.NEXT.{subjects.STREAM}.{durable}"
        self._unpin = f"{prefix}.CONSUMER.UNPIN.{subjects.STREAM}.{durable}"
        self._held: dict[int, tuple[Msg, float]] = {}
        """Messages delivered and not yet done, by stream sequence, with when they came."""
        self._arrived = asyncio.Event()
        self._answered = asyncio.Event()
        self._working: set[int] = set()
        """Stream sequences of the batch being handled."""
        self._owed = 0
        """Messages the open pull may still bring."""
        self.pin: str | None = None
        self._clear = not owned
        """True once the consumer had no message out with anyone but us under `pin` (an
        unowned reader's consumer hands out nothing while it holds a message)."""
        self.takeovers = 0
        self._stand_back, self._rest = stand_back, rest
        self._elsewhere = elsewhere
        self._resting_until = 0.0
        self._abandoned: str | None = None
        """The pin we asked the server to take from us: never taken up again."""
        self._status: str | None = None
        """The status that ended the last pull."""
        self._refusals = 0
        """Pulls refused in a row (the broker's pauses, `retry`), reset by an answer."""

    async def batches(self) -> AsyncGenerator[list[Msg], None]:
        """Each batch this reader may handle now, for as long as the caller reads."""
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=self._on_message)
        tasks = []
        if self._owned:
            tasks = [asyncio.create_task(self._keep_pulling(inbox))]
            tasks.append(asyncio.create_task(self._beat()))
            if self._stand_back is not None:
                tasks.append(asyncio.create_task(self._watch()))
        try:
            while True:
                stop_if_cancelled()
                if self._owned or self._held:
                    await self._arrived.wait()
                else:
                    await self._ask(inbox, ASK_EXPIRES)
                self._arrived.clear()
                if not self._held:
                    continue
                if not self._clear and not await self._others_done():
                    await asyncio.sleep(self._settle)
                    self._arrived.set()
                    continue
                seqs = sorted(self._held)[: self._batch]
                self._working = set(seqs)
                yield [self._held[s][0] for s in seqs]
                self._working = set()
                if self._held:
                    self._arrived.set()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with suppress(Exception):
                await sub.unsubscribe()

    async def messages(self) -> AsyncGenerator[Msg, None]:
        """Each message, one at a time; one is done when the caller asks for the next."""
        async with aclosing(self.batches()) as batches:
            async for batch in batches:
                for msg in batch:
                    yield msg
                self.done(batch)

    @property
    def owning(self) -> bool:
        """Whether the server pinned us (as far as we know)."""
        return self.pin is not None

    def done(self, msgs: list[Msg]) -> None:
        """The messages are acked, nak'd or dead-lettered: no longer held."""
        for msg in msgs:
            self._held.pop(msg.metadata.sequence.stream, None)

    async def _ask(self, inbox: str, expires: float) -> None:
        """One pull: ask for what we have room for (as an owner, in the owner group and under
        our pin once we have one) and wait until it has ended. A refused pull is waited out
        with a growing pause."""
        request: dict[str, object] = {"batch": self._room, "expires": int(expires * 1e9)}
        if self._owned:
            request["group"] = OWNER_GROUP
            if self.pin:
                request["id"] = self.pin
        self._answered.clear()
        self._owed, self._status = self._room, None
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=inbox)
            await asyncio.wait_for(self._answered.wait(), expires + 1.0)
        except TimeoutError:
            return  # an answer lost in a reconnect: ask again
        except nats.errors.Error as exc:
            self._status = repr(exc)
        if self._status is None or self._status.split()[0] in ENDED:
            self._refusals = 0  # the pull ended as pulls do
            return
        self._refusals += 1
        log.warning("consumer.pull_refused", durable=self.durable, answer=self._status)
        await asyncio.sleep(BROKER.pause(self._refusals))

    async def _keep_pulling(self, inbox: str) -> None:
        """An owner keeps one pull open for as long as we read."""
        if self._stand_back is not None:  # let the instance that prefers it be pinned first
            self._resting_until = time.monotonic() + self._rest / 2
        while True:
            stop_if_cancelled()
            if (resting := self._resting_until - time.monotonic()) > 0:
                await asyncio.sleep(resting)
                continue
            await self._ask(inbox, PULL_EXPIRES)

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(Header.STATUS)
        if status is not None:
            if status == "423":  # our pin is gone: another instance owns the consumer now
                await self._give_up()
            if status != "100":  # 404/408/409/503 end a pull; 100 is an idle heartbeat
                self._status = f"{status} {headers.get(Header.DESCRIPTION, '')}".strip()
                self._answered.set()
            return
        pin = headers.get(PIN_HEADER)
        if pin is not None and pin == self._abandoned:  # sent before our unpin took effect
            with suppress(Exception):
                await msg.nak()
            return
        if pin != self.pin:
            self.pin, self._clear = pin, False
            self.takeovers += 1
            log.info("consumer.pinned", durable=self.durable)
        if self._elsewhere is not None and self._elsewhere(msg.data):
            with suppress(Exception):  # unacknowledged, it comes again and is acked then
                await msg.ack()
        else:
            self._held[msg.metadata.sequence.stream] = (msg, time.monotonic())
            self._arrived.set()
        self._owed -= 1
        if self._owed <= 0:  # a pull that got all it asked for ends without a status
            self._answered.set()

    async def _watch(self) -> None:
        """Stand back from a consumer another instance should rather own, once one waits."""
        while True:
            stop_if_cancelled()
            await asyncio.sleep(self._rest)
            if not self.owning or self._stand_back is None or not self._stand_back():
                continue
            try:
                info = await self._js.consumer_info(subjects.STREAM, self.durable)
            except (nats.errors.Error, TimeoutError):
                continue
            if (info.num_waiting or 0) >= 2:  # our own pull and another instance's
                await self._step_aside()

    async def _step_aside(self) -> None:
        """Hand the consumer to the instance that waits: what we hold and have not begun
        goes back, and the server unpins us, so that it pins a waiting pull (ours, still
        naming the old pin, gets a 423). We pause our own pulls for two of them, then wait
        as a standby again. Should the unpin be refused, the pin passes after the owner
        timeout, for which we rest."""
        log.info("consumer.standing_back", durable=self.durable)
        self._resting_until = time.monotonic() + 2 * PULL_EXPIRES
        self._abandoned = self.pin
        body = json.dumps({"group": OWNER_GROUP}).encode()
        try:
            answer = json.loads((await self._nc.request(self._unpin, body, timeout=2.0)).data)
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            answer = {"error": repr(exc)}
        if "error" in answer:
            log.warning("consumer.unpin_failed", durable=self.durable, error=answer["error"])
            self._resting_until = time.monotonic() + self._rest
        await self._give_up()  # after the unpin: what we hand back must not come back to us

    async def _give_up(self) -> None:
        """Another instance owns (or is to own) the consumer now: hand back (nak) what we
        hold and have not begun, so that it comes to the new owner, which handles it in stream
        order; what we are handling we finish and ack (the new owner waits for that)."""
        log.info("consumer.pin_lost", durable=self.durable)
        self.pin, self._clear = None, False
        for seq in [s for s in self._held if s not in self._working]:
            msg, _ = self._held.pop(seq)
            with suppress(Exception):  # unanswered, it comes again after ack_wait anyway
                await msg.nak()

    async def _others_done(self) -> bool:
        """True when every message the consumer has out is one we hold. Counted before the
        question: what the server has out then is what others hold plus at least what we
        held, so equality means others hold nothing."""
        ours = len(self._held)
        try:
            info = await self._js.consumer_info(subjects.STREAM, self.durable)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("consumer.info_failed", durable=self.durable, error=repr(exc))
            return False
        if info.num_ack_pending <= ours:
            self._clear = True
            return True
        log.info(
            "consumer.waiting_for_previous_owner",
            durable=self.durable,
            theirs=info.num_ack_pending - ours,
        )
        return False

    async def _beat(self) -> None:
        """Report every message held longer than a beat as in progress, so that its ack_wait
        starts again and it is not redelivered while it waits or is handled."""
        while True:
            stop_if_cancelled()
            await asyncio.sleep(self._heartbeat)
            due = time.monotonic() - self._heartbeat
            for msg, came in list(self._held.values()):
                if came <= due:
                    with suppress(Exception):  # a lost beat risks a redelivery the inbox absorbs
                        await msg.in_progress()


def stop_if_cancelled() -> None:
    """End the loop if its task was cancelled: on Python 3.11 a cancellation that meets a
    pull's timeout can be swallowed (asyncio.wait_for, fixed in 3.12), and this loop would
    then hold its service's shutdown forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
