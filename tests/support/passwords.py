"""Argon2 at test strength, for tests that hash and check passwords in this process.

The web app's hasher is tuned to cost a signed-in person about a tenth of a second, which
is the point in production and only waiting in a test that signs in dozens of times. The
cheap hasher is still real Argon2id, so every check still compares real hashes; it is also
weaker than the "outdated parameters" the accounts tests write, so a rehash is still due.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from services.web import accounts

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> PasswordHasher:
    monkeypatch.setattr(accounts, "_hasher", CHEAP)
    return CHEAP
