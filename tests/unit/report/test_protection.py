"""Small-cell suppression: whatever the table, no published count, total or difference of two
published figures of one line reveals a group of 1 to k-1 people."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.report.protection import KTooSmall, Protected, protect

Cells = dict[tuple[int, int], int]


@st.composite
def tables(draw: st.DrawFn) -> tuple[Cells, int, int, int]:
    rows = draw(st.integers(1, 5))
    columns = draw(st.integers(1, 5))
    k = draw(st.integers(3, 7))
    small = st.integers(0, 2 * k)
    cells = {(r, c): draw(small) for r in range(rows) for c in range(columns)}
    return cells, rows, columns, k


def lines(table: Protected) -> list[tuple[list[int | None], list[int], int | None, int]]:
    """Each line: its published counts, their true values, its published total, its true
    total (rows, columns, and the totals against the grand total)."""
    out = []
    true = table.cells
    for r in table.rows:
        shown = [table.cell(r, c) for c in table.columns]
        values = [true.get((r, c), 0) for c in table.columns]
        out.append((shown, values, table.row_total(r), sum(values)))
    for c in table.columns:
        shown = [table.cell(r, c) for r in table.rows]
        values = [true.get((r, c), 0) for r in table.rows]
        out.append((shown, values, table.column_total(c), sum(values)))
    grand = sum(true.values())
    row_sums = [sum(true.get((r, c), 0) for c in table.columns) for r in table.rows]
    column_sums = [sum(true.get((r, c), 0) for r in table.rows) for c in table.columns]
    out.append(([table.row_total(r) for r in table.rows], row_sums, table.total(), grand))
    out.append(([table.column_total(c) for c in table.columns], column_sums, table.total(), grand))
    return out


@settings(max_examples=400, deadline=None)
@given(tables())
def test_no_published_figure_or_difference_reveals_fewer_than_k(table) -> None:
    cells, rows, columns, k = table
    protected = protect(cells, range(rows), range(columns), k)
    for shown, values, total_shown, total in lines(protected):
        for published, value in zip(shown, values, strict=True):
            assert published in (None, value)  # nothing published is altered
            assert published is None or published == 0 or published >= k
        assert total_shown in (None, total)
        assert total_shown is None or total_shown == 0 or total_shown >= k
        if total_shown is None:
            continue
        hidden = [v for p, v in zip(shown, values, strict=True) if p is None and v > 0]
        # the total less what is published is no small group, nor a single hidden count
        assert not hidden or (len(hidden) >= 2 and sum(hidden) >= k)


def derivable_small_counts(table: Protected) -> list[tuple[object, int]]:
    """The suppressed counts of 1 to k-1 (cells and totals) that the published figures fix
    exactly, all equations at once (an oracle independent of the code: numpy's rank)."""
    hidden = [key for key in table.hidden if table.cells.get(key, 0) > 0]
    if not hidden:
        return []
    position = {key: i for i, key in enumerate(hidden)}

    def vector(keys) -> list[float]:
        v = [0.0] * len(hidden)
        for key in keys:
            if key in position:
                v[position[key]] += 1.0
        return v

    rows = {r: [(r, c) for c in table.columns] for r in table.rows}
    columns = {c: [(r, c) for r in table.rows] for c in table.columns}
    equations = [vector(keys) for r, keys in rows.items() if table.row_total(r) is not None]
    equations += [vector(keys) for c, keys in columns.items() if table.column_total(c) is not None]
    if table.total() is not None:
        equations.append(vector(table.cells))
    asked = [(key, vector([key]), table.cells[key]) for key in hidden]
    asked += [(("row", r), vector(rows[r]), sum(table.cells.get(k, 0) for k in rows[r]))
              for r in table.rows if table.row_total(r) is None]  # fmt: skip
    asked += [(("column", c), vector(columns[c]), sum(table.cells.get(k, 0) for k in columns[c]))
              for c in table.columns if table.column_total(c) is None]  # fmt: skip
    base = np.linalg.matrix_rank(np.array(equations)) if equations else 0
    found: list[tuple[object, int]] = []
    for name, v, value in asked:
        if not 0 < value < K_NOW[0] or not any(v):
            continue
        with_it = np.linalg.matrix_rank(np.array([*equations, v]))
        if with_it == base:
            found.append((name, value))
    return found


K_NOW = [5]


@settings(max_examples=400, deadline=None)
@given(tables())
def test_no_small_suppressed_count_follows_from_all_published_figures_together(table) -> None:
    cells, rows, columns, k = table
    K_NOW[0] = k
    protected = protect(cells, range(rows), range(columns), k)
    assert derivable_small_counts(protected) == []


@pytest.mark.parametrize(
    ("cells", "k"),
    [
        ({("legal", "completed"): 7, ("recognition", "open"): 2}, 5),
        ({(0, 0): 3, (0, 1): 4, (1, 2): 3, (2, 0): 1, (2, 2): 1}, 3),
    ],
    ids=["a-hidden-total-summed-from-its-published-row", "several-lines-together"],
)
def test_the_reviewers_counterexamples_leak_nothing(cells, k) -> None:
    rows = sorted({r for r, _ in cells}, key=str)
    columns = sorted({c for _, c in cells}, key=str)
    K_NOW[0] = k
    assert derivable_small_counts(protect(cells, rows, columns, k)) == []


def test_a_table_with_nothing_small_is_published_whole() -> None:
    cells = {("a", "x"): 12, ("a", "y"): 0, ("b", "x"): 7, ("b", "y"): 30}
    protected = protect(cells, ["a", "b"], ["x", "y"], 5)
    assert not protected.hidden and protected.total() == 49
    assert protected.row_total("b") == 37 and protected.column_total("y") == 30


def test_one_small_cell_takes_a_second_with_it_in_its_row_and_column() -> None:
    cells = {("a", "x"): 2, ("a", "y"): 9, ("b", "x"): 8, ("b", "y"): 20}
    protected = protect(cells, ["a", "b"], ["x", "y"], 5)
    assert protected.cell("a", "x") is None
    assert protected.cell("a", "y") is None and protected.cell("b", "x") is None
    assert protected.row_total("a") == 11 and protected.total() == 39


def test_k_below_three_is_refused() -> None:
    with pytest.raises(KTooSmall, match="at least 3"):
        protect({}, [], [], 2)
