"""Who may call intake's API: office clients and their credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, database, load_settings

api_client_app = typer.Typer(
    no_args_is_help=True, help="Who may call intake's API: the web app, an office's software."
)


@api_client_app.command("add")
def api_client_add(
    office: Annotated[
        list[str] | None, typer.Option(help="an office the client acts for (repeatable)")
    ] = None,
    name: Annotated[str, typer.Option(help="who the client is, for the list")] = "",
    web: Annotated[
        bool, typer.Option(help="the web app's credential: every office, written to its file")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="write the credential to this file (mode 600)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Issue a client credential for intake's API (OAuth 2.0 client credentials). The secret
    is shown once (or written to --out) and intake keeps only its digest."""
    from services.intake import access

    settings = load_settings(data_dir)
    offices = list(settings.all_offices) if web else list(office or [])
    target = settings.web_intake_credential_path if web and out is None else out
    db = database(settings, "intake")
    try:
        credential = db.run_sync(
            lambda s: access.add_client(
                s,
                name or ("web app" if web else ", ".join(offices)),
                offices,
                set(settings.all_offices),
            )
        )
    except access.Refused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    if target is None:
        typer.echo(credential.to_json(), nl=False)
    else:
        credential.save(target)
        typer.echo(f"added {credential.client_id} for {', '.join(offices)}; credential in {target}")


@api_client_app.command("list")
def api_client_list(data_dir: DataDir = None) -> None:
    """Every API client with its offices and whether it is revoked (never a secret)."""
    from services.intake import access

    db = database(load_settings(data_dir), "intake")
    for row in db.run_sync(access.clients):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        typer.echo(f"{row.client_id:<24} {state:<22} {','.join(row.offices):<40} {row.name}")
    db.dispose()


@api_client_app.command("revoke")
def api_client_revoke(client_id: str, data_dir: DataDir = None) -> None:
    """Revoke a client: it gets no new token, and its tokens are refused within seconds."""
    from services.intake import access

    db = database(load_settings(data_dir), "intake")
    try:
        db.run_sync(lambda s: access.revoke(s, client_id))
    except access.Refused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(f"revoked {client_id}")
