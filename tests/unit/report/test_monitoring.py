"""`wegweiser report`'s use case over the real stores: the languages the directory's active
agencies offer, counted for the report beside those asked for."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlmodel import Session

from services.directory import store
from tests.support.databases import copied
from tests.support.directory import directory
from wegweiser.monitoring import MonitoringReport


def test_the_languages_offered_are_those_of_the_active_agencies(tmp_path: Path) -> None:
    sample = directory(tmp_path / "directory")
    agencies = sample.db.read_sync(store.all_agencies)
    closing = next(a for a in agencies if a.status == "active" and a.languages)

    def close(session: Session) -> None:  # one agency stops taking referrals
        row = session.get(store.AgencyRow, closing.id)
        assert row is not None
        row.record = {**row.record, "status": "inactive"}
        session.add(row)

    sample.db.run_sync(close)
    audit = copied("audit", tmp_path / "audit.db")
    offered = MonitoringReport(audit, sample.db, tmp_path / "ledger").languages_offered()
    expected = Counter(
        language
        for a in agencies
        if a.status == "active" and a.id != closing.id
        for language in a.languages
    )
    assert offered == dict(sorted(expected.items())) and offered
    assert list(offered) == sorted(offered)
