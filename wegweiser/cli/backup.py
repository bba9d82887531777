"""`wegweiser backup`, `wegweiser restore` and `wegweiser backup-key`: the whole installation
in one encrypted archive, and back (wegweiser/backup/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, load_settings, running_nats

app = typer.Typer()

Recipient = Annotated[
    list[str] | None,
    typer.Option(
        "--recipient",
        "-r",
        help="an age public key (age1...) to encrypt to; repeat for several",
    ),
]
RecipientsFile = Annotated[Path | None, typer.Option(help="a file of age public keys, one a line")]
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        help="a file holding the passphrase (instead of age keys; the archive is "
        "then encrypted in memory: for installations of a few hundred MB)"
    ),
]


@app.command()
def backup(
    out: Annotated[Path, typer.Option(help="the archive to write (never overwritten)")],
    recipient: Recipient = None,
    recipients_file: RecipientsFile = None,
    passphrase_file: PassphraseFile = None,
    data_dir: DataDir = None,
) -> None:
    """Write one encrypted archive of every database, the stream with its consumers, the keys
    and the settings, while the system runs (as the broker's administrator)."""
    from wegweiser.backup.archive import Key
    from wegweiser.backup.take import take

    settings = load_settings(data_dir)
    key = Key.from_files(recipient or [], recipients_file, None, passphrase_file)
    manifest = take(settings, running_nats(settings), out, key)
    typer.echo(
        f"wrote {out}: {len(manifest.databases)} databases, the stream to sequence "
        f"{manifest.point_sequence} ({manifest.tail_messages} after its snapshot), "
        f"{sum(1 for f in manifest.files if f.startswith('keys/'))} key files"
    )


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="an archive `wegweiser backup` wrote")],
    identity: Annotated[
        Path | None, typer.Option(help="the age identity file (AGE-SECRET-KEY-1...)")
    ] = None,
    passphrase_file: PassphraseFile = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild an installation from an archive: into an empty data directory, empty databases
    and a broker without the stream. Then start it with `wegweiser up`."""
    from wegweiser.backup.archive import Key
    from wegweiser.backup.restore import restore as run_restore

    settings = load_settings(data_dir)
    key = Key.from_files([], None, identity, passphrase_file)
    done = run_restore(settings, archive, key)
    m = done.manifest
    typer.echo(
        f"restored the backup of {m.created_at:%Y-%m-%d %H:%M:%S} UTC into "
        f"{settings.data_dir}: {len(m.databases)} databases, the stream to sequence "
        f"{done.stream_last_sequence} ({done.republished} published again after the snapshot)"
    )
    if done.settings_file is not None:
        typer.echo(
            f"the settings it ran with are in {done.settings_file}: put them in place "
            "(wegweiser.toml or WEGWEISER_SETTINGS_FILE) before `wegweiser up`"
        )


@app.command("backup-key")
def backup_key(
    out: Annotated[Path, typer.Option(help="where to write the new age identity (secret)")],
) -> None:
    """Make an age identity for backups: keep the file offline, give its public key
    (printed) to `wegweiser backup --recipient`."""
    from wegweiser.backup.archive import Refused, new_identity
    from wegweiser.platform.files import write_private

    if out.exists():
        raise Refused(f"{out} exists: a key is never overwritten")
    secret, public = new_identity()
    write_private(out, f"# public key: {public}\n{secret}\n")
    typer.echo(public)
