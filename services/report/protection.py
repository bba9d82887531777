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

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
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
    hidden_columns: Iterable[Key] = (),
) -> Protected[Key]:
    """The table with every count suppressed that the rules above require; `hidden_rows`,
    `hidden_columns`: totals to suppress as well (another table publishes the same totals
    and had to)."""
    check_k(k)
    table = Protected(dict(cells), list(rows), list(columns))

    def small(n: int) -> bool:
        return 0 < n < k

    table.hidden = {key for key, n in cells.items() if small(n)}
    table.hidden_row_totals = {r for r in table.rows if small(_row_sum(table, r))}
    table.hidden_row_totals |= set(hidden_rows) & set(table.rows)
    table.hidden_column_totals = {c for c in table.columns if small(_column_sum(table, c))}
    table.hidden_column_totals |= set(hidden_columns) & set(table.columns)
    table.total_hidden = small(sum(cells.values()))
    while _secondary(table, k) or _recoverable(table, k):
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
            shown = [
                (n, i)
                for i, (count, n) in enumerate(line.members)
                if n > 0 and not _is_hidden(table, count)
            ]
            if shown and not any(n > 0 and _is_hidden(table, c) for c, n in line.members):
                _hide(table, line.members[min(shown)[1]][0])  # else the sum gives it away
                return True
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


def _recoverable(table: Protected[Key], k: int) -> bool:
    """The last check, over the whole table at once: no suppressed count of 1 to k-1 (a cell
    or a total) may be worked out exactly from all the published figures together (the
    rules above look at one line at a time; several lines can combine). Where one can, one
    more count near it is suppressed; whether anything changed."""
    return _recoverable_together([table], [], k)


def _recoverable_together(tables: list[Protected[Key]], shared: Sequence[Key], k: int) -> bool:
    """`_recoverable` over several tables at once, whose `shared` columns count the same
    records (each such column's cells add up to the same number in every table)."""
    unknown = [
        (i, key)
        for i, table in enumerate(tables)
        for key in sorted(table.hidden, key=repr)
        if table.cells.get(key, 0) > 0
    ]
    index = {item: n for n, item in enumerate(unknown)}

    def over(i: int, keys: Iterable[tuple[Key, Key]], sign: int = 1) -> list[Fraction]:
        vector = [Fraction(0)] * len(unknown)
        for key in keys:
            if (i, key) in index:
                vector[index[i, key]] += sign
        return vector

    known: list[list[Fraction]] = []
    asked: list[tuple[int, Count, list[Fraction], int]] = []
    for i, table in enumerate(tables):
        rows = {r: [(r, c) for c in table.columns] for r in table.rows}
        columns = {c: [(r, c) for r in table.rows] for c in table.columns}
        known += [over(i, keys) for r, keys in rows.items() if r not in table.hidden_row_totals]
        known += [
            over(i, keys) for c, keys in columns.items() if c not in table.hidden_column_totals
        ]
        if not table.total_hidden:
            known.append(over(i, table.cells))
        asked += [
            (i, _Cell(*key), over(i, [key]), table.cells[key]) for j, key in unknown if j == i
        ]
        asked += [
            (i, _RowTotal(r), over(i, rows[r]), _row_sum(table, r))
            for r in table.hidden_row_totals
            if r in rows
        ]
        asked += [
            (i, _ColumnTotal(c), over(i, columns[c]), _column_sum(table, c))
            for c in table.hidden_column_totals
            if c in columns
        ]
    for column in shared:  # the same count in each table: their difference is known (0)
        first = tables[0]
        for i, other in enumerate(tables[1:], start=1):
            a = over(0, [(r, column) for r in first.rows])
            b = over(i, [(r, column) for r in other.rows], -1)
            known.append([x + y for x, y in zip(a, b, strict=True)])
    basis = _basis(known)
    for i, count, vector, value in asked:
        if 0 < value < k and _spanned(basis, vector):
            _hide_near(tables[i], count)
            return True
    return False


def protect_linked(
    tables: list[tuple[Mapping[tuple[Key, Key], int], list[Key], list[Key]]],
    shared: Sequence[Key],
    k: int,
) -> list[Protected[Key]]:
    """Tables with `shared` columns that count the same records (the declined referrals by
    kind of agency and by reason): each protected, then all together, until no small count
    of one can be worked out with the other's figures."""
    done = [protect(cells, rows, columns, k) for cells, rows, columns in tables]
    while True:
        changed = False
        for table in done:
            while _secondary(table, k) or _recoverable(table, k):
                changed = True
        if _recoverable_together(done, shared, k):
            changed = True
        if not changed:
            return done


def _basis(vectors: list[list[Fraction]]) -> list[tuple[int, list[Fraction]]]:
    """An echelon basis of the vectors' span: (pivot column, row), exact in fractions."""
    basis: list[tuple[int, list[Fraction]]] = []
    for vector in vectors:
        reduced = _reduce(basis, vector)
        pivot = next((i for i, x in enumerate(reduced) if x != 0), None)
        if pivot is not None:
            basis.append((pivot, [x / reduced[pivot] for x in reduced]))
    return basis


def _reduce(basis: list[tuple[int, list[Fraction]]], vector: list[Fraction]) -> list[Fraction]:
    reduced = list(vector)
    for pivot, row in basis:
        if reduced[pivot] != 0:
            factor = reduced[pivot]
            reduced = [a - factor * b for a, b in zip(reduced, row, strict=True)]
    return reduced


def _spanned(basis: list[tuple[int, list[Fraction]]], vector: list[Fraction]) -> bool:
    """Whether the published equations determine this combination of suppressed counts."""
    return not any(x != 0 for x in _reduce(basis, vector)) if any(vector) else True


def _hide_near(table: Protected[Key], count: Count) -> None:
    """Suppress the smallest published non-zero count in the row or column of `count` (or,
    if there is none, of the whole table; failing that, the grand total)."""
    near: list[tuple[Key, Key]] = []
    match count:
        case _Cell(row, column):
            near = [(cast("Key", row), c) for c in table.columns]
            near += [(r, cast("Key", column)) for r in table.rows]
        case _RowTotal(row):
            near = [(cast("Key", row), c) for c in table.columns]
        case _ColumnTotal(column):
            near = [(r, cast("Key", column)) for r in table.rows]
    for keys in (near, list(table.cells)):
        shown = [(n, key) for key in keys if (n := table.cells.get(key, 0)) > 0
                 and key not in table.hidden]  # fmt: skip
        if shown:
            table.hidden.add(min(shown, key=lambda pair: pair[0])[1])
            return
    table.total_hidden = True
    table.hidden_row_totals |= set(table.rows)
    table.hidden_column_totals |= set(table.columns)
