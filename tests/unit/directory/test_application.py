"""The directory's use cases as the bootstrap wires them, on a real store and a real key
folder, without a broker: seeding at start, the agencies' keys on file, the office's
questions and the offices' public keys for the read API."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.queries import CheckPlace, LookupAgency, ResolveAgencies
from schemas.vocabulary import Need
from services.directory import store
from services.directory.application import AgencyDirectory
from services.directory.sample import SAMPLE_PATH
from tests.support.databases import migrated
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing

SAMPLE = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))["services"]
AGENCY = "lup-mbe-ludwigslust"
SUBJECT = "wwq.directory.resolve"
LUDWIGSLUST = "13076090"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with migrated("directory", f"sqlite:///{tmp_path / 'directory.db'}") as database:
        yield database


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing(tmp_path / "keys")


async def test_the_sample_fills_an_empty_store_once(db: Database, ring: KeyRing) -> None:
    directory = AgencyDirectory(db, ring)
    await directory.seed(SAMPLE_PATH)
    assert await db.read(store.count) == len(SAMPLE)
    await directory.seed(SAMPLE_PATH)  # a restart: the store is no longer empty
    assert await db.read(store.count) == len(SAMPLE)
    nats = {
        s["wegweiser"]["agency_id"]
        for s in SAMPLE
        if s["wegweiser"]["referral"]["adapter"] == "nats"
    }
    assert set(await directory.nats_agencies()) == nats
    assert "oa-rechtshilfe-auslaenderinnen" not in nats  # an e-mail agency: no consumer


async def test_without_a_sample_the_store_stays_empty(db: Database, ring: KeyRing) -> None:
    ring.ensure_agency(AGENCY)
    await AgencyDirectory(db, ring).seed(None)
    assert await db.read(store.count) == 0
    assert await AgencyDirectory(db, ring).nats_agencies() == []


async def test_an_agency_key_on_file_is_published_and_answered_with_the_agency(
    db: Database, ring: KeyRing
) -> None:
    key = ring.ensure_agency(AGENCY)
    directory = AgencyDirectory(db, ring)
    await directory.seed(SAMPLE_PATH)

    asked = ResolveAgencies(need=Need.MIGRATION_COUNSELLING, municipality=LUDWIGSLUST)
    found = await db.read(lambda s: directory.resolve(s, asked, SUBJECT))
    cards = {c.agency.agency_id: c.agency for c in found.candidates}
    published = cards[AGENCY].public_key
    assert published is not None and published["kid"] == key.thumbprint()
    looked_up = await db.read(lambda s: directory.lookup(s, LookupAgency(agency_id=AGENCY), ""))
    assert looked_up.agency is not None and looked_up.agency.agency_id == AGENCY


async def test_an_answer_lists_at_most_the_limit_and_counts_every_agency(
    db: Database, ring: KeyRing
) -> None:
    directory = AgencyDirectory(db, ring)
    await directory.seed(SAMPLE_PATH)
    nationwide = ResolveAgencies(need=Need.MIGRATION_COUNSELLING, languages=("de",), age=30)
    full = await db.read(
        lambda s: directory.resolve(s, nationwide.model_copy(update={"limit": 1000}), SUBJECT)
    )
    cut = await db.read(
        lambda s: directory.resolve(s, nationwide.model_copy(update={"limit": 1}), SUBJECT)
    )
    assert len(full.candidates) > 1 and len(full.excluded) > 1
    assert (cut.candidates, cut.excluded) == (full.candidates[:1], full.excluded[:1])
    assert (cut.candidates_total, cut.excluded_total) == (len(full.candidates), len(full.excluded))
    assert cut.exclusion_counts() == full.exclusion_counts()
    listed = Counter(r.code for e in full.excluded for r in e.reasons)
    assert {x.code: x.agencies for x in cut.exclusion_counts()} == listed


async def test_a_place_is_checked_against_the_gazetteer(db: Database, ring: KeyRing) -> None:
    directory = AgencyDirectory(db, ring)
    known = await db.read(
        lambda s: directory.check_place(s, CheckPlace(municipality=LUDWIGSLUST), "")
    )
    unknown = await db.read(
        lambda s: directory.check_place(s, CheckPlace(municipality="01001000"), "")
    )
    assert known.municipality_known and known.municipality_name == "Ludwigslust"
    assert unknown.municipality_known is False


def test_the_read_api_gives_each_offices_public_keys_and_nothing_private(
    db: Database, ring: KeyRing
) -> None:
    signing = ring.office_signing("office-1")
    sealing = ring.office_sealing("office-1")
    given = AgencyDirectory(db, ring).office_keys()
    assert given["office_keys"] == {"office-1": json.loads(signing.export_public())}
    assert given["office_sealing_keys"] == {"office-1": json.loads(sealing.export_public())}
    assert all("d" not in key for group in given.values() for key in group.values())


async def test_an_agency_s_keys_are_those_on_file_and_an_unknown_agency_has_none(
    db: Database, ring: KeyRing
) -> None:
    ring.ensure_agency(AGENCY)
    directory = AgencyDirectory(db, ring)
    await directory.seed(SAMPLE_PATH)
    published = await directory.keys_of(AGENCY)
    assert published is not None
    (key,) = published["keys"]
    assert key["kid"] and key["use"] == "enc" and "d" not in key  # public only
    assert await directory.keys_of("no-such-agency") is None
    assert await directory.keys_of("lup-iq-anerkennung") == {"keys": []}  # known, no key yet
