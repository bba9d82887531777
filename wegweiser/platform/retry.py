"""How something that fails is tried again: one rule, two sets of figures.

The rule: tried again after `first` seconds, then after twice as long each time, at most
`longest`, until a limit; then dead-lettered with the reason, never dropped. The figures are
in infra/jetstream.toml:

- `[retry.handler]`: a handler that fails (a database busy, a disk full), in a service
  (`consumer.ConsumerEdge`) or in the gateway's feed to a partner (`services/gateway/feed.py`),
  is tried again in place, holding its partition or feed, so that nothing behind it overtakes
  it; the limit is max_deliver attempts (`WEGWEISER_MAX_DELIVER`). Short pauses, since what
  is behind it waits. An agency's consumer also counts deliveries against max_deliver and
  drops a message past it without a word, so the feed counts a delivery that a crash cut
  short as an attempt and dead-letters at the last one itself.
- `[retry.partner]`: a partner's system that does not take an event: the gateway's webhook
  delivery (with jitter, until `WEGWEISER_WEBHOOK_GIVE_UP_AFTER`), and the agency SDK's
  `retry_later`, which hands the event back to the server with the pause as its delay (a
  nak). Pauses that grow to minutes, since a partner's server may be down for long.

A consumer's ack_wait (infra/jetstream.toml) is the pause after a crash, not after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Retry:
    """Growing pauses between the attempts at something that fails."""

    first: float
    """Seconds before the second attempt."""
    longest: float
    """The longest pause."""

    def pause(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th attempt (counted from 1) failed."""
        return min(self.first * 2.0 ** (max(attempt, 1) - 1), self.longest)

    def window(self, attempts: int) -> float:
        """Seconds from the first attempt to the last of `attempts`, in pauses alone."""
        return sum(self.pause(n) for n in range(1, attempts))
