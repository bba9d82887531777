"""The backup drill: back up a system while referrals flow, destroy its data directory,
restore the archive, start again, and find every referral of the recovery point in its state,
each offered once, the audit log extending the head seen before the backup, no dead letter."""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from services.agency import AgencyClient
from tests.support.system import AGENCY, office_auth, request_body, start_system, stream_events
from wegweiser.supervisor import LocalSystem

pytestmark = pytest.mark.slow


def wegweiser(
    data_dir: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The `wegweiser` command as an operator runs it."""
    env = {**os.environ, "WEGWEISER_DATA_DIR": str(data_dir)}
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "wegweiser", *args],
        env=env,
        cwd=cwd or data_dir.parent,
        capture_output=True,
        text=True,
        timeout=180,
    )


class Office:
    """Sends referrals to the agency, one after another, until stopped; notes when each was
    accepted by intake."""

    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.sent: list[tuple[float, str]] = []
        self.stop = asyncio.Event()
        self.sent_ten = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(
            base_url=self.system.settings.intake_url, auth=office_auth(self.system), timeout=30
        ) as http:
            while not self.stop.is_set():
                request = (await http.post("/requests", json=request_body())).json()
                path = f"/requests/{request['request_id']}/referrals"
                answer = await http.post(path, json={"agency_id": AGENCY})
                assert answer.status_code == 202, answer.text
                self.sent.append((loop.time(), answer.json()["referral_id"]))
                if len(self.sent) >= 10:
                    self.sent_ten.set()


async def agency(system: LocalSystem, seen: dict[str, set[str]]) -> None:
    """The agency acknowledges every offer it receives."""
    async with await AgencyClient.connect(
        system.nats_url, AGENCY, seed=system.agency_seed(AGENCY)
    ) as client:
        async for delivery in client.deliveries():
            if delivery.kind == "offered":
                rid = delivery.event.data.referral_id
                seen[rid].add(delivery.event.id)
                await client.answer(rid, "acknowledge", answer_id=f"{delivery.event.id}-ack")
            await delivery.ack()


def statuses(data_dir: Path, service: str = "intake") -> dict[str, str]:
    """Each referral's status as intake (the office's view) or the referral service has it."""
    table = {"intake": "referral_views", "referral": "referrals"}[service]
    engine = sqlalchemy.create_engine(f"sqlite:///{data_dir / service}.db")
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"select id, status from {table}").all()
    finally:
        engine.dispose()
    return {str(r): str(s) for r, s in rows}


async def until_all_received(data_dir: Path, ids: set[str], timeout: float = 90) -> dict[str, str]:
    deadline = asyncio.get_running_loop().time() + timeout
    found: dict[str, str] = {}
    while asyncio.get_running_loop().time() < deadline:
        found = statuses(data_dir)
        if all(found.get(i) == "received" for i in ids):
            assert statuses(data_dir, "referral") == found
            return found
        await asyncio.sleep(0.3)
    stuck = {i: found.get(i) for i in ids if found.get(i) != "received"}
    raise AssertionError(f"{len(stuck)} referrals never reached 'received': {stuck}")


async def test_a_backup_taken_while_referrals_flow_restores_to_a_consistent_point(tmp_path):
    identity = tmp_path / "offline" / "backup-identity.txt"
    made = wegweiser(tmp_path / "data", "backup-key", "--out", str(identity))
    assert made.returncode == 0, made.stderr
    recipient = made.stdout.strip()
    assert recipient.startswith("age1") and recipient in identity.read_text()
    assert identity.stat().st_mode & 0o777 == 0o600  # the secret half: its owner's alone
    again = wegweiser(tmp_path / "data", "backup-key", "--out", str(identity))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    archive = tmp_path / "backups" / "wegweiser.age"
    system = start_system(tmp_path)
    data_dir = system.data_dir
    seen: dict[str, set[str]] = collections.defaultdict(set)
    office = Office(system)
    try:
        partner = asyncio.create_task(agency(system, seen))
        sending = asyncio.create_task(office.run())
        await asyncio.wait_for(office.sent_ten.wait(), 60)
        exported = wegweiser(data_dir, "audit", "export", "--out", str(tmp_path / "before.json"))
        assert exported.returncode == 0, exported.stderr
        first = wegweiser(
            data_dir,
            "audit",
            "verify",
            str(tmp_path / "before.json"),
            "--state",
            str(tmp_path / "seen-head.json"),
        )
        assert first.returncode == 0, first.stdout + first.stderr
        started = asyncio.get_running_loop().time()
        backup = await asyncio.to_thread(
            wegweiser, data_dir, "backup", "--out", str(archive), "--recipient", recipient
        )
        finished = asyncio.get_running_loop().time()
        assert backup.returncode == 0, backup.stderr
        await asyncio.sleep(1.0)  # referrals after the recovery point, too
        office.stop.set()
        await sending
        partner.cancel()
        await asyncio.gather(partner, return_exceptions=True)
    finally:
        system.stop()
    assert archive.stat().st_mode & 0o777 == 0o600
    before = {rid for at, rid in office.sent if at < started}
    after = {rid for at, rid in office.sent if at > finished}
    print(
        f"\n{backup.stdout.strip()}\n{len(before)} referrals sent before the backup, "
        f"{len(after)} after it"
    )

    shutil.rmtree(data_dir)  # the disk dies
    restored = wegweiser(data_dir, "restore", str(archive), "--identity", str(identity))
    assert restored.returncode == 0, restored.stderr
    print(restored.stdout.strip())
    restored_keys = [p for p in (data_dir / "keys").rglob("*") if p.is_file()]
    assert restored_keys and all(p.stat().st_mode & 0o077 == 0 for p in restored_keys)
    point = statuses(data_dir)
    assert before <= set(point), "a referral sent before the backup is missing"
    assert after, "the office went on sending after the backup"
    assert not after & set(point), "a referral sent after the backup is in it"

    system = start_system(tmp_path)
    seen_again: dict[str, set[str]] = collections.defaultdict(set)
    try:
        partner = asyncio.create_task(agency(system, seen_again))
        final = await until_all_received(data_dir, set(point))
        partner.cancel()
        await asyncio.gather(partner, return_exceptions=True)
        offered = collections.Counter(
            e["data"]["referral_id"]
            for e in await stream_events(system, f"ww.referral.{AGENCY}.offered", idle=1.0)
        )
        dead = await stream_events(system, "ww.deadletter.>", idle=0.5)
        exported = wegweiser(data_dir, "audit", "export", "--out", str(tmp_path / "after.json"))
        assert exported.returncode == 0, exported.stderr
    finally:
        system.stop()
    assert {rid: n for rid, n in offered.items() if n != 1} == {}, "an offer was made twice"
    assert set(offered) == set(point)
    assert dead == [], f"dead letters after the restore: {dead}"
    assert set(final) == set(point)
    extends = wegweiser(
        data_dir,
        "audit",
        "verify",
        str(tmp_path / "after.json"),
        "--state",
        str(tmp_path / "seen-head.json"),
    )
    assert extends.returncode == 0, extends.stdout + extends.stderr
    assert "OK" in extends.stdout
