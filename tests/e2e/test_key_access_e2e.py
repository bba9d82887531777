"""Each process reads only the key files it needs: every service its own broker seed and no
other, the web app no broker or agency key at all. Proved from the files each process really
opened (an audit hook records every open under the key folder) through a whole referral."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.e2e.conftest import start_system
from wegweiser.demo import demo
from wegweiser.platform.grants import SERVICES_ON_THE_BROKER
from wegweiser.platform.keys import KeyRing

pytestmark = pytest.mark.slow


async def test_each_service_opens_only_its_own_broker_seed_and_the_web_app_none(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "key-reads.tsv"
    system = start_system(tmp_path, WEGWEISER_TRACE_KEY_READS=str(trace))
    try:
        final = await demo(
            system.settings.intake_url,
            system.nats_url,
            KeyRing(system.settings.keys_path),
            **system.demo_options,
        )
        assert final["status"] == "completed"
    finally:
        system.stop()
    opened: dict[str, set[str]] = defaultdict(set)
    for line in trace.read_text().splitlines():
        who, path = line.split("\t")
        opened[who].add(path)
    assert set(opened) <= {*SERVICES_ON_THE_BROKER, "web"}
    for service in SERVICES_ON_THE_BROKER:
        assert {p for p in opened[service] if p.startswith("nats/")} == {f"nats/{service}.nk"}
    private_agency_keys = {
        p for p in opened["web"] if p.startswith("agencies/") and not p.endswith(".pub.jwk")
    }
    assert not any(p.startswith("nats/") for p in opened["web"])
    assert private_agency_keys == set()
    # only the gateway holds agencies' private keys (the e-mail agencies it serves)
    for service in {"directory", "referral", "intake", "audit"}:
        assert not {
            p for p in opened[service] if p.startswith("agencies/") and not p.endswith(".pub.jwk")
        }, service
