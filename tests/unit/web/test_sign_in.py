"""Signing in to the real web app on a real SQLite database: failures throttle the name and
the address with doubling waits, a success clears them, the counts outlive the process, and
passwords are checked outside every transaction, two at a time at most.

The throttle's clock is the test's: no test sleeps for a wait to pass."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from services.web import accounts
from services.web.accounts import PasswordCheck, Role
from services.web.application import WebApplication
from services.web.http import Web, create_app
from services.web.signin import SignIn, Throttled, WrongCredentials
from services.web.throttle import Backoff
from tests.support.databases import service_database
from wegweiser.platform.db import Database

PASSWORD = "lang genug 123"
WRONG = "falsch falsch 1"
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


class Clock:
    """The time the web app sees; a test moves it on."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def transaction_open(db: Database) -> bool:
    """Whether any session of `db` holds a connection, or a unit of work the writer lock."""
    return db.engine.pool.checkedout() > 0 or db._one_writer.locked()  # type: ignore[attr-defined]


class CheckingOutsideTransactions:
    """The real password check, noting first whether a transaction was open meanwhile."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.inside_transaction: list[bool] = []

    def __call__(self, stored: str | None, password: str) -> PasswordCheck:
        self.inside_transaction.append(transaction_open(self.db))
        return accounts.check_password(stored, password)


class WebApp:
    """The web app on the database at `path`, as the composition root wires it."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.db = service_database("web", f"sqlite:///{path}")
        self.db.migrate()
        self.checks = CheckingOutsideTransactions(self.db)
        self.sign_in = SignIn(self.db.read, self.db.run, clock, check=self.checks)
        application = WebApplication(
            run=self.db.run,
            intake=None,  # type: ignore[arg-type]  # signing in asks neither intake nor audit
            audit=None,  # type: ignore[arg-type]
            audit_key=lambda: None,  # type: ignore[arg-type,return-value]
            signing_in=self.sign_in,
            now=clock,
        )
        web = Web(application, {"office-a": "Beratungsstelle A"})
        self.app: FastAPI = create_app(web)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web(tmp_path: Path, clock: Clock) -> Iterator[WebApp]:
    made = WebApp(tmp_path / "web.db", clock)
    made.db.run_sync(
        lambda s: accounts.add_user(s, "berater", PASSWORD, Role.COUNSELLOR, "office-a")
    )
    yield made
    made.db.dispose()


async def attempt(
    app: FastAPI, username: str, password: str, address: str = "10.0.0.1", language: str = "de"
) -> httpx.Response:
    """Open the sign-in page from `address` and post the form, as a browser does."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies={"wegweiser_lang": language}
    ) as browser:
        page = await browser.get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        form = {"username": username, "password": password, "csrf": found[1], "next": "/"}
        return await browser.post("/login", data=form)


def signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and "wegweiser_session" in response.cookies


async def fail(app: FastAPI, times: int, username: str = "berater", **kw: str) -> None:
    for n in range(times):
        response = await attempt(app, username, WRONG, **kw)
        assert response.status_code == 401, (n, response.text)


def test_the_wait_doubles_after_the_free_failures_up_to_fifteen_minutes():
    backoff = Backoff(free=5)
    waits = [backoff.wait(n).total_seconds() for n in range(20)]
    assert waits[:5] == [0] * 5
    assert waits[5:11] == [1, 2, 4, 8, 16, 32]
    assert max(waits) == waits[-1] == 15 * 60
    assert backoff.wait(10_000) == timedelta(minutes=15)


async def test_after_five_wrong_passwords_even_the_right_one_waits(web: WebApp, clock: Clock):
    await fail(web.app, 5)
    refused = await attempt(web.app, "berater", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "Zu viele fehlgeschlagene Anmeldeversuche" in refused.text
    assert "wegweiser_session" not in refused.cookies
    clock.advance(seconds=1)
    assert signed_in(await attempt(web.app, "berater", PASSWORD))


async def test_each_further_failure_doubles_the_wait(web: WebApp, clock: Clock):
    await fail(web.app, 5)
    for wait in (1, 2, 4, 8):
        refused = await attempt(web.app, "berater", WRONG, language="en")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(wait)
        assert "Too many failed attempts to sign in. Please try again in" in refused.text
        clock.advance(seconds=wait - 0.5)
        assert (await attempt(web.app, "berater", WRONG)).status_code == 429
        clock.advance(seconds=0.5)
        assert (await attempt(web.app, "berater", WRONG)).status_code == 401


async def test_a_throttled_attempt_is_refused_without_checking_the_password(web: WebApp):
    await fail(web.app, 5)
    checked = len(web.checks.inside_transaction)
    for _ in range(3):
        assert (await attempt(web.app, "berater", PASSWORD)).status_code == 429
    assert len(web.checks.inside_transaction) == checked


async def test_an_unknown_name_is_checked_and_throttled_like_a_known_one(web: WebApp):
    async def answers(username: str, address: str) -> list[tuple[int, str | None]]:
        out = []
        for _ in range(8):
            response = await attempt(web.app, username, WRONG, address=address)
            out.append((response.status_code, response.headers.get("Retry-After")))
        return out

    known = await answers("berater", "10.0.0.1")
    checked = len(web.checks.inside_transaction)
    unknown = await answers("niemand", "10.0.0.2")
    assert unknown == known == [(401, None)] * 5 + [(429, "1")] * 3
    assert len(web.checks.inside_transaction) == 2 * checked  # a dummy hash was checked


async def test_failures_from_one_address_throttle_every_name_from_it(web: WebApp):
    for n in range(10):  # two failures each for five names: none of them is throttled
        await fail(web.app, 1, username=f"name-{n % 5}", address="10.0.0.9")
    refused = await attempt(web.app, "berater", PASSWORD, address="10.0.0.9")
    assert refused.status_code == 429
    assert signed_in(await attempt(web.app, "berater", PASSWORD, address="10.0.0.10"))


async def test_a_success_clears_the_count(web: WebApp):
    await fail(web.app, 4)
    assert signed_in(await attempt(web.app, "berater", PASSWORD))
    await fail(web.app, 5)
    assert (await attempt(web.app, "berater", PASSWORD)).status_code == 429


async def test_failures_are_forgotten_after_a_day(web: WebApp, clock: Clock):
    await fail(web.app, 5)
    clock.advance(hours=24)
    await fail(web.app, 4)
    assert signed_in(await attempt(web.app, "berater", PASSWORD))


async def test_the_counts_survive_a_restart_of_the_web_app(
    web: WebApp, clock: Clock, tmp_path: Path
):
    await fail(web.app, 5)
    web.db.dispose()
    restarted = WebApp(tmp_path / "web.db", clock)
    try:
        assert (await attempt(restarted.app, "berater", PASSWORD)).status_code == 429
        clock.advance(seconds=1)
        assert signed_in(await attempt(restarted.app, "berater", PASSWORD))
    finally:
        restarted.db.dispose()


async def test_passwords_are_checked_outside_every_transaction(web: WebApp):
    await fail(web.app, 2)
    assert signed_in(await attempt(web.app, "berater", PASSWORD))
    await fail(web.app, 1, username="niemand")
    assert web.checks.inside_transaction == [False] * 4


def test_the_transaction_probe_sees_open_transactions(web: WebApp):
    assert not transaction_open(web.db)
    assert web.db.read_sync(
        lambda s: (s.get(accounts.UserRow, "berater"), transaction_open(web.db))
    )[1]
    assert web.db.run_sync(lambda _s: transaction_open(web.db))


async def test_at_most_two_passwords_are_checked_at_once(web: WebApp, clock: Clock):
    meeting, running, most = threading.Condition(), [0], [0]

    def meeting_check(stored: str | None, password: str) -> PasswordCheck:
        with meeting:  # the first two checks wait for each other, so that they overlap
            running[0] += 1
            most[0] = max(most[0], running[0])
            meeting.notify_all()
            assert meeting.wait_for(lambda: most[0] >= 2, timeout=10)
        try:
            return accounts.check_password(stored, password)
        finally:
            with meeting:
                running[0] -= 1

    sign_in = SignIn(web.db.read, web.db.run, clock, check=meeting_check)
    outcomes = await asyncio.gather(*(sign_in(f"name-{n}", WRONG, f"10.0.1.{n}") for n in range(6)))
    assert all(isinstance(o, WrongCredentials) for o in outcomes)
    assert most[0] == 2


async def test_throttling_is_logged_with_name_and_address_but_no_password(web: WebApp):
    await fail(web.app, 5)
    with capture_logs() as logs:
        outcome = await web.sign_in("Berater", PASSWORD, "10.0.0.1")
    assert isinstance(outcome, Throttled)
    throttled = [e for e in logs if e["event"] == "sign_in.throttled"]
    assert throttled and throttled[0]["username"] == "berater"
    assert throttled[0]["address"] == "10.0.0.1"
    assert PASSWORD not in repr(logs)
