"""Request/reply contracts (core NATS, not stored in the stream): the directory's, and the
referral service's verdicts on an agency's answers."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field

from schemas.envelope import ID, Contract
from schemas.events import AgencyId, Ags, ExclusionCount, Language, Postcode
from schemas.vocabulary import AgencyKind, Need, ReferralStatus, Urgency


class ResolveAgencies(Contract):
    """Which agencies fit this need, area, language and age?"""

    need: Need
    languages: tuple[Language, ...] = ()
    municipality: Ags | None = None
    postcode: Postcode | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    urgency: Urgency = Urgency.ROUTINE
    limit: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="the most candidates and the most excluded agencies listed in the answer "
        "(the best candidates, the first excluded by agency id); the answer counts them all",
    )


class MatchReason(Contract):
    """Why an agency matched or was excluded: a code, an English sentence, and the facts the
    sentence is made of, so that a reader's own language can say it."""

    code: str
    text: str
    facts: dict[str, str | int | list[str] | None] = Field(
        default_factory=dict,
        description="by name: points, place and place_name, needs, languages, age, min_age, "
        "max_age, days, urgency, slots, status; for language.bridged between, interpreter and "
        "interpreter_name (those the code has)",
    )


class AgencyCard(Contract):
    """What the office may see of an agency."""

    agency_id: AgencyId
    name: str
    kind: AgencyKind
    channel: str
    referral_address: str | None = Field(
        default=None, description="where the adapter delivers: a webhook URL or an e-mail address"
    )
    capacity: int
    waiting_days: int
    active: bool
    public_key: dict[str, str] | None = Field(
        default=None, description="the agency's X25519 public JWK; offers are sealed to it"
    )


class Candidate(Contract):
    """A suggested agency with its rank and the reasons it matched."""

    agency: AgencyCard
    rank: int
    score: int
    reasons: tuple[MatchReason, ...]


class Excluded(Contract):
    """An agency that does not fit, with every reason why."""

    agency: AgencyCard
    reasons: tuple[MatchReason, ...]


class Bridge(Contract):
    """An agency that fits but for the person's languages, with the interpreting service that
    bridges them (its `language.bridged` reason says which languages)."""

    candidate: Candidate
    interpreter: Candidate


class Suggestions(Contract):
    """The directory's answer to ResolveAgencies: the best candidates and the first excluded
    agencies, at most the query's `limit` of each, and how many there were in all."""

    candidates: tuple[Candidate, ...]
    excluded: tuple[Excluded, ...]
    bridges: tuple[Bridge, ...] = Field(
        default=(),
        description="only when no candidate speaks the person's languages: agencies with an "
        "interpreter, best first",
    )
    candidates_total: int | None = Field(
        default=None,
        ge=0,
        description="how many agencies fit in all, listed or not; null (an answer of a "
        "directory before limits): all are listed",
    )
    excluded_total: int | None = Field(
        default=None,
        ge=0,
        description="how many agencies were excluded in all, listed or not; null (an answer "
        "of a directory before limits): all are listed",
    )
    excluded_by_reason: tuple[ExclusionCount, ...] | None = Field(
        default=None,
        description="per reason code, how many of all the excluded agencies fail it (one "
        "failing several counts under each), by code; null (an answer of a directory before "
        "limits): count the listed `excluded`",
    )

    def exclusion_counts(self) -> tuple[ExclusionCount, ...]:
        """How many excluded agencies each reason ruled out, by code: `excluded_by_reason`,
        or counted from `excluded` in an answer without it (which lists every one)."""
        if self.excluded_by_reason is not None:
            return self.excluded_by_reason
        counted = Counter(reason.code for e in self.excluded for reason in e.reasons)
        return tuple(ExclusionCount(code=code, agencies=n) for code, n in sorted(counted.items()))


class LookupAgency(Contract):
    """Ask for one agency by id."""

    agency_id: str


class AgencyLookup(Contract):
    """The agency, or `found=False` when the directory does not know it."""

    found: bool
    agency: AgencyCard | None = None


class ListAgencies(Contract):
    """Every agency that receives referrals by one of these adapters."""

    channels: tuple[str, ...]


class AgencyList(Contract):
    """The directory's answer to ListAgencies."""

    agencies: tuple[AgencyCard, ...]


class CheckPlace(Contract):
    """Does the directory know this place? Asked before a request is recorded."""

    municipality: Ags | None = None
    postcode: Postcode | None = None


class PlaceCheck(Contract):
    """The directory's answer to CheckPlace: what its gazetteer knows of the place (None:
    not asked)."""

    municipality_known: bool | None = None
    municipality_name: str | None = None
    postcode_known: bool | None = None
    postcode_in_municipality: bool | None = Field(
        default=None, description="both given and known: whether the postcode lies in it"
    )


class QueryFailed(Contract):
    """A query the directory could not answer, with why."""

    error: str


class AskVerdict(Contract):
    """What became of this answer of mine? (its event id, as the answer's publish returned)"""

    answer_id: str = Field(pattern=ID, max_length=64)


class Verdict(Contract):
    """The referral service's verdict on one answer: `unknown` while it has not decided (or
    for an answer that is not the asker's), `taken` with the referral's state after it,
    `refused` with the rule's code and its sentence."""

    state: Literal["unknown", "taken", "refused"]
    referral_id: str | None = None
    status: ReferralStatus | None = None
    code: str | None = None
    message: str | None = None
