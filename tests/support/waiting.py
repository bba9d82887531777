"""Waiting for a condition in a test, without asserting on how long it took."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until(check: Callable[[], T], timeout: float = 30.0) -> T:
    """The first truthy result of `check`, asked every 50 ms; fails the test after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
