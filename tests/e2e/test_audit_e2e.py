"""The audit log over a referral's whole life: complete trail, export, offline verification."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nats
import pytest

from services.audit.bootstrap import TREE_HEAD
from tests.e2e.conftest import wait_for
from wegweiser.demo import demo
from wegweiser.platform.keys import KeyRing

pytestmark = pytest.mark.slow


def wegweiser(system, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEGWEISER_DATA_DIR": str(system.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "wegweiser", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )


async def test_the_trail_export_and_offline_verification_of_a_referrals_life(system, tmp_path):
    final = await demo(
        system.settings.intake_url,
        system.nats_url,
        KeyRing(system.settings.keys_path),
        say=lambda _: None,
        client_name="Audit Canary 5521",
    )
    rid = final["referral_id"]
    nc = await nats.connect(system.nats_url)

    async def head_covers_all():
        reply = await nc.request(TREE_HEAD, b"", timeout=5)
        head = json.loads(reply.data)
        return head if head["size"] >= 10 else None

    head = await wait_for(head_covers_all)
    await nc.close()

    trail = wegweiser(system, "audit", "trail", rid)
    lines = trail.stdout.splitlines()
    states = [line.split()[3] for line in lines if " de.wegweiser.referral." in line]
    answers = [line.split()[3] for line in lines if " de.wegweiser.agency.answer" in line]
    assert answers == ["acknowledge", "accept", "start", "complete"]
    assert states == ["requested", "received", "accepted", "in-progress", "completed"], lines
    consent = lines[0].rsplit("consent ", 1)[1]
    assert consent.startswith("con-") and all(line.endswith(consent) for line in lines)

    out = tmp_path / "export.json"
    exported = wegweiser(system, "audit", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(out.read_text())
    assert len(doc["entries"]) == doc["tree_head"]["size"] >= head["size"] - 0
    assert "Audit Canary 5521" not in out.read_text()  # metadata only
    ok = wegweiser(system, "audit", "verify", str(out))
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout + ok.stderr

    proof = tmp_path / "proof.json"
    proof.write_text(wegweiser(system, "audit", "prove", str(out), "--index", "3").stdout)
    assert wegweiser(system, "audit", "verify", str(out), "--proof", str(proof)).returncode == 0
    proof.write_text(wegweiser(system, "audit", "prove", str(out), "--since", "2").stdout)
    assert wegweiser(system, "audit", "verify", str(out), "--proof", str(proof)).returncode == 0

    entry = json.loads(doc["entries"][4])
    entry["time"] = "2020-01-01T00:00:00Z"  # rewrite history, keep the file well-formed
    doc["entries"][4] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    out.write_text(json.dumps(doc))
    bad = wegweiser(system, "audit", "verify", str(out))
    assert bad.returncode == 1 and "entry 6 does not follow entry 5" in bad.stdout, bad.stdout
