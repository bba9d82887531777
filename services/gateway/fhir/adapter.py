"""The feed handler of a FHIR agency: each referral event updates its FHIR view, then its
Subscriptions are told which Task changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg

from services.gateway.feed import Handle
from services.gateway.fhir import tasks
from services.gateway.fhir.subscriptions import Notifier, Run


def handler(
    run: Run,
    agency_id: str,
    notifier: Notifier,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Handle:
    async def handle(msg: Msg) -> str | None:
        changed = await run(lambda s: tasks.record(s, agency_id, msg.subject, msg.data, now()))
        if changed is not None:
            await notifier.task_changed(agency_id, changed)
        return None

    return handle
