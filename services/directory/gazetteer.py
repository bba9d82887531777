"""Places: municipalities by official key (AGS), their names and postcodes.

An AGS key has 8 digits: Land (2), Regierungsbezirk (1), Kreis (2), Gemeinde (3); its first five
digits are the county (Kreis) key. The gazetteer places a postcode-only query in its county.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Municipality:
    ags: str
    name: str
    postcodes: frozenset[str]


LANDS = {
    "01": "Schleswig-Holstein",
    "02": "Hamburg",
    "03": "Niedersachsen",
    "04": "Bremen",
    "05": "Nordrhein-Westfalen",
    "06": "Hessen",
    "07": "Rheinland-Pfalz",
    "08": "Baden-Württemberg",
    "09": "Bayern",
    "10": "Saarland",
    "11": "Berlin",
    "12": "Brandenburg",
    "13": "Mecklenburg-Vorpommern",
    "14": "Sachsen",
    "15": "Sachsen-Anhalt",
    "16": "Thüringen",
}
"""The Länder by the first two digits of an AGS key (the key's own scheme)."""


class Gazetteer:
    """Municipalities, the counties their postcodes lie in, and the names of all three kinds
    of place (municipality, county, Land) by key."""

    def __init__(
        self,
        municipalities: Mapping[str, Municipality],
        county_names: Mapping[str, str] | None = None,
    ) -> None:
        self.municipalities = dict(municipalities)
        self.county_names = dict(county_names or {})
        counties: dict[str, set[str]] = defaultdict(set)
        for municipality in self.municipalities.values():
            for postcode in municipality.postcodes:
                counties[postcode].add(municipality.ags[:5])
        self._counties_of_postcode = {pc: frozenset(keys) for pc, keys in counties.items()}

    @classmethod
    def of(
        cls,
        rows: Mapping[str, tuple[str, str | tuple[str, ...]]],
        county_names: Mapping[str, str] | None = None,
    ) -> Gazetteer:
        """From `{ags: (name, postcode or postcodes)}` and the counties' names by key."""
        return cls(
            {
                ags: Municipality(ags, name, frozenset((pcs,) if isinstance(pcs, str) else pcs))
                for ags, (name, pcs) in rows.items()
            },
            county_names,
        )

    def name(self, ags: str) -> str | None:
        municipality = self.municipalities.get(ags)
        return municipality.name if municipality else None

    def county_name(self, key: str) -> str | None:
        """A county's name by its five-digit key, if known."""
        return self.county_names.get(key)

    @staticmethod
    def land_name(key: str) -> str | None:
        """A Land's name by its two-digit key."""
        return LANDS.get(key)

    def label(self, ags: str) -> str:
        """`13076090 (Ludwigslust)`, or the bare key when it is not known."""
        name = self.name(ags)
        return f"{ags} ({name})" if name else ags

    def counties_of_postcode(self, postcode: str) -> frozenset[str]:
        return self._counties_of_postcode.get(postcode, frozenset())

    def counties(self) -> frozenset[str]:
        return frozenset(ags[:5] for ags in self.municipalities)


SAMPLE = Gazetteer.of(
    # Keys from the annex of the MietNEinV (BGBl. I 2021, 3739; territorial status 25 January
    # 2021); postcodes of the main town of each municipality.
    {
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
    },
    {"13076": "Ludwigslust-Parchim", "09780": "Oberallgäu"},
)
"""The municipalities of the two sample counties, Ludwigslust-Parchim and Oberallgäu."""
