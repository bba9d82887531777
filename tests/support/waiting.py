"""Waiting for a condition in a test, without asserting on how long it took."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


@overload
async def until(
    check: Callable[[], Awaitable[T | None]], timeout: float = 30.0, what: str = "condition"
) -> T: ...


@overload
async def until(
    check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition"
) -> T: ...


async def until(
    check: Callable[[], T | Awaitable[T | None] | None],
    timeout: float = 30.0,
    what: str = "condition",
) -> T:
    """The first truthy result of `check` (awaited, if it gives an awaitable), asked every
    50 ms; fails the test after `timeout`, naming `what` it waited for and `check`'s last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while loop.time() < deadline:
        found = check()
        result = await found if inspect.isawaitable(found) else found
        if result:
            return result
        last = result
        await asyncio.sleep(0.05)
    raise AssertionError(_not_met(what, timeout, last))


def blocking_until(
    check: Callable[[], T | None],
    timeout: float = 30.0,
    what: str = "condition",
    every: float = 0.2,
) -> T:
    """`until` for a test that is not async (it blocks its thread between the checks)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if result := check():
            return result
        last = result
        time.sleep(every)
    raise AssertionError(_not_met(what, timeout, last))


def _not_met(what: str, timeout: float, last: object) -> str:
    return f"{what} not met within {timeout:g} s; last: {last!r}"
