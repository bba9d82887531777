"""A refusal in the domain's words: which rule said no (`code`: stable, for programs, the
translations and the audit) and what it said (the message, in English, with the ids)."""

from __future__ import annotations


class Refused(Exception):
    """Subclasses name their usual code; a raise may name a more precise one."""

    code = "refused"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
