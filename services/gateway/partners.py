"""Which partner agencies the gateway serves, and how: the gateway's own state and policy.

The directory is the truth about agencies; the gateway asks it periodically and `learn`s the
answer. A webhook agency is served when it has an address and a webhook secret; an e-mail
agency when it has a referral address; a FHIR agency when it has an access token. Each
served agency gets one feed (its own durable consumer, read in order); an agency the directory
no longer lists (revoked, or removed) loses its feed and, from that moment, its callbacks,
portal links, FHIR token and key are refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from jwcrypto import jwk
from nats.aio.client import Client

from schemas import subjects
from schemas.queries import AgencyCard, AgencyList, ListAgencies
from services.gateway.feed import Handle
from services.gateway.fhir.access import TokenFolder
from services.gateway.handlers import MailAgency
from services.gateway.webhook import SecretFolder
from wegweiser.platform import topology
from wegweiser.platform.grants import GATEWAY_CHANNELS
from wegweiser.platform.keys import KeyRing

log = structlog.get_logger()


def _ended(agency_id: str, task: asyncio.Task[None]) -> None:
    """Say why a feed ended on its own (it is started again when the directory is next
    asked); a feed cancelled (agency withdrawn, gateway stopping) ends in silence."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("gateway.feed_failed", agency=agency_id, error=repr(error))


CHANNELS = GATEWAY_CHANNELS
"""The channels the gateway serves; agencies on NATS take part themselves."""


async def listed(nc: Client) -> tuple[AgencyCard, ...]:
    """Ask the directory for the agencies on the gateway's channels."""
    query = ListAgencies(channels=CHANNELS).model_dump_json().encode()
    reply = await nc.request(subjects.DIRECTORY_AGENCIES, query, timeout=5)
    return AgencyList.model_validate_json(reply.data).agencies


Serve = Callable[[str, Handle], Coroutine[Any, Any, None]]
"""Feed one agency's events to `handle` until cancelled (in the service: `Feed(...).run()`)."""


@dataclass
class Partners:
    """The webhook, e-mail and FHIR agencies as last learnt from the directory, and their
    feeds."""

    secrets: SecretFolder
    ring: KeyRing
    serve: Serve
    by_mail: Callable[[MailAgency], Handle]
    """The handler that tells an e-mail agency of its events."""
    by_webhook: Callable[[str, str], Handle]
    """The handler that posts events to a webhook (its URL, its secret)."""
    cards: dict[str, AgencyCard] = field(default_factory=dict)
    feeds: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    tokens: TokenFolder | None = None
    """The FHIR agencies' access tokens (their digests)."""
    by_fhir: Callable[[str], Handle] | None = None
    """The handler that keeps a FHIR agency's view and notifies its Subscriptions."""

    def secret(self, agency_id: str) -> str | None:
        """A listed webhook agency's secret, for checking its signed callbacks."""
        card = self.cards.get(agency_id)
        if card is None or card.channel != "webhook":
            return None
        return self.secrets.get(agency_id)

    def fhir_admits(self, agency_id: str, token: str) -> bool:
        """Whether `token` is the access token of a listed FHIR agency."""
        card = self.cards.get(agency_id)
        if card is None or card.channel != "fhir" or self.tokens is None:
            return False
        return self.tokens.admits(agency_id, token)

    def fhir_address(self, agency_id: str) -> str | None:
        """Where a listed FHIR agency's Subscriptions may send notifications: its directory
        address (the county's word, as a webhook agency's address is)."""
        card = self.cards.get(agency_id)
        return card.referral_address if card is not None and card.channel == "fhir" else None

    def signing_secret(self, agency_id: str) -> str | None:
        """A listed webhook or FHIR agency's secret: it signs what the gateway sends it."""
        card = self.cards.get(agency_id)
        if card is None or card.channel not in ("webhook", "fhir"):
            return None
        return self.secrets.get(agency_id)

    def mail_agency(self, agency_id: str) -> MailAgency | None:
        """A listed e-mail agency with an address to write to."""
        card = self.cards.get(agency_id)
        if card is None or card.channel != "email" or not card.referral_address:
            return None
        return MailAgency(card.agency_id, card.name, card.referral_address)

    def agency_key(self, agency_id: str) -> jwk.JWK | None:
        """The key the gateway holds for an e-mail agency (custody `gateway`), to open its
        cases on the portal; none for any other agency."""
        if self.mail_agency(agency_id) is None or not self.ring.agency_path(agency_id).exists():
            return None
        return self.ring.agency_private(agency_id)

    def handler(self, card: AgencyCard) -> Handle | None:
        """How the gateway hands on this agency's events, or None if it cannot serve it."""
        if card.channel == "email" and (agency := self.mail_agency(card.agency_id)) is not None:
            return self.by_mail(agency)
        if card.channel == "fhir" and self.by_fhir is not None and self.tokens is not None:
            return self.by_fhir(card.agency_id) if self.tokens.has(card.agency_id) else None
        hook = self.secret(card.agency_id)
        if card.channel == "webhook" and hook and card.referral_address:
            return self.by_webhook(card.referral_address, hook)
        return None

    async def learn(self, found: Sequence[AgencyCard]) -> None:
        """Take the directory's current list: stop serving whoever is gone, start a feed for
        each agency that has none running (new, or its feed ended)."""
        listed = {card.agency_id for card in found}
        for gone in set(self.cards) - listed:
            del self.cards[gone]
            if (task := self.feeds.pop(gone, None)) is not None:
                task.cancel()
            log.warning("gateway.agency_withdrawn", agency=gone)
        self.cards.update({card.agency_id: card for card in found})
        for card in found:
            running = self.feeds.get(card.agency_id)
            if running is not None and not running.done():
                continue
            handle = self.handler(card)
            if handle is None:
                log.warning(
                    "gateway.agency_not_served",
                    agency=card.agency_id,
                    channel=card.channel,
                    why="no address, webhook secret or FHIR token: `wegweiser agency credentials`",
                )
                continue
            task = asyncio.create_task(self.serve(card.agency_id, handle))
            task.add_done_callback(partial(_ended, card.agency_id))
            self.feeds[card.agency_id] = task
            log.info("gateway.serving", agency=card.agency_id, channel=card.channel)

    async def keep_learning(
        self, ask: Callable[[], Awaitable[Sequence[AgencyCard]]], every: float
    ) -> None:
        """`learn` what the directory answers `ask`, every `every` seconds, for as long as
        the caller waits; a directory that does not answer (not started yet, restarting) is
        asked again after the broker's growing pauses (`retry`). A feed that ended is started
        again at the next answer. The feeds end with this."""
        pauses, failures = topology.retry("broker"), 0
        try:
            while True:
                try:
                    await self.learn(await ask())
                    failures, delay = 0, every
                except Exception as exc:  # noqa: BLE001 - the directory may not answer yet
                    failures += 1
                    delay = pauses.pause(failures)
                    log.warning("gateway.directory_unavailable", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """End every feed (left running, their fetches would hold the connection's drain)."""
        for task in self.feeds.values():
            task.cancel()
        await asyncio.gather(*self.feeds.values(), return_exceptions=True)
        self.feeds.clear()
