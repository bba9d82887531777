"""The directory's catalogue: agencies, what they offer, and the questions asked of them.

Pure domain, no framework imports. The vocabularies are the shared ones of
`schemas.vocabulary`, so a `Need` here is the very value that travels on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.vocabulary import AgencyKind, Need, Urgency

EXCLUDED_AREA = "area.outside"
EXCLUDED_LANGUAGE = "language.not-offered"
EXCLUDED_AGE = "age.outside-limits"
EXCLUDED_CAPACITY = "capacity.none"
EXCLUDED_INACTIVE = "inactive"

MATCHED_NEED = "need.offered"
MATCHED_MUNICIPALITY = "area.municipality"
MATCHED_POSTCODE = "area.postcode"
MATCHED_COUNTY = "area.county"
MATCHED_STATE = "area.state"
MATCHED_REMOTE = "area.remote"
MATCHED_ANY_AREA = "area.any"
MATCHED_LANGUAGE = "language.match"
MATCHED_ANY_LANGUAGE = "language.any"
BRIDGED_LANGUAGE = "language.bridged"
MATCHED_AGE = "age.within"
MATCHED_WAITING = "waiting.days"
MATCHED_CAPACITY = "capacity.free"

ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Agency:
    """A service that can receive referrals: what resolution needs to know of an HSDS service.

    `areas` holds official keys (AGS) of where it serves: 8 digits a municipality, 5 a whole
    county, 2 a whole Land. `counties` are the counties it is present in (its areas' and its
    postcodes'), where it can also help remotely when `remote` (it has a virtual location).
    Without `in_person` (no physical location) its county- and state-wide areas are served
    only remotely (it ranks as remote there); a municipality or postcode it lists still ranks
    as local.
    """

    id: str
    name: str
    kind: AgencyKind
    needs: frozenset[Need]
    languages: frozenset[str]
    areas: frozenset[str]
    postcodes: frozenset[str]
    counties: frozenset[str]
    remote: bool
    min_age: int | None
    max_age: int | None
    capacity: int
    waiting_days: int
    status: str
    channel: str
    sample: bool
    in_person: bool = True
    referral_address: str | None = None
    service_id: str = ""
    organization: str = ""

    def __post_init__(self) -> None:
        area_counties = {key[:5] for key in self.areas if len(key) >= 5}
        object.__setattr__(self, "counties", self.counties | area_counties)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class Query:
    """What the counselling office asks: who can help with this need, here, in these languages."""

    need: Need
    languages: tuple[str, ...] = ()
    municipality: str | None = None
    postcode: str | None = None
    age: int | None = None
    urgency: Urgency = Urgency.ROUTINE


Fact = str | int | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an agency matched or was excluded: a stable code, an English sentence (for logs and
    the API), and its facts by name (`points`, `place` and `place_name`, `needs`, `languages`,
    `age`, `min_age`, `max_age`, `days`, `urgency`, `slots`, `status`; for a bridge `between`,
    `interpreter` and `interpreter_name`), from which a reader's own language says the same."""

    code: str
    text: str
    facts: dict[str, Fact] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agency that fits, with its 1-based rank, its score and the reasons for both."""

    agency: Agency
    rank: int
    score: int
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An agency that does not fit, with every hard constraint it fails."""

    agency: Agency
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Bridge:
    """An agency that fits but for the person's languages, ranked as a candidate, and the
    interpreting service that speaks one of the person's languages and one of the agency's:
    offered as a pair when no agency shares a language with the person."""

    candidate: Candidate
    interpreter: Candidate


@dataclass(frozen=True, slots=True)
class Resolution:
    """The answer to a query: ranked candidates, explained exclusions and, when no candidate
    speaks the person's language, the agencies that could help with an interpreter.

    A resolution asked with a limit lists at most that many candidates (the best) and
    exclusions (the first by agency id); the totals and `excluded_by_reason` count them all.
    """

    query: Query
    candidates: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...]
    bridges: tuple[Bridge, ...] = ()
    candidates_total: int = field(kw_only=True)
    excluded_total: int = field(kw_only=True)
    excluded_by_reason: tuple[tuple[str, int], ...] = field(kw_only=True)
    """(code, agencies): how many of all excluded agencies fail each hard constraint, by code;
    an agency failing several counts under each."""
