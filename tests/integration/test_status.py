"""`wegweiser status` tells the broker's failures: a missing stream, a missing consumer, a
stream near its byte limit; and the embedded server serves no unauthenticated monitoring
outside development."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.aio.client import Client

from schemas import subjects
from wegweiser import provisioning, status
from wegweiser.platform import grants, topology
from wegweiser.platform.nats_server import EmbeddedNats
from wegweiser.settings import Settings

AGENCIES = [grants.Agency("agency-a", "nats")]


@pytest.fixture
async def nc(server: EmbeddedNats) -> AsyncIterator[Client]:
    client = await nats.connect(server.url)
    yield client
    await client.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    found = provisioning.seeds(s)
    found.ensure(found.agency_path("agency-a"))
    provisioning.accounts(s, AGENCIES)  # records the agencies the broker serves
    return s


async def test_a_missing_stream_is_a_failure(nc: Client, settings: Settings) -> None:
    lines: list[str] = []
    assert await status._broker(nc.jetstream(), settings, lines) is False
    assert lines == [f"stream {subjects.STREAM} MISSING: nothing can be published or delivered"]


async def test_a_missing_consumer_is_a_failure_and_all_present_is_not(
    nc: Client, settings: Settings
) -> None:
    js = nc.jetstream()
    await topology.ensure_stream(js)
    declared = provisioning.declared_consumers(AGENCIES)
    await topology.ensure_consumers(js, declared[1:], max_deliver=3)
    lines: list[str] = []
    assert await status._broker(js, settings, lines) is False
    assert [line for line in lines if "MISSING" in line] == [
        f"  consumer {declared[0].durable:<28} MISSING (the broker watch recreates it)"
    ]
    await topology.ensure_consumers(js, declared[:1], max_deliver=3)
    lines.clear()
    assert await status._broker(js, settings, lines) is True
    assert "of its 8589934592 byte limit" in lines[0]


async def test_a_stream_near_its_limit_is_a_failure(nc: Client, settings: Settings) -> None:
    js = nc.jetstream()
    await js.add_stream(dataclasses.replace(topology.stream_config(), max_bytes=4096))
    refused = None
    for _ in range(100):
        try:
            await js.publish(subjects.REQUEST_RECORDED, b"x" * 180)
        except nats.js.errors.APIError as exc:
            refused = exc
            break
    # a full stream refuses new events, rather than dropping the oldest
    assert refused is not None and "maximum bytes exceeded" in str(refused)
    assert (await js.stream_info(subjects.STREAM)).state.first_seq == 1
    lines: list[str] = []
    assert await status._broker(js, settings, lines) is False
    assert any("NEARLY FULL" in line for line in lines)


def test_monitoring_is_off_outside_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings(data_dir=tmp_path).nats_monitoring is True
    monkeypatch.setenv("WEGWEISER_ALLOW_SQLITE", "1")
    production = Settings(data_dir=tmp_path, environment="production")
    assert production.nats_monitoring is False
    server = EmbeddedNats(tmp_path / "nats", monitor=production.nats_monitoring, port=1)
    server.monitor_port = 2
    server.store_dir.mkdir(parents=True)
    server._write_config()
    assert "http:" not in server.config_path.read_text()
