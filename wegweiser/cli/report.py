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
    privacy: Annotated[
        str, typer.Option(help="suppression (small counts hidden) or dp (OpenDP noise)")
    ] = "suppression",
    epsilon: Annotated[
        float, typer.Option(help="with --privacy dp: the budget the whole report spends")
    ] = 1.0,
    data_dir: DataDir = None,
) -> None:
    """Write the monitoring report: referrals by kind of agency and where they stand,
    declines and failures by reason, reminders and escalations, unmet needs by place and
    language, withdrawals and deletions, and the times to acknowledgement, acceptance and
    deletion, each beside the period before. From the audit log's metadata only; counts
    below k are suppressed with enough others that none can be worked out, or (--privacy
    dp) released with differential privacy, the budget spent recorded in
    <data dir>/report/privacy-budget.jsonl."""
    from schemas.events import COUNTY_KEY
    from services.report import render
    from services.report.figures import BadPeriod, Period
    from services.report.privacy import BadEpsilon, check_epsilon
    from services.report.protection import KTooSmall, check_k
    from wegweiser.monitoring import MonitoringReport

    if fmt not in FORMATS:
        typer.echo(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(BAD_INPUT)
    if county is not None and not re.fullmatch(COUNTY_KEY, county):
        typer.echo(f"{county!r} is no county key: five digits, the first two a Land", err=True)
        raise typer.Exit(BAD_INPUT)
    if privacy not in ("suppression", "dp"):
        typer.echo(f"unknown privacy method {privacy!r}: suppression or dp", err=True)
        raise typer.Exit(BAD_INPUT)
    try:
        check_epsilon(epsilon)
    except BadEpsilon as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(BAD_INPUT) from None
    try:
        check_k(k)
    except KTooSmall as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(BAD_INPUT) from None
    try:
        period = Period(_day(first, "--from"), _day(last, "--to"))
        period.before()  # the report shows the period before too: it must be one
    except BadPeriod as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(BAD_INPUT) from None
    settings = load_settings(data_dir)
    audit, directory = database(settings, "audit"), database(settings, "directory")
    ledger = settings.data_dir / "report" / "privacy-budget.jsonl"
    try:
        made = MonitoringReport(audit, directory, ledger).make(
            period, county, k, epsilon if privacy == "dp" else None
        )
    finally:
        audit.dispose()
        directory.dispose()
    for path in render.write(made, fmt, out):
        typer.echo(f"wrote {path}")
    if made.spent is not None:
        typer.echo(f"spent epsilon {made.spent.total:g} (recorded in {ledger})")
    if made.current.empty:
        typer.echo(f"the audit log holds nothing for {period}: the report says so")
