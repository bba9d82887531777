"""One agency floods the broker with answers and oversized messages while another agency
serves a referral: the broker refuses what is too big, every flooded answer is accounted for
(refused back to its sender), and the other agency's referral runs its whole life."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import nats
import nats.errors
import pytest

from schemas import subjects
from tests.support.system import agency_client, run_demo, stream_events, wait_for

pytestmark = pytest.mark.slow

FLOODER = "lup-jobcenter"
ANSWERS = 200


async def test_a_flooding_agency_harms_no_other_and_loses_nothing(system) -> None:
    async with await agency_client(system, FLOODER) as flooder:

        async def flood() -> None:
            for _ in range(ANSWERS):
                await flooder.answer(f"ref-{uuid.uuid4()}", "accept")

        flooding = asyncio.create_task(flood())
        final = await run_demo(system)
        await flooding
    assert final["status"] == "completed"

    async def record(exc: Exception) -> None:
        pass  # the server's refusal closes the connection: checked below

    raw = await nats.connect(
        system.nats_url,
        nkeys_seed=str(system.agency_seed(FLOODER)),
        error_cb=record,
        allow_reconnect=False,
    )
    for _ in range(4):  # the agency account's limit is 64 KB, the server's 1 MB
        with contextlib.suppress(nats.errors.Error):
            await raw.publish(subjects.answer(FLOODER, "accept"), b"x" * 900_000)
            await raw.flush(timeout=2)
    assert raw.is_closed  # the server cut the connection
    server_log = (system.data_dir / "nats" / "nats-server.log").read_text()
    assert "maximum payload exceeded: 900000 vs 65536" in server_log
    answers = await stream_events(system, f"ww.answer.{FLOODER}.>")
    assert len(answers) == ANSWERS  # none of the oversized ones

    async def all_refused() -> list[dict] | None:
        found = await stream_events(system, f"ww.referral.{FLOODER}.refused")
        return found if len(found) >= ANSWERS else None

    refused = await wait_for(all_refused, timeout=120, every=1)
    assert len(refused) == ANSWERS
    assert {r["data"]["code"] for r in refused} == {"referral.not-the-recipient"}
