"""The whole system as separate processes around a private nats-server, for the end-to-end
tests and any other test that needs it running: starting it on free ports, calling intake as
an office, reading its stream and waiting for what it does (the fixtures are in
tests/e2e/conftest.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats

from services.agency import AgencyClient
from services.agency.client import AgencyDelivery
from services.directory.sample import SAMPLE_PATH
from services.intake.credential import OfficeAuth
from tests.support.cli import wegweiser
from tests.support.consumers import stored_messages
from wegweiser.demo import demo, sample_request
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.nats_server import servers
from wegweiser.settings import Settings
from wegweiser.supervisor import LocalSystem

STARTED: list[LocalSystem] = []
"""Every system the tests started: whatever a test that timed out left running is stopped
at the end of the session, so that it cannot slow down the tests after it."""

STARTUP_WAIT: float = 60
"""How long a system is given to start, in seconds, unless a test says otherwise."""


def start_system(
    tmp_path: Path, settings: dict[str, Any] | None = None, wait: float = STARTUP_WAIT, **env: str
) -> LocalSystem:
    """The whole system on free ports; `settings` overrides, `env` goes to every process."""
    system = LocalSystem(
        Settings.on_free_ports(
            data_dir=tmp_path / "data",
            metrics_every=2.0,
            nats_sync_interval="always",
            **(settings or {}),
        ),
        extra_env={"WEGWEISER_LOG_LEVEL": "INFO", **env},
    )
    STARTED.append(system)
    if not system.start(wait=wait):
        logs = {p.name: p.read_text()[-3000:] for p in (system.data_dir / "logs").glob("*.log")}
        system.stop()
        raise RuntimeError(f"system did not start: {logs}")
    return system


def office_auth(system: LocalSystem, office: str | None = None) -> OfficeAuth:
    """Calls to intake as an office's software: the demo's credential for the default office,
    the web app's for another (both made by intake in development)."""
    if office is None or office == system.settings.office_id:
        return OfficeAuth(system.settings.demo_intake_credential_path)
    return OfficeAuth(system.settings.web_intake_credential_path, office)


def office_client(system: LocalSystem, **kw: Any) -> httpx.AsyncClient:
    """Intake's API as the default office's software calls it (`kw` goes to the client)."""
    return httpx.AsyncClient(base_url=system.settings.intake_url, auth=office_auth(system), **kw)


def request_body(**overrides: Any) -> dict[str, Any]:
    """The demo's request under the tests' client reference."""
    return sample_request(**{"client_reference": "client-42", **overrides})


AGENCY = "lup-mbe-ludwigslust"


async def stream_events(
    system: LocalSystem, subject: str, idle: float = 0.5
) -> list[dict[str, Any]]:
    """Every message in the stream on `subject`, decoded (read as the services' user): all it
    held when asked, however slowly they come, and any that follow within `idle` seconds."""
    nc = await nats.connect(servers(system.nats_url), **system.nats_options)
    try:
        found = await stored_messages(nc.jetstream(), subject, idle)
    finally:
        await nc.close()
    return [{**json.loads(msg.data), "nats_subject": msg.subject} for msg in found]


async def wait_for(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s; last: {last!r}")


async def referral_status(http: httpx.AsyncClient, referral_id: str) -> dict[str, Any]:
    """The office's view of a referral (intake's answer must be 200)."""
    response = await http.get(f"/referrals/{referral_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def request_and_referral(
    http: httpx.AsyncClient, agency: str = AGENCY
) -> tuple[dict[str, Any], str]:
    """Record a request and send it to `agency`: the request as intake answered (with its
    consent's id, for a test that goes on to withdraw it) and the referral's id."""
    request: dict[str, Any] = (await http.post("/requests", json=request_body())).json()
    path = f"/requests/{request['request_id']}/referrals"
    return request, str((await http.post(path, json={"agency_id": agency})).json()["referral_id"])


async def send_referral(http: httpx.AsyncClient, agency: str = AGENCY) -> str:
    """Record a request and send it to `agency`; the referral's id."""
    _, referral_id = await request_and_referral(http, agency)
    return referral_id


async def requested_referral(http: httpx.AsyncClient, agency: str = AGENCY) -> str:
    """A referral sent to `agency` that the office already sees requested (so the agency has
    it, or is about to); its id."""
    referral_id = await send_referral(http, agency)
    await until_status(http, referral_id, "requested")
    return referral_id


async def until_status(http: httpx.AsyncClient, referral_id: str, status: str) -> dict[str, Any]:
    """Wait until the office sees the referral in `status`; its view."""
    return await until_view(http, referral_id, status=status)


async def until_view(http: httpx.AsyncClient, referral_id: str, **expected: Any) -> dict[str, Any]:
    """Wait until the office's view of the referral has every field `expected` names (its
    status, its deletion, ...), which events of different services may bring in any order;
    the view."""

    async def check() -> dict[str, Any] | None:
        view = await referral_status(http, referral_id)
        return view if all(view.get(k) == v for k, v in expected.items()) else None

    return dict(await wait_for(check))


COMPLETED_TRAIL = [
    "requested-by-office",
    "offered",
    "received",
    "accepted",
    "started",
    "completed",
]
"""What the office's trail of a referral taken through to completion lists, step by step."""


async def run_demo(system: LocalSystem, **options: Any) -> dict[str, Any]:
    """`wegweiser demo` on `system`, with its credentials: a referral from intake to completion;
    its final view, trail included (`options` go to `demo`: `say`, `client_name`, ...)."""
    keys = KeyRing(system.settings.keys_path)
    return await demo(
        system.settings.intake_url, system.nats_url, keys, **system.demo_options, **options
    )


async def agency_client(
    system: LocalSystem, agency_id: str = AGENCY, keys: bool = False
) -> AgencyClient:
    """`agency_id`'s software on `system`'s broker with its nkey; with `keys`, also its own
    private key and the offices' public keys, to open sealed cases and seal comments."""
    if not keys:
        return await AgencyClient.connect(
            system.nats_url, agency_id, seed=system.agency_seed(agency_id)
        )
    ring = KeyRing(system.settings.keys_path)
    return await AgencyClient.connect(
        system.nats_url,
        agency_id,
        ring.agency_private(agency_id),
        ring.office_public(),
        system.agency_seed(agency_id),
        office_keys=ring.office_sealing_public(),
    )


async def first_delivery(
    client: AgencyClient, kind: str, referral_id: str | None = None
) -> AgencyDelivery:
    """The agency's first event of `kind` (about `referral_id`, if given); it and every one
    before it acknowledged, so that none comes again."""
    async for delivery in client.deliveries():
        await delivery.ack()
        if delivery.kind == kind and (
            referral_id is None or delivery.event.data.referral_id == referral_id
        ):
            return delivery
    raise AssertionError("the deliveries ended")


def files_containing(folder: Path, needle: bytes) -> list[str]:
    """Every file below `folder` (a system's data directory, say) whose bytes hold `needle`."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def reach_by(system: LocalSystem, agency: str, adapter: str, address: str, folder: Path) -> None:
    """The county imports the sample directory again with `agency` reached by `adapter` at
    `address`, as its administrator would (`wegweiser directory import`)."""
    directory = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    for service in directory["services"]:
        if service["wegweiser"]["agency_id"] == agency:
            service["wegweiser"]["referral"] = {"adapter": adapter, "address": address}
    changed = folder / "directory.json"
    changed.write_text(json.dumps(directory, ensure_ascii=False), encoding="utf-8")
    imported, err = wegweiser(system, "directory", "import", str(changed)).communicate(timeout=60)
    assert "0 created, 1 updated" in imported, err
