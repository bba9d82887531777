"""The report written out: JSON; CSV with a Frictionless Data Package describing every column
(ready for an open-data portal); or one HTML file per language (German, English) with its
charts inline as SVG (matplotlib), readable offline."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.vocabulary import AgencyKind, Need
from services.consent import texts
from services.consent.texts import PersonLanguage
from services.report.protection import Protected
from services.report.report import SHARES, Part, Report, Table, Times

FORMATS = ("html", "csv", "json")
LANGUAGES = ("de", "en")

TITLES: dict[str, tuple[str, str]] = {
    "referrals-by-kind": (
        "Vermittlungen nach Art der Stelle und Stand",
        "Referrals by kind of agency and where they stand",
    ),
    "declines-and-failures-by-reason": (
        "Ablehnungen und Abbrüche nach Grund",
        "Declines and failures by reason",
    ),
    "overdue-by-agency": (
        "Erinnerungen und Eskalationen nach Stelle",
        "Reminders and escalations by agency",
    ),
    "unmet-needs-by-area": (
        "Ungedeckte Bedarfe nach Bedarf und Ort",
        "Unmet needs by need and place",
    ),
    "unmet-needs-by-need": ("Ungedeckte Bedarfe nach Bedarf", "Unmet needs by need"),
    "unmet-needs-by-language": (
        "Ungedeckte Bedarfe nach Bedarf und erster Sprache",
        "Unmet needs by need and first language",
    ),
    "shares": (
        "Anteile der Vermittlungen je Art der Stelle",
        "Shares of the referrals by kind of agency",
    ),
    "requests-by-language": ("Anfragen nach erster Sprache", "Requests by first language"),
    "languages-offered": (
        "Sprachen: gefragt und von Stellen angeboten",
        "Languages asked for and offered by agencies",
    ),
    "withdrawals": ("Widerrufe der Einwilligung", "Consents withdrawn"),
    "deletions": ("Löschungen nach einem Widerruf", "Deletions after a withdrawal"),
    "time-to-acknowledgement": (
        "Zeit bis zur Empfangsbestätigung (Stunden)",
        "Time to acknowledgement (hours)",
    ),
    "time-to-acceptance": ("Zeit bis zur Annahme (Stunden)", "Time to acceptance (hours)"),
    "time-to-deletion": (
        "Zeit bis zur bestätigten Löschung (Stunden)",
        "Time to a confirmed deletion (hours)",
    ),
}
"""Each table's title: (German, English)."""

WORDS: dict[str, tuple[str, str]] = {
    "open": ("offen", "open"),
    "taken-on": ("angenommen", "taken on"),
    "completed": ("abgeschlossen", "completed"),
    "declined": ("abgelehnt", "declined"),
    "failed": ("abgebrochen", "failed"),
    "expired": ("verfallen", "expired"),
    "withdrawn": ("zurückgezogen", "withdrawn"),
    "forwarded": ("weitergeleitet", "forwarded"),
    "reminded-only": ("erinnert", "reminded"),
    "escalated": ("eskaliert", "escalated"),
    "office": ("durch die Beratungsstelle", "by the office"),
    "person": ("durch die Person selbst", "by the person"),
    "confirmed": ("bestätigt", "confirmed"),
    "not-confirmed": ("nicht bestätigt", "not confirmed"),
    "withdrawals": ("Widerrufe", "withdrawals"),
    "acknowledged": ("gesehen (bestätigt oder beantwortet)", "seen (acknowledged or answered)"),
    "accepted": ("angenommen", "accepted"),
    "needs-met": ("jeder Bedarf fand eine Stelle", "every need found an agency"),
    "need-unmet": ("ein Bedarf blieb ungedeckt", "a need was left unmet"),
    "asked": ("Anfragen (erste Sprache)", "requests (first language)"),
    "agencies": ("Stellen, die sie sprechen", "agencies that speak it"),
    "deletions": ("Löschungen", "deletions"),
    "total": ("Summe", "total"),
    "all": ("alle", "all"),
    "unknown": ("unbekannt", "unknown"),
    "median": ("Median", "median"),
    "no-capacity": ("keine freien Plätze", "no capacity"),
    "not-eligible": ("nicht anspruchsberechtigt", "not eligible"),
    "out-of-area": ("außerhalb des Einzugsgebiets", "out of area"),
    "language-not-offered": ("Sprache nicht angeboten", "language not offered"),
    "could-not-contact": ("nicht erreichbar", "could not contact"),
    "person-declined": ("von der Person abgelehnt", "person declined"),
    "referred-elsewhere": ("anderswo vermittelt", "referred elsewhere"),
    "missing-documents": ("Unterlagen fehlen", "missing documents"),
    "duplicate": ("doppelt", "duplicate"),
    "need-met": ("Bedarf gedeckt", "need met"),
    "sent-in-error": ("irrtümlich gesendet", "sent in error"),
    "consent-withdrawn": ("Einwilligung widerrufen", "consent withdrawn"),
    "not-acknowledged": ("nicht bestätigt", "not acknowledged"),
    "other": ("sonstiges", "other"),
    "p90": ("90. Perzentil", "90th percentile"),
}  # fmt: skip
PAGE: dict[str, tuple[str, str]] = {
    "title": (
        "Monitoringbericht des Wegweiser-Netzwerks",
        "Monitoring report of the Wegweiser network",
    ),
    "period": ("Zeitraum", "Period"),
    "before": ("Vorzeitraum", "Period before"),
    "county": ("Landkreis", "County"),
    "all counties": ("alle", "all"),
    "protection": (
        "Schutz: Zahlen von 1 bis {k1} sind unterdrückt (–), dazu so viele weitere, dass sich "
        "keine unterdrückte Zahl aus einer Summe errechnen lässt; Zeiten nur für Gruppen ab "
        "{k}. Der Bericht beruht nur auf Metadaten des Prüfprotokolls, nie auf Daten einer "
        "Person. In Klammern: der Vorzeitraum.",
        "Protection: counts of 1 to {k1} are suppressed (–), and as many others as needed so "
        "that no suppressed count can be worked out from a total; times only for groups of at "
        "least {k}. The report is made from the audit log's metadata only, never from a "
        "person's data. In brackets: the period before.",
    ),
    "dp": (
        "Schutz: Differential Privacy (OpenDP, diskreter Laplace-Mechanismus), ε = {epsilon} "
        "für den ganzen Bericht, ε = {per_table} je Tabelle; jede Vermittlung, jeder "
        "ungedeckte Bedarf, jeder Widerruf zählt einmal. Alle Zahlen enthalten zufälliges "
        "Rauschen, negative sind als 0 gezeigt; nur Tabellen mit festen Zeilen, keine Zeiten. "
        "In Klammern: der Vorzeitraum.",
        "Protection: differential privacy (OpenDP, discrete Laplace mechanism), ε = {epsilon} "
        "for the whole report, ε = {per_table} per table; each referral, unmet need or "
        "withdrawal counts once. Every count holds random noise, negatives are shown as 0; "
        "only tables with fixed rows, no times. In brackets: the period before.",
    ),
    "empty": ("Für diesen Zeitraum liegen keine Daten vor.", "There is no data for this period."),
    "made": ("Erstellt", "Made"),
}


def write(report: Report, fmt: str, out: Path) -> list[Path]:
    """Write the report in `fmt` into the folder `out`; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path = out / "report.json"
        path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        return [path]
    if fmt == "csv":
        return write_csv(report, out)
    if fmt == "html":
        written = []
        for language in LANGUAGES:
            path = out / f"report.{language}.html"
            path.write_text(page(report, language))
            written.append(path)
        return written
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


# --- CSV and its Data Package ----------------------------------------------------------------

COUNT_FIELDS = [
    ("table", "string", "the table's name (see the report's JSON or HTML for its title)"),
    ("period", "string", "current: the period asked for; previous: the same length before"),
    ("period_from", "date", "the period's first day"),
    ("period_to", "date", "the period's last day"),
    ("row", "string", "the row's code (a kind of agency, reason, need, agency id, ...); "
     "'total' for a column's total"),
    ("column", "string", "the column's code; 'total' for a row's total"),
    ("count", "integer", "how many; empty where it is suppressed to protect small groups"),
    ("suppressed", "boolean", "whether the count is withheld"),
]  # fmt: skip
OFFERED_FIELDS = [
    ("language", "string", "an ISO 639 code"),
    ("agencies", "integer", "how many active agencies in the directory speak it (public)"),
]
TIME_FIELDS = [
    ("table", "string", "the timing's name"),
    ("period", "string", "current or previous"),
    ("period_from", "date", "the period's first day"),
    ("period_to", "date", "the period's last day"),
    ("group", "string", "the kind of agency ('all' for deletions)"),
    ("median_hours", "number", "the median, in hours; empty for a group under k"),
    ("p90_hours", "number", "the 90th percentile, in hours; empty for a group under k"),
]


def _count_rows(report: Report) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for label, part in (("current", report.current), ("previous", report.previous)):
        span = [label, part.period.first.isoformat(), part.period.last.isoformat()]
        for table in part.tables:
            t = table.protected
            cells = [(r, c, t.cell(r, c)) for r in t.rows for c in t.columns]
            cells += [(r, "total", t.row_total(r)) for r in t.rows]
            cells += [("total", c, t.column_total(c)) for c in t.columns]
            cells += [("total", "total", t.total())]
            for r, c, n in cells:
                rows.append([table.name, *span, r, c, "" if n is None else n, n is None])
    return rows


def _time_rows(report: Report) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for label, part in (("current", report.current), ("previous", report.previous)):
        span = [label, part.period.first.isoformat(), part.period.last.isoformat()]
        for times in part.times:
            for group, value in times.groups.items():
                shown = ["", ""] if value is None else [round(value[0], 1), round(value[1], 1)]
                rows.append([times.name, *span, group, *shown])
    return rows


def write_csv(report: Report, out: Path) -> list[Path]:
    files = {
        "counts.csv": (COUNT_FIELDS, _count_rows(report)),
        "timings.csv": (TIME_FIELDS, _time_rows(report)),
    }
    if report.offered is not None:
        offered = [[language, n] for language, n in sorted(report.offered.items())]
        files["languages-offered.csv"] = (OFFERED_FIELDS, offered)
    written = []
    for name, (fields, rows) in files.items():
        with (out / name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([n for n, _, _ in fields])
            writer.writerows(
                [
                    ["true" if v is True else "false" if v is False else v for v in row]
                    for row in rows
                ]
            )
        written.append(out / name)
    package = {
        "name": "wegweiser-monitoring-report",
        "title": "Wegweiser monitoring report",
        "description": (
            f"Referral network figures {report.current.period} and the period before"
            f"{', county ' + report.county if report.county else ''}, protected by "
            f"small-cell suppression with k = {report.k}."
        ),
        "licenses": [
            {
                "name": "dl-de/by-2-0",
                "title": "Datenlizenz Deutschland – Namensnennung – Version 2.0",
            }
        ],
        "resources": [
            {
                "name": name.removesuffix(".csv"),
                "path": name,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {
                    "fields": [
                        {"name": n, "type": t, "description": d} for n, t, d in fields
                    ],
                },
            }
            for name, (fields, _) in files.items()
        ],
    }  # fmt: skip
    (out / "datapackage.json").write_text(json.dumps(package, ensure_ascii=False, indent=1))
    return [*written, out / "datapackage.json"]


# --- HTML --------------------------------------------------------------------------------------


def _namer(language: str) -> Callable[[str], str]:
    """A code's name in the language: the report's words, a kind or need as the person's
    catalogue says it, else the code itself."""
    index = LANGUAGES.index(language)
    say = texts.catalogue(PersonLanguage(language))
    kinds = {k.value: v for k, v in texts.KINDS.items()}
    needs = {n.value: v for n, v in texts.NEEDS.items()}

    def name(code: str) -> str:
        if code in WORDS:
            return WORDS[code][index]
        if code in kinds and code in {k.value for k in AgencyKind}:
            return say(kinds[code])
        if code in needs and code in {n.value for n in Need}:
            return say(needs[code])
        return code

    return name


def _chart(labels: list[str], series: dict[str, list[float]], title: str, unit: str) -> str:
    """A horizontal bar chart (stacked when it has several series), as inline SVG."""
    from matplotlib.figure import Figure  # the report alone needs matplotlib: imported here

    series = {name: values for name, values in series.items() if any(values)}
    stacked = len(series) > 1
    height = 1.0 + 0.35 * max(len(labels), 1) + (0.6 if stacked else 0)
    figure = Figure(figsize=(8, height))
    axes = figure.subplots()
    left = [0.0] * len(labels)
    for name, values in series.items():
        axes.barh(labels, values, left=left, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel(unit)
    axes.set_title(title, loc="left", fontsize=11)
    if stacked:  # below the bars, never over them
        axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(title)}" ', 1)


def page(report: Report, language: str) -> str:
    """The report as one HTML page in `language`."""
    index = LANGUAGES.index(language)
    name = _namer(language)
    say = {key: words[index] for key, words in PAGE.items()}
    current, previous = report.current, report.previous
    parts = [
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{html.escape(say['title'])}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{html.escape(say['title'])}</h1>",
        "<dl>",
        f"<dt>{say['period']}</dt><dd>{current.period}</dd>",
        f"<dt>{say['before']}</dt><dd>{previous.period}</dd>",
        f"<dt>{say['county']}</dt><dd>{html.escape(report.county or say['all counties'])}</dd>",
        f"<dt>{say['made']}</dt><dd>{report.made_at:%Y-%m-%d %H:%M} UTC</dd>",
        "</dl>",
        f'<p class="note">{html.escape(_protection(report, say))}</p>',
    ]
    if current.empty:
        parts.append(f'<p class="note"><strong>{say["empty"]}</strong></p>')
    parts.append(_charts(current, name, index))
    for table in current.tables:
        parts.append(_table(table, previous.table(table.name), name, index))
        if table.name == "requests-by-language" and report.offered is not None:
            parts.append(_offered(table, report.offered, index))
        if shares := table.shares(report.k):
            parts.append(_shares(shares, name, index))
    for times in current.times:
        parts.append(
            _times(times, next(t for t in previous.times if t.name == times.name), name, index)
        )
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _protection(report: Report, say: dict[str, str]) -> str:
    """What protects the figures, in words."""
    if report.spent is not None:
        return say["dp"].format(
            epsilon=f"{report.spent.total:g}", per_table=f"{report.spent.per_table:g}"
        )
    return say["protection"].format(k=report.k, k1=report.k - 1)


def _charts(part: Part, name: Callable[[str], str], index: int) -> str:
    charts = []
    found = part.table("referrals-by-kind")
    kinds = found.protected if found else None
    if kinds and kinds.rows and kinds.total():
        series = {
            name(c): [float(kinds.cell(r, c) or 0) for r in kinds.rows] for c in kinds.columns
        }
        title = TITLES["referrals-by-kind"][index]
        charts.append(_chart([name(str(r)) for r in kinds.rows], series, title, ""))
    found = part.table("unmet-needs-by-area") or part.table("unmet-needs-by-need")
    unmet = found.protected if found else None
    if unmet and unmet.rows and unmet.total():
        totals = [float(unmet.row_total(r) or 0) for r in unmet.rows]
        title = TITLES[found.name][index] if found else ""
        charts.append(_chart([name(str(r)) for r in unmet.rows], {"": totals}, title, ""))
    ack = next((t for t in part.times if t.name == "time-to-acknowledgement"), None)
    shown = {g: v for g, v in (ack.groups if ack else {}).items() if v is not None}
    if shown:
        series = {
            WORDS["median"][index]: [v[0] for v in shown.values()],
            WORDS["p90"][index]: [max(v[1] - v[0], 0.0) for v in shown.values()],
        }
        title = TITLES["time-to-acknowledgement"][index]
        charts.append(_chart([name(g) for g in shown], series, title, "h"))
    return "".join(f"<figure>{svg}</figure>" for svg in charts)


def _scroll(title: str) -> str:
    """A table's frame, scrolled sideways on a narrow screen (reachable by keyboard)."""
    return f'<div class="wrap" tabindex="0" role="region" aria-label="{html.escape(title)}">'


def _cell(n: int | None, before: int | None) -> str:
    """A count, with the period before's in brackets (– where suppressed)."""
    shown = "–" if n is None else str(n)
    was = "–" if before is None else str(before)
    return f'<td>{shown} <span class="before">({was})</span></td>'


def _table(table: Table, previous: Table | None, name: Callable[[str], str], index: int) -> str:
    """A table with the period before's counts in brackets (– where they are suppressed, or
    not released: differential privacy releases the period asked for only)."""
    t = table.protected
    p = previous.protected if previous else Protected({}, [], [], total_hidden=True)
    if previous is None:
        p.hidden_column_totals = set(t.columns)
    if not t.rows and not p.rows:
        return ""

    def seen(c: str) -> bool:
        """A column with anything in it, now or before (empty ones are left out here)."""
        return any(t.cells.get((r, c)) for r in t.rows) or any(p.cells.get((r, c)) for r in p.rows)

    columns = [c for c in t.columns if seen(c)]

    def before(r: str, c: str | None) -> int | None:
        if previous is None:
            return None
        if r not in p.rows or (c is not None and c not in p.columns):
            return 0
        return p.cell(r, c) if c is not None else p.row_total(r)

    head = "".join(f'<th scope="col">{html.escape(name(str(c)))}</th>' for c in columns)
    rows = []
    for r in t.rows:
        cells = "".join(_cell(t.cell(r, c), before(r, c)) for c in columns)
        rows.append(
            f'<tr><th scope="row">{html.escape(name(str(r)))}</th>{cells}'
            f"{_cell(t.row_total(r), before(r, None))}</tr>"
        )
    totals = "".join(
        _cell(t.column_total(c), p.column_total(c) if c in p.columns or not previous else 0)
        for c in columns
    )
    total = WORDS["total"][index]
    rows.append(
        f'<tr class="total"><th scope="row">{total}</th>{totals}{_cell(t.total(), p.total())}</tr>'
    )
    return (
        f"<section><h2>{html.escape(TITLES[table.name][index])}</h2>"
        f"{_scroll(TITLES[table.name][index])}<table><thead><tr><td></td>{head}"
        f'<th scope="col">{total}</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _offered(asked: Table, offered: dict[str, int], index: int) -> str:
    """The languages asked for (the protected row totals) beside the agencies speaking each
    (public)."""
    t = asked.protected
    rows = "".join(
        f'<tr><th scope="row">{html.escape(str(r))}</th>{_plain(t.row_total(r))}'
        f"{_plain(offered.get(str(r), 0))}</tr>"
        for r in t.rows
    )
    title = TITLES["languages-offered"][index]
    return (
        f"<section><h2>{html.escape(title)}</h2>{_scroll(title)}<table><thead><tr><td></td>"
        f'<th scope="col">{WORDS["asked"][index]}</th><th scope="col">'
        f"{WORDS['agencies'][index]}</th></tr></thead><tbody>{rows}</tbody></table></div>"
        "</section>"
    )


def _shares(shares: dict[str, dict[str, float]], name: Callable[[str], str], index: int) -> str:
    """The shares of each kind's referrals, where the counts behind them are published."""
    columns = list(SHARES)
    rows = "".join(
        f'<tr><th scope="row">{html.escape(name(kind))}</th>'
        + "".join(f"<td>{'–' if c not in found else f'{found[c]:.0%}'}</td>" for c in columns)
        + "</tr>"
        for kind, found in shares.items()
    )
    title = TITLES["shares"][index]
    head = "".join(f'<th scope="col">{WORDS[c][index]}</th>' for c in columns)
    return (
        f"<section><h2>{html.escape(title)}</h2>{_scroll(title)}<table><thead><tr><td></td>"
        f"{head}</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _plain(n: int | None) -> str:
    return f"<td>{'–' if n is None else n}</td>"


def _times(times: Times, previous: Times, name: Callable[[str], str], index: int) -> str:
    if not times.groups:
        return ""
    rows = []
    for group, value in times.groups.items():
        was = previous.groups.get(group)
        shown = ["–", "–"] if value is None else [f"{value[0]:.1f}", f"{value[1]:.1f}"]
        before = "–" if was is None else f"{was[0]:.1f}"
        rows.append(
            f'<tr><th scope="row">{html.escape(name(group))}</th><td>{shown[0]} '
            f'<span class="before">({before})</span></td><td>{shown[1]}</td></tr>'
        )
    return (
        f"<section><h2>{html.escape(TITLES[times.name][index])}</h2>"
        f"{_scroll(TITLES[times.name][index])}<table>"
        f'<thead><tr><td></td><th scope="col">{WORDS["median"][index]}</th>'
        f'<th scope="col">{WORDS["p90"][index]}</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table></div></section>"
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:2rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
.note{background:#eef3f8;padding:.6rem .8rem;border-left:4px solid #2a5d8f}
.wrap{overflow-x:auto}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border:1px solid #c8c8c8;padding:.25rem .5rem;text-align:right}
th[scope=row]{text-align:left;font-weight:500}thead th{background:#f2f2f2}
tr.total th,tr.total td{font-weight:700}.before,.hint{color:#555;font-size:.85em}
figure{margin:1rem 0}svg{max-width:100%;height:auto}
"""
