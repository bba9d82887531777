"""One retry rule for every consumer: pauses that double from the first to the longest, and
the figures infra/jetstream.toml gives handlers and partners."""

from __future__ import annotations

from tenacity import RetryCallState, Retrying

from wegweiser.platform import topology
from wegweiser.platform.retry import Retry
from wegweiser.settings import Settings


def test_pauses_double_from_the_first_and_stop_growing_at_the_longest() -> None:
    retry = Retry(first=0.5, longest=3.0)
    assert [retry.pause(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry.pause(0) == 0.5  # a message never delivered before counts as its first try
    assert retry.window(1) == 0 and retry.window(4) == 3.5


def test_each_kind_of_waiting_has_its_figures_from_infra() -> None:
    attempts = Settings().max_deliver
    assert attempts == 5
    # a handler holds its partition while it retries: seconds, never more than half a minute
    handler = topology.retry("handler")
    assert handler.window(attempts) == 3.75 and handler.longest == 30
    # an event handed back spends one of the consumer's deliveries each time: over a minute
    assert topology.retry("redelivery").window(attempts) == 75
    # a partner's webhook may be down for hours: the pauses grow to five minutes
    assert [topology.retry("partner").pause(n) for n in (1, 5, 20)] == [0.5, 8.0, 300.0]
    # the first FHIR notification is made while the agency's request waits: capped short
    assert topology.retry("notification").longest == 10
    assert topology.retry("broker").pause(1) == 0.2


def test_tenacity_waits_the_same_pauses() -> None:
    retry = Retry(first=0.25, longest=2.0)
    state = RetryCallState(Retrying(), None, (), {})
    for attempt in range(1, 7):
        state.attempt_number = attempt
        assert retry.wait()(state) == retry.pause(attempt)
        assert 0 <= retry.jittered()(state) <= retry.pause(attempt)
