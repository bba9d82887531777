"""The `wegweiser` command: run the system, one service, the demo; administer agencies, the
directory, the audit log, web users, API clients, databases and the broker. One module per
command group; each command decodes its options, calls one use case and says the outcome."""

from __future__ import annotations

import typer

from services.agency import cli as agency_sdk
from wegweiser.cli import (
    agency,
    api_clients,
    audit,
    backup,
    broker,
    db,
    directory,
    report,
    schemas,
    system,
    users,
)
from wegweiser.cli.errors import Commands

app = typer.Typer(
    cls=Commands,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a bug's traceback must not print keys or secrets
    help="Wegweiser: consent-based referrals over NATS.",
)
app.registered_commands.extend(system.app.registered_commands)
app.registered_commands.extend(report.app.registered_commands)
app.registered_commands.extend(backup.app.registered_commands)
for _command in agency_sdk.app.registered_commands:  # one definition, in the agency SDK
    agency.agency_app.registered_commands.append(_command)
for group, name in [
    (agency.agency_app, "agency"),
    (schemas.schemas_app, "schemas"),
    (directory.directory_app, "directory"),
    (audit.audit_app, "audit"),
    (users.user_app, "user"),
    (api_clients.api_client_app, "api-client"),
    (db.db_app, "db"),
    (broker.broker_app, "broker"),
]:
    app.add_typer(group, name=name)


@app.callback()
def private_files() -> None:
    """Wegweiser: consent-based referrals over NATS."""
    from wegweiser.logging import configure_logging
    from wegweiser.platform.files import private_umask

    private_umask()  # everything under the data directory is for the service user alone
    # a command says its outcome itself; the libraries' chatter only when something is wrong
    # (the commands that run services configure their own level)
    configure_logging("WARNING")
