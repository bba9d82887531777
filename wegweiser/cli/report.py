"""`wegweiser report`: the county's monitoring report for a period, from the audit log."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, database, load_settings
from wegweiser.cli.errors import BAD_INPUT

app = typer.Typer()

FORMATS = ("html", "csv", "json")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        typer.echo(f"{option} {text!r} is no date: give it as YYYY-MM-DD", err=True)
        raise typer.Exit(BAD_INPUT) from None


@app.command("report")
def report(
    first: Annotated[str, typer.Option("--from", help="the period's first day (YYYY-MM-DD)")],
    last: Annotated[str, typer.Option("--to", help="the period's last day (YYYY-MM-DD)")],
    out: Annotated[Path, typer.Option(help="the folder to write the report into")] = Path("report"),
    fmt: Annotated[str, typer.Option("--format", help="html (de and en), csv or json")] = "html",
    county: Annotated[
        str | None, typer.Option(help="only this county (Kreisschlüssel, 5 digits)")
    ] = None,
    k: Annotated[
        int, typer.Option(help="the smallest group shown (3 at least): smaller ones are hidden")
    ] = 5,
    data_dir: DataDir = None,
) -> None:
    """Write the monitoring report: referrals by kind of agency and where they stand,
    declines and failures by reason, reminders and escalations, unmet needs by place and
    language, withdrawals and deletions, and the times to acknowledgement, acceptance and
    deletion, each beside the period before. From the audit log's metadata only; counts
    below k are suppressed with enough others that none can be worked out."""
    from services.audit import store
    from services.report import render
    from services.report.figures import BadPeriod, Period
    from services.report.protection import K_LEAST
    from services.report.report import make

    if fmt not in FORMATS:
        typer.echo(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(BAD_INPUT)
    if county is not None and not re.fullmatch(r"(0[1-9]|1[0-6])[0-9]{3}", county):
        typer.echo(f"{county!r} is no county key: five digits, the first two a Land", err=True)
        raise typer.Exit(BAD_INPUT)
    if k < K_LEAST:
        typer.echo(f"k must be at least {K_LEAST}: a smaller group can be a person", err=True)
        raise typer.Exit(BAD_INPUT)
    try:
        period = Period(_day(first, "--from"), _day(last, "--to"))
    except BadPeriod as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(BAD_INPUT) from None
    db = database(load_settings(data_dir), "audit")
    try:
        entries = db.read_sync(store.all_entries)
    finally:
        db.dispose()
    made = make(entries, period, county, k)
    for path in render.write(made, fmt, out):
        typer.echo(f"wrote {path}")
    if made.current.as_dict()["empty"]:
        typer.echo(f"the audit log holds nothing for {period}: the report says so")
