"""The lists of the HSDS read API: the paged envelope and the query parameters every list takes.

The envelope is HSDS 3.0's `Page` (openapi.json) as Open Referral UK's validator checks it on
every list it pages through with `page` and `per_page`: `size` is the number of entries in this
page, `first_page` is page 1, `last_page` is the page numbered `total_pages` (or one past it,
so that a client paging until `last_page` stops), and `empty` says this page has no entries
(the validator's "Empty flag" check), not that the whole list has none.

`modified_after` (HSDS: "modified on or after this datetime") is how another directory keeps
a copy in step; it compares with a service's `last_modified`, and a service that carries none
has no known modification time and is left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from jsonschema import FormatChecker
from pydantic import BaseModel, BeforeValidator, Field

MAX_PER_PAGE = 500


class Page(BaseModel):
    """One page of a list (HSDS 3.0 `Page`, with its `contents`)."""

    total_items: int = Field(description="entries in the whole list")
    total_pages: int = Field(description="pages of `per_page` entries (at least 1)")
    page_number: int = Field(description="this page's number, from 1")
    size: int = Field(description="entries in this page")
    first_page: bool = Field(description="this is page 1")
    last_page: bool = Field(description="no page follows this one")
    empty: bool = Field(description="this page has no entries")
    contents: list[dict[str, Any]] = Field(description="HSDS records")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list, of how many entries."""

    page: int
    per_page: int


def page_request(
    page: Annotated[int, Query(ge=1, description="page number, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="entries per page")] = 50,
    _format: Annotated[
        Literal["json"],
        Query(alias="format", description="only `json` (HSDS's paged JSON) is offered"),
    ] = "json",
) -> PageRequest:
    """The query parameters every list takes (HSDS names them)."""
    return PageRequest(page=page, per_page=per_page)


Paging = Annotated[PageRequest, Depends(page_request)]


_DATE_TIME = FormatChecker(["date-time"])


def _rfc3339(value: Any) -> Any:
    """Only a date and time as the document's `format: date-time` writes it (RFC 3339, checked
    as an import checks HSDS's date-times), not whatever else pydantic would read as one (a
    number of seconds, a date alone)."""
    if isinstance(value, str) and not _DATE_TIME.conforms(value, "date-time"):
        raise ValueError("not a date and time with its offset, e.g. 2026-01-31T08:00:00Z")
    return value


ModifiedAfter = Annotated[
    datetime | None,
    BeforeValidator(_rfc3339),
    Query(description="only services whose `last_modified` is on or after this date and time"),
]


def chosen(ids: Sequence[str], request: PageRequest) -> Sequence[str]:
    """The ids on the requested page."""
    start = (request.page - 1) * request.per_page
    return ids[start : start + request.per_page]


def page(total: int, request: PageRequest, contents: list[dict[str, Any]]) -> Page:
    """The envelope of one page of a list of `total` entries."""
    pages = max(1, math.ceil(total / request.per_page))
    return Page(
        total_items=total,
        total_pages=pages,
        page_number=request.page,
        size=len(contents),
        first_page=request.page == 1,
        last_page=request.page >= pages,
        empty=not contents,
        contents=contents,
    )


def modified_since(record: dict[str, Any], after: datetime | None) -> bool:
    """Whether the record's `last_modified` is on or after `after` (any record, if None)."""
    if after is None:
        return True
    stamp = record.get("last_modified")
    if not isinstance(stamp, str):
        return False
    try:
        modified = datetime.fromisoformat(stamp)
    except ValueError:
        return False
    if modified.tzinfo is None:  # HSDS's own schema asks for an offset; read none as UTC
        modified = modified.replace(tzinfo=UTC)
    return modified >= after
