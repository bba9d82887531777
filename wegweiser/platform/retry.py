"""How whatever fails is tried again: one rule, with figures for each kind of waiting.

The rule: tried again after `first` seconds, then after twice as long each time, at most
`longest` (`pause`; tenacity's `wait_exponential` is the same rule, `wait`, and with full
jitter, `jittered`), until a limit; a message that reaches its limit is dead-lettered with
the reason. The figures are in infra/jetstream.toml, one set for each kind of waiting
(`topology.retry`):

- `handler`: a handler that fails (a database busy, a disk full), in a service or in the
  gateway's feed to a partner (`consumer.ConsumerEdge.attempt`), is tried again in place,
  holding its partition or feed, so that nothing behind it overtakes it. Short pauses, since
  what is behind it waits; the limit is max_deliver attempts (`WEGWEISER_MAX_DELIVER`).
- `partner`: a partner's webhook that does not take an event is tried again in place, with
  jitter, until `WEGWEISER_WEBHOOK_GIVE_UP_AFTER`: pauses that grow to minutes, since a
  partner's server may be down for hours.
- `redelivery`: an event an agency hands back (`AgencyDelivery.retry_later`) comes again
  after the pause as the redelivery's delay. Each hand-back spends one of the consumer's
  max_deliver deliveries, after which the server stops offering it, so these pauses start
  longer: five deliveries span over a minute.
- `notification`: a FHIR notification, whose first (the handshake) is made while the
  agency's own request waits: capped short, and given up after half a minute.
- `broker`: the broker, a consumer or JetStream's API not there yet (a reconnect, a leader
  election, the provisioning not yet done): the pull loop, the outbox relay, the agency
  SDK's answers and the administrator's requests.

A consumer's ack_wait (infra/jetstream.toml) is the pause after a crash, not after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import wait_exponential, wait_random_exponential


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

    def wait(self) -> wait_exponential:
        """The same pauses for a tenacity loop."""
        return wait_exponential(multiplier=self.first, max=self.longest)

    def jittered(self) -> wait_random_exponential:
        """The same pauses with full jitter (each a random share of the pause), for many
        senders that should not retry in step."""
        return wait_random_exponential(multiplier=self.first, max=self.longest)
