"""The monitoring report over simulated networks, made with the real event models and kept
as the audit log keeps them (its metadata allow-list): every figure against a count made
independently from what was simulated, the protection of every published table, the CSV
against its own Data Package, and the HTML in both languages."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from frictionless import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.vocabulary import AgencyKind
from services.report import figures as fig
from services.report import render
from services.report.figures import BadPeriod, Period
from services.report.protection import Protected
from services.report.report import Part, Report, _part, make
from tests.support.network import entries, simulate

YEAR = Period(date(2026, 1, 1), date(2026, 12, 31))
START = datetime(2025, 1, 1, tzinfo=UTC)  # two years: this one and the one before


@pytest.fixture(scope="module")
def network():
    events, truth = simulate(2500, START, days=730, seed=7)
    return list(entries(events)), truth


def table(part: Part, name: str) -> Protected[str]:
    found = part.table(name)
    assert found is not None, name
    return found.protected


def published(report: Report, name: str) -> dict[tuple[str, str], int | None]:
    shown = table(report.current, name)
    return {(r, c): shown.cell(r, c) for r in shown.rows for c in shown.columns}


def in_year(at: datetime, period: Period = YEAR) -> bool:
    return period.holds(at)


def test_every_figure_is_the_count_made_from_what_was_simulated(network) -> None:
    log, truth = network
    report = make(log, YEAR, k=3)
    referrals = [r for r in truth.referrals if in_year(r["offered"])]
    expected = Counter((r["kind"], r["fate"]) for r in referrals)
    shown = published(report, "referrals-by-kind")
    assert {key: n for key, n in shown.items() if n} == {
        key: n for key, n in expected.items() if key in shown and shown[key] is not None
    }
    assert table(report.current, "referrals-by-kind").total() == len(referrals)
    reasons = Counter(
        (r["reason"], "declined" if r["fate"] == "declined" else "failed")
        for r in referrals
        if r["fate"] in ("declined", "failed")
    )
    for key, n in published(report, "declines-and-failures-by-reason").items():
        assert n is None or n == reasons.get(key, 0)
    overdue = Counter(
        (r["agency"], "escalated" if r["escalated"] else "reminded-only")
        for r in referrals
        if r["reminded"]
    )
    for key, n in published(report, "overdue-by-agency").items():
        assert n is None or n == overdue.get(key, 0)
    unmet = Counter((u["need"], u["county"]) for u in truth.unmet if in_year(u["at"]))
    for key, n in published(report, "unmet-needs-by-area").items():
        assert n is None or n == unmet.get(key, 0)
    languages = Counter((u["need"], u["language"]) for u in truth.unmet if in_year(u["at"]))
    for key, n in published(report, "unmet-needs-by-language").items():
        assert n is None or n == languages.get(key, 0)
    asked = Counter(r["language"] for r in truth.requests if in_year(r["at"]))
    by_language = report.current.table("requests-by-language")
    assert by_language is not None
    for language in by_language.protected.rows:
        total = by_language.protected.row_total(language)
        assert total is None or total == asked[language]
    withdrawn = Counter(w["by"] for w in truth.withdrawals if in_year(w["at"]))
    for (_, by), n in published(report, "withdrawals").items():
        assert n is None or n == withdrawn.get(by, 0)
    ack = [r["ack_hours"] for r in referrals if r["kind"] == "legal-aid" and r["ack_hours"]]
    times = next(t for t in report.current.times if t.name == "time-to-acknowledgement")
    median, p90 = times.groups["legal-aid"] or (None, None)
    assert median == pytest.approx(statistics.median(ack))
    assert p90 == pytest.approx(statistics.quantiles(ack, n=10, method="inclusive")[-1])
    before = [r for r in truth.referrals if in_year(r["offered"], YEAR.before())]
    assert table(report.previous, "referrals-by-kind").total() == len(before)


def test_a_county_is_counted_alone(network) -> None:
    log, truth = network
    report = make(log, YEAR, county="09780", k=3)
    mine = [r for r in truth.referrals if in_year(r["offered"]) and r["county"] == "09780"]
    assert table(report.current, "referrals-by-kind").total() == len(mine)
    unmet = table(report.current, "unmet-needs-by-area")
    assert all(str(c).startswith("09780") for c in unmet.columns)  # its municipalities


def lines_reveal_nothing_small(report: Report) -> None:
    """Every published count is 0 or at least k; every line whose total is published hides
    nothing, or at least two counts adding up to k or more."""
    k = report.k
    for part in (report.current, report.previous):
        for table in part.tables:
            t = table.protected
            lines = [
                ([t.cell(r, c) for c in t.columns], [t.cells.get((r, c), 0) for c in t.columns],
                 t.row_total(r))
                for r in t.rows
            ] + [
                ([t.cell(r, c) for r in t.rows], [t.cells.get((r, c), 0) for r in t.rows],
                 t.column_total(c))
                for c in t.columns
            ]  # fmt: skip
            for shown, true, total in lines:
                assert all(n is None or n == 0 or n >= k for n in shown), table.name
                assert total is None or total == 0 or total >= k, table.name
                hidden = [v for n, v in zip(shown, true, strict=True) if n is None and v > 0]
                if total is not None:
                    assert not hidden or (len(hidden) >= 2 and sum(hidden) >= k), table.name
        for times in part.times:
            assert all(v is None or len(times.name) > 0 for v in times.groups.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 60), seed=st.integers(0, 10_000), k=st.integers(3, 6))
def test_no_published_figure_of_a_small_random_network_reveals_a_group_under_k(size, seed, k):
    events, _ = simulate(size, START, days=730, seed=seed, agencies=3)
    lines_reveal_nothing_small(make(entries(events), YEAR, k=k))


def test_the_csv_is_valid_against_its_own_data_package(network, tmp_path: Path) -> None:
    log, _ = network
    written = render.write(make(log, YEAR, offered={"ar": 3, "de": 12}), "csv", tmp_path)
    assert {p.name for p in written} == {
        "counts.csv", "timings.csv", "languages-offered.csv", "datapackage.json",
    }  # fmt: skip
    report = validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    described = json.loads((tmp_path / "datapackage.json").read_text())
    for resource in described["resources"]:
        assert all(f["description"] for f in resource["schema"]["fields"])


def test_the_html_is_one_offline_file_in_german_and_in_english(network, tmp_path: Path) -> None:
    log, _ = network
    german, english = render.write(make(log, YEAR, offered={"ar": 3}), "html", tmp_path)
    de, en = german.read_text(), english.read_text()
    assert '<html lang="de">' in de and "Monitoringbericht" in de and "Rechtsberatung" in de
    assert "Sprachen: gefragt und von Stellen angeboten" in de
    assert '<html lang="en">' in en and "Monitoring report" in en
    assert de.count("<svg") >= 3  # the charts, inline
    assert not re.search(r'(src|href)="(https?:)?//', de)  # nothing to load from elsewhere
    assert "<script" not in de and "<link" not in de  # nothing to run


def test_a_period_without_data_says_so_and_a_reversed_one_is_refused() -> None:
    empty = make([], YEAR)
    assert empty.current.as_dict()["empty"] is True
    assert "keine Daten" in render.page(empty, "de")
    with pytest.raises(BadPeriod, match="ends"):
        Period(date(2026, 12, 31), date(2026, 1, 1))


def test_every_reason_code_has_its_words_in_both_languages() -> None:
    from schemas.vocabulary import ReasonCode

    assert {code.value for code in ReasonCode} <= set(render.WORDS)


@pytest.mark.parametrize(
    ("first", "last", "said"),
    [
        (date(2026, 12, 31), date(2026, 1, 1), "ends"),
        (date(1000, 1, 1), date(2000, 1, 1), "between"),
        (date(2001, 1, 1), date(2099, 1, 1), "at most 10 years"),
    ],
)
def test_a_period_that_cannot_be_is_refused(first: date, last: date, said: str) -> None:
    with pytest.raises(BadPeriod, match=said):
        Period(first, last)


def test_with_differential_privacy_the_counts_carry_noise_and_the_budget_is_the_librarys(
    network,
) -> None:
    log, truth = network
    report = make(log, YEAR, epsilon=1.0)
    assert report.protection()["method"] == "differential-privacy"
    assert report.spent is not None and report.spent.total == pytest.approx(1.0)
    names = [t.name for t in report.current.tables]
    assert "overdue-by-agency" not in names and "unmet-needs-by-language" not in names
    assert report.current.times == []  # no times under this method
    kinds = report.current.table("referrals-by-kind")
    assert kinds is not None
    assert set(kinds.protected.rows) == {k.value for k in AgencyKind}  # public rows, all
    referrals = [r for r in truth.referrals if in_year(r["offered"])]
    exact = Counter((r["kind"], r["fate"]) for r in referrals)
    noisy = {key: kinds.protected.cells[key] for key in kinds.protected.cells}
    assert all(n >= 0 and isinstance(n, int) for n in noisy.values())
    # per table epsilon 0.2: scale 5, so |noise| > 60 has a chance of about e^-12 per cell
    assert all(abs(noisy.get(key, 0) - n) <= 60 for key, n in exact.items())
    assert noisy != {key: exact.get(key, 0) for key in noisy}  # it is not the exact count
    assert "Differential Privacy" in render.page(report, "de")


def test_the_cli_records_the_budget_each_private_report_spent(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wegweiser.cli import app

    env = {"WEGWEISER_DATA_DIR": str(tmp_path / "data")}
    args = ["report", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "json"]
    for _ in range(2):
        done = CliRunner().invoke(
            app, [*args, "--out", str(tmp_path / "out"), "--privacy", "dp", "--epsilon", "0.5"],
            env=env,
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        assert "spent epsilon 0.5" in done.output
    ledger = (tmp_path / "data" / "report" / "privacy-budget.jsonl").read_text().splitlines()
    assert [json.loads(line)["epsilon"] for line in ledger] == [0.5, 0.5]


def test_the_report_from_the_audit_store_is_the_report_from_its_allow_list(
    tmp_path: Path,
) -> None:
    """Through the real store: every event recorded by the audit's recorder (its ledger, its
    entries as stored), then the report made from the entries streamed from the store in
    chunks, as the CLI does."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.audit import store
    from services.audit.recorder import Recorder
    from tests.support.databases import service_database

    events, _ = simulate(300, START, days=730, seed=11)
    db = service_database("audit", f"sqlite:///{tmp_path / 'audit.db'}")
    db.migrate()
    recorder = Recorder(Ed25519PrivateKey.generate())

    def record_all(session) -> None:
        recorder.load(session)
        for sequence, (subject, event) in enumerate(events, start=1):
            recorder.record(session, subject, json.dumps(event).encode(), sequence)

    db.run_sync(record_all)
    assert len(db.read_sync(store.all_entries)) == len(events)
    from_store = db.read_sync(lambda s: make(store.stream_entries(s, chunk=50), YEAR, k=3))
    db.dispose()
    from_list = make(entries(events), YEAR, k=3)
    assert from_store.current.as_dict() == from_list.current.as_dict()
    assert (table(from_store.current, "referrals-by-kind").total() or 0) > 0


def test_counts_two_tables_share_are_suppressed_in_both() -> None:
    """The declined referrals are a column of the table by kind and of the table by reason:
    suppressed in one, published in the other, they would give away the expired ones."""
    from services.report import figures as fig
    from services.report.report import _part

    by_kind = fig.Counts(
        "referrals-by-kind",
        ["legal-aid"],
        list(fig.OUTCOMES),
        {("legal-aid", "completed"): 20, ("legal-aid", "declined"): 6, ("legal-aid", "expired"): 3},
    )
    by_reason = fig.Counts(
        "declines-and-failures-by-reason",
        ["no-capacity"],
        ["declined", "failed"],
        {("no-capacity", "declined"): 6},
    )
    part = _part(fig.Figures(YEAR, None, [by_kind, by_reason], []), 5)
    kinds, reasons = (
        table(part, "referrals-by-kind"),
        table(part, "declines-and-failures-by-reason"),
    )
    assert kinds.cell("legal-aid", "expired") is None
    declined_known = (
        kinds.cell("legal-aid", "declined") is not None
        or reasons.cell("no-capacity", "declined") is not None
        or reasons.column_total("declined") is not None
    )
    # expired = row total - completed - declined: never all three known
    assert not (
        kinds.row_total("legal-aid") is not None
        and kinds.cell("legal-aid", "completed") is not None
        and declined_known
    )


def test_shares_are_given_only_where_the_counts_behind_them_are_published(network) -> None:
    log, truth = network
    report = make(log, YEAR, k=3)
    kinds = report.current.table("referrals-by-kind")
    assert kinds is not None
    shares = kinds.shares(3)
    referrals = [r for r in truth.referrals if in_year(r["offered"])]
    for kind, of_kind in shares.items():
        mine = [r for r in referrals if r["kind"] == kind]
        done = sum(1 for r in mine if r["fate"] == "completed")
        assert of_kind["completed"] == pytest.approx(done / len(mine), abs=0.001)
    small = fig.Counts(
        "referrals-by-kind", ["legal-aid"], list(fig.OUTCOMES),
        {("legal-aid", "completed"): 6, ("legal-aid", "declined"): 2},
    )  # fmt: skip
    part = _part(fig.Figures(YEAR, None, [small], []), 5)
    hidden = table(part, "referrals-by-kind")
    assert hidden.cell("legal-aid", "declined") is None
    shown = part.table("referrals-by-kind")
    assert shown is not None and "acknowledged" not in shown.shares(5).get("legal-aid", {})
    german = render.page(report, "de")
    assert "Anteile der Vermittlungen je Art der Stelle" in german
