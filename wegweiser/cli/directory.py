"""The directory of agencies: import and export HSDS, admin tokens."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, county, database, load_settings

directory_app = typer.Typer(
    no_args_is_help=True, help="The directory of agencies, in Open Referral HSDS 3.0."
)


@directory_app.command("import")
def directory_import(
    source: Annotated[
        Path,
        typer.Argument(exists=True, help="HSDS 3.0 JSON, or a folder or zip of HSDS CSV tables"),
    ],
    kind: Annotated[
        str | None,
        typer.Option(help="the HSDS table of a lone document or list (default: guessed)"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Import HSDS data: all of it, or nothing when any record is invalid (exit 1)."""
    from services.directory import importer
    from services.directory.hsds.schema import kinds

    if kind is not None and kind not in kinds():
        raise typer.BadParameter(f"not an HSDS table: {kind} (one of {', '.join(kinds())})")
    done = asyncio.run(county(load_settings(data_dir)).import_directory(source, kind))
    report = done.report
    if not report.ok:
        typer.echo(f"{source}: {len(report.problems)} problem(s); nothing was imported", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1)
    for table, figures in importer.counts(report.changes).items():
        typer.echo(f"  {table:<22} " + ", ".join(f"{n} {what}" for what, n in figures.items()))
    if report.withheld_addresses:
        typer.echo(f"  withheld {report.withheld_addresses} address(es) of confidential locations")
    for warning in report.warnings[:20]:
        typer.echo(f"  warning: {warning}")
    if len(report.warnings) > 20:
        typer.echo(f"  … and {len(report.warnings) - 20} more warnings")
    typer.echo(f"imported {source}: {report.summary()}")
    if done.reloaded:  # the gateway's rights follow the agencies' channels
        typer.echo("the embedded nats-server's accounts were reloaded for the new directory")


@directory_app.command("admin-token")
def directory_admin_token(
    out: Annotated[Path, typer.Option(help="where to write the token (mode 600)")],
    holder: Annotated[str, typer.Option(help="who holds it, noted beside its digest")] = "web",
    data_dir: DataDir = None,
) -> None:
    """Issue a token for the directory's admin routes (the web app's administrators' pages
    need one at `keys_dir/web/directory-admin.token`; `up` makes that one itself). The
    directory keeps only its SHA-256: delete its line in `keys_dir/directory/admin-tokens`
    to revoke it."""
    from services.directory.access import AdminTokens
    from wegweiser.platform.files import write_private

    settings = load_settings(data_dir)
    token = AdminTokens(settings.directory_admin_tokens_path).issue(holder)
    write_private(out, token + "\n")
    typer.echo(f"wrote a new admin token for {holder} to {out}")


@directory_app.command("export")
def directory_export(
    out: Annotated[
        Path | None, typer.Option(help="where to write the JSON (default: standard output)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Export the whole directory as HSDS 3.0 JSON, checked against the schemas."""
    from services.directory import importer

    db = database(load_settings(data_dir), "directory")
    document = db.run_sync(importer.export)
    db.dispose()
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(
            f"wrote {out}: {len(document['services'])} services, "
            f"{len(document['organizations'])} organizations"
        )
