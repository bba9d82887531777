"""The one retry policy: how long an event waits after each failed attempt, for a service's
consumer edge, the gateway's feeds and an agency's software alike."""

from __future__ import annotations

from wegweiser.platform.pull import retry_delay


def test_each_failed_attempt_doubles_the_wait_up_to_half_a_minute() -> None:
    assert [retry_delay(n) for n in range(1, 9)] == [0.25, 0.5, 1, 2, 4, 8, 16, 30]
    assert retry_delay(100) == 30
