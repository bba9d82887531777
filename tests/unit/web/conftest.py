"""Tests here hash passwords in this process: at test strength (tests/support/passwords.py)."""

from tests.support.passwords import cheap_argon2

__all__ = ["cheap_argon2"]
