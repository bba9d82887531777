"""An agency's answer is checked on the agency's side before it leaves: an unknown action or
a missing reason is refused there, in one line, and nothing is sent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from schemas.vocabulary import REASONED_ANSWERS, AgencyAction
from services.agency.client import AnswerInvalid, checked_answer
from wegweiser.cli import app


@pytest.mark.parametrize("action", sorted(REASONED_ANSWERS))
def test_reject_hold_and_fail_need_a_reason(action: AgencyAction) -> None:
    for missing in (None, "", "   "):
        with pytest.raises(AnswerInvalid, match=f"'{action.value}' needs a reason"):
            checked_answer(action, missing)
    assert checked_answer(action, "no capacity until March") is action


def test_an_unknown_action_lists_the_known_ones() -> None:
    with pytest.raises(AnswerInvalid, match="unknown action 'approve': one of acknowledge, "):
        checked_answer("approve", None)


def test_every_other_action_needs_no_reason() -> None:
    for action in set(AgencyAction) - REASONED_ANSWERS:
        assert checked_answer(action.value, None) is action


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["approve"], "not sent: unknown action 'approve'"),
        (["reject"], "not sent: 'reject' needs a reason"),
        (["hold", "--reason", "x"], "not sent: a reason has 3 to 500 characters"),
    ],
)
def test_the_command_line_refuses_in_one_line_before_connecting(
    args: list[str], said: str, tmp_path
) -> None:
    result = CliRunner().invoke(
        app,
        ["agency", "answer", "ref-1", *args[:1], "--agency", "lup-mbe", *args[1:]],
        env={"WEGWEISER_DATA_DIR": str(tmp_path), "NATS_URL": "nats://127.0.0.1:1"},
    )
    assert result.exit_code == 2
    assert result.output.strip().startswith(said), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
