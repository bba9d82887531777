"""Tests here hash passwords in this process: at test strength (tests/support/passwords.py);
they use intake in this process and an office's client of it, as the HTTP tests do."""

from tests.support.intake import intake, office
from tests.support.passwords import cheap_argon2

__all__ = ["cheap_argon2", "intake", "office"]
