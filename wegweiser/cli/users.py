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

    from services.web.accounts import AccountError, Role
    from services.web.users import UserAdministration

    try:
        chosen = Role(role)
    except ValueError:
        raise typer.BadParameter(
            "role is counsellor, ombudsperson or administrator", param_hint="--role"
        ) from None

    def password() -> str:
        if password_stdin:
            return sys.stdin.readline().rstrip("\n")
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))

    try:
        UserAdministration(load_settings(data_dir)).add(
            username, password, chosen, office, name, replace=replace
        )
    except AccountError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{'changed' if replace else 'added'} {username} ({chosen.value}"
        + (f", {office})" if office else ")")
    )


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """Every web app user with role and office (never a password)."""
    from services.web.users import UserAdministration

    for row in UserAdministration(load_settings(data_dir)).listed():
        typer.echo(f"{row.username:<24} {row.role:<13} {row.office_id or '-'}")
