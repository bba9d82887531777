"""The webhook adapter: each event POSTed to the agency's HTTPS endpoint, signed, retried.

Signatures follow the Standard Webhooks specification (standardwebhooks.com): headers
`webhook-id` (the event id, stable across retries: the agency de-duplicates by it),
`webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` under the agency's secret). A delivery is retried with exponential
backoff and full jitter until the endpoint answers 2xx, or it is given up after a bounded
time and dead-lettered with the reason. The agency answers through the same signature on
`POST /webhooks/{agency}/answers` (see docs/webhooks.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog
from nats.aio.msg import Msg
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_delay,
)

from wegweiser.platform import topology
from wegweiser.platform.consumer import event_id_of
from wegweiser.platform.retry import Retry
from wegweiser.platform.secrets import SecretFolder, new_secret  # the gateway signs with them

log = structlog.get_logger()

__all__ = ["SecretFolder", "WebhookVerificationError", "new_secret", "signed_headers", "verify"]


def signed_headers(
    secret: str, message_id: str, body: str, now: datetime | None = None
) -> dict[str, str]:
    timestamp = now or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secret: str, body: bytes, headers: dict[str, str]) -> None:
    """Raise WebhookVerificationError unless the body carries a valid, fresh signature."""
    Webhook(secret).verify(body, headers, json_parse=False)


class EndpointFailed(Exception):
    """The endpoint did not take the delivery (an HTTP error status or no answer)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    attempts: int
    last_error: str | None


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    message_id: str,
    body: str,
    give_up_after: float,
    retry: Retry,
    while_waiting: Callable[[], Awaitable[None]] | None = None,
) -> Outcome:
    """POST until a 2xx answer, waiting longer each time between attempts (`retry`'s pauses,
    with jitter); after `give_up_after` seconds, stop. `while_waiting` runs before each retry
    (to tell the broker the message is still being worked on)."""
    attempts = 0
    last_error: str | None = None

    async def before_sleep(_state: object) -> None:
        if while_waiting is not None:
            await while_waiting()

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((EndpointFailed, httpx.HTTPError)),
            wait=retry.jittered(),
            stop=stop_after_delay(give_up_after),
            before_sleep=before_sleep,
        ):
            with attempt:
                attempts += 1
                try:
                    response = await client.post(
                        url, content=body, headers=signed_headers(secret, message_id, body)
                    )
                except httpx.HTTPError as exc:
                    last_error = f"{exc.__class__.__name__}: {exc}"
                    raise
                if not response.is_success:
                    last_error = f"HTTP {response.status_code}"
                    raise EndpointFailed(last_error)
    except RetryError:
        log.warning("webhook.gave_up", url=url, attempts=attempts, error=last_error)
        return Outcome(False, attempts, last_error)
    return Outcome(True, attempts, None)


def handler(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    give_up_after: float,
    retry: Retry | None = None,
) -> Callable[[Msg], Awaitable[str | None]]:
    """A feed handler that delivers each event, as it is on the stream, to `url`, tried again
    with the partners' pauses (infra/jetstream.toml) unless `retry` says otherwise."""
    pauses = retry or topology.retry("partner")

    async def handle(msg: Msg) -> str | None:
        body = msg.data.decode("utf-8")
        message_id = event_id_of(msg.data) or f"seq-{msg.metadata.sequence.stream}"
        outcome = await deliver(
            client,
            url,
            secret,
            message_id,
            body,
            give_up_after,
            pauses,
            while_waiting=msg.in_progress,
        )
        if outcome.delivered:
            log.info("webhook.delivered", url=url, attempts=outcome.attempts)
            return None
        return (
            f"webhook {url} did not take {msg.subject} in {outcome.attempts} attempts "
            f"over {give_up_after:g} s; last: {outcome.last_error}"
        )

    return handle
