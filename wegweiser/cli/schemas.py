"""The generated contract files (JSON Schema, AsyncAPI)."""

from __future__ import annotations

import typer

schemas_app = typer.Typer(
    no_args_is_help=True, help="Generated contract files (JSON Schema, AsyncAPI)."
)


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Write schemas/json/*.json and schemas/asyncapi/*.yaml from the code."""
    from wegweiser.contracts import write_all

    for path in write_all():
        typer.echo(f"wrote {path}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Exit 1 if the committed schema files differ from what the code generates."""
    from wegweiser.contracts import drift

    stale = drift()
    for path in stale:
        typer.echo(f"out of date: {path} (run `wegweiser schemas generate`)", err=True)
    raise typer.Exit(1 if stale else 0)
