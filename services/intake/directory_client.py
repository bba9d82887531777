"""Intake's view of the directory: core NATS request/reply, with timeouts."""

from __future__ import annotations

from typing import TypeVar

import nats.errors
from nats.aio.client import Client
from pydantic import BaseModel, ValidationError

from schemas import subjects
from schemas.queries import (
    AgencyCard,
    AgencyLookup,
    CheckPlace,
    LookupAgency,
    PlaceCheck,
    ResolveAgencies,
    Suggestions,
)

T = TypeVar("T", bound=BaseModel)


class DirectoryUnavailable(Exception):
    """The directory did not answer in time."""


class DirectoryClient:
    """Asks the directory service; raises DirectoryUnavailable instead of hanging."""

    def __init__(self, nc: Client, timeout: float = 3.0) -> None:
        self._nc = nc
        self._timeout = timeout

    async def resolve(self, query: ResolveAgencies) -> Suggestions:
        return await self._ask(subjects.DIRECTORY_RESOLVE, query, Suggestions)

    async def lookup(self, agency_id: str) -> AgencyCard | None:
        answer = await self._ask(
            subjects.DIRECTORY_AGENCY, LookupAgency(agency_id=agency_id), AgencyLookup
        )
        return answer.agency if answer.found else None

    async def place(self, query: CheckPlace) -> PlaceCheck:
        return await self._ask(subjects.DIRECTORY_PLACE, query, PlaceCheck)

    async def _ask(self, subject: str, query: BaseModel, answer: type[T]) -> T:
        try:
            # defaults left out: a directory of the release before a field was added (with a
            # default) still understands the question, so intake can be upgraded first
            asked = query.model_dump_json(exclude_defaults=True).encode()
            reply = await self._nc.request(subject, asked, timeout=self._timeout)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise DirectoryUnavailable(f"the directory did not answer: {exc!r}") from None
        try:
            return answer.model_validate_json(reply.data)
        except ValidationError:
            raise DirectoryUnavailable(f"the directory answered: {reply.data[:300]!r}") from None
