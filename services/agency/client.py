"""A partner agency's Python API over NATS JetStream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import nats.errors
import structlog
from jwcrypto import jwk
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import TypeAdapter, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from schemas import subjects
from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.envelope import Envelope, Payload, answer_event_id, new_event
from schemas.events import (
    AgencyAnswer,
    AgencyCapacityUpdated,
    CaseDetails,
    Reason,
    ReferralOffered,
    SealedCase,
    TransitionRefused,
)
from schemas.vocabulary import REASONED_ANSWERS, AgencyAction
from wegweiser.platform import grants, sealing, topology
from wegweiser.platform.connect import connect
from wegweiser.platform.grants import JS_API_PREFIX
from wegweiser.platform.pull import one_at_a_time
from wegweiser.platform.sealing import SealError

log = structlog.get_logger()

MODELS: dict[str, type[Payload]] = {
    subject_suffix(spec.model): spec.model
    for spec in CATALOGUE
    if spec.subject.startswith("ww.referral.")
}
MODELS["refused"] = TransitionRefused


_REASON = TypeAdapter(Reason)
"""What the referral service accepts as a reason (schemas.events.Reason)."""


class AnswerInvalid(ValueError):
    """An answer the referral service would refuse for its form alone: it is not sent."""


def checked_answer(action: AgencyAction | str, reason: str | None) -> AgencyAction:
    """The answer's action, if the answer can be sent as it is: a known action, with a reason
    where the referral service requires one (schemas.vocabulary.REASONED_ANSWERS)."""
    try:
        known = AgencyAction(action)
    except ValueError:
        allowed = ", ".join(a.value for a in AgencyAction)
        raise AnswerInvalid(f"unknown action {action!r}: one of {allowed}") from None
    if known in REASONED_ANSWERS and not (reason and reason.strip()):
        raise AnswerInvalid(f"'{known.value}' needs a reason: say why (--reason TEXT)")
    if reason is not None:
        try:
            _REASON.validate_python(reason.strip())
        except ValidationError:
            raise AnswerInvalid("a reason has 3 to 500 characters") from None
    return known


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

    @property
    def redelivered(self) -> bool:
        return self.msg.metadata.num_delivered > 1

    async def ack(self) -> None:
        await self.msg.ack()

    async def retry_later(self, delay: float = 5.0) -> None:
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
    ) -> None:
        """`key`: this agency's private key (or its keys, the current first, during a
        rotation's overlap); `signers`: the offices it trusts, by key id;
        `provision`: create its durable consumer if missing, on a broker without accounts; an
        agency with credentials may not (the network creates it) and reaches JetStream through
        its account's imports, under `JS_API_PREFIX`."""
        self.agency_id = subjects.token(agency_id)
        self._nc = nc
        self._js = nc.jetstream(**({} if provision else {"prefix": JS_API_PREFIX}))
        self._keys = key if isinstance(key, list) else [key] if key is not None else []
        self._signers = signers or {}
        self._provision = provision

    @classmethod
    async def connect(
        cls,
        url: str,
        agency_id: str,
        key: jwk.JWK | list[jwk.JWK] | None = None,
        signers: dict[str, jwk.JWK] | None = None,
        seed: Path | None = None,
        attempts: int | None = None,
    ) -> AgencyClient:
        """Connect as the agency: with its nkey `seed` on a network that enforces permissions
        (then only its own consumer, answers and inbox are open to it), else unauthenticated.
        `attempts`: give up after so many tries (a one-off command), else wait for the broker."""
        nc = await connect(
            url,
            f"wegweiser-agency-{agency_id}",
            seed,
            grants.inbox_prefix(agency_id) if seed is not None else None,
            attempts,
        )
        return cls(nc, agency_id, key, signers, provision=seed is None)

    def open_case(self, sealed: SealedCase) -> CaseDetails:
        """Decrypt and verify a sealed case; SealError says precisely what is wrong."""
        if not self._keys:
            raise SealError("seal.no-key", f"agency {self.agency_id} has no private key loaded")
        for key in self._keys[:-1]:  # during a rotation's overlap: the keys it replaced too
            try:
                payload = sealing.unseal(
                    sealed.jwe, key=key, kid=self.agency_id, signers=self._signers
                )
            except SealError as exc:
                if exc.code != "seal.undecryptable":
                    raise
            else:
                return CaseDetails.model_validate(payload)
        payload = sealing.unseal(
            sealed.jwe, key=self._keys[-1], kid=self.agency_id, signers=self._signers
        )
        return CaseDetails.model_validate(payload)

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

    async def deliveries(self, max_deliver: int = 10) -> AsyncIterator[AgencyDelivery]:
        """Events for this agency through its durable consumer, in order, forever.

        The consumer hands out one message at a time (max_ack_pending = 1, see infra/), so an
        offer is always seen before its cancellation, even after the adapter crashed.
        """
        spec = topology.agency_consumer(self.agency_id)
        await topology.require(self._js, [spec], max_deliver, self._provision)
        sub = await self._js.pull_subscribe_bind(spec.durable, subjects.STREAM)
        async for msg in one_at_a_time(sub, spec.durable):
            delivery = await self._decode(msg)
            if delivery is not None:
                yield delivery

    async def _decode(self, msg: Msg) -> AgencyDelivery | None:
        kind = subjects.referral_kind(msg.subject)
        model = MODELS.get(kind)
        try:
            if model is None:
                raise ValueError(f"unknown event kind {kind!r}")
            event = Envelope[model].model_validate_json(msg.data)  # type: ignore[valid-type]
        except (ValidationError, ValueError) as exc:
            log.error("agency.malformed_event_dropped", subject=msg.subject, error=str(exc)[:500])
            await msg.term()
            return None
        delivery = AgencyDelivery(event, kind, msg)
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

    async def answer(
        self,
        referral_id: str,
        action: AgencyAction | str,
        reason: str | None = None,
        answer_id: str | None = None,
    ) -> str:
        """Publish an answer; retried with the same id, so it counts once. `answer_id`: the
        caller's own key for this answer (an answer given twice under one key counts once).
        Returns the event id. `AnswerInvalid`, and nothing sent, for an unknown action or a
        missing reason."""
        data = AgencyAnswer(
            referral_id=referral_id,
            agency_id=self.agency_id,
            action=checked_answer(action, reason),
            reason=reason.strip() if reason else None,
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
            wait=wait_exponential(multiplier=0.2, max=5),
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
