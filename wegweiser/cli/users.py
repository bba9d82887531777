"""Who may sign in to the web app."""

from __future__ import annotations

from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, load_settings

user_app = typer.Typer(no_args_is_help=True, help="Who may sign in to the web app.")


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="counsellor, ombudsperson or administrator")],
    office: Annotated[str | None, typer.Option(help="the counsellor's office id")] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from standard input (else it is asked)")
    ] = False,
    replace: Annotated[bool, typer.Option(help="change an existing user")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a web app user (Argon2id password hash); their sessions end when changed."""
    import sys

    from services.web import accounts
    from services.web.bootstrap import database

    settings = load_settings(data_dir)
    try:
        chosen = accounts.Role(role)
    except ValueError:
        raise typer.BadParameter(
            "role is counsellor, ombudsperson or administrator", param_hint="--role"
        ) from None
    if office is not None and office not in settings.all_offices:
        raise typer.BadParameter(
            f"unknown office {office!r}; configured: {', '.join(settings.all_offices)}",
            param_hint="--office",
        )
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = database(settings)
    db.migrate()
    try:
        db.run_sync(
            lambda s: accounts.add_user(s, username, password, chosen, office, name, replace)
        )
    except accounts.AccountError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(
        f"{'changed' if replace else 'added'} {username} ({chosen.value}"
        + (f", {office})" if office else ")")
    )


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """Every web app user with role and office (never a password)."""
    from services.web import accounts
    from services.web.bootstrap import database

    settings = load_settings(data_dir)
    db = database(settings)
    db.migrate()
    for row in db.run_sync(accounts.users):
        typer.echo(f"{row.username:<24} {row.role:<13} {row.office_id or '-'}")
    db.dispose()
