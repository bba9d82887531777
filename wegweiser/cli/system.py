"""Run Wegweiser: everything (`up`), one service, the demo, its status; retention."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from wegweiser.cli.common import DataDir, database, load_settings
from wegweiser.cli.errors import BAD_INPUT
from wegweiser.logging import configure_logging
from wegweiser.registry import NAMES as SERVICES

app = typer.Typer()


@app.command()
def up(
    data_dir: DataDir = None,
    nats_url: Annotated[str | None, typer.Option()] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            help="three nats-server nodes as one JetStream cluster (stream and consumers at "
            "3 replicas), two instances of every service, and PostgreSQL (see infra/CLUSTER.md)"
        ),
    ] = False,
    instances: Annotated[
        int | None, typer.Option(min=1, max=8, help="processes per service")
    ] = None,
    postgres: Annotated[
        str | None,
        typer.Option(
            help="a PostgreSQL server URL: one database per service is created on it "
            "(--cluster uses postgresql://postgres@127.0.0.1:5432 unless given)"
        ),
    ] = None,
) -> None:
    """Start NATS (embedded unless NATS_URL is set) and every service; Ctrl-C stops all."""
    from wegweiser.supervisor import up as run_up

    overrides: dict[str, object] = {"nats_url": nats_url, "instances": instances}
    if cluster:
        overrides["nats_cluster_size"] = 3
        overrides["instances"] = instances or 2
        postgres = postgres or "postgresql://postgres@127.0.0.1:5432/postgres"
    if postgres:
        from wegweiser.platform.postgres import service_databases

        for service, url in service_databases(postgres, SERVICES).items():
            overrides[f"{service}_db_url"] = url
    settings = load_settings(data_dir, **overrides)
    configure_logging(settings.log_level, settings.log_json, "supervisor")
    raise typer.Exit(run_up(settings))


@app.command()
def service(name: Annotated[str, typer.Argument(help=f"one of {', '.join(SERVICES)}")]) -> None:
    """Run one service in this process (what `up` starts for each)."""
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    from wegweiser.serve import serve

    serve(name)


@app.command("metrics")
def serve_metrics(
    folder: Annotated[
        Path | None,
        typer.Option(
            help="where this host's services write their values (default: "
            "PROMETHEUS_MULTIPROC_DIR, as their systemd units set it)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the sum of this host's services' metrics for Prometheus, on metrics_host and
    metrics_port (what `up` does beside its services; run it as a unit of its own under
    systemd, infra/systemd/wegweiser-metrics.service)."""
    from wegweiser.platform import metrics
    from wegweiser.platform.lifecycle import stop_on_signals

    settings = load_settings(data_dir)
    folder = folder or metrics.folder_of_this_process()
    if folder is None or not folder.is_dir():
        typer.echo(
            f"no folder of metrics at {folder}: give --folder, or set PROMETHEUS_MULTIPROC_DIR "
            "for the services and this command alike",
            err=True,
        )
        raise typer.Exit(BAD_INPUT)
    server = metrics.serve(folder, settings.metrics_host, settings.metrics_port)
    typer.echo(
        f"serving the metrics of {folder} on "
        f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    )

    async def until_stopped() -> None:
        await stop_on_signals().wait()

    try:
        asyncio.run(until_stopped())
    finally:
        server.shutdown()


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Show each service, the stream and its consumers; exit 1 if anything is down."""
    from wegweiser.status import status as read_status

    ok, lines = asyncio.run(read_status(load_settings(data_dir)))
    typer.echo("\n".join(lines))
    raise typer.Exit(0 if ok else 1)


@app.command()
def demo(
    data_dir: DataDir = None,
    client_name: Annotated[
        str, typer.Option(help="the demo client's name (search the data directory for it after)")
    ] = "Demo Client",
) -> None:
    """Drive one referral through its whole life against the running system; print its trail."""
    import httpx

    from wegweiser.demo import DemoFailed
    from wegweiser.demo import demo as run_demo
    from wegweiser.supervisor import runtime_info

    settings = load_settings(data_dir)
    configure_logging("WARNING", settings.log_json)
    info = runtime_info(settings.data_dir)
    nats_url = str(info.get("nats_url") or settings.nats_url or "")
    if not nats_url:
        typer.echo("Wegweiser is not running here: start it with `wegweiser up`.", err=True)
        raise typer.Exit(2)
    try:
        from wegweiser.platform.keys import KeyRing

        intake_url = str(info.get("intake_url") or settings.intake_url)
        ring = KeyRing(settings.keys_path)
        asyncio.run(
            run_demo(
                intake_url,
                nats_url,
                keys=ring,
                client_name=client_name,
                seed=settings.nats_seed_path,
                agency_seed=settings.agency_seed_path,
                intake_credential=settings.demo_intake_credential_path,
            )
        )
    except (DemoFailed, OSError, httpx.HTTPStatusError) as exc:
        typer.echo(f"demo FAILED: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("demo passed: the referral went through its whole life.")


@app.command()
def retention(
    run: Annotated[
        bool, typer.Option("--run", help="erase what is due (default: only show it)")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Show the requests whose personal data is due for erasure; with --run, erase it."""
    from datetime import UTC, datetime

    from services.intake.retention import Retention
    from services.intake.vault import Vault, master_key

    settings = load_settings(data_dir)
    db = database(settings, "intake")
    vault = Vault(master_key(settings.intake_master_key, settings.keys_path))
    retention = Retention(db, vault, settings.retention_after_closure)
    now = datetime.now(UTC)
    try:
        due = retention.due(now)
        typer.echo(
            f"{len(due)} request(s) closed more than {settings.retention_after_closure} ago:"
        )
        for item in due:
            typer.echo(
                f"  {item.request_id}  closed {item.closed_at:%Y-%m-%d}  referrals {item.referrals}"
            )
        if run:
            typer.echo(f"erased the personal data of {retention.erase_due(now)} request(s)")
    finally:
        db.dispose()
