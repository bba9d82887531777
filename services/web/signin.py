"""Signing in, in three steps, so that Argon2 never runs under a database lock:

1. a short read: the user's hash and the throttle's counts. A name or an address that must
   still wait is refused here, its password unchecked;
2. the password checked in a worker thread, outside any session, transaction or writer lock;
3. a short write: on success a new session, the counts cleared and the hash renewed if its
   parameters are outdated; on failure a failure counted for the name and for the address.

At most `CONCURRENT_CHECKS` sign-ins are in these steps at once: a flood of sign-ins waits for
its turn here instead of taking every core and worker thread from the page views.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import anyio
import structlog
from sqlmodel import Session

from services.web import accounts
from services.web.accounts import PasswordCheck, Role
from services.web.throttle import ACCOUNT, ADDRESS, Throttle

CONCURRENT_CHECKS = 2  # Argon2 checks at once; each takes most of a core for tens of ms
Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]
log = structlog.get_logger()


@dataclass(frozen=True)
class Opened:
    """Signed in: the session's token (for the cookie) and the user's role."""

    token: str
    role: Role


@dataclass(frozen=True)
class WrongCredentials:
    """No such user, or not their password (the two are not told apart)."""


@dataclass(frozen=True)
class Throttled:
    """Too many failures for the name or from the address: try again after `retry_after`."""

    retry_after: timedelta


Outcome: TypeAlias = Opened | WrongCredentials | Throttled


class SignIn:
    """The sign-in use case; `read` and `run` are the web database's units of work."""

    def __init__(
        self,
        read: Run,
        run: Run,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        throttle: Throttle | None = None,
        check: Callable[[str | None, str], PasswordCheck] = accounts.check_password,
        concurrent: int = CONCURRENT_CHECKS,
    ) -> None:
        self.read, self.run, self.now, self.check = read, run, now, check
        self.throttle = throttle or Throttle()
        self._checking = anyio.Semaphore(concurrent)

    async def __call__(self, username: str, password: str, address: str) -> Outcome:
        name = accounts.normalise(username)
        said = log.bind(username=name[:64], address=address)
        async with self._checking:
            stored, wait = await self.read(
                lambda s: (
                    accounts.password_hash(s, name),
                    self.throttle.retry_after(s, name, address, self.now()),
                )
            )
            if wait is not None:
                said.warning("sign_in.throttled", retry_after_s=wait.total_seconds())
                return Throttled(wait)
            checked = await anyio.to_thread.run_sync(self.check, stored, password)
            if checked.matches and stored is not None:
                opened: Opened | None = await self.run(
                    lambda s: self._open(s, name, address, stored, checked)
                )
                if opened is not None:
                    said.info("sign_in.succeeded")
                    return opened
            counts = await self.run(
                lambda s: self.throttle.record_failure(s, name, address, self.now())
            )
        said.info(
            "sign_in.failed",
            account_failures=counts.get(ACCOUNT, 0),
            address_failures=counts.get(ADDRESS, 0),
        )
        return WrongCredentials()

    def _open(
        self, session: Session, name: str, address: str, stored: str, checked: PasswordCheck
    ) -> Opened | None:
        opened = accounts.open_checked(session, name, stored, checked, self.now())
        if opened is None:
            return None
        self.throttle.clear(session, name, address)
        return Opened(*opened)
