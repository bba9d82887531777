"""One retry rule for every consumer: pauses that double from the first to the longest, and
the figures infra/jetstream.toml gives handlers and partners."""

from __future__ import annotations

from wegweiser.platform import topology
from wegweiser.platform.retry import Retry
from wegweiser.settings import Settings


def test_pauses_double_from_the_first_and_stop_growing_at_the_longest() -> None:
    retry = Retry(first=0.5, longest=3.0)
    assert [retry.pause(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry.pause(0) == 0.5  # a message never delivered before counts as its first try
    assert retry.window(1) == 0 and retry.window(4) == 3.5


def test_a_failing_handler_is_tried_for_seconds_and_a_partner_for_minutes() -> None:
    attempts = Settings().max_deliver
    handler, partner = topology.retry("handler"), topology.retry("partner")
    assert attempts == 5 and handler.window(attempts) == 3.75
    # what waits behind a handler's retries is its partition: never more than half a minute
    assert handler.longest == 30
    # a partner's server may be down for minutes: the pauses grow to five
    assert [partner.pause(n) for n in (1, 5, 20)] == [0.5, 8.0, 300.0]
