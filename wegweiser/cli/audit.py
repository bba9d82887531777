"""The ombudsperson's tamper-evident log: export, keys, verification, proofs, trails."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, database, load_settings

audit_app = typer.Typer(no_args_is_help=True, help="The ombudsperson's tamper-evident log.")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="where to write the export (JSON)")] = Path(
        "audit-export.json"
    ),
    since: Annotated[
        int | None,
        typer.Option(help="a log size seen before: add the consistency proof from it"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign a fresh tree head (announced and mailed to the ombudsperson as the service does),
    then write every entry it covers, the head, the public key and its signed rotations to
    one file."""
    from services.audit.application import audit_log

    settings = load_settings(data_dir)
    db = database(settings, "audit")
    try:
        doc = asyncio.run(audit_log(settings, db).export_stored(since))
    finally:
        db.dispose()
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    head = doc["tree_head"]
    typer.echo(f"wrote {out}: {head['size']} entries, root {head['root']}, signed {head['time']}")


@audit_app.command("key")
def audit_key(data_dir: DataDir = None) -> None:
    """Print the log's public key (PEM) to keep, and its fingerprint (on stderr): what
    `audit verify --key` checks exports against on a machine without this data directory."""
    from services.audit import keys
    from wegweiser.platform.keys import KeyRing

    try:
        public = keys.published(KeyRing(load_settings(data_dir).keys_path))
    except keys.NoAuditKey as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(public.pem)
    typer.echo(f"fingerprint {public.fingerprint}", err=True)


@audit_app.command("rotate-key")
def audit_rotate_key(data_dir: DataDir = None) -> None:
    """Make a new signing key for the log, signed over to by the current one (restart the
    audit service to use it); verifiers follow the handover from the key they pinned."""
    from services.audit import rotation
    from wegweiser.platform.keys import KeyRing

    handover = rotation.rotate(KeyRing(load_settings(data_dir).keys_path))
    typer.echo(
        f"rotated: {handover.old_fingerprint} -> {handover.new_fingerprint} "
        f"from {handover.valid_from}; restart the audit service"
    )


@audit_app.command("verify")
def audit_verify(
    export_file: Path,
    key: Annotated[
        Path | None,
        typer.Option(help="the log's public key (PEM from `audit key`; default: keys_dir's)"),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="the head you verified last (made on first use): the export must extend it"
        ),
    ] = None,
    proof: Annotated[Path | None, typer.Option(help="also check this proof file")] = None,
    data_dir: DataDir = None,
) -> None:
    """Check an export offline against the pinned key (never the one the export carries) and
    the head seen before; exit 1 naming the first bad entry and what was done to it."""
    from services.audit import offline

    try:
        checked = offline.verify(export_file, key or _installed_key(data_dir), state, proof)
    except offline.Unreadable as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    verdict = checked.verdict
    typer.echo(("OK: " if verdict.ok else "INVALID: ") + verdict.message)
    if not verdict.ok:
        raise typer.Exit(1)
    if checked.proof_kind is not None:
        typer.echo(f"{checked.proof_kind} proof {'OK' if checked.proof_ok else 'INVALID'}")
        raise typer.Exit(0 if checked.proof_ok else 1)


def _installed_key(data_dir: Path | None) -> Path:
    """This installation's own current key (it follows its own rotations), when none is pinned."""
    from services.audit import keys
    from services.audit.offline import Unreadable
    from wegweiser.platform.keys import KeyRing

    key = keys.public_path(KeyRing(load_settings(data_dir).keys_path))
    if not key.exists():
        raise Unreadable(f"no pinned key: pass --key (none in {key})")
    return key


@audit_app.command("prove")
def audit_prove(
    export_file: Path,
    index: Annotated[
        int | None, typer.Option(help="prove this entry (1-based) is included")
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="prove the log grew append-only from this size")
    ] = None,
) -> None:
    """Print an inclusion proof for one entry, or a consistency proof between two sizes."""
    from services.audit import export, proofs

    found = export.load(export_file)
    if index is not None:
        doc = proofs.inclusion(found, index)
    elif since is not None:
        doc = proofs.consistency(found, since)
    else:
        raise typer.BadParameter("give --index N or --since SIZE")
    typer.echo(json.dumps(doc, indent=1))


@audit_app.command("trail")
def audit_trail(referral: str, data_dir: DataDir = None) -> None:
    """Every recorded event of one referral, in order, with its consent (metadata only)."""
    from services.audit.application import trail

    db = database(load_settings(data_dir), "audit")
    try:
        rows = trail(db, referral)
    finally:
        db.dispose()
    if not rows:
        typer.echo(f"the audit log has no entry about {referral}", err=True)
        raise typer.Exit(1)
    for row in rows:
        what = row["state"] or row["action"] or ""
        typer.echo(
            f"{row['index']:>6} {row['time']}  {row['type']:<48} {what:<12} "
            f"consent {row['consent'] or '-'}"
        )
