"""Directory benchmark: import time for a nation-wide HSDS directory, and resolution latency.

Run from the repo root:  .venv/bin/python bench/directory.py [--services 50000]
[--queries 2000] [--seed 1] [--reimport-timeout 300] [--gc-freeze] [--quick].
See bench/README.md for what each figure means.

Generates (deterministically) an HSDS 3.0 dataset in Wegweiser's profile with services spread
over 400 counties in 16 Länder, and the matching gazetteer; imports it into a fresh SQLite
file database, imports it again (which must change nothing), exports it, builds the
resolution index from the stored agencies and times random realistic queries against it, as
the directory service answers them: with the default `limit` of `ResolveAgencies` (the best
100 candidates and the first 100 exclusions listed, all counted), and the answer then built
as the wire contract `Suggestions`.
The keys are synthetic: well-formed AGS keys and postcodes, real counts of counties per Land
(400 = 294 Landkreise + 106 kreisfreie Städte), but not the real keys, names or postcodes.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from time import perf_counter
from typing import Any

from sqlmodel import Session, SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import hardware  # type: ignore[import-not-found]  # bench/, on the path above

from schemas.queries import ResolveAgencies
from schemas.vocabulary import AgencyKind, Need, Urgency
from services.directory import handlers, importer, needs, store
from services.directory.catalogue import Query
from services.directory.gazetteer import Gazetteer
from services.directory.resolution import Directory, resolve
from wegweiser.platform.db import make_engine

RESULTS = Path(__file__).resolve().parent / "results"
LIMIT: int = ResolveAgencies.model_fields["limit"].default
"""What the directory lists of a query's candidates and exclusions unless asked otherwise."""

# Counties per Land as of 2024: (code, name, Landkreise, kreisfreie Städte); 294 + 106 = 400.
# Hamburg and Berlin count as one kreisfreie Stadt each, Region Hannover, Städteregion Aachen
# and Regionalverband Saarbrücken as Landkreise.
LAENDER = (
    ("01", "Schleswig-Holstein", 11, 4),
    ("02", "Hamburg", 0, 1),
    ("03", "Niedersachsen", 37, 8),
    ("04", "Bremen", 0, 2),
    ("05", "Nordrhein-Westfalen", 31, 22),
    ("06", "Hessen", 21, 5),
    ("07", "Rheinland-Pfalz", 24, 12),
    ("08", "Baden-Württemberg", 35, 9),
    ("09", "Bayern", 71, 25),
    ("10", "Saarland", 6, 0),
    ("11", "Berlin", 0, 1),
    ("12", "Brandenburg", 14, 4),
    ("13", "Mecklenburg-Vorpommern", 6, 2),
    ("14", "Sachsen", 10, 3),
    ("15", "Sachsen-Anhalt", 11, 3),
    ("16", "Thüringen", 17, 5),
)

# Which kind of agency offers a need (by its top-level need).
KIND_OF = {
    Need.LEGAL_AID: AgencyKind.LEGAL_AID,
    Need.RECOGNITION: AgencyKind.RECOGNITION_COUNSELLING,
    Need.LANGUAGE_COURSE: AgencyKind.LANGUAGE_SCHOOL,
    Need.MIGRATION_COUNSELLING: AgencyKind.MIGRATION_COUNSELLING,
    Need.EMPLOYMENT: AgencyKind.JOBCENTER,
    Need.SOCIAL_BENEFITS: AgencyKind.AUTHORITY,
    Need.PSYCHOSOCIAL: AgencyKind.PSYCHOSOCIAL,
    Need.VIOLENCE_PROTECTION: AgencyKind.VIOLENCE_PROTECTION,
    Need.HOUSING: AgencyKind.HOUSING,
    Need.HEALTH: AgencyKind.HEALTH,
    Need.SCHOOLS_CHILDCARE: AgencyKind.EDUCATION,
    Need.INTERPRETING: AgencyKind.INTERPRETING,
}
# Languages with rough weights (how often an agency speaks them / a client asks for them).
LANGUAGES = {
    "de": 60, "en": 45, "ar": 20, "tr": 18, "ru": 18, "uk": 18, "fa": 10, "pl": 8, "ro": 7,
    "fr": 7, "ku": 5, "ps": 4, "ti": 3, "so": 3, "es": 4, "it": 3, "bg": 3, "sq": 3, "sr": 2,
    "vi": 2,
}  # fmt: skip
STREETS = ("Hauptstraße", "Bahnhofstraße", "Schulstraße", "Marktplatz", "Lindenweg", "Ringstraße")


@dataclass
class Place:
    """A synthetic county: its key, Land, municipalities (AGS -> postcodes) and a weight."""

    key: str
    land: str
    land_name: str
    kind: str  # "Landkreis" or "kreisfreie Stadt"
    municipalities: dict[str, tuple[str, ...]]
    weight: float
    index: int
    organizations: list[str] = field(default_factory=list)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def make_counties(rng: random.Random) -> tuple[list[Place], Gazetteer]:
    """400 counties with 10-30 municipalities each, 8-digit keys, 5-digit postcodes.

    Every municipality has a postcode of its own, the first one (the county town) 2-8; about
    one in twenty shares its predecessor's as well, so some postcodes span two municipalities
    and, at a county's first municipality, two counties.
    """
    counties: list[Place] = []
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    postcode = 1067
    last: str | None = None
    for land, land_name, landkreise, cities in LAENDER:
        kinds = ["kreisfreie Stadt"] * cities + ["Landkreis"] * landkreise
        for index, kind in enumerate(kinds):
            key = f"{land}0{index + 1:02d}"
            municipalities: dict[str, tuple[str, ...]] = {}
            for m in range(rng.randint(10, 30)):
                ags = f"{key}{m + 1:03d}"
                own = []
                for _ in range(rng.randint(2, 8) if m == 0 else 1):
                    postcode += rng.randint(1, 7)
                    own.append(f"{postcode:05d}")
                if last is not None and rng.random() < 0.05:
                    own.append(last)
                last = own[0]
                municipalities[ags] = tuple(own)
                rows[ags] = (f"Gemeinde {ags}", tuple(own))
            weight = rng.uniform(1.5, 4.0) if kind == "kreisfreie Stadt" else rng.uniform(0.5, 2)
            if land in ("02", "11"):  # the city states are big
                weight = 20.0
            counties.append(
                Place(key, land, land_name, kind, municipalities, weight, len(counties))
            )
    assert postcode < 100_000, postcode
    return counties, Gazetteer.of(rows)


class Ids:
    """Deterministic UUIDs from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def pick_languages(rng: random.Random, k: int) -> list[str]:
    chosen: list[str] = []
    codes, weights = list(LANGUAGES), list(LANGUAGES.values())
    while len(chosen) < k:
        code = rng.choices(codes, weights)[0]
        if code not in chosen:
            chosen.append(code)
    return chosen


def service_areas(
    rng: random.Random, ids: Ids, home: Place, counties: list[Place]
) -> list[dict[str, Any]]:
    """Mostly municipalities of the home county, some whole counties, a few whole Länder;
    postcodes alone or beside municipality keys."""
    munis = list(home.municipalities)
    keys: list[str] = []
    postcodes: list[str] = []
    r = rng.random()
    if r < 0.55:
        keys = rng.sample(munis, min(len(munis), rng.choice((1, 1, 1, 2, 3, 5))))
    elif r < 0.80:
        keys = [home.key]
        if rng.random() < 0.15:  # and a neighbouring county
            keys.append(counties[(home.index + 1) % len(counties)].key)
    elif r < 0.83:
        keys = [home.land]
    else:
        for ags in rng.sample(munis, rng.randint(1, 3)):
            postcodes.append(rng.choice(home.municipalities[ags]))
    if keys and len(keys[0]) == 8 and rng.random() < 0.15:
        postcodes.append(rng.choice(home.municipalities[keys[0]]))
    areas = []
    for key in keys:
        name = {2: f"Land {key}", 5: f"Kreis {key}", 8: f"Gemeinde {key}"}[len(key)]
        uri = f"urn:de:ags:{key}"
        areas.append({"id": ids(), "name": name, "extent_type": "text", "extent": key, "uri": uri})
    for pc in dict.fromkeys(postcodes):
        uri = f"urn:de:plz:{pc}"
        areas.append(
            {"id": ids(), "name": f"PLZ {pc}", "extent_type": "text", "extent": pc, "uri": uri}
        )
    return areas


def make_service(
    rng: random.Random, ids: Ids, n: int, home: Place, counties: list[Place], org: str
) -> tuple[dict[str, Any], str]:
    offered = rng.sample(list(Need), rng.choice((1, 1, 2, 2, 3)))
    kind = KIND_OF[offered[0].root]
    agency_id = f"k{home.key}-{kind.value}-{n}"
    min_age = max_age = None
    r = rng.random()
    if Need.YOUTH_MIGRATION_COUNSELLING in offered or r < 0.04:
        min_age, max_age = 12, 27
    elif Need.ADULT_MIGRATION_COUNSELLING in offered or r < 0.10:
        min_age = 27 if Need.ADULT_MIGRATION_COUNSELLING in offered else 18
    elif r < 0.13:
        max_age = 17
    municipality = rng.choice(list(home.municipalities))
    locations = []
    virtual = rng.random() < 0.20
    physical = rng.random() < (0.6 if virtual else 0.97)
    if physical:
        location: dict[str, Any] = {
            "id": ids(),
            "location_type": "physical",
            "name": f"Dienststelle {agency_id}",
            "organization_id": org,
            "latitude": round(rng.uniform(47.3, 55.0), 5),
            "longitude": round(rng.uniform(5.9, 15.0), 5),
            "addresses": [
                {
                    "id": ids(),
                    "address_1": f"{rng.choice(STREETS)} {rng.randint(1, 120)}",
                    "city": f"Gemeinde {municipality}",
                    "state_province": home.land_name,
                    "postal_code": rng.choice(home.municipalities[municipality]),
                    "country": "DE",
                    "address_type": "physical",
                }
            ],
        }
        # Women's shelters: confidential; half of them come with an address and coordinates
        # anyway, which the import must withhold.
        if Need.VIOLENCE_PROTECTION in offered and rng.random() < 0.5:
            location |= {
                "name": "Schutzunterkunft (Adresse vertraulich)",
                "description": "Die Anschrift wird nur Betroffenen genannt.",
                "wegweiser": {"confidential": True},
            }
            if rng.random() < 0.5:
                for name in ("addresses", "latitude", "longitude", "organization_id"):
                    del location[name]
        locations.append(location)
    if virtual:
        locations.append(
            {
                "id": ids(),
                "location_type": "virtual",
                "name": "Telefon- und Videoberatung",
                "url": f"https://beispiel.example.org/{agency_id}",
            }
        )
    status = "temporarily closed" if rng.random() < 0.05 else "active"
    capacity = 0 if rng.random() < 0.12 else rng.randint(1, 20)
    service: dict[str, Any] = {
        "id": ids(),
        "organization_id": org,
        "name": f"{needs.LABELS[offered[0]].de} {home.kind} {home.key} ({n})",
        "description": ", ".join(needs.LABELS[need].de for need in offered)
        + ". Synthetische Benchmarkdaten.",
        "email": f"{agency_id}@example.org",
        "status": status,
        "languages": [
            {"id": ids(), "code": code} for code in pick_languages(rng, rng.randint(1, 6))
        ],
        "service_areas": service_areas(rng, ids, home, counties),
        "attributes": [
            {
                "id": ids(),
                "taxonomy_term_id": needs.term_id(need),
                "link_type": "need",
                "link_entity": "service",
            }
            for need in offered
        ],
        "service_at_locations": [{"id": ids(), "location": loc} for loc in locations],
        "wegweiser": {
            "agency_id": agency_id,
            "kind": kind.value,
            "referral": {"adapter": rng.choice(("nats", "nats", "nats", "webhook", "email"))},
            "capacity": capacity,
            "waiting_days": rng.choice((0, 0, 1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90)),
            "sample": True,
        },
    }
    if min_age is not None:
        service["minimum_age"] = min_age
    if max_age is not None:
        service["maximum_age"] = max_age
    return service, agency_id


def make_dataset(
    rng: random.Random, counties: list[Place], n_services: int
) -> tuple[dict[str, Any], Counter[str]]:
    ids = Ids(rng)
    weights = [c.weight for c in counties]
    organizations: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    shape: Counter[str] = Counter()
    for n, home in enumerate(rng.choices(counties, weights, k=n_services)):
        if not home.organizations or rng.random() < 0.35:
            org = ids()
            organizations.append(
                {
                    "id": org,
                    "name": f"Träger {len(organizations) + 1} ({home.kind} {home.key})",
                    "description": "Träger von Angeboten für Zugewanderte (synthetisch).",
                }
            )
            home.organizations.append(org)
        service, _ = make_service(rng, ids, n, home, counties, rng.choice(home.organizations))
        services.append(service)
        types = [s["location"]["location_type"] for s in service["service_at_locations"]]
        shape["virtual location"] += "virtual" in types
        shape["no physical location"] += "physical" not in types
        shape["confidential location"] += any(
            "wegweiser" in s["location"] for s in service["service_at_locations"]
        )
        shape["capacity 0"] += service["wegweiser"]["capacity"] == 0
        shape["temporarily closed"] += service["status"] != "active"
        shape["age limits"] += "minimum_age" in service or "maximum_age" in service
        lengths = Counter(
            len(a["extent"]) if "ags" in a["uri"] else 0 for a in service["service_areas"]
        )
        shape["areas: municipality"] += lengths[8] > 0
        shape["areas: county"] += lengths[5] > 0
        shape["areas: Land"] += lengths[2] > 0
        shape["areas: postcode"] += lengths[0] > 0
    dataset = {
        "version": "3.0",
        "profile": "https://openreferral.org/specification/3.0",
        "note": "Synthetic benchmark directory (bench/directory.py): keys, names and "
        "addresses are made up.",
        "organizations": organizations,
        "services": services,
    }
    return dataset, shape


def make_queries(rng: random.Random, counties: list[Place], n: int) -> list[tuple[str, Query]]:
    """Realistic questions: a need, 1-2 languages, mostly a municipality, sometimes only a
    postcode or no place at all, an age sometimes, mostly routine."""
    weights = [c.weight for c in counties]
    out = []
    for _ in range(n):
        county = rng.choices(counties, weights)[0]
        ags = rng.choice(list(county.municipalities))
        r = rng.random()
        place = "municipality" if r < 0.75 else "postcode" if r < 0.95 else "no place"
        query = Query(
            need=rng.choice(list(Need)),
            languages=tuple(pick_languages(rng, rng.choice((1, 1, 2)))),
            municipality=ags if place == "municipality" else None,
            postcode=rng.choice(county.municipalities[ags]) if place == "postcode" else None,
            age=rng.randint(8, 80) if rng.random() < 0.4 else None,
            urgency=rng.choices(list(Urgency), (70, 20, 10))[0],
        )
        out.append((place, query))
    return out


def machine() -> dict[str, Any]:
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", ".", ":!bench"], capture_output=True, text=True
    ).stdout.splitlines()
    return {
        **hardware.machine(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg": hardware.loadavg(),
        "commit": head.stdout.strip() or "(not a git checkout)",
        "uncommitted": [d[3:] for d in dirty],
    }


class GcPauses:
    """Times the garbage collector's full (generation 2) collections."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = perf_counter()
        else:
            self.ms.append((perf_counter() - self._start) * 1000)

    def figures(self) -> dict[str, float]:
        return {"full": len(self.ms), "total_ms": sum(self.ms), "max_ms": max(self.ms, default=0)}


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def step(label: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {label}", flush=True)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    r: dict[str, Any] = {}

    step("generating the dataset")
    start = perf_counter()
    counties, gazetteer = make_counties(rng)
    dataset, shape = make_dataset(rng, counties, args.services)
    path = tmp / "directory.json"
    path.write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
    r["generate_s"] = perf_counter() - start
    services = dataset["services"]
    records = len(dataset["organizations"]) + sum(
        1
        + len(s["languages"])
        + len(s["service_areas"])
        + len(s["attributes"])
        + sum(2 + len(sal["location"].get("addresses", [])) for sal in s["service_at_locations"])
        for s in services
    )
    r["dataset"] = {
        "counties": len(counties),
        "landkreise": sum(c.kind == "Landkreis" for c in counties),
        "kreisfreie_staedte": sum(c.kind != "Landkreis" for c in counties),
        "municipalities": len(gazetteer.municipalities),
        "postcodes": len({pc for m in gazetteer.municipalities.values() for pc in m.postcodes}),
        "organizations": len(dataset["organizations"]),
        "services": len(services),
        "hsds_records": records,
        "file_mib": path.stat().st_size / 2**20,
        "shape": {k: v / len(services) for k, v in sorted(shape.items())},
    }
    del dataset, services
    gc.collect()

    engine = make_engine(f"sqlite:///{tmp / 'directory.db'}")
    tables = [t.__table__ for t in store.TABLES]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(engine, tables=tables)

    step("first import")
    with Session(engine, expire_on_commit=False) as session:
        start = perf_counter()
        report = importer.import_file(session, path, gazetteer=gazetteer)
        if not report.ok:
            raise SystemExit("import failed:\n" + "\n".join(map(str, report.problems[:20])))
        session.commit()
        first_s = perf_counter() - start
        generation = store.generation(session)
    created = sum(report.changes.created.values())
    r["import"] = {
        "s": first_s,
        "records_created": created,
        "records_per_s": created / first_s,
        "services_per_s": r["dataset"]["services"] / first_s,
        "agencies": report.agencies,
        "withheld_addresses": report.withheld_addresses,
        "warnings": len(report.warnings),
        "db_mib": (tmp / "directory.db").stat().st_size / 2**20,
    }
    print(f"  {first_s:.1f} s, {report.summary()}", flush=True)
    del report
    gc.collect()

    if args.reimport_timeout > 0:
        step(f"second import of the same file (in a child, at most {args.reimport_timeout} s)")
        r["reimport"] = reimport(tmp, path, gazetteer, generation, args.reimport_timeout)
        print(f"  {r['reimport']}", flush=True)
    else:
        r["reimport"] = {"skipped": True}

    step("export")
    with Session(engine, expire_on_commit=False) as session:
        start = perf_counter()
        exported = importer.export(session)
        export_s = perf_counter() - start
    r["export"] = {
        "s": export_s,
        "services": len(exported["services"]),
        "mib": len(json.dumps(exported, ensure_ascii=False).encode()) / 2**20,
    }
    del exported
    gc.collect()

    step("loading agencies and building the index")
    with Session(engine, expire_on_commit=False) as session:
        start = perf_counter()
        agencies = store.all_agencies(session)
        load_s = perf_counter() - start
    engine.dispose()
    start = perf_counter()
    directory = Directory(agencies, gazetteer)
    index_s = perf_counter() - start
    r["index"] = {"agencies": len(directory), "load_s": load_s, "build_s": index_s}
    gc.collect()
    r["gc_tracked"] = len(gc.get_objects())
    if args.gc_freeze:
        gc.freeze()

    step(f"{args.queries} queries")
    queries = make_queries(rng, counties, args.queries + args.warmup)
    for _, query in queries[: args.warmup]:
        handlers.suggestions(directory.resolve(query, LIMIT), {})
    ms: dict[str, list[float]] = {}
    answer_ms: dict[str, list[float]] = {}
    considered: dict[str, list[int]] = {}
    candidates: list[int] = []
    excluded: list[int] = []
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    for place, query in queries[args.warmup :]:
        start = perf_counter()
        resolution = directory.resolve(query, LIMIT)
        resolved = perf_counter()
        handlers.suggestions(resolution, {})
        ms.setdefault(place, []).append((resolved - start) * 1000)
        answer_ms.setdefault(place, []).append((perf_counter() - start) * 1000)
        candidates.append(len(resolution.candidates))
        excluded.append(len(resolution.excluded))
        total = resolution.candidates_total + resolution.excluded_total
        considered.setdefault(place, []).append(total)
    gc.callbacks.remove(pauses)
    every = [v for values in ms.values() for v in values]
    r["resolution"] = {
        "queries": len(every),
        "warmup": args.warmup,
        "limit": LIMIT,
        "all": latency(every),
        "by_place": {
            place: latency(values) | {"considered": mean(considered[place])}
            for place, values in sorted(ms.items())
        },
        "answer_by_place": {place: latency(values) for place, values in sorted(answer_ms.items())},
        "candidates_mean": mean(candidates),
        "excluded_mean": mean(excluded),
        "no_candidate": sum(1 for n in candidates if n == 0) / len(candidates),
        "gc": pauses.figures(),
    }

    # The index must answer as a scan of every agency does; time that scan too, on a few. A
    # limited answer must be the unlimited one's first `LIMIT`, with the same counts.
    step(f"checking {args.check} queries against a full scan")
    scan_ms = []
    checked = queries[args.warmup : args.warmup + args.check]
    checked += [(p, q) for p, q in queries[args.warmup :] if p == "no place"][: args.check]
    for _, query in checked:
        start = perf_counter()
        full = resolve(query, agencies, gazetteer, LIMIT)
        scan_ms.append((perf_counter() - start) * 1000)
        if full != directory.resolve(query, LIMIT):
            raise SystemExit(f"index and full scan disagree on {query}")
        every_one = directory.resolve(query)
        if full != replace(
            every_one, candidates=every_one.candidates[:LIMIT], excluded=every_one.excluded[:LIMIT]
        ):
            raise SystemExit(f"the limited answer is not the first of the full one on {query}")
    r["scan"] = {"queries": len(scan_ms), "mean_ms": mean(scan_ms) if scan_ms else 0.0}
    r["peak_rss_gib"] = peak_rss_gib()
    return r


def _reimport(db: Path, path: Path, gazetteer: Gazetteer, generation: int, out: Any) -> None:
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine, expire_on_commit=False) as session:
        start = perf_counter()
        again = importer.import_file(session, path, gazetteer=gazetteer)
        session.commit()
        seconds = perf_counter() - start
        changed = not again.ok or again.changes.any or store.generation(session) != generation
    out.send({"s": seconds, "changed": changed, "summary": again.summary()})


def reimport(
    tmp: Path, path: Path, gazetteer: Gazetteer, generation: int, timeout: float
) -> dict[str, Any]:
    """Import the same file again, in a forked child so that it can be stopped at `timeout`
    (until 5dfbc30 `importer.merge` compared every claim with every record of its table, and a
    re-import of 50,000 services did not finish in 300 s)."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_reimport, args=(tmp / "directory.db", path, gazetteer, generation, send)
    )
    start = perf_counter()
    child.start()
    send.close()
    if receive.poll(timeout):
        result: dict[str, Any] = receive.recv()
        child.join()
        return result
    child.kill()
    child.join()
    return {"s": perf_counter() - start, "timed_out": True}


def latency(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": pct(values, 50),
        "p90_ms": pct(values, 90),
        "p99_ms": pct(values, 99),
        "max_ms": max(values),
    }


def report(r: dict[str, Any]) -> str:
    m, d, imp, again, idx, res = (
        r["machine"],
        r["dataset"],
        r["import"],
        r["reimport"],
        r["index"],
        r["resolution"],
    )

    def lat(x: dict[str, float]) -> str:
        return (
            f"p50 {x['p50_ms']:.2f}  p90 {x['p90_ms']:.2f}  p99 {x['p99_ms']:.2f}  "
            f"max {x['max_ms']:.2f} ms  (n={x['n']})"
        )

    if again.get("skipped"):
        again_text = "skipped (--reimport-timeout 0)"
    elif again.get("timed_out"):
        again_text = f"NOT FINISHED: stopped after {again['s']:.0f} s (--reimport-timeout)"
    else:
        verdict = "CHANGED SOMETHING" if again["changed"] else "changed nothing"
        again_text = f"{again['s']:.1f} s, {verdict} ({again['summary']})"
    shape = ", ".join(f"{k} {v:.0%}" for k, v in d["shape"].items())
    lines = [
        "== Wegweiser directory benchmark ==",
        f"machine     {m['cpu']}, {m['cpu_count']} CPUs, {m['ram_gib']} GiB RAM, "
        f"load avg {m['loadavg']} at start, {r['loadavg_end']} at end",
        f"software    Python {m['python']}, SQLite {m['sqlite']} (WAL, synchronous=NORMAL, "
        f"as the service's make_engine); commit {m['commit']}, "
        f"uncommitted outside bench/: {', '.join(m['uncommitted']) or '-'}",
        f"args        {r['args']}",
        f"dataset     {d['services']:,} services of {d['organizations']:,} organizations in "
        f"{d['counties']} counties ({d['landkreise']} Landkreise + {d['kreisfreie_staedte']} "
        f"kreisfreie Städte; synthetic keys, real counts per Land), "
        f"{d['municipalities']:,} municipalities, {d['postcodes']:,} postcodes; "
        f"{d['hsds_records']:,} HSDS records, {d['file_mib']:.1f} MiB JSON, "
        f"generated in {r['generate_s']:.1f} s",
        f"            {shape}",
        f"import      {imp['s']:.1f} s into a fresh SQLite file: "
        f"{imp['records_created']:,} records "
        f"({imp['records_per_s']:,.0f} records/s, {imp['services_per_s']:,.0f} services/s), "
        f"{imp['agencies']:,} agencies, {imp['withheld_addresses']} confidential addresses "
        f"withheld, {imp['warnings']} warnings; database {imp['db_mib']:.0f} MiB",
        f"re-import   {again_text}",
        f"export      {r['export']['s']:.1f} s ({r['export']['services']:,} services, "
        f"every entry validated; {r['export']['mib']:.1f} MiB as JSON)",
        f"index       {idx['agencies']:,} agencies loaded from the store in {idx['load_s']:.2f} s, "
        f"Directory built in {idx['build_s']:.2f} s",
        f"resolution  {lat(res['all'])}  after {res['warmup']} warm-up queries, "
        f"limit {res['limit']}",
    ]
    for place, x in res["by_place"].items():
        lines.append(f"  {place:<14}{lat(x)}, {x['considered']:,.0f} agencies considered")
    lines.append("  with the answer built as the contract Suggestions:")
    for place, x in res["answer_by_place"].items():
        lines.append(f"  {place:<14}{lat(x)}")
    lines += [
        f"            mean {res['candidates_mean']:.1f} candidates and "
        f"{res['excluded_mean']:.1f} exclusions listed per query; "
        f"{res['no_candidate']:.1%} of queries found no candidate",
        f"            {res['gc']['full']} full GC collections during the timed queries, "
        f"{res['gc']['total_ms']:.0f} ms in all, longest {res['gc']['max_ms']:.0f} ms "
        f"({r['gc_tracked']:,} objects tracked by the GC"
        f"{', all frozen (--gc-freeze)' if r['args']['gc_freeze'] else ''})",
        f"full scan   resolve(query, all agencies, limit): mean {r['scan']['mean_ms']:.1f} ms "
        f"over {r['scan']['queries']} queries, same answers as the index, and each the first "
        f"of its unlimited answer",
        f"memory      peak RSS {r['peak_rss_gib']:.2f} GiB",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--services", type=int, default=50_000)
    p.add_argument("--queries", type=int, default=2_000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--check", type=int, default=20, help="queries compared with a full scan")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--reimport-timeout",
        type=float,
        default=300.0,
        help="stop the second import after this many seconds; 0 skips it",
    )
    p.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() once the index is built, as the directory service does (default)",
    )
    p.add_argument(
        "--quick", action="store_true", help="5,000 services, 500 queries, re-import 60 s"
    )
    args = p.parse_args()
    if args.quick:
        args.services, args.queries, args.reimport_timeout = 5_000, 500, 60.0
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items() if k != "quick"},
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="wegweiser-bench-") as tmp:
        result.update(run(args, Path(tmp)))
    result["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = report(result)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"directory-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.txt"
    out.write_text(text + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
