"""A partner agency's Python API over NATS JetStream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import nats.errors
import structlog
from jwcrypto import jwk
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import TypeAdapter, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay

try:  # optional for a partner: with it, each receipt is a span in the referral's trace
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, TracerProvider
except ImportError:  # pragma: no cover - Wegweiser itself has OpenTelemetry
    trace = None  # type: ignore[assignment]

from schemas import subjects, upcasting
from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.envelope import W3C, Envelope, Payload, answer_event_id, new_event
from schemas.events import (
    AgencyAnswer,
    AgencyCapacityUpdated,
    CaseDetails,
    Comment,
    ReferralOffered,
    SealedCase,
    SealedNote,
    TransitionRefused,
)
from schemas.queries import AskVerdict, Verdict
from schemas.vocabulary import AgencyAction, Outcome, ReasonCode, reason_problem
from wegweiser.platform import grants, sealing, topology
from wegweiser.platform.connect import connect
from wegweiser.platform.grants import JS_API_PREFIX
from wegweiser.platform.pull import Pull
from wegweiser.platform.sealing import SealError

log = structlog.get_logger()
T = TypeVar("T")

MODELS: dict[str, type[Payload]] = {
    subject_suffix(spec.model): spec.model
    for spec in CATALOGUE
    if spec.subject.startswith("ww.referral.")
}
MODELS["refused"] = TransitionRefused


_COMMENT = TypeAdapter(Comment)


class AnswerInvalid(ValueError):
    """An answer the referral service would refuse for its form alone: it is not sent."""


@dataclass(frozen=True)
class Answer:
    """An answer in the contract's terms, checked as the referral service will check it."""

    action: AgencyAction
    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    forward_to: str | None = None


def checked_answer(
    action: AgencyAction | str,
    reason: ReasonCode | str | None = None,
    outcome: Outcome | str | None = None,
    forward_to: str | None = None,
) -> Answer:
    """The answer, if it can be sent as it is: a known action, with a reason code where the
    referral service requires one and one that fits the action, an outcome on completion
    (the one rule: schemas.vocabulary.reason_problem), and on a forward the agency to go to
    (whether the consent covers it, only intake can tell: that refusal comes back)."""
    known = _one_of(AgencyAction, action, "action")
    code = _one_of(ReasonCode, reason, "reason") if reason and reason.strip() else None
    result = _one_of(Outcome, outcome, "outcome") if outcome and outcome.strip() else None
    problem = reason_problem(known, code, result)
    if problem is not None:
        raise AnswerInvalid(problem[1])
    target = forward_to.strip() if forward_to and forward_to.strip() else None
    if known is AgencyAction.FORWARD and target is None:
        raise AnswerInvalid("'forward' needs the agency to forward to")
    if known is not AgencyAction.FORWARD and target is not None:
        raise AnswerInvalid(f"only 'forward' names an agency, not '{known}'")
    if target is not None and not subjects.is_token(target):
        raise AnswerInvalid(f"{target!r} is no agency id")
    return Answer(known, code, result, target)


E = TypeVar("E", bound=StrEnum)


def _one_of(vocabulary: type[E], value: str, what: str) -> E:
    try:
        return vocabulary(value.strip())
    except ValueError:
        allowed = ", ".join(v.value for v in vocabulary)
        raise AnswerInvalid(f"unknown {what} {value!r}: one of {allowed}") from None


@dataclass
class AgencyDelivery:
    """One event for this agency; call `ack()` once it is handled, or it comes again.

    For an offer, `case` holds the unsealed personal data, or `error` says why the sealed
    data was refused (altered, addressed to someone else, signed by an unknown key).
    """

    event: Envelope[Any]
    kind: str
    msg: Msg
    case: CaseDetails | None = None
    error: SealError | None = None
    comment: str | None = None
    """The office's comment (on a cancellation), opened with this agency's key."""

    @property
    def redelivered(self) -> bool:
        return self.msg.metadata.num_delivered > 1

    async def ack(self) -> None:
        await self.msg.ack()

    async def retry_later(self, delay: float | None = None) -> None:
        """Hand the event back: it comes again after `delay` seconds, by default after the
        pause for this delivery (infra/jetstream.toml, `[retry.redelivery]`: 5 s, doubling),
        and nothing behind it comes meanwhile. The network stops offering an event after
        its consumer's max_deliver deliveries (5 on a county's network, where the five span
        75 s): the referral service's deadlines then remind and escalate, so a referral is
        never silently lost."""
        if delay is None:
            delay = topology.retry("redelivery").pause(self.msg.metadata.num_delivered)
        await self.msg.nak(delay=delay)


class AgencyClient:
    """Receives one agency's referral events and publishes its answers."""

    def __init__(
        self,
        nc: Client,
        agency_id: str,
        key: jwk.JWK | list[jwk.JWK] | None = None,
        signers: dict[str, jwk.JWK] | None = None,
        provision: bool = True,
        office_keys: dict[str, jwk.JWK] | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """`key`: this agency's private key (or its keys, the current first, during a
        rotation's overlap); `signers`: the offices it trusts, by key id;
        `provision`: create its durable consumer if missing, on a broker without accounts; an
        agency with credentials may not (the network creates it) and reaches JetStream through
        its account's imports, under `JS_API_PREFIX`; `office_keys`: the offices' public
        sealing keys, by office id, that its comments are sealed to; `tracer_provider`: where
        each receipt's span goes (OpenTelemetry's global provider if not given; none without
        OpenTelemetry installed)."""
        self.agency_id = subjects.token(agency_id)
        self._nc = nc
        self._prefix = "$JS.API" if provision else JS_API_PREFIX
        self._js = nc.jetstream(prefix=self._prefix)
        self._keys = key if isinstance(key, list) else [key] if key is not None else []
        self._signers = signers or {}
        self._provision = provision
        self._office_keys = office_keys or {}
        self._tracer = (
            None if trace is None else trace.get_tracer(__name__, tracer_provider=tracer_provider)
        )

    @classmethod
    async def connect(
        cls,
        url: str,
        agency_id: str,
        key: jwk.JWK | list[jwk.JWK] | None = None,
        signers: dict[str, jwk.JWK] | None = None,
        seed: Path | None = None,
        attempts: int | None = None,
        office_keys: dict[str, jwk.JWK] | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> AgencyClient:
        """Connect as the agency: with its nkey `seed` on a network that enforces permissions
        (then only its own consumer, answers and inbox are open to it), else unauthenticated.
        `attempts`: give up after so many tries (a one-off command), else wait for the broker.
        The rest as for the constructor."""
        nc = await connect(
            url,
            f"wegweiser-agency-{agency_id}",
            seed,
            grants.inbox_prefix(agency_id) if seed is not None else None,
            attempts,
        )
        return cls(nc, agency_id, key, signers, seed is None, office_keys, tracer_provider)

    def open_case(self, sealed: SealedCase) -> CaseDetails:
        """Decrypt and verify a sealed case; SealError says precisely what is wrong."""
        return CaseDetails.model_validate(
            self._with_my_keys(
                lambda key: sealing.unseal(
                    sealed.jwe, key=key, kid=self.agency_id, signers=self._signers
                )
            )
        )

    def open_comment(self, note: SealedNote, referral_id: str) -> str:
        """The office's comment on a referral: decrypted, and its signature by an office this
        agency trusts verified; SealError says what is wrong."""
        return self._with_my_keys(
            lambda key: sealing.open_comment(
                note, referral_id, key=key, kid=self.agency_id, signers=self._signers
            )
        )

    def _with_my_keys(self, open_with: Callable[[jwk.JWK], T]) -> T:
        """Open something sealed to this agency with its current key or, during a rotation's
        overlap, a key that key replaced."""
        if not self._keys:
            raise SealError("seal.no-key", f"agency {self.agency_id} has no private key loaded")
        for key in self._keys[:-1]:
            try:
                return open_with(key)
            except SealError as exc:
                if exc.code != "seal.undecryptable":
                    raise
        return open_with(self._keys[-1])

    async def verdict(self, answer_id: str, within: float = 10.0) -> Verdict:
        """What the referral service made of an answer (its event id, as `answer` returned):
        `taken` with the referral's state, or `refused` with the rule's code; `unknown` if it
        has not decided within `within` seconds (it may be down: the answer waits in the
        stream and is decided when it is back)."""
        subject = subjects.VERDICT_QUERY.of(self.agency_id)
        ask = AskVerdict(answer_id=answer_id).model_dump_json().encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pauses = topology.retry("broker")
        found, asked = Verdict(state="unknown"), 0
        while loop.time() < deadline:
            try:
                reply = await self._nc.request(subject, ask, timeout=min(2.0, within))
                found = Verdict.model_validate_json(reply.data)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ValidationError):
                found = Verdict(state="unknown")
            if found.state != "unknown":
                return found
            asked += 1
            await asyncio.sleep(min(pauses.pause(asked), max(deadline - loop.time(), 0.0)))
        return found

    def _seal(self, comment: str, referral_id: str, office: str | None) -> SealedNote:
        """A comment sealed to the office (AnswerInvalid if it cannot be)."""
        try:
            text = _COMMENT.validate_python(comment.strip())
        except ValidationError:
            raise AnswerInvalid("a comment has 1 to 2000 characters") from None
        try:
            return sealing.comment_to_office(text, referral_id, self._office_keys, office)
        except sealing.NoOfficeKey as exc:
            raise AnswerInvalid(str(exc)) from None

    async def __aenter__(self) -> AgencyClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Drain (what was published is flushed, subscriptions end), but not for ever: with
        the broker gone, a drain would wait for a reconnection that may never come."""
        try:
            await asyncio.wait_for(self._nc.drain(), 5)
        except (TimeoutError, nats.errors.Error):
            await self._nc.close()

    async def deliveries(self, max_deliver: int = 10) -> AsyncGenerator[AgencyDelivery, None]:
        """Events for this agency through its durable consumer, in order, forever.

        The consumer hands out one message at a time (max_ack_pending = 1, see infra/), so an
        offer is always seen before its cancellation, even after the adapter crashed.
        """
        spec = topology.agency_consumer(self.agency_id)
        await topology.require(self._js, [spec], max_deliver, self._provision)
        pull = Pull(self._nc, self._js, spec.durable, owned=False, prefix=self._prefix)
        async with aclosing(pull.messages()) as messages:
            async for msg in messages:
                delivery = await self._decode(msg)
                if delivery is not None:
                    yield delivery

    async def _decode(self, msg: Msg) -> AgencyDelivery | None:
        kind = subjects.referral_kind(msg.subject)
        model = MODELS.get(kind)
        try:
            if model is None:
                raise ValueError(f"unknown event kind {kind!r}")
            event = upcasting.read(msg.data, model)
        except (ValidationError, ValueError) as exc:
            log.error("agency.malformed_event_dropped", subject=msg.subject, error=str(exc)[:500])
            await msg.term()
            return None
        with self._receiving(msg, event):
            return self._open(AgencyDelivery(event, kind, msg))

    @contextmanager
    def _receiving(self, msg: Msg, event: Envelope[Any]) -> Iterator[None]:
        """The receipt of an event (its unsealing) as a span in the trace the event carries."""
        if self._tracer is None or W3C is None:
            yield
            return
        with self._tracer.start_as_current_span(
            f"receive {msg.subject}",
            context=W3C.extract(event.trace_context),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.name": "receive",
                "messaging.operation.type": "receive",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": topology.agency_consumer(self.agency_id).durable,
                "messaging.message.id": event.id,
                "cloudevents.event_id": event.id,
                "cloudevents.event_type": event.type,
            },
        ):
            yield

    def _open(self, delivery: AgencyDelivery) -> AgencyDelivery:
        """What the delivery holds sealed to this agency, opened (or why it cannot be)."""
        event = delivery.event
        note = getattr(event.data, "comment", None)
        if isinstance(note, SealedNote) and note.recipient_kid == self.agency_id and self._keys:
            try:
                delivery.comment = self.open_comment(note, getattr(event.data, "referral_id", ""))
            except SealError as exc:
                delivery.error = exc
                log.error("agency.sealed_comment_refused", code=exc.code, reason=str(exc))
        offer: object = event.data
        if isinstance(offer, ReferralOffered) and self._keys:
            try:
                delivery.case = self.open_case(offer.case)
            except SealError as exc:
                delivery.error = exc
                log.error(
                    "agency.sealed_case_refused",
                    code=exc.code,
                    reason=str(exc),
                    referral_id=offer.referral_id,
                )
        return delivery

    async def update_capacity(self, capacity: int, waiting_days: int) -> str:
        """Tell the directory how many referrals this agency can take now, and the wait."""
        data = AgencyCapacityUpdated(
            agency_id=self.agency_id,
            capacity=capacity,
            waiting_days=waiting_days,
            reported_at=datetime.now(UTC),
        )
        event = new_event(
            data, source=f"/wegweiser/agency/{self.agency_id}", subject=self.agency_id
        )
        await self._js.publish(
            subjects.agency_capacity(self.agency_id),
            event.model_dump_json().encode(),
            headers={"Nats-Msg-Id": event.id},
        )
        return event.id

    async def confirm_deletion(self, referral_id: str) -> str:
        """Tell the office this agency deleted everything it received for the referral."""
        return await self.answer(
            referral_id, AgencyAction.CONFIRM_DELETION, answer_id=f"deleted-{referral_id}"
        )

    async def forward(
        self,
        referral_id: str,
        to: str,
        reason: ReasonCode | str,
        *,
        comment: str | None = None,
        office: str | None = None,
        answer_id: str | None = None,
    ) -> str:
        """Pass the referral on to agency `to`, which can help where this one cannot (a
        reason code says why not; `comment` and `office` as in `answer`). Intake seals the
        case afresh to that agency if the consent covers it; then this referral ends as
        `forwarded`, else a refusal says why."""
        return await self.answer(
            referral_id,
            AgencyAction.FORWARD,
            reason,
            answer_id,
            comment=comment,
            office=office,
            forward_to=to,
        )

    async def answer(
        self,
        referral_id: str,
        action: AgencyAction | str,
        reason: ReasonCode | str | None = None,
        answer_id: str | None = None,
        *,
        outcome: Outcome | str | None = None,
        comment: str | None = None,
        office: str | None = None,
        forward_to: str | None = None,
    ) -> str:
        """Publish an answer; retried with the same id, so it counts once. `reason`: a code
        (schemas.vocabulary.REASONS_FOR); `outcome`: on completion; `comment`: free text for
        the office, sealed to `office` (the offer's `office_id`; needed only when this agency
        knows several offices' keys); `forward_to`: on `forward`, the agency the referral is
        to go to. `answer_id`: the caller's own key for this answer (an answer given twice
        under one key counts once). Returns the event id. `AnswerInvalid`, and nothing sent,
        for an answer the referral service would refuse for its form."""
        checked = checked_answer(action, reason, outcome, forward_to)
        data = AgencyAnswer(
            referral_id=referral_id,
            agency_id=self.agency_id,
            action=checked.action,
            reason=checked.reason,
            outcome=checked.outcome,
            comment=None if comment is None else self._seal(comment, referral_id, office),
            forward_to=checked.forward_to,
        )
        event = new_event(
            data,
            source=f"/wegweiser/agency/{self.agency_id}",
            subject=referral_id,
            correlation_id=referral_id,
        )
        if answer_id:
            event = event.model_copy(update={"id": answer_event_id(self.agency_id, answer_id)})
        body = event.model_dump_json().encode()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(
                (nats.errors.TimeoutError, nats.errors.NoRespondersError)
            ),
            wait=topology.retry("broker").wait(),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                await self._js.publish(
                    subjects.answer(self.agency_id, data.action.value),
                    body,
                    headers={"Nats-Msg-Id": event.id},
                )
        return event.id
