"""Differentially private counts for the monitoring report (`--privacy dp --epsilon 1.0`), by
the OpenDP library: its discrete Laplace mechanism and its own privacy map, which says what
each release spends.

The unit of privacy is one record the report counts: a referral, an unmet need, a withdrawal
or a deletion. Each falls in exactly one cell of a table, so a table's cells together have
sensitivity 1 (L1), and the tables of one period share the budget by sequential
composition: each gets `epsilon / number of tables`, and the report spends `epsilon` in all.
The period before is not released beside it (released again with fresh noise, its records
would pay twice); each report's spending is recorded, and a county that releases a period
twice spends twice. Totals and shares are computed from the noisy cells (post-processing,
free), negative counts are shown as 0. The unit is a record: a person with three referrals
in a period is protected as three records are (3 epsilon), and a release with suppression
of the same period beside this one undoes it: publish one or the other.

Only tables whose rows and columns are public are released this way (every kind of agency,
reason code, need, outcome): a row that appears only because someone is in it would itself
reveal that someone. The tables by agency, place and language, and the times, are left out
under this method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.vocabulary import AgencyKind, Need, ReasonCode
from services.report import figures as fig
from services.report.protection import Protected

METHOD = "differential-privacy"
PUBLIC_ROWS: dict[str, Sequence[str]] = {
    "referrals-by-kind": [k.value for k in AgencyKind],
    "declines-and-failures-by-reason": [r.value for r in ReasonCode],
    "unmet-needs-by-need": [n.value for n in Need],
    "withdrawals": ["withdrawals"],
    "deletions": ["deletions"],
}
"""The tables released with differential privacy, with their public rows."""


class BadEpsilon(ValueError):
    """A privacy budget that is no positive number, or too large to protect anything."""


def check_epsilon(epsilon: float) -> float:
    if not 0 < epsilon <= 10:
        raise BadEpsilon(f"epsilon must be above 0 and at most 10, not {epsilon}")
    return epsilon


@dataclass(frozen=True)
class Spent:
    """What one period's release spent, as OpenDP's privacy maps say."""

    per_table: float
    total: float


def by_need(unmet: fig.Counts) -> fig.Counts:
    """Unmet needs by need alone (the places and languages are not public rows)."""
    cells: dict[tuple[str, str], int] = {}
    for (need, _), n in unmet.cells.items():
        cells[need, "all"] = cells.get((need, "all"), 0) + n
    return fig.Counts("unmet-needs-by-need", unmet.rows, ["all"], cells)


def release(
    counts: list[fig.Counts], epsilon: float
) -> tuple[list[tuple[str, Protected[str]]], Spent]:
    """The public-row tables among `counts`, each with discrete Laplace noise on every cell
    (OpenDP), and the budget spent."""
    import opendp.prelude as dp  # the dp method alone needs it: imported here

    dp.enable_features("contrib")
    check_epsilon(epsilon)
    by_name = {c.name: c for c in counts}
    by_name["unmet-needs-by-need"] = by_need(by_name["unmet-needs-by-area"])
    share = epsilon / len(PUBLIC_ROWS)
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=1.0 / share
    )
    spent = float(measurement.map(1))  # type: ignore[no-untyped-call]  # the library's account
    released = []
    for name, rows in PUBLIC_ROWS.items():
        table = by_name[name]
        columns = table.columns
        exact = [table.cells.get((r, c), 0) for r in rows for c in columns]
        noisy = measurement(exact)
        cells = {
            (r, c): max(0, int(noisy[i * len(columns) + j]))
            for i, r in enumerate(rows)
            for j, c in enumerate(columns)
        }
        released.append((name, Protected(cells, list(rows), list(columns))))
    return released, Spent(spent, spent * len(PUBLIC_ROWS))
