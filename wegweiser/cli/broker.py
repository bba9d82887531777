"""The broker: its accounts and the watch that heals it."""

from __future__ import annotations

import asyncio

import typer

from wegweiser.cli.common import DataDir, load_settings, running_nats
from wegweiser.logging import configure_logging

broker_app = typer.Typer(
    no_args_is_help=True, help="The broker's accounts, stream and consumers (administrator)."
)


@broker_app.command("accounts")
def broker_accounts(data_dir: DataDir = None) -> None:
    """Write the NATS accounts for this installation to <data_dir>/nats/auth.conf (to include
    in your own nats-server's configuration) and reload an embedded server running here."""
    from wegweiser.provisioning import reload_accounts

    settings = load_settings(data_dir)
    reloaded = reload_accounts(settings)
    where = settings.data_dir / "nats" / "auth.conf"
    typer.echo(f"wrote {where}" + ("; the embedded nats-server reloaded it" if reloaded else ""))


@broker_app.command("watch")
def broker_watch(data_dir: DataDir = None) -> None:
    """Create the stream and every consumer, then keep them: recreate what goes missing
    (what `up` runs beside its services; run it as a service of its own under systemd)."""
    from wegweiser import provisioning
    from wegweiser.platform.lifecycle import stop_on_signals

    settings = load_settings(data_dir)
    configure_logging(settings.log_level, settings.log_json, "broker")
    url = running_nats(settings)

    async def run() -> None:
        stop = stop_on_signals()
        await provisioning.provision(settings, url, provisioning.known_agencies(settings))
        await provisioning.watch(settings, url, stop)

    asyncio.run(run())
