"""The ombudsperson's tamper-evident log: export, keys, verification, proofs, trails."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

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
    audit = audit_log(settings, db)

    async def exported() -> dict[str, Any]:
        await audit.load()
        return await audit.export(since)

    try:
        doc = asyncio.run(exported())
    finally:
        db.dispose()
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    head = doc["tree_head"]
    typer.echo(f"wrote {out}: {head['size']} entries, root {head['root']}, signed {head['time']}")


@audit_app.command("key")
def audit_key(data_dir: DataDir = None) -> None:
    """Print the log's public key (PEM) to keep, and its fingerprint (on stderr): what
    `audit verify --key` checks exports against on a machine without this data directory."""
    from services.audit import keys, rotation
    from services.audit.verification import fingerprint
    from wegweiser.platform.keys import KeyRing

    ring = KeyRing(load_settings(data_dir).keys_path)
    public = keys.public_path(ring)
    typer.echo(public.read_text().strip() if public.exists() else _no_audit_key(public))
    typer.echo(f"fingerprint {fingerprint(rotation.public_key(ring))}", err=True)


def _no_audit_key(public: Path) -> str:
    typer.echo(f"no audit key in {public.parent}", err=True)
    raise typer.Exit(2)


@audit_app.command("rotate-key")
def audit_rotate_key(data_dir: DataDir = None) -> None:
    """Make a new signing key for the log, signed over to by the current one (restart the
    audit service to use it); verifiers follow the handover from the key they pinned."""
    from services.audit import rotation
    from services.audit.verification import fingerprint, public_from_b64
    from wegweiser.platform.keys import KeyRing

    handover = rotation.rotate(KeyRing(load_settings(data_dir).keys_path))
    typer.echo(
        f"rotated: {handover.old_fingerprint} -> "
        f"{fingerprint(public_from_b64(handover.new_key))} from {handover.valid_from}; "
        "restart the audit service"
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
    from services.audit import export
    from services.audit.verification import SeenHead

    try:
        pinned = _pinned_audit_key(key, data_dir)
        found = export.load(export_file)
        seen = SeenHead(**json.loads(state.read_text())) if state and state.exists() else None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    verdict = export.verify(found, pinned, seen)
    typer.echo(("OK: " if verdict.ok else "INVALID: ") + verdict.message)
    if not verdict.ok:
        raise typer.Exit(1)
    if state is not None:
        from services.audit.verification import key_in_effect

        signer = key_in_effect(pinned, found.rotations)
        from wegweiser.platform.files import write_private

        write_private(state, json.dumps(SeenHead.of(found.head, signer).__dict__, indent=1))
    if proof is not None:
        _check_proof(proof, found)


def _pinned_audit_key(key: Path | None, data_dir: Path | None) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from services.audit import keys
    from wegweiser.platform.keys import KeyRing

    if key is None:  # this installation's own current key (it follows its own rotations)
        key = keys.public_path(KeyRing(load_settings(data_dir).keys_path))
        if not key.exists():
            raise ValueError(f"no pinned key: pass --key (none in {key})")
    loaded = load_pem_public_key(key.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{key} is not an Ed25519 public key")
    return loaded


def _check_proof(proof: Path, found: Any) -> None:
    from services.audit.ledger import Ledger, check_consistency, check_inclusion

    doc = json.loads(proof.read_text())
    if doc["kind"] == "inclusion":
        good = check_inclusion(
            doc["entry"].encode(), doc["proof"], doc["root"], doc["index"], doc["size"]
        ) and doc["root"] == (Ledger.read(found.entries).root(doc["size"]))
    else:
        good = (
            check_consistency(
                doc["prior_root"], doc["prior_size"], doc["root"], doc["size"], doc["proof"]
            )
            and doc["root"] == found.head.root
        )
    typer.echo(f"{doc['kind']} proof {'OK' if good else 'INVALID'}")
    raise typer.Exit(0 if good else 1)


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
    from services.audit import export
    from services.audit.ledger import Ledger

    found = export.load(export_file)
    entries, head = found.entries, found.head
    ledger = Ledger.read(entries)
    if index is not None:
        doc = {
            "kind": "inclusion",
            "index": index,
            "size": head.size,
            "root": head.root,
            "entry": entries[index - 1].decode(),
            "proof": ledger.prove_inclusion(index),
        }
    elif since is not None:
        doc = {
            "kind": "consistency",
            "prior_size": since,
            "prior_root": ledger.root(since),
            "size": head.size,
            "root": head.root,
            "proof": ledger.prove_consistency(since),
        }
    else:
        raise typer.BadParameter("give --index N or --since SIZE")
    typer.echo(json.dumps(doc, indent=1))


@audit_app.command("trail")
def audit_trail(referral: str, data_dir: DataDir = None) -> None:
    """Every recorded event of one referral, in order, with its consent (metadata only)."""
    from services.audit import queries, store

    db = database(load_settings(data_dir), "audit")
    rows = queries.trail(db.run_sync(lambda s: store.referral_entries(s, referral)))
    if not rows:
        typer.echo(f"the audit log has no entry about {referral}", err=True)
        raise typer.Exit(1)
    for row in rows:
        what = row["state"] or row["action"] or ""
        typer.echo(
            f"{row['index']:>6} {row['time']}  {row['type']:<48} {what:<12} "
            f"consent {row['consent'] or '-'}"
        )
