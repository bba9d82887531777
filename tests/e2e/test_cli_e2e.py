"""The command line against the running processes: status and the agency adapter."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.e2e.conftest import (
    AGENCY,
    send_referral,
    until_status,
)

pytestmark = pytest.mark.slow


def wegweiser(system, *args: str, **kw) -> subprocess.Popen[str]:
    env = {**os.environ, "WEGWEISER_DATA_DIR": str(system.data_dir), "WEGWEISER_LOG_JSON": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "wegweiser", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_status_reports_every_service_and_the_stream_and_fails_when_one_is_down(system):
    out, _ = wegweiser(system, "status").communicate(timeout=30)
    assert "service referral   up" in out and "intake HTTP" in out and " ok" in out
    assert "consumer referral-answers" in out and "0 dead letters" in out
    system.children["referral"].kill()
    down = wegweiser(system, "status")
    out, _ = down.communicate(timeout=30)
    assert down.returncode == 1 and "service referral   DOWN" in out


async def test_agency_listen_prints_offers_and_acknowledges_them(system):
    listener = wegweiser(system, "agency", "listen", "--agency", AGENCY, "--acknowledge")
    try:
        async with httpx.AsyncClient(base_url=system.settings.intake_url) as http:
            rid = await send_referral(http)
            line = await asyncio.wait_for(asyncio.to_thread(listener.stdout.readline), 30)
            printed = json.loads(line)
            assert printed["kind"] == "offered" and printed["event"]["data"]["referral_id"] == rid
            assert printed["case"]["client_reference"] == "client-42"  # unsealed by the adapter
            assert "client-42" not in json.dumps(printed["event"])  # the event held ciphertext

            await until_status(http, rid, "received")
        answer = wegweiser(
            system,
            "agency",
            "answer",
            rid,
            "reject",
            "--agency",
            AGENCY,
            "--reason",
            "no capacity until March",
        )
        out, err = answer.communicate(timeout=30)
        assert answer.returncode == 0, err
        async with httpx.AsyncClient(base_url=system.settings.intake_url) as http:
            view = await until_status(http, rid, "rejected")
        assert view["reason"] == "no capacity until March"
    finally:
        listener.terminate()
        listener.wait(10)
