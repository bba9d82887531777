"""A unique string in a client's name, note, contact details and residence status, and in an
agency's free-text comment, is found in clear nowhere at rest."""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy

from tests.support.system import files_containing, office_client, run_demo
from wegweiser.registry import ON_THE_BROKER

pytestmark = pytest.mark.slow


def rows_containing(url: str, needle: str) -> list[str]:
    """Every table row of a database rendered as text, searched for the needle."""
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    found = []
    with engine.connect() as conn:
        for table in sqlalchemy.inspect(conn).get_table_names():
            for (text,) in conn.exec_driver_sql(f'SELECT t::text FROM "{table}" t'):
                if needle in text or needle.encode().hex() in text:
                    found.append(f"{table}: {text[:120]}")
    engine.dispose()
    return found


async def run_lifecycle(system, canary: str) -> dict:
    """The demo's whole lifecycle with the canary in the name, the note, every contact detail
    and the residence status's legal basis (each of them sealed to the agency)."""
    final = await run_demo(
        system,
        say=print,
        client_name=f"Client {canary}",
        note=f"Attended twice; ref {canary}",
        person={
            "contact": {
                "phone": phone_of(canary),
                "email": f"{canary}@example.org",
                "postal_address": f"Weg {canary}, 19288 Ludwigslust",
                "reachable": f"after {canary}",
                "preferred_channel": "email",
            },
            "residence": {"status": "toleration", "legal_basis": f"§ 60a {canary}"},
        },
        comment=f"Partly done; the person asked us to write to {canary}",
    )
    assert final["status"] == "completed"
    assert canary in final["comment"]["text"]  # the office opened the agency's sealed comment
    return final


def phone_of(canary: str) -> str:
    """A phone number as unique as the canary (digits only: a phone number has no letters)."""
    return "+49 " + str(int(canary.removeprefix("CANARY"), 16))[:14]


async def test_a_client_name_and_note_are_in_no_file_of_the_data_directory(
    system_factory, tmp_path, capsys
):
    trace = tmp_path / "key-reads.tsv"  # which key files each process opens, for the test below
    system = system_factory(WEGWEISER_TRACE_KEY_READS=str(trace))
    canary = f"CANARY{uuid.uuid4().hex}"
    final = await run_lifecycle(system, canary)
    assert f"agency unsealed the offer for Client {canary}" in capsys.readouterr().out
    token = await persons_link(system, final["request_id"])
    system.stop()  # everything flushed to disk, logs included
    data_files = sorted(p.name for p in system.data_dir.rglob("*") if p.is_file())
    assert "intake.db" in data_files and any(n.endswith(".blk") for n in data_files)
    assert files_containing(system.data_dir, canary.encode()) == []
    assert files_containing(system.data_dir, canary.encode("utf-16-le")) == []
    assert files_containing(system.data_dir, phone_of(canary).encode()) == []
    assert files_containing(system.data_dir, phone_of(canary)[4:].encode()) == []
    assert files_containing(system.data_dir, token.encode()) == []  # the person's link
    # the search does read the stream store and the databases: metadata is found there
    assert files_containing(system.data_dir / "nats", b"de.wegweiser.referral.completed") != []
    assert files_containing(system.data_dir, b"in-progress") != []
    each_process_opened_only_its_own_keys(trace)


async def persons_link(system, request_id: str) -> str:
    """A link to the person's own page, as a receipt carries it, and proof that it works."""
    async with office_client(system) as http:
        consent_id = (await http.get(f"/requests/{request_id}")).json()["consent_id"]
        issued = await http.post(f"/consents/{consent_id}/person-link", json={"language": "ar"})
        token = str(issued.json()["token"])
        page = await http.get("/person", headers={"X-Person-Token": token})
    assert page.status_code == 200, page.text
    return token


def each_process_opened_only_its_own_keys(trace: Path) -> None:
    """Every service opened its own broker seed and no other; the web app no broker or agency
    key at all; only the gateway an agency's private key (the e-mail agencies it serves); only
    intake an office's private keys."""
    opened: dict[str, set[str]] = defaultdict(set)
    for line in trace.read_text().splitlines():
        who, path = line.split("\t")
        opened[who].add(path)
    assert set(opened) <= {*ON_THE_BROKER, "web"}
    for service in ON_THE_BROKER:
        assert {p for p in opened[service] if p.startswith("nats/")} == {f"nats/{service}.nk"}
    assert not any(p.startswith("nats/") for p in opened["web"])
    for process in {"web", "directory", "referral", "intake", "audit"}:
        private = {
            p for p in opened[process] if p.startswith("agencies/") and not p.endswith(".pub.jwk")
        }
        assert private == set(), process
    # the offices' private keys (signing cases, opening agencies' comments): intake's alone
    for process in opened:
        office_private = {
            p
            for p in opened[process]
            if p.startswith(("office/", "office-sealing/")) and not p.endswith(".pub.jwk")
        }
        if process == "intake":
            assert any(p.startswith("office-sealing/") for p in office_private), office_private
        else:
            assert office_private == set(), (process, office_private)


@pytest.mark.postgres
async def test_on_postgresql_the_tables_hold_no_client_name_or_note(
    system_factory, postgres_databases
):
    urls = {name: postgres_databases() for name in ("intake", "referral", "directory")}
    system = system_factory(**{f"WEGWEISER_{n.upper()}_DB_URL": u for n, u in urls.items()})
    canary = f"CANARY{uuid.uuid4().hex}"
    await run_lifecycle(system, canary)
    for url in urls.values():
        assert rows_containing(url, canary) == []
        assert rows_containing(url, phone_of(canary)[4:]) == []
    assert rows_containing(urls["intake"], "Attended twice") == []
    assert rows_containing(urls["referral"], "completed") != []  # the search does find text
    system.stop()
    assert files_containing(system.data_dir, canary.encode()) == []
