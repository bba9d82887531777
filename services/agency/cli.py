"""`wegweiser-agency`: the agency's own commands, on its own machine (installed with the agency
SDK alone; `wegweiser agency` offers the same beside the county's commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="A partner agency's side of Wegweiser.")


@app.command("enrol")
def enrol(
    code: Annotated[str, typer.Argument(help="the one-time code the county gave you")],
    directory: Annotated[str, typer.Option(help="the county directory's address")],
    keys: Annotated[Path, typer.Option(help="your key folder (made if missing)")] = Path(
        "agency-keys"
    ),
    wait: Annotated[
        float, typer.Option(help="seconds to wait for the county's approval (0: do not wait)")
    ] = 0,
) -> None:
    """The agency, on its own machine: make its keys, send their public halves, and (with
    --wait) collect its access once the county approved. No private key leaves the folder."""
    import time

    from services.agency import enrolment

    try:
        answer = enrolment.enrol(directory, code, keys)
        typer.echo(
            f"enrolment {answer['enrolment_id']} for {answer['agency_id']}: "
            f"{answer['status']}; keys in {keys}"
        )
        made = enrolment.AgencyKeys(keys)
        typer.echo("read these to the county when it asks, before it approves:")
        typer.echo(f"  sealing key  {made.sealing.thumbprint()}")
        typer.echo(f"  broker user  {made.broker_user}")
        deadline = time.monotonic() + wait
        state = answer
        while state["status"] != "approved" and time.monotonic() < deadline:
            time.sleep(1)
            state = enrolment.collect(keys)
    except enrolment.EnrolmentFailed as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(2) from None
    if state["status"] == "approved":
        typer.echo(
            f"approved: connection details in {keys / enrolment.CONNECTION}"
            if state.get("nats")
            else f"approved: {state['channel']}"
        )
    elif wait:
        typer.echo(
            f"not approved yet ({state['status']}); ask again with `wegweiser-agency collect`",
            err=True,
        )
        raise typer.Exit(1)


@app.command("rotate")
def rotate(
    agency: Annotated[str, typer.Option(help="your agency id")],
    keys: Annotated[Path, typer.Option(help="your key folder")] = Path("agency-keys"),
    valid_from: Annotated[
        str | None, typer.Option(help="when the new keys take effect (ISO 8601; default now)")
    ] = None,
) -> None:
    """The agency: new sealing and signing keys, published from `--valid-from`; the current
    ones retire 14 days later (the replaced sealing key is kept to open cases sealed to it)."""
    from datetime import UTC, datetime

    from services.agency import enrolment

    try:
        when = datetime.fromisoformat(valid_from) if valid_from else datetime.now(UTC)
    except ValueError:
        raise typer.BadParameter(f"{valid_from!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise typer.BadParameter("give the time with its offset, e.g. +01:00")
    try:
        answer = enrolment.rotate(keys, agency, when)
    except (enrolment.EnrolmentFailed, FileNotFoundError) as exc:
        typer.echo(f"rotation failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"published {', '.join(answer['published'])} from {when.isoformat()}")


@app.command("collect")
def collect(
    keys: Annotated[Path, typer.Option(help="your key folder")] = Path("agency-keys"),
) -> None:
    """The agency: look at its enrolment; once approved, save its connection details."""
    from services.agency import enrolment

    try:
        state = enrolment.collect(keys)
    except (enrolment.EnrolmentFailed, FileNotFoundError) as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{state['enrolment_id']}: {state['status']}")
    raise typer.Exit(0 if state["status"] == "approved" else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
