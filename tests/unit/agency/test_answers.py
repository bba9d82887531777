"""An agency's answer is checked on the agency's side before it leaves, by the rule the
referral service applies (schemas.vocabulary.reason_problem): an unknown action, reason or
outcome, a missing or unfitting reason, a completion without an outcome is refused there, in
one line, and nothing is sent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from schemas.vocabulary import REASONED_ANSWERS, REASONS_FOR, AgencyAction, Outcome, ReasonCode
from services.agency.client import AnswerInvalid, checked_answer
from wegweiser.cli import app


@pytest.mark.parametrize("action", sorted(REASONED_ANSWERS))
def test_reject_hold_and_fail_need_a_reason(action: AgencyAction) -> None:
    for missing in (None, "", "   "):
        with pytest.raises(AnswerInvalid, match=f"'{action.value}' needs a reason: one of "):
            checked_answer(action, missing)
    target = "lup-mbe-parchim" if action is AgencyAction.FORWARD else None
    assert checked_answer(action, "other", forward_to=target).reason is ReasonCode.OTHER


def test_a_forward_names_one_agency_and_no_other_answer_does() -> None:
    with pytest.raises(AnswerInvalid, match="'forward' needs the agency to forward to"):
        checked_answer("forward", "out-of-area", forward_to="  ")
    with pytest.raises(AnswerInvalid, match="only 'forward' names an agency, not 'accept'"):
        checked_answer("accept", forward_to="lup-mbe-parchim")
    with pytest.raises(AnswerInvalid, match="'MBE Parchim' is no agency id"):
        checked_answer("forward", "out-of-area", forward_to="MBE Parchim")
    answer = checked_answer("forward", "out-of-area", forward_to=" lup-mbe-parchim ")
    assert (answer.action, answer.forward_to) == (AgencyAction.FORWARD, "lup-mbe-parchim")


@pytest.mark.parametrize("action", sorted(REASONED_ANSWERS))
def test_a_reason_must_be_a_code_that_fits_the_action(action: AgencyAction) -> None:
    with pytest.raises(AnswerInvalid, match="unknown reason 'no capacity until March'"):
        checked_answer(action, "no capacity until March")
    for code in set(ReasonCode) - REASONS_FOR[action]:
        with pytest.raises(AnswerInvalid, match=f"'{code}' is no reason to {action}"):
            checked_answer(action, code)


def test_a_completion_needs_an_outcome_and_a_reason_unless_all_was_provided() -> None:
    with pytest.raises(AnswerInvalid, match="'complete' needs an outcome"):
        checked_answer("complete")
    with pytest.raises(AnswerInvalid, match="outcome 'not-provided' needs a reason"):
        checked_answer("complete", outcome="not-provided")
    with pytest.raises(AnswerInvalid, match="unknown outcome 'done'"):
        checked_answer("complete", outcome="done")
    answer = checked_answer("complete", "need-met", "partly-provided")
    assert (answer.outcome, answer.reason) == (Outcome.PARTLY_PROVIDED, ReasonCode.NEED_MET)


def test_an_unknown_action_lists_the_known_ones() -> None:
    with pytest.raises(AnswerInvalid, match="unknown action 'approve': one of acknowledge, "):
        checked_answer("approve", None)


def test_every_other_action_needs_no_reason_and_takes_none() -> None:
    for action in set(AgencyAction) - REASONED_ANSWERS - {AgencyAction.COMPLETE}:
        assert checked_answer(action.value, None).action is action
        with pytest.raises(AnswerInvalid, match="takes no reason"):
            checked_answer(action.value, "other")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["approve"], "not sent: unknown action 'approve'"),
        (["reject"], "not sent: 'reject' needs a reason"),
        (["hold", "--reason", "x"], "not sent: unknown reason 'x'"),
        (["hold", "--reason", "duplicate"], "not sent: 'duplicate' is no reason to hold"),
        (["forward", "--reason", "out-of-area"], "not sent: 'forward' needs the agency to"),
        (["complete"], "not sent: 'complete' needs an outcome"),
        (["accept", "--outcome", "provided"], "not sent: only 'complete' has an outcome"),
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
