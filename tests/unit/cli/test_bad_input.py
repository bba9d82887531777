"""Every `wegweiser` command, given bad input or nothing to talk to, answers in one line on
stderr with a documented exit code, and never with a traceback.

Each runs in this process on an empty data directory, with the broker and the services
pointed at a port where nobody listens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from wegweiser.cli import app

NOBODY = "127.0.0.1:1"
"""Where nobody listens: a privileged port no service of this machine binds on loopback (and
the same in every test worker, since it is part of the tests' ids)."""
ENV = {
    "NATS_URL": f"nats://{NOBODY}",
    "WEGWEISER_INTAKE_URL": f"http://{NOBODY}",
    "WEGWEISER_AUDIT_URL": f"http://{NOBODY}",
    "WEGWEISER_DIRECTORY_URL": f"http://{NOBODY}",
}

ELSEWHERE = ["--keys", "/dev/null/agency-keys"]
"""An agency's key folder that cannot be (a file is in the way), not ./agency-keys."""

RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
"""A well-formed age public key (age's own example) whose identity nobody here holds."""

CASES: list[tuple[list[str], set[int]]] = [
    (["up", "--no-such-option"], {2}),
    (["service", "nope"], {2}),
    (["status"], {0, 1, 3}),
    (["demo"], {1, 3}),
    (["agency", "credentials", "Not An Id!"], {1, 2}),
    (["agency", "invite", "Not An Id!"], {1, 2}),
    (["agency", "approve", "enr-nope"], {1, 2}),
    (["agency", "refuse", "enr-nope"], {1, 2}),
    (["agency", "revoke", "nope"], {1, 2}),
    (["agency", "listen", "--agency", "nope"], {2}),
    (["agency", "answer", "ref-1", "accept", "--agency", "lup-mbe"], {3}),
    (["agency", "answer", "ref-1", "approve", "--agency", "lup-mbe"], {2}),
    (["agency", "capacity", "-1", "2", "--agency", "lup-mbe"], {2}),
    (["agency", "capacity", "1", "2", "--agency", "lup-mbe"], {3}),
    (["agency", "enrol", "CODE", "--directory", f"http://{NOBODY}", *ELSEWHERE], {1, 2, 3}),
    (["agency", "rotate", "--agency", "nope", *ELSEWHERE], {1, 2, 3}),
    (["agency", "collect", *ELSEWHERE], {1, 2, 3}),
    (["schemas", "generate", "--no-such-option"], {2}),
    (["directory", "import", "/nonexistent/directory.json"], {1, 2}),
    (["directory", "admin-token", "--out", "/dev/null/token"], {2}),
    (["audit", "export", "--out", "/dev/null/export.json"], {2}),
    (["audit", "verify", "/nonexistent/export.json"], {1, 2}),
    (["audit", "prove", "/nonexistent/export.json"], {1, 2}),
    (["audit", "trail", "ref-1"], {1}),
    (["user", "add", "Not A Name!", "counsellor"], {1, 2}),
    (["user", "add", "berater2", "no-such-role"], {2}),
    (["api-client", "add"], {1, 2}),
    (["api-client", "revoke", "nope"], {1, 2}),
    (["db", "upgrade", "nope"], {1, 2}),
    (["db", "status", "nope"], {1, 2}),
    (["db", "revision", "nope", "a message"], {1, 2}),
    (["broker", "watch", "--no-such-option"], {2}),
    (["backup", "--out", "backup.age"], {1}),
    (["backup", "--out", "backup.age", "--recipient", "age1nonsense"], {1}),
    (["backup", "--out", "backup.age", "--recipient", RECIPIENT], {3}),
    (["backup", "--out", "backup.age", "--passphrase-file", "/nonexistent/secret"], {2}),
    (["restore", "/nonexistent/backup.age"], {1}),
    (["restore", "/nonexistent/backup.age", "--identity", "/nonexistent/identity"], {2}),
    (["backup-key", "--out", "/dev/null/identity.txt"], {2}),
    (["metrics", "--folder", "/nonexistent/metrics"], {2}),
    (["report", "--from", "2026-12-31", "--to", "2026-01-01"], {2}),
    (["report", "--from", "2026-13-01", "--to", "2026-12-31"], {2}),
    (["report", "--from", "2026-01-01", "--to", "2026-12-31", "--k", "2"], {2}),
    (["report", "--from", "2026-01-01", "--to", "2026-12-31", "--county", "999"], {2}),
    (["report", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "pdf"], {2}),
    (["report", "--from", "2026-01-01", "--to", "2026-12-31", "--privacy", "magic"], {2}),
    (
        [
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
            "--privacy",
            "dp",
            "--epsilon",
            "0",
        ],
        {2},
    ),
]


def _leaves(command: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command of the tree, as the words that name it."""
    if hasattr(command, "list_commands"):
        found: set[tuple[str, ...]] = set()
        for name in command.list_commands(None):
            found |= _leaves(command.get_command(None, name), (*prefix, name))
        return found
    return {prefix}


READ_ONLY_OR_HARMLESS = {
    ("retention",),  # run on an empty directory: nothing to do
    ("agency", "enrolments"),
    ("schemas", "check"),
    ("directory", "export"),
    ("audit", "key"),
    ("audit", "rotate-key"),
    ("user", "list"),
    ("api-client", "list"),
    ("broker", "accounts"),
}


def test_every_command_is_tried_here_or_is_harmless_without_input() -> None:
    tried = {tuple(args[: 2 if args[0] in GROUPS else 1]) for args, _ in CASES}
    missing = _leaves(typer.main.get_command(app)) - tried - READ_ONLY_OR_HARMLESS
    assert not missing, f"add a bad-input case for: {sorted(missing)}"


GROUPS = {"agency", "schemas", "directory", "audit", "user", "api-client", "db", "broker"}


@pytest.mark.parametrize(("args", "codes"), CASES, ids=[" ".join(args) for args, _ in CASES])
def test_bad_input_gets_one_line_and_an_exit_code(
    args: list[str], codes: set[int], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, args, env={**ENV, "WEGWEISER_DATA_DIR": str(tmp_path / "data")}
    )
    said = result.output.strip()
    assert result.exit_code in codes, (result.exit_code, said, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in said
    assert said, "a refusal says why"


def test_a_database_that_does_not_answer_is_said_so_with_exit_code_3(tmp_path: Path) -> None:
    """The CLI names an unreachable database (SQLAlchemy loads only when a command opens one)."""
    result = CliRunner().invoke(
        app,
        ["db", "status", "intake"],
        env={
            **ENV,
            "WEGWEISER_DATA_DIR": str(tmp_path / "data"),
            "WEGWEISER_INTAKE_DB_URL": f"postgresql+psycopg://nobody@{NOBODY}/nothing",
        },
    )
    assert result.exit_code == 3, (result.output, result.exception)
    said = result.output.strip()
    assert said.startswith("wegweiser: the database cannot be used: connection"), said
    assert "\n" not in said, "one line, though the driver's message has two"


def test_a_nats_agencys_credentials_without_a_broker_are_said_unreachable(tmp_path: Path) -> None:
    """Issuing a NATS agency's credentials makes its consumer on the broker: a broker that is
    not there ends the command in one line, exit 3, rather than a wait for it without end."""
    from services.directory.sample import SAMPLE_PATH, sample_agency_ids

    env = {**ENV, "WEGWEISER_DATA_DIR": str(tmp_path / "data")}
    imported = CliRunner().invoke(app, ["directory", "import", str(SAMPLE_PATH)], env=env)
    assert imported.exit_code == 0, imported.output
    agency = sample_agency_ids("nats")[0]
    result = CliRunner().invoke(app, ["agency", "credentials", agency], env=env)
    assert result.exit_code == 3, (result.output, result.exception)
    assert result.output.strip() == (
        "wegweiser: cannot reach the broker (NATS): nats: no servers available for connection"
    )
