"""The audit log over a referral's whole life: complete trail, export, offline verification."""

from __future__ import annotations

import json

import httpx
import nats
import pytest

from schemas.subjects import AUDIT_TREE_HEAD as TREE_HEAD
from tests.support.cli import run_wegweiser
from tests.support.system import run_demo, wait_for

pytestmark = pytest.mark.slow


# The two tests share one system; the ombudsperson's runs first (it counts every offer).


def ombudsperson(system) -> httpx.AsyncClient:
    """The audit's API as the ombudsperson calls it."""
    token = (system.settings.keys_path / "audit" / "ombudsperson.token").read_text().strip()
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{system.settings.audit_port}",
        headers={"Authorization": f"Bearer {token}"},
    )


async def complete_trail(ombuds: httpx.AsyncClient, rid: str) -> list[dict]:
    """The referral's trail in the audit log, once the log has recorded its completion (the
    audit takes the events in after intake has shown them to the office)."""

    async def completed():
        response = await ombuds.get(f"/referrals/{rid}/trail")
        rows = response.json() if response.status_code == 200 else []
        return rows if any(r["state"] == "completed" for r in rows) else None

    return list(await wait_for(completed))


async def test_the_ombudsperson_reads_metadata_only(system):
    """(Without the token, or to write, refused: tests/http/test_audit_api.py.)"""
    final = await run_demo(system, say=lambda _: None, client_name="Ombuds Canary 8812")
    rid = final["referral_id"]
    async with ombudsperson(system) as ombuds:
        rows = await complete_trail(ombuds, rid)
        assert [r["state"] for r in rows if r["type"].startswith("de.wegweiser.referral.")] == [
            "requested",
            "received",
            "accepted",
            "in-progress",
            "completed",
        ]
        listing = (await ombuds.get("/referrals", params={"state": "completed"})).json()
        assert [r["referral_id"] for r in listing] == [rid]
        times = (await ombuds.get("/agencies/answer-times")).json()
        assert times[0]["offers"] == 1 and times[0]["median_seconds_to_answer"] >= 0
        assert (await ombuds.get("/anomalies")).json() == {
            "offers_without_covering_consent": [],
            "answers_for_referrals_never_received": [],
            "fields_withheld": [],
            "sequence_gaps": [],
        }
        csv_text = (await ombuds.get("/referrals.csv")).text
        assert csv_text.startswith("referral_id,") and rid in csv_text
        everything = "".join(
            [
                (await ombuds.get(path)).text
                for path in (
                    f"/referrals/{rid}/trail",
                    "/referrals",
                    "/referrals.csv",
                    "/overdue",
                    "/withdrawals",
                    "/anomalies",
                    "/agencies/answer-times",
                )
            ]
        )
        assert "Ombuds Canary 8812" not in everything and "Needs help" not in everything


async def test_the_trail_export_and_offline_verification_of_a_referrals_life(system, tmp_path):
    final = await run_demo(system, say=lambda _: None, client_name="Audit Canary 5521")
    rid = final["referral_id"]
    nc = await nats.connect(system.nats_url, **system.nats_options)

    async def head_covers_all():
        reply = await nc.request(TREE_HEAD, b"", timeout=5)
        head = json.loads(reply.data)
        return head if head["size"] >= 10 else None

    head = await wait_for(head_covers_all)  # (true already after the first test)
    await nc.close()
    async with ombudsperson(system) as ombuds:
        await complete_trail(ombuds, rid)  # the log has all of this referral's life

    trail = run_wegweiser(system, "audit", "trail", rid)
    lines = trail.stdout.splitlines()
    states = [line.split()[3] for line in lines if " de.wegweiser.referral." in line]
    answers = [line.split()[3] for line in lines if " de.wegweiser.agency.answer" in line]
    assert answers == ["acknowledge", "accept", "start", "complete"]
    assert states == ["requested", "received", "accepted", "in-progress", "completed"], lines
    consent = lines[0].rsplit("consent ", 1)[1]
    assert consent.startswith("con-") and all(line.endswith(consent) for line in lines)

    out = tmp_path / "export.json"
    exported = run_wegweiser(system, "audit", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(out.read_text())
    assert len(doc["entries"]) == doc["tree_head"]["size"] >= head["size"] - 0
    assert "Audit Canary 5521" not in out.read_text()  # metadata only
    ok = run_wegweiser(system, "audit", "verify", str(out))
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout + ok.stderr

    proof = tmp_path / "proof.json"
    proof.write_text(run_wegweiser(system, "audit", "prove", str(out), "--index", "3").stdout)
    assert run_wegweiser(system, "audit", "verify", str(out), "--proof", str(proof)).returncode == 0
    proof.write_text(run_wegweiser(system, "audit", "prove", str(out), "--since", "2").stdout)
    assert run_wegweiser(system, "audit", "verify", str(out), "--proof", str(proof)).returncode == 0

    entry = json.loads(doc["entries"][4])
    entry["time"] = "2020-01-01T00:00:00Z"  # rewrite history, keep the file well-formed
    doc["entries"][4] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    out.write_text(json.dumps(doc))
    bad = run_wegweiser(system, "audit", "verify", str(out))
    assert bad.returncode == 1 and "entry 5 was altered" in bad.stdout, bad.stdout
