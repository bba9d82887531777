"""A plan's state, from its referrals' states."""

from __future__ import annotations

import pytest

from services.intake.case import plan_state


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        (["draft", "requested"], "open"),
        (["received", "rejected"], "open"),
        (["accepted", "requested"], "under-way"),
        (["on-hold", "cancelled"], "under-way"),
        (["completed", "failed"], "done"),
        (["cancelled", "rejected"], "done"),
    ],
)
def test_a_plan_is_open_under_way_or_done(statuses: list[str], state: str) -> None:
    assert plan_state(statuses) == state
