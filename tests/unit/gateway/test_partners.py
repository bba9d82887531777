"""The gateway's partners without a broker: which agencies it serves and how, a feed for each
agency the directory lists, and an agency that is no longer listed (revoked) losing its feed,
its webhook secret and its key at once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from schemas.queries import AgencyCard
from services.gateway.feed import Handle
from services.gateway.handlers import MailAgency
from services.gateway.partners import Partners
from services.gateway.webhook import SecretFolder
from wegweiser.platform.keys import KeyRing


def card(agency_id: str, channel: str, address: str | None) -> AgencyCard:
    return AgencyCard(
        agency_id=agency_id,
        name=agency_id.title(),
        kind="legal-aid",
        channel=channel,
        referral_address=address,
        capacity=5,
        waiting_days=3,
        active=True,
    )


HOOK = card("hook-agency", "webhook", "https://hook.example/referrals")
MAIL = card("mail-agency", "email", "referrals@mail.example")
NO_ADDRESS = card("silent-agency", "email", None)


class Running:
    """Feeds as the test sees them: which agency runs with which handler, until cancelled."""

    def __init__(self) -> None:
        self.handles: dict[str, Handle] = {}
        self.ended: list[str] = []

    async def serve(self, agency_id: str, handle: Handle) -> None:
        self.handles[agency_id] = handle
        try:
            await asyncio.Event().wait()
        finally:
            self.ended.append(agency_id)


def by_mail(agency: MailAgency) -> Handle:
    async def tell(_msg: Msg) -> str:
        return f"mail to {agency.address}"

    return tell


def by_webhook(url: str, secret: str) -> Handle:
    async def post(_msg: Msg) -> str:
        return f"post to {url} signed with {secret[:6]}"

    return post


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Partners, Running, SecretFolder, KeyRing]:
    secrets, ring, running = SecretFolder(tmp_path / "webhooks"), KeyRing(tmp_path), Running()
    return Partners(secrets, ring, running.serve, by_mail, by_webhook), running, secrets, ring


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_each_listed_agency_gets_one_feed_with_its_own_channel(setup) -> None:
    partners, running, secrets, _ = setup
    secrets.issue(HOOK.agency_id)
    await partners.learn([HOOK, MAIL, NO_ADDRESS])
    await settle()
    assert set(running.handles) == {HOOK.agency_id, MAIL.agency_id}  # no address, no feed
    assert await running.handles[MAIL.agency_id](None) == "mail to referrals@mail.example"
    said = await running.handles[HOOK.agency_id](None)
    assert said == "post to https://hook.example/referrals signed with whsec_"
    await partners.learn([HOOK, MAIL, NO_ADDRESS])  # learning again starts nothing twice
    await settle()
    assert running.ended == [] and len(partners.feeds) == 2
    await partners.stop()
    assert sorted(running.ended) == sorted([HOOK.agency_id, MAIL.agency_id])


async def test_a_webhook_agency_without_a_secret_is_not_served_until_it_has_one(setup) -> None:
    partners, running, secrets, _ = setup
    await partners.learn([HOOK])
    await settle()
    assert running.handles == {} and partners.secret(HOOK.agency_id) is None
    secrets.issue(HOOK.agency_id)
    await partners.learn([HOOK])
    await settle()
    assert set(running.handles) == {HOOK.agency_id}
    await partners.stop()


async def test_an_agency_no_longer_listed_loses_its_feed_secret_and_key_at_once(setup) -> None:
    partners, running, secrets, ring = setup
    issued = secrets.issue(HOOK.agency_id)
    ring.ensure_agency(MAIL.agency_id)
    await partners.learn([HOOK, MAIL])
    await settle()
    assert partners.secret(HOOK.agency_id) == issued
    assert partners.agency_key(MAIL.agency_id) is not None
    assert partners.mail_agency(MAIL.agency_id) == MailAgency(
        MAIL.agency_id, MAIL.name, "referrals@mail.example"
    )
    await partners.learn([])  # both revoked
    await settle()
    assert sorted(running.ended) == sorted([HOOK.agency_id, MAIL.agency_id])
    assert partners.feeds == {}
    assert partners.secret(HOOK.agency_id) is None  # its callbacks are refused from now on
    assert partners.mail_agency(MAIL.agency_id) is None  # and its portal links
    assert partners.agency_key(MAIL.agency_id) is None


async def test_the_gateway_holds_keys_only_for_its_e_mail_agencies(setup) -> None:
    partners, _, secrets, ring = setup
    secrets.issue(HOOK.agency_id)
    ring.ensure_agency(HOOK.agency_id)  # a key on file for a webhook agency is not the gateway's
    await partners.learn([HOOK, MAIL])
    assert partners.agency_key(HOOK.agency_id) is None
    assert partners.agency_key(MAIL.agency_id) is None  # an e-mail agency with no key on file
    assert partners.secret(MAIL.agency_id) is None  # and no webhook secret for e-mail
    await partners.stop()


async def test_a_feed_that_ended_is_started_again_at_the_next_look(setup) -> None:
    partners, running, _, _ = setup
    await partners.learn([MAIL])
    await settle()
    partners.feeds[MAIL.agency_id].cancel()  # as if the feed died (its consumer was deleted)
    await settle()
    assert running.ended == [MAIL.agency_id]
    await partners.learn([MAIL])
    await settle()
    assert not partners.feeds[MAIL.agency_id].done()
    await partners.stop()


async def test_the_directory_is_asked_again_and_a_failed_feed_is_said_and_restarted(
    setup,
) -> None:
    partners, running, _, _ = setup
    answers: list[object] = [TimeoutError("the directory is starting"), [MAIL], [MAIL]]
    asked = asyncio.Event()

    async def ask() -> list[AgencyCard]:
        if not answers:
            await asyncio.Event().wait()  # the test ends before a fourth answer
        answer = answers.pop(0)
        if not answers:
            asked.set()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    async def fail_once(agency_id: str, handle: Handle) -> None:
        if agency_id not in running.handles:
            running.handles[agency_id] = handle
            raise RuntimeError("the consumer went away")
        await running.serve(agency_id, handle)

    partners.serve = fail_once
    with capture_logs() as logs:
        learning = asyncio.create_task(partners.keep_learning(ask, every=0.01))
        await asyncio.wait_for(asked.wait(), 10)
        await settle()
        learning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await learning
    said = [(e["event"], e.get("agency")) for e in logs if e["event"].startswith("gateway.")]
    assert said[0] == ("gateway.directory_unavailable", None)
    assert ("gateway.feed_failed", MAIL.agency_id) in said  # said, not swallowed
    assert said.count(("gateway.serving", MAIL.agency_id)) == 2  # and started again
    assert running.ended == [MAIL.agency_id] and partners.feeds == {}  # ended with the learning
