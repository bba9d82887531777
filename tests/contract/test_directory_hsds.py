"""The directory's HSDS import and export, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from schemas.vocabulary import Need
from services.directory import importer, needs, store
from services.directory.hsds.schema import check
from services.directory.sample import SAMPLE_PATH
from tests.support.databases import service_database
from tests.support.directory import CANARY_POSTCODE, CANARY_STREET, confidential_sample
from wegweiser.platform.db import Database

EXAMPLES = Path(importer.__file__).parents[2] / "schemas" / "hsds" / "examples"


@pytest.fixture
def db(database_url: str):
    database = service_database("directory", database_url)
    database.migrate()
    yield database
    database.dispose()


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: Any, name: str = "directory.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def import_(db: Database, path: Path, kind: str | None = None) -> importer.Report:
    return db.run_sync(lambda s: importer.import_file(s, path, kind))


def snapshot(db: Database) -> dict[str, Any]:
    """Everything the directory stores, for before/after comparisons."""
    return db.run_sync(
        lambda s: {
            "records": {(r.kind, r.id): r.record for r in s.exec(select(store.HsdsRow))},
            "agencies": {a.id: a.record for a in s.exec(select(store.AgencyRow))},
            "generation": store.generation(s),
        }
    )


def validate_export(document: dict[str, Any]) -> list[str]:
    kinds = {
        "organizations": "organization",
        "services": "service",
        "taxonomies": "taxonomy",
        "taxonomy_terms": "taxonomy_term",
    }
    return [
        str(problem)
        for name, kind in kinds.items()
        for index, entry in enumerate(document[name])
        for problem in check(kind, entry, f"{name}[{index}]")
    ]


def test_the_sample_directory_imports_and_its_export_validates_against_hsds(db):
    report = import_(db, SAMPLE_PATH)
    assert report.ok, report.problems
    assert report.agencies == 32
    document = db.run_sync(importer.export)
    assert len(document["services"]) == 32 and len(document["taxonomy_terms"]) == 2 * len(Need)
    assert validate_export(document) == []
    agencies = db.run_sync(store.all_agencies)
    assert {a.id[:3] for a in agencies} == {"lup", "oa-"}
    assert all(a.sample for a in agencies)


def test_importing_the_same_file_twice_changes_nothing(db):
    assert import_(db, SAMPLE_PATH).ok
    before = snapshot(db)
    again = import_(db, SAMPLE_PATH)
    assert again.ok and not again.changes.any
    assert sum(again.changes.unchanged.values()) == len(before["records"])
    assert snapshot(db) == before


def test_an_export_imports_back_without_any_change(db, tmp_path):
    assert import_(db, SAMPLE_PATH).ok
    before = snapshot(db)
    exported = write(tmp_path, db.run_sync(importer.export), "export.json")
    report = import_(db, exported)
    assert report.ok, report.problems
    assert not report.changes.any
    assert snapshot(db) == before


def test_a_changed_file_updates_in_place_and_drops_what_a_service_no_longer_lists(db, tmp_path):
    assert import_(db, SAMPLE_PATH).ok
    data = sample()
    service = next(s for s in data["services"] if s["wegweiser"]["agency_id"] == "lup-mbe-parchim")
    service["name"] = "Migrationsberatung Parchim (neuer Name)"
    dropped = service["languages"].pop()
    report = import_(db, write(tmp_path, data))
    assert report.ok, report.problems
    assert report.changes.updated == {"service": 1}
    assert report.changes.removed == {"language": 1}
    assert not report.changes.created
    agency = db.run_sync(lambda s: store.get(s, "lup-mbe-parchim"))
    assert agency.name == "Migrationsberatung Parchim (neuer Name)"
    assert dropped["code"] not in agency.languages
    assert len(db.run_sync(store.all_agencies)) == 32


def stamps(db: Database) -> dict[str, datetime]:
    """Each stored service's `last_modified`, where it has one."""
    records = snapshot(db)["records"]
    return {
        record_id: datetime.fromisoformat(record["last_modified"])
        for (kind, record_id), record in records.items()
        if kind == "service" and "last_modified" in record
    }


def test_each_service_carries_when_the_directory_last_changed_it(db, tmp_path):
    """What `modified_after` compares with: the time of the import that changed a service or
    anything nested in it, kept by the imports that change neither; the publisher's own
    time where it gives one."""
    start = datetime.now(UTC)
    assert import_(db, SAMPLE_PATH).ok
    first = stamps(db)
    assert len(first) == 32 and all(start <= t <= datetime.now(UTC) for t in first.values())
    assert import_(db, SAMPLE_PATH).ok and stamps(db) == first

    data = sample()
    nested = next(s for s in data["services"] if s["wegweiser"]["agency_id"] == "lup-mbe-parchim")
    nested["languages"].pop()  # only something nested in the service changes
    given = data["services"][0]
    given["last_modified"] = "2026-03-01T08:00:00Z"
    assert import_(db, write(tmp_path, data)).ok
    second = stamps(db)
    assert second[nested["id"]] > first[nested["id"]]
    assert second[given["id"]] == datetime(2026, 3, 1, 8, tzinfo=UTC)
    untouched = set(first) - {nested["id"], given["id"]}
    assert {i: second[i] for i in untouched} == {i: first[i] for i in untouched}


def test_a_service_stored_before_it_had_a_time_gets_one_at_the_next_import(db):
    assert import_(db, SAMPLE_PATH).ok
    first = stamps(db)
    kept = sorted(first)[0]

    def forget_its_time(session: Session) -> None:  # as stored before services were stamped
        row = session.get(store.HsdsRow, ("service", kept))
        assert row is not None
        row.record = {k: v for k, v in row.record.items() if k != "last_modified"}
        session.add(row)

    db.run_sync(forget_its_time)
    assert kept not in stamps(db)
    assert import_(db, SAMPLE_PATH).ok
    again = stamps(db)
    assert again[kept] > first[kept]
    assert {i: t for i, t in again.items() if i != kept} == {
        i: t for i, t in first.items() if i != kept
    }


def test_an_invalid_file_reports_every_bad_record_with_its_path_and_changes_nothing(db, tmp_path):
    assert import_(db, SAMPLE_PATH).ok
    before = snapshot(db)
    data = sample()
    data["services"][0]["name"] = "Changed, but the file is invalid"
    data["services"][3]["status"] = "open"
    data["services"][5]["languages"][0]["id"] = "not-a-uuid"
    del data["organizations"][2]["description"]
    data["services"][7]["wegweiser"]["capacity"] = -1
    data["services"][8]["service_areas"][0]["uri"] = "urn:de:ags:123"
    report = import_(db, write(tmp_path, data))
    assert not report.ok
    where = sorted(p.where for p in report.problems)
    assert where == sorted(
        [
            "$.services[3].status",
            "$.services[5].languages[0].id",
            "$.organizations[2]",
            "$.services[7].wegweiser.capacity",
            "$.services[8].service_areas[0].uri",
        ]
    ), report.problems
    assert "'open' is not one of" in next(p.reason for p in report.problems if "status" in p.where)
    assert snapshot(db) == before


def test_a_file_that_is_not_json_is_refused_and_changes_nothing(db, tmp_path):
    before = snapshot(db)
    path = tmp_path / "broken.json"
    path.write_text('{"services": [', encoding="utf-8")
    report = import_(db, path)
    assert not report.ok and "not JSON" in report.problems[0].reason
    assert snapshot(db) == before


def test_two_services_claiming_one_agency_id_are_refused(db, tmp_path):
    data = sample()
    data["services"][1]["wegweiser"]["agency_id"] = data["services"][0]["wegweiser"]["agency_id"]
    report = import_(db, write(tmp_path, data))
    assert any("is already service" in p.reason for p in report.problems)
    assert snapshot(db)["records"] == {}


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("*.json")), ids=lambda name: name
)
def test_every_official_hsds_example_imports_cleanly(db, example):
    report = import_(db, EXAMPLES / example)
    assert report.ok, report.problems
    document = db.run_sync(importer.export)
    assert validate_export(document) == []


def test_the_tabular_csv_package_imports_like_its_json_form(db, tmp_path):
    tables = json.loads((EXAMPLES / "tabular.json").read_text(encoding="utf-8"))
    package = tmp_path / "package"
    package.mkdir()
    for name, rows in tables.items():
        with (package / name).open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    report = import_(db, package)
    assert report.ok, report.problems
    from_csv = snapshot(db)["records"]
    assert sum(report.changes.created.values()) == len(from_csv)
    assert {kind for kind, _ in from_csv} >= {"organization", "service", "location", "address"}
    service = next(r for (kind, _), r in from_csv.items() if kind == "service")
    assert service["minimum_age"] == 12 and isinstance(service["minimum_age"], int)
    again = import_(db, EXAMPLES / "tabular.json")
    assert again.ok and not again.changes.any, again.changes


def test_a_bad_csv_cell_is_reported_by_file_line_and_column(db, tmp_path):
    package = tmp_path / "package"
    package.mkdir()
    (package / "services.csv").write_text(
        "id,name,status,minimum_age\n"
        "ac148810-d857-441c-9679-408f346de14b,Beratung,active,12\n"
        "bd148810-d857-441c-9679-408f346de14b,Beratung,active,zwölf\n",
        encoding="utf-8",
    )
    report = import_(db, package)
    assert [str(p) for p in report.problems] == [
        "services.csv line 3.minimum_age: 'zwölf' is not of type 'number'"
    ]
    assert snapshot(db)["records"] == {}


def test_a_confidential_location_keeps_no_address_in_the_store_or_the_export(db, tmp_path):
    report = import_(db, write(tmp_path, confidential_sample()))
    assert report.ok and report.withheld_addresses == 1
    state = snapshot(db)
    stored = json.dumps([list(state["records"].values()), state["agencies"]], ensure_ascii=False)
    exported = json.dumps(db.run_sync(importer.export), ensure_ascii=False)
    for text in (stored, exported):
        assert CANARY_STREET not in text and CANARY_POSTCODE not in text and "53.3301" not in text
    # positive control: the same address on an ordinary location is kept and exported
    data = confidential_sample()
    shelter = next(s for s in data["services"] if s["wegweiser"]["agency_id"] == "lup-frauenhaus")
    del shelter["service_at_locations"][0]["location"]["wegweiser"]
    assert import_(db, write(tmp_path, data)).ok
    assert CANARY_STREET in json.dumps(db.run_sync(importer.export), ensure_ascii=False)


def test_the_needs_taxonomy_is_part_of_every_directory(db):
    report = import_(db, EXAMPLES / "taxonomy.json")
    assert report.ok
    terms = db.run_sync(importer.export)["taxonomy_terms"]
    codes = {(t["code"], t["language"]) for t in terms if t.get("taxonomy") == "Wegweiser"}
    assert codes == {(n.value, lang) for n in Need for lang in needs.LANGUAGES}
