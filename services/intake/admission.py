"""What intake refuses, or records with a warning, in a new request, given what the directory
knows of its place and its recipients. Pure: the directory's answers are handed in.

- A municipality key the directory's gazetteer does not know is refused: the directory could
  place the person nowhere, and every suggestion would silently come back empty.
- A postcode it does not know is recorded with a warning: the gazetteer holds the postcodes
  of its municipalities' main towns, so an unknown postcode is often right; the directory
  then matches only agencies that list that very postcode (or serve the whole Land).
- A postcode that lies in another municipality than the one given: a warning, too.
- A consent recipient naming an agency the directory does not know is refused.
- A legal deadline is counted by the referral service's rules (`legal_deadline`); one that
  has passed, or dates that cannot be, are refused.
- Automatic re-offer is allowed only under a legal deadline (its alert is what sets it off)
  and where the consent names a kind of agency (the next agency of that kind is covered as
  the first was; a consent naming agencies one by one leaves the choice to the office).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from schemas.events import LegalDeadline
from schemas.queries import PlaceCheck
from schemas.vocabulary import DeadlineKind
from services.referral import legal_deadline as law


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a field: where (as in a validation error), a code and a text."""

    loc: tuple[str | int, ...]
    code: str
    message: str


UNCHECKED = Problem(
    ("municipality",),
    "place.unchecked",
    "the directory did not answer: the place and the agencies the consent names were not "
    "checked (suggestions will show what the directory makes of them)",
)
"""The warning when the directory could not be asked: recording goes on without it."""


class Inadmissible(Exception):
    """The request cannot be recorded; each problem names its field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.message}" for p in problems))
        self.problems = problems

    def errors(self) -> list[dict[str, object]]:
        """As a validation error of the request's body names each field."""
        return [{"loc": ["body", *p.loc], "msg": p.message, "type": p.code} for p in self.problems]


def admit(
    municipality: str | None,
    postcode: str | None,
    place: PlaceCheck,
    unknown_recipients: Iterable[tuple[int, str]],
) -> list[Problem]:
    """The warnings to record the request with; raises Inadmissible with every refusal.
    `unknown_recipients`: (index, agency id) of each consent recipient the directory lacks."""
    refused = [
        Problem(
            ("consent", "recipients", index, "agency_id"),
            "consent.unknown-recipient",
            f"the directory knows no agency {agency_id!r}",
        )
        for index, agency_id in unknown_recipients
    ]
    if municipality is not None and place.municipality_known is False:
        refused.insert(
            0,
            Problem(
                ("municipality",),
                "place.unknown-municipality",
                f"the directory's gazetteer knows no municipality {municipality}: "
                "check the key (Amtlicher Gemeindeschlüssel), or give the postcode alone",
            ),
        )
    if refused:
        raise Inadmissible(refused)
    warnings = []
    if postcode is not None and place.postcode_known is False:
        warnings.append(
            Problem(
                ("postcode",),
                "place.unknown-postcode",
                f"the directory's gazetteer does not know postcode {postcode}: only agencies "
                "that list it, or serve the whole Land or remotely, can be suggested",
            )
        )
    if place.postcode_in_municipality is False:
        warnings.append(
            Problem(
                ("postcode",),
                "place.postcode-elsewhere",
                f"postcode {postcode} does not lie in {place.municipality_name} "
                f"({municipality}): the municipality decides where the person is served",
            )
        )
    return warnings


def auto_reoffer(wanted: bool, under_deadline: bool, kinds_named: bool) -> None:
    """Refuse automatic re-offer where it cannot apply (Inadmissible, with its code)."""
    if wanted and not under_deadline:
        raise Inadmissible(
            [
                Problem(
                    ("auto_reoffer",),
                    "auto-reoffer.no-deadline",
                    "automatic re-offer needs a legal deadline: its alert sets it off",
                )
            ]
        )
    if wanted and not kinds_named:
        raise Inadmissible(
            [
                Problem(
                    ("auto_reoffer",),
                    "auto-reoffer.no-kind",
                    "automatic re-offer needs a consent that names a kind of agency: one that "
                    "names agencies one by one leaves the choice of the next to the office",
                )
            ]
        )


def legal_deadline(
    kind: str, land: str, now: datetime, delivered_on: date | None, ends_on: date | None
) -> LegalDeadline:
    """The request's legal deadline as the law counts it (delivered on `delivered_on`), or
    as given; Inadmissible with the reason and its stable code. `now` decides, as a day in
    Germany, what lies in the past."""
    today = law.berlin_date(now)
    try:
        found = law.legal_deadline(DeadlineKind(kind), land, today, delivered_on, ends_on)
    except law.LegalDeadlineRefused as refused:
        raise Inadmissible([Problem(("legal_deadline",), refused.code, str(refused))]) from None
    return LegalDeadline(
        kind=found.kind, land=found.land, ends_on=found.ends_on, delivered_on=found.delivered_on
    )
