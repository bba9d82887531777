"""The directory's catalogue: agencies, what they offer, and the questions asked of them.

Pure domain, no framework imports. The vocabularies are the shared ones of
`schemas.vocabulary`, so a `Need` here is the very value that travels on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.vocabulary import AgencyKind, Need, Urgency

EXCLUDED_NEED = "need.not-offered"
EXCLUDED_AREA = "area.outside"
EXCLUDED_LANGUAGE = "language.not-offered"
EXCLUDED_AGE = "age.outside-limits"
EXCLUDED_CAPACITY = "capacity.none"
EXCLUDED_INACTIVE = "inactive"

MATCHED_MUNICIPALITY = "area.municipality"
MATCHED_POSTCODE = "area.postcode"
MATCHED_COUNTY = "area.county"
MATCHED_REMOTE = "area.remote"
MATCHED_ANY_AREA = "area.any"
MATCHED_LANGUAGE = "language.match"
MATCHED_ANY_LANGUAGE = "language.any"
MATCHED_AGE = "age.within"
MATCHED_WAITING = "waiting.days"
MATCHED_CAPACITY = "capacity.free"

# AGS key -> (name, postcode) of the municipalities the sample catalogue serves. Keys from the
# annex of the MietNEinV (BGBl. I 2021, 3739; territorial status 25 January 2021).
MUNICIPALITIES: dict[str, tuple[str, str]] = {
    "13076014": ("Boizenburg/Elbe", "19258"),
    "13076025": ("Crivitz", "19089"),
    "13076034": ("Dömitz", "19303"),
    "13076050": ("Grabow", "19300"),
    "13076060": ("Hagenow", "19230"),
    "13076088": ("Lübtheen", "19249"),
    "13076089": ("Lübz", "19386"),
    "13076090": ("Ludwigslust", "19288"),
    "13076105": ("Neustadt-Glewe", "19306"),
    "13076108": ("Parchim", "19370"),
    "13076114": ("Plau am See", "19395"),
    "13076128": ("Sternberg", "19406"),
    "13076152": ("Wittenburg", "19243"),
    "13076159": ("Zarrentin am Schaalsee", "19246"),
    "09780112": ("Altusried", "87452"),
    "09780115": ("Blaichach", "87544"),
    "09780118": ("Burgberg i.Allgäu", "87545"),
    "09780119": ("Dietmannsried", "87463"),
    "09780121": ("Fischen i.Allgäu", "87538"),
    "09780123": ("Bad Hindelang", "87541"),
    "09780124": ("Immenstadt i.Allgäu", "87509"),
    "09780132": ("Oberstaufen", "87534"),
    "09780133": ("Oberstdorf", "87561"),
    "09780134": ("Ofterschwang", "87527"),
    "09780137": ("Rettenberg", "87549"),
    "09780139": ("Sonthofen", "87527"),
    "09780143": ("Waltenhofen", "87448"),
}

COUNTY_POSTCODES: dict[str, frozenset[str]] = {
    county: frozenset(pc for ags, (_, pc) in MUNICIPALITIES.items() if ags.startswith(county))
    for county in sorted({ags[:5] for ags in MUNICIPALITIES})
}
"""County key -> the postcodes known to lie in it; places a postcode-only query in a county."""


@dataclass(frozen=True, slots=True)
class Agency:
    """A specialist agency (Fachstelle) that can receive referrals."""

    id: str
    name: str
    kind: AgencyKind
    needs: frozenset[Need]
    languages: frozenset[str]
    county: str
    municipalities: frozenset[str]
    postcodes: frozenset[str]
    county_wide: bool
    remote: bool
    min_age: int | None
    max_age: int | None
    capacity: int
    waiting_days: int
    active: bool
    channel: str
    sample: bool
    address: str | None = None
    confidential_address: bool = False
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """What the counselling office asks: who can help with this need, here, in these languages."""

    need: Need
    languages: tuple[str, ...] = ()
    municipality: str | None = None
    postcode: str | None = None
    age: int | None = None
    urgency: Urgency = Urgency.ROUTINE


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an agency matched or was excluded: a stable code and an English sentence."""

    code: str
    text: str


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
class Resolution:
    """The answer to a query: ranked candidates and explained exclusions."""

    query: Query
    candidates: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...]
