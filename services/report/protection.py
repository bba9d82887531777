"""Small-cell suppression for the monitoring report: no published count, total or difference
of two published figures of a table reveals a group of fewer than k people.

A table is a two-way count (rows by columns) with its row totals, column totals and grand
total, all published unless suppressed. The rules, applied until nothing changes:

- primary: a count (a cell or a total) of 1 to k-1 is suppressed (0 is published: it
  reveals nobody);
- complementary: in every line whose total is published (each row, each column, the row
  totals with the grand total, the column totals with the grand total), the suppressed
  counts are either none, or at least two whose sum is at least k; otherwise the smallest
  published non-zero count of the line is suppressed too, or the line's total if there is
  none. So the total minus the published counts of a line is 0 or at least k, and no single
  suppressed count is the difference of two published ones.

This is the rule statistical offices apply to frequency tables (e.g. the "Geheimhaltung" of
the Statistische Ämter: primary suppression below a threshold, secondary suppression so that
no line lets a suppressed cell be recomputed). It protects each table on its own; the report
publishes each count in one table only, or with the same value and so the same decision.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

K_DEFAULT = 5
K_LEAST = 3

Key = TypeVar("Key", bound=Hashable)


class KTooSmall(ValueError):
    """A threshold below the least the report allows."""


def check_k(k: int) -> int:
    if k < K_LEAST:
        raise KTooSmall(f"k must be at least {K_LEAST}: a smaller group can be a person")
    return k


@dataclass
class Protected(Generic[Key]):
    """A table's counts with what may be published of them."""

    cells: dict[tuple[Key, Key], int]
    rows: list[Key]
    columns: list[Key]
    hidden: set[tuple[Key, Key]] = field(default_factory=set)
    hidden_row_totals: set[Key] = field(default_factory=set)
    hidden_column_totals: set[Key] = field(default_factory=set)
    total_hidden: bool = False

    def cell(self, row: Key, column: Key) -> int | None:
        """The published count, or None where it is suppressed."""
        return None if (row, column) in self.hidden else self.cells.get((row, column), 0)

    def row_total(self, row: Key) -> int | None:
        if row in self.hidden_row_totals:
            return None
        return sum(self.cells.get((row, c), 0) for c in self.columns)

    def column_total(self, column: Key) -> int | None:
        if column in self.hidden_column_totals:
            return None
        return sum(self.cells.get((r, column), 0) for r in self.rows)

    def total(self) -> int | None:
        return None if self.total_hidden else sum(self.cells.values())


def protect(
    cells: Mapping[tuple[Key, Key], int],
    rows: Iterable[Key],
    columns: Iterable[Key],
    k: int,
    hidden_rows: Iterable[Key] = (),
) -> Protected[Key]:
    """The table with every count suppressed that the rules above require; `hidden_rows`:
    row totals to suppress as well (another table publishes the same totals and had to)."""
    check_k(k)
    table = Protected(dict(cells), list(rows), list(columns))

    def small(n: int) -> bool:
        return 0 < n < k

    table.hidden = {key for key, n in cells.items() if small(n)}
    table.hidden_row_totals = {r for r in table.rows if small(_row_sum(table, r))}
    table.hidden_row_totals |= set(hidden_rows) & set(table.rows)
    table.hidden_column_totals = {c for c in table.columns if small(_column_sum(table, c))}
    table.total_hidden = small(sum(cells.values()))
    while _secondary(table, k):
        pass
    return table


def protect_alike(
    tables: list[tuple[Mapping[tuple[Key, Key], int], list[Key], list[Key]]], k: int
) -> list[Protected[Key]]:
    """Tables whose rows are the same groups broken down two ways (so their row totals are
    the same counts): a row total suppressed in one is suppressed in all, or the other would
    publish it."""
    hidden: set[Key] = set()
    while True:
        done = [protect(cells, rows, columns, k, hidden) for cells, rows, columns in tables]
        now = set().union(*(t.hidden_row_totals for t in done))
        if now <= hidden:
            return done
        hidden |= now


def _row_sum(table: Protected[Key], row: Key) -> int:
    return sum(table.cells.get((row, c), 0) for c in table.columns)


def _column_sum(table: Protected[Key], column: Key) -> int:
    return sum(table.cells.get((r, column), 0) for r in table.rows)


@dataclass(frozen=True)
class _Cell:
    row: Hashable
    column: Hashable


@dataclass(frozen=True)
class _RowTotal:
    row: Hashable


@dataclass(frozen=True)
class _ColumnTotal:
    column: Hashable


@dataclass(frozen=True)
class _GrandTotal:
    pass


Count = _Cell | _RowTotal | _ColumnTotal | _GrandTotal


@dataclass
class _Line:
    """One line of a table: its counts and its total, each with its value."""

    members: list[tuple[Count, int]]
    total: Count


def _lines(table: Protected[Key]) -> list[_Line]:
    def cell(r: Key, c: Key) -> tuple[Count, int]:
        return _Cell(r, c), table.cells.get((r, c), 0)

    return [
        *(_Line([cell(r, c) for c in table.columns], _RowTotal(r)) for r in table.rows),
        *(_Line([cell(r, c) for r in table.rows], _ColumnTotal(c)) for c in table.columns),
        _Line([(_RowTotal(r), _row_sum(table, r)) for r in table.rows], _GrandTotal()),
        _Line([(_ColumnTotal(c), _column_sum(table, c)) for c in table.columns], _GrandTotal()),
    ]


def _is_hidden(table: Protected[Key], count: Count) -> bool:
    match count:
        case _Cell(row, column):
            return (row, column) in table.hidden
        case _RowTotal(row):
            return row in table.hidden_row_totals
        case _ColumnTotal(column):
            return column in table.hidden_column_totals
        case _GrandTotal():
            return table.total_hidden
    raise AssertionError(count)


def _hide(table: Protected[Key], count: Count) -> None:
    match count:
        case _Cell(row, column):  # the keys of the table's own rows and columns
            table.hidden.add(cast("tuple[Key, Key]", (row, column)))
        case _RowTotal(row):
            table.hidden_row_totals.add(cast("Key", row))
        case _ColumnTotal(column):
            table.hidden_column_totals.add(cast("Key", column))
        case _GrandTotal():
            table.total_hidden = True


def _secondary(table: Protected[Key], k: int) -> bool:
    """Suppress one more count where a line needs it; whether anything changed."""
    for line in _lines(table):
        if _is_hidden(table, line.total):
            continue
        hidden = [n for count, n in line.members if n > 0 and _is_hidden(table, count)]
        if not hidden or (len(hidden) >= 2 and sum(hidden) >= k):
            continue
        shown = [
            (n, i)
            for i, (count, n) in enumerate(line.members)
            if n > 0 and not _is_hidden(table, count)
        ]
        _hide(table, line.members[min(shown)[1]][0] if shown else line.total)
        return True
    return False
