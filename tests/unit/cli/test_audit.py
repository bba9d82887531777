"""`wegweiser audit ...` in this process, on a data directory whose audit log the service's own
code recorded: what each command prints, and its exit code, for a log kept and one tampered."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from services.audit.application import audit_log
from services.audit.ledger import canonical
from wegweiser.cli import app
from wegweiser.cli.common import database, load_settings

REFERRAL, OTHER = "0c8a1f4e-5b6d-4e7f-8a9b-000000000001", "0c8a1f4e-5b6d-4e7f-8a9b-000000000002"
OFFERED = "ww.referral.lup-jobcenter.offered"


def record(data_dir: Path, first: int, *referrals: str) -> None:
    """Messages about these referrals (stream sequences from `first` on), recorded by the
    audit's own code as its consumer does."""
    settings = load_settings(data_dir)
    db = database(settings, "audit")
    recorder = audit_log(settings, db).recorder
    for sequence, referral in enumerate(referrals, start=first):
        event = {
            "id": f"4b2a7c1e-9d3f-4e5a-8b6c-{sequence:012d}",
            "type": "de.wegweiser.referral.offered.v1",
            "time": f"2026-12-01T09:00:{sequence:02d}Z",
            "data": {"referral_id": referral},
        }
        db.run_sync(
            partial(
                recorder.record,
                nats_subject=OFFERED,
                body=json.dumps(event).encode(),
                sequence=sequence,
            )
        )
        recorder.committed()
    db.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose audit log holds four messages, three about REFERRAL."""
    record(tmp_path / "data", 1, REFERRAL, OTHER, REFERRAL, REFERRAL)
    return tmp_path / "data"


def wegweiser(data_dir: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(
        app, [str(a) for a in args], env={"WEGWEISER_DATA_DIR": str(data_dir)}
    )


@pytest.fixture
def exported(data_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "export.json"
    done = wegweiser(data_dir, "audit", "export", "--out", out)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"wrote {out}: 4 entries, root ")
    return out


def test_an_export_verifies_and_its_proofs_check(
    data_dir: Path, exported: Path, tmp_path: Path
) -> None:
    ok = wegweiser(data_dir, "audit", "verify", exported)
    assert (ok.exit_code, ok.stdout) == (0, "OK: 4 entries verified against the signed head\n")
    proof = tmp_path / "proof.json"
    for option, value, kind in [("--index", "3", "inclusion"), ("--since", "2", "consistency")]:
        proof.write_text(wegweiser(data_dir, "audit", "prove", exported, option, value).stdout)
        checked = wegweiser(data_dir, "audit", "verify", exported, "--proof", proof)
        assert checked.exit_code == 0, checked.output
        assert checked.stdout.splitlines()[-1] == f"{kind} proof OK"
    doc = json.loads(proof.read_text())
    proof.write_text(json.dumps({**doc, "prior_root": doc["root"]}))
    bad = wegweiser(data_dir, "audit", "verify", exported, "--proof", proof)
    assert (bad.exit_code, bad.stdout.splitlines()[-1]) == (1, "consistency proof INVALID")


def test_a_tampered_export_is_invalid_and_names_the_entry(data_dir: Path, exported: Path) -> None:
    doc = json.loads(exported.read_text())
    doc["entries"][1] = canonical({**json.loads(doc["entries"][1]), "type": "forged"}).decode()
    exported.write_text(json.dumps(doc))
    bad = wegweiser(data_dir, "audit", "verify", exported)
    assert bad.exit_code == 1 and bad.stdout.startswith("INVALID: entry 2 was altered"), bad.stdout


def test_the_state_file_keeps_the_head_and_a_shorter_log_is_rolled_back(
    data_dir: Path, exported: Path, tmp_path: Path
) -> None:
    state = tmp_path / "seen.json"
    assert wegweiser(data_dir, "audit", "verify", exported, "--state", state).exit_code == 0
    assert json.loads(state.read_text())["size"] == 4
    doc = json.loads(exported.read_text())
    state.write_text(json.dumps({**json.loads(state.read_text()), "size": 9}))
    rolled = wegweiser(data_dir, "audit", "verify", exported, "--state", state)
    assert rolled.exit_code == 1 and "rolled back" in rolled.stdout, rolled.stdout
    assert doc == json.loads(exported.read_text())


def test_without_a_pinned_key_the_installations_own_is_required(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text("{}")
    refused = wegweiser(tmp_path / "empty", "audit", "verify", export)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("INVALID: no pinned key: pass --key (none in ")


def test_prove_asks_for_an_index_or_a_size(data_dir: Path, exported: Path) -> None:
    asked = wegweiser(data_dir, "audit", "prove", exported)
    assert asked.exit_code == 2 and "give --index N or --since SIZE" in asked.output


@pytest.mark.usefixtures("exported")  # a head signed by the key before the handover
def test_the_key_is_printed_and_rotated_and_an_export_follows_the_handover(
    data_dir: Path, tmp_path: Path
) -> None:
    key = wegweiser(data_dir, "audit", "key")
    assert key.exit_code == 0 and key.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    fingerprint = key.stderr.split()[1]
    pem = tmp_path / "pinned.pem"
    pem.write_text(key.stdout)
    rotated = wegweiser(data_dir, "audit", "rotate-key")
    assert rotated.exit_code == 0
    assert rotated.stdout.startswith(f"rotated: {fingerprint} -> sha256:")
    assert rotated.stdout.rstrip().endswith("; restart the audit service")
    assert wegweiser(data_dir, "audit", "key").stderr.split()[1] != fingerprint
    record(data_dir, 5, OTHER)  # a head signed after the handover covers a grown log
    later = tmp_path / "later.json"
    assert wegweiser(data_dir, "audit", "export", "--out", later).exit_code == 0
    followed = wegweiser(data_dir, "audit", "verify", later, "--key", pem)
    assert followed.exit_code == 0, followed.stdout


@pytest.mark.usefixtures("exported")  # a head signed by the key before the handover
def test_right_after_a_rotation_an_export_of_the_same_log_verifies_with_either_key(
    data_dir: Path, tmp_path: Path
) -> None:
    """The log has not grown since the handover: its head is signed anew by the new key,
    which a verifier that pinned the old key reaches by the handover."""
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    old.write_text(wegweiser(data_dir, "audit", "key").stdout)
    assert wegweiser(data_dir, "audit", "rotate-key").exit_code == 0
    new.write_text(wegweiser(data_dir, "audit", "key").stdout)
    same = tmp_path / "same.json"
    assert wegweiser(data_dir, "audit", "export", "--out", same).exit_code == 0
    for pinned in (old, new):
        verified = wegweiser(data_dir, "audit", "verify", same, "--key", pinned)
        assert verified.exit_code == 0, verified.output


def test_no_key_yet_is_said_with_exit_code_2(tmp_path: Path) -> None:
    missing = wegweiser(tmp_path / "empty", "audit", "key")
    assert missing.exit_code == 2 and missing.stderr.startswith("no audit key in ")


def test_a_referrals_trail_is_printed_in_log_order(data_dir: Path) -> None:
    trail = wegweiser(data_dir, "audit", "trail", REFERRAL)
    assert trail.exit_code == 0, trail.output
    assert [line.split()[0] for line in trail.stdout.splitlines()] == ["1", "3", "4"]
