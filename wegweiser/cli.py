"""The `wegweiser` command: run the system, one service, the demo, an agency adapter."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import getpass
import importlib
import json
import os
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from services.agency import cli as agency_sdk
from wegweiser.logging import configure_logging
from wegweiser.settings import SERVICES, Settings

T = TypeVar("T")
app = typer.Typer(no_args_is_help=True, help="Wegweiser: consent-based referrals over NATS.")
agency_app = typer.Typer(
    no_args_is_help=True,
    help="Partner agencies: the county invites, approves and revokes them; an agency enrols, "
    "rotates its keys and listens (the agency's commands are `wegweiser-agency`'s too).",
)
schemas_app = typer.Typer(
    no_args_is_help=True, help="Generated contract files (JSON Schema, AsyncAPI)."
)
app.add_typer(agency_app, name="agency")
for _command in agency_sdk.app.registered_commands:  # one definition, in the agency SDK
    agency_app.registered_commands.append(_command)
app.add_typer(schemas_app, name="schemas")

DataDir = Annotated[Path | None, typer.Option(help="data directory (WEGWEISER_DATA_DIR)")]
Seed = Annotated[
    Path | None,
    typer.Option(help="the agency's NATS nkey seed (default: keys_dir/nats/agency-ID.nk)"),
]


@app.callback()
def private_files() -> None:
    """Wegweiser: consent-based referrals over NATS."""
    from wegweiser.platform.files import private_umask

    private_umask()  # everything under the data directory is for the service user alone


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


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
    settings = _settings(data_dir, **overrides)
    configure_logging(settings.log_level, settings.log_json, "supervisor")
    raise typer.Exit(run_up(settings))


@app.command()
def service(name: Annotated[str, typer.Argument(help=f"one of {', '.join(SERVICES)}")]) -> None:
    """Run one service in this process (what `up` starts for each)."""
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    settings = _settings()
    configure_logging(settings.log_level, settings.log_json, name)
    if trace := os.environ.get("WEGWEISER_TRACE_KEY_READS"):
        from wegweiser.platform.keys import trace_reads

        trace_reads(settings.keys_path, Path(trace), name)
    runtime = importlib.import_module(f"services.{name}.bootstrap").build(settings)
    asyncio.run(runtime.serve())


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Show each service, the stream and its consumers; exit 1 if anything is down."""
    from wegweiser.status import status as read_status

    ok, lines = asyncio.run(read_status(_settings(data_dir)))
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

    settings = _settings(data_dir)
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


def _nats_url(settings: Settings) -> str:
    from wegweiser.supervisor import runtime_info

    url = settings.nats_url or runtime_info(settings.data_dir).get("nats_url")
    if not url:
        typer.echo("No NATS URL: set NATS_URL or run `wegweiser up` in this directory.", err=True)
        raise typer.Exit(2)
    return str(url)


def _as_agency(
    settings: Settings, agency: str, seed: Path | None, act: Callable[[Any], Awaitable[str]]
) -> str:
    """Connect as the agency (its own credentials unless `seed` names others) and `act`;
    refused credentials end the command with a clear message, exit 2."""
    from services.agency import AgencyClient
    from wegweiser.platform.connect import NotAuthorized

    async def run() -> str:
        async with await AgencyClient.connect(
            _nats_url(settings), agency, seed=seed or settings.agency_seed_path(agency)
        ) as client:
            return await act(client)

    try:
        return asyncio.run(run())
    except NotAuthorized as exc:
        typer.echo(
            f"{exc}; an agency's credentials come from `wegweiser agency credentials`", err=True
        )
        raise typer.Exit(2) from None


def _webhook_credentials(settings: Settings, agency: str) -> None:
    from services.gateway.webhook import SecretFolder

    secret = SecretFolder(settings.webhook_secrets_path).ensure(agency)
    typer.echo(f"webhook secret for {agency} (give it to the agency only): {secret}")
    from wegweiser.supervisor import runtime_info

    gateway = runtime_info(settings.data_dir).get("gateway_url") or settings.gateway_url
    typer.echo(f"answers go to: {gateway}/webhooks/{agency}/answers")
    typer.echo("how to verify and answer: docs/webhooks.md")


@agency_app.command("credentials")
def agency_credentials(
    agency: Annotated[str, typer.Argument(help="the agency id from the directory")],
    data_dir: DataDir = None,
) -> None:
    """Issue an agency's credentials for its adapter. NATS: an nkey that can read only its own
    referrals and publish only its own answers (creates its consumer, reloads the embedded
    server's users). Webhook: the secret that signs deliveries and callbacks. E-mail: the key
    pair the gateway holds to open its referrals in the portal."""
    from services.directory import store
    from wegweiser.platform import grants, nats_auth
    from wegweiser.provisioning import connect_as, reload_accounts

    settings = _settings(data_dir)
    db = _directory_db(settings)
    found = db.run_sync(lambda s: store.get(s, agency))
    db.dispose()
    if found is None:
        typer.echo(f"unknown agency {agency!r}: not in the directory", err=True)
        raise typer.Exit(2)
    if found.channel == "webhook":
        _webhook_credentials(settings, agency)
        return
    if found.channel == "email":
        from services.directory import identities
        from wegweiser.platform.keys import KeyRing, public_dict

        key = public_dict(KeyRing(settings.keys_path).ensure_agency(agency))
        db = _directory_db(settings)
        db.run_sync(lambda s: identities.publish_on_file(s, {agency: key}))
        db.dispose()
        typer.echo(
            f"{agency} receives e-mail notices at {found.referral_address}; the gateway "
            f"holds its key pair in {settings.keys_path / 'agencies'} to open its referrals "
            "in the portal (published as held by the gateway)."
        )
        return
    seeds = nats_auth.Seeds(settings.keys_path / "nats")
    seed = seeds.ensure(seeds.agency_path(agency))
    reloaded = reload_accounts(settings)

    async def confirm() -> None:  # the agency's user exists once the server's reload is done
        if reloaded:
            await (
                await connect_as(_nats_url(settings), seed, f"wegweiser-agency-{agency}")
            ).close()

    asyncio.run(confirm())
    _agency_consumer(settings, agency)
    typer.echo(f"nkey seed for {agency}: {seed}  (secret: give it to the agency only)")
    typer.echo(f"public key: {nats_auth.public_key(seed)}")
    typer.echo(f"inbox prefix the agency must use: {grants.inbox_prefix(agency)}")
    typer.echo(
        "users of the embedded nats-server reloaded"
        if reloaded
        else f"add its user to your nats-server: see {settings.data_dir / 'nats' / 'auth.conf'}"
    )


def _agency_consumer(settings: Settings, agency: str) -> None:
    """The agency's durable consumer, made now rather than at the broker watch's next round."""
    from wegweiser.platform import topology
    from wegweiser.platform.connect import connect

    async def make() -> None:
        nc = await connect(_nats_url(settings), "wegweiser-admin", settings.nats_seed_path)
        spec = topology.agency_consumer(agency)
        await topology.ensure_consumers(nc.jetstream(), [spec], settings.max_deliver)
        await nc.drain()

    asyncio.run(make())


def _administration(settings: Settings) -> Any:
    """The county's use cases on agencies, on the directory's database (closed at exit)."""
    from services.directory.admin import Administration
    from services.gateway.webhook import SecretFolder

    db = _directory_db(settings)
    atexit.register(db.dispose)
    return Administration(db, SecretFolder(settings.webhook_secrets_path))


def _decide(step: Awaitable[T]) -> T:
    """Run one administration step; a refusal ends the command with its code, exit 2."""
    from services.directory.enrolment import Refused

    try:
        return asyncio.run(step)  # type: ignore[arg-type]
    except Refused as exc:
        typer.echo(f"refused ({exc.code}): {exc}", err=True)
        raise typer.Exit(2) from None


def _duration(text: str) -> Any:
    from datetime import timedelta

    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(timedelta).validate_python(text)
    except ValidationError:
        raise typer.BadParameter(f"{text!r} is not a duration (e.g. P7D, PT12H)") from None


@agency_app.command("invite")
def agency_invite(
    agency: Annotated[str, typer.Argument(help="the agency id from the directory")],
    valid_for: Annotated[str, typer.Option(help="how long the code works (ISO 8601)")] = "P7D",
    data_dir: DataDir = None,
) -> None:
    """The county: a one-time enrolment code for an agency, to hand to it (shown once)."""
    settings = _settings(data_dir)
    admin = _administration(settings)
    invitation = _decide(admin.invite(agency, _duration(valid_for), by=_operator()))
    typer.echo(
        f"enrolment {invitation.enrolment_id} for {agency}, valid until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    typer.echo(f"code (give it to the agency only): {invitation.code}")
    typer.echo(f"the agency runs: wegweiser agency enrol CODE --directory {settings.directory_url}")


@agency_app.command("enrolments")
def agency_enrolments(data_dir: DataDir = None) -> None:
    """The county: enrolments waiting for a decision."""
    for row in _decide(_administration(_settings(data_dir)).pending()):
        user = row.broker_user or "-"
        typer.echo(f"{row.enrolment_id}  {row.agency_id:<36} {row.status:<10} {user[:12]}")


@agency_app.command("approve")
def agency_approve(enrolment_id: str, data_dir: DataDir = None) -> None:
    """The county: publish the agency's own keys at once and give it access (its broker user,
    or a webhook secret sealed to its key); the keys the county held for it retire."""
    from wegweiser.provisioning import reload_accounts

    settings = _settings(data_dir)
    row = _decide(_administration(settings).approve(enrolment_id, by=_operator()))
    if row.channel == "nats" and reload_accounts(settings):
        _agency_consumer(settings, row.agency_id)
    typer.echo(f"approved {enrolment_id}: {row.agency_id} ({row.channel}) with its own keys")


@agency_app.command("refuse")
def agency_refuse(enrolment_id: str, data_dir: DataDir = None) -> None:
    """The county: end an enrolment with nothing published (a request, or an invitation not
    yet used: its code is refused from then on)."""
    row = _decide(_administration(_settings(data_dir)).refuse(enrolment_id, by=_operator()))
    typer.echo(f"refused {enrolment_id} ({row.agency_id})")


@agency_app.command("revoke")
def agency_revoke(agency: str, data_dir: DataDir = None) -> None:
    """The county: end every key of an agency now. Its broker user is removed (its
    connections close within seconds), nothing more is sealed to it, its answers are refused."""
    from wegweiser.provisioning import reload_accounts

    settings = _settings(data_dir)
    ended = _decide(_administration(settings).revoke(agency, by=_operator())).keys_ended
    reloaded = reload_accounts(settings)
    typer.echo(
        f"revoked {agency}: {ended} keys ended"
        + ("; broker users reloaded" if reloaded else "; no embedded broker runs here")
    )


def _operator() -> str:
    """Who runs an administration command, for the log."""
    return f"cli:{getpass.getuser()}"


@agency_app.command("listen")
def agency_listen(
    agency: Annotated[str, typer.Option(help="the agency id from the directory")],
    acknowledge: Annotated[bool, typer.Option(help="acknowledge each offer on receipt")] = False,
    key: Annotated[
        Path | None,
        typer.Option(help="the agency's private JWK (default: keys_dir/agencies/ID.jwk)"),
    ] = None,
    seed: Seed = None,
    keys: Annotated[
        Path | None,
        typer.Option(help="the agency's own key folder from `agency enrol` (instead of --key)"),
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option(help="the county's NATS address (with --keys)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Receive this agency's referrals, unseal offers, print each event as one JSON line."""
    from services.agency.enrolment import AgencyKeys
    from services.agency.listen import listen
    from wegweiser.platform.keys import KeyRing, load

    settings = _settings(data_dir)
    configure_logging(settings.log_level, settings.log_json, f"agency-{agency}")
    found: tuple[Any, dict[str, Any], Path | None]
    if keys is not None:
        own = AgencyKeys(keys)
        found = (own.sealing_keys, own.offices, own.broker_seed)
    else:
        ring = KeyRing(settings.keys_path)
        key_path = key or ring.agency_path(agency)
        if not key_path.exists():
            typer.echo(f"no private key at {key_path}: pass --key FILE or --keys DIR", err=True)
            raise typer.Exit(2)
        found = (load(key_path), ring.office_public(), seed or settings.agency_seed_path(agency))
    url = nats_url or _nats_url(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(listen(url, agency, acknowledge, *found))


@agency_app.command("answer")
def agency_answer(
    referral: str,
    action: Annotated[
        str,
        typer.Argument(help="acknowledge, accept, reject, start, hold, resume, complete or fail"),
    ],
    agency: Annotated[str, typer.Option(help="the agency id")],
    reason: Annotated[str | None, typer.Option(help="required for reject, hold, fail")] = None,
    seed: Seed = None,
    data_dir: DataDir = None,
) -> None:
    """Answer a referral as an agency."""
    sent = _as_agency(
        _settings(data_dir), agency, seed, lambda client: client.answer(referral, action, reason)
    )
    typer.echo(f"answer {sent} sent")


@agency_app.command("capacity")
def agency_capacity(
    capacity: Annotated[int, typer.Argument(help="referrals the agency can take now (0 = full)")],
    waiting_days: Annotated[int, typer.Argument(help="days a person waits for a first meeting")],
    agency: Annotated[str, typer.Option(help="the agency id")],
    seed: Seed = None,
    data_dir: DataDir = None,
) -> None:
    """Report this agency's capacity and waiting time to the directory."""
    sent = _as_agency(
        _settings(data_dir),
        agency,
        seed,
        lambda client: client.update_capacity(capacity, waiting_days),
    )
    typer.echo(f"capacity update {sent} sent")


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Write schemas/json/*.json and schemas/asyncapi/*.yaml from the code."""
    from schemas.generate import write_all

    for path in write_all():
        typer.echo(f"wrote {path}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Exit 1 if the committed schema files differ from what the code generates."""
    from schemas.generate import drift

    stale = drift()
    for path in stale:
        typer.echo(f"out of date: {path} (run `wegweiser schemas generate`)", err=True)
    raise typer.Exit(1 if stale else 0)


@app.command()
def retention(
    run: Annotated[
        bool, typer.Option("--run", help="erase what is due (default: only show it)")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Show the requests whose personal data is due for erasure; with --run, erase it."""
    from datetime import UTC, datetime

    from services.intake import retention as rules
    from services.intake.vault import Vault, master_key
    from wegweiser.supervisor import service_database

    settings = _settings(data_dir)
    db = service_database(settings, "intake")
    db.migrate()
    vault = Vault(master_key(settings.intake_master_key, settings.keys_path))
    due = db.run_sync(lambda s: rules.due(s, datetime.now(UTC), settings.retention_after_closure))
    typer.echo(f"{len(due)} request(s) closed more than {settings.retention_after_closure} ago:")
    for item in due:
        typer.echo(
            f"  {item.request_id}  closed {item.closed_at:%Y-%m-%d}  referrals {item.referrals}"
        )
    if run:
        erased = 0
        for item in due:
            erased += db.run_sync(partial(rules.erase, vault=vault, request_id=item.request_id))
        typer.echo(f"erased the personal data of {erased} request(s)")
    db.dispose()


directory_app = typer.Typer(
    no_args_is_help=True, help="The directory of agencies, in Open Referral HSDS 3.0."
)
app.add_typer(directory_app, name="directory")


def _directory_db(settings: Settings):  # type: ignore[no-untyped-def]
    from wegweiser.supervisor import service_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = service_database(settings, "directory")
    db.migrate()
    return db


@directory_app.command("import")
def directory_import(
    source: Annotated[
        Path,
        typer.Argument(exists=True, help="HSDS 3.0 JSON, or a folder or zip of HSDS CSV tables"),
    ],
    kind: Annotated[
        str | None,
        typer.Option(help="the HSDS table of a lone document or list (default: guessed)"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Import HSDS data: all of it, or nothing when any record is invalid (exit 1)."""
    from services.directory import importer
    from services.directory.hsds.schema import kinds
    from wegweiser.provisioning import reload_accounts

    if kind is not None and kind not in kinds():
        raise typer.BadParameter(f"not an HSDS table: {kind} (one of {', '.join(kinds())})")
    settings = _settings(data_dir)
    db = _directory_db(settings)
    report = db.run_sync(lambda s: importer.import_file(s, source, kind))
    db.dispose()
    if not report.ok:
        typer.echo(f"{source}: {len(report.problems)} problem(s); nothing was imported", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1)
    for table, figures in importer.counts(report.changes).items():
        typer.echo(f"  {table:<22} " + ", ".join(f"{n} {what}" for what, n in figures.items()))
    if report.withheld_addresses:
        typer.echo(f"  withheld {report.withheld_addresses} address(es) of confidential locations")
    for warning in report.warnings[:20]:
        typer.echo(f"  warning: {warning}")
    if len(report.warnings) > 20:
        typer.echo(f"  … and {len(report.warnings) - 20} more warnings")
    typer.echo(f"imported {source}: {report.summary()}")
    if reload_accounts(settings):  # the gateway's rights follow the agencies' channels
        typer.echo("the embedded nats-server's accounts were reloaded for the new directory")


@directory_app.command("admin-token")
def directory_admin_token(
    out: Annotated[Path, typer.Option(help="where to write the token (mode 600)")],
    holder: Annotated[str, typer.Option(help="who holds it, noted beside its digest")] = "web",
    data_dir: DataDir = None,
) -> None:
    """Issue a token for the directory's admin routes (the web app's administrators' pages
    need one at `keys_dir/web/directory-admin.token`; `up` makes that one itself). The
    directory keeps only its SHA-256: delete its line in `keys_dir/directory/admin-tokens`
    to revoke it."""
    from services.directory.access import AdminTokens
    from wegweiser.platform.files import write_private

    settings = _settings(data_dir)
    token = AdminTokens(settings.directory_admin_tokens_path).issue(holder)
    write_private(out, token + "\n")
    typer.echo(f"wrote a new admin token for {holder} to {out}")


@directory_app.command("export")
def directory_export(
    out: Annotated[
        Path | None, typer.Option(help="where to write the JSON (default: standard output)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Export the whole directory as HSDS 3.0 JSON, checked against the schemas."""
    from services.directory import importer

    db = _directory_db(_settings(data_dir))
    document = db.run_sync(importer.export)
    db.dispose()
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(
            f"wrote {out}: {len(document['services'])} services, "
            f"{len(document['organizations'])} organizations"
        )


audit_app = typer.Typer(no_args_is_help=True, help="The ombudsperson's tamper-evident log.")
app.add_typer(audit_app, name="audit")


def _audit_db(settings: Settings):  # type: ignore[no-untyped-def]
    from wegweiser.supervisor import service_database

    db = service_database(settings, "audit")
    db.migrate()
    return db


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="where to write the export (JSON)")] = Path(
        "audit-export.json"
    ),
    since: Annotated[
        int | None,
        typer.Option(help="a log size seen before: add the consistency proof from it"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign a fresh tree head, then write every entry it covers, the head, the public key and
    its signed rotations to one file."""
    from services.audit import export, rotation, store
    from services.audit.recorder import Recorder
    from wegweiser.platform.keys import KeyRing

    settings = _settings(data_dir)
    db = _audit_db(settings)
    ring = KeyRing(settings.keys_path)
    recorder = Recorder(ring.audit_signing())
    try:
        db.run_sync(recorder.load)
        head = db.run_sync(recorder.sign_head)
        entries = db.run_sync(lambda s: store.all_entries(s, head.size))
    finally:
        db.dispose()
    doc = export.build(entries, head, recorder.key.public_key(), rotation.rotations(ring), since)
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    typer.echo(f"wrote {out}: {head.size} entries, root {head.root}, signed {head.time}")


@audit_app.command("key")
def audit_key(data_dir: DataDir = None) -> None:
    """Print the log's public key (PEM) to keep, and its fingerprint (on stderr): what
    `audit verify --key` checks exports against on a machine without this data directory."""
    from services.audit import rotation
    from services.audit.verification import fingerprint
    from wegweiser.platform.keys import KeyRing

    ring = KeyRing(_settings(data_dir).keys_path)
    typer.echo(ring.audit_public_path.read_text().strip() if ring.audit_public_path.exists()
               else _no_audit_key(ring))  # fmt: skip
    typer.echo(f"fingerprint {fingerprint(rotation.public_key(ring))}", err=True)


def _no_audit_key(ring: Any) -> str:
    typer.echo(f"no audit key in {ring.audit_public_path.parent}", err=True)
    raise typer.Exit(2)


@audit_app.command("rotate-key")
def audit_rotate_key(data_dir: DataDir = None) -> None:
    """Make a new signing key for the log, signed over to by the current one (restart the
    audit service to use it); verifiers follow the handover from the key they pinned."""
    from services.audit import rotation
    from services.audit.verification import fingerprint, public_from_b64
    from wegweiser.platform.keys import KeyRing

    handover = rotation.rotate(KeyRing(_settings(data_dir).keys_path))
    typer.echo(
        f"rotated: {handover.old_fingerprint} -> "
        f"{fingerprint(public_from_b64(handover.new_key))} from {handover.valid_from}; "
        "restart the audit service"
    )


@audit_app.command("verify")
def audit_verify(
    export_file: Path,
    key: Annotated[
        Path | None,
        typer.Option(help="the log's public key (PEM from `audit key`; default: keys_dir's)"),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="the head you verified last (made on first use): the export must extend it"
        ),
    ] = None,
    proof: Annotated[Path | None, typer.Option(help="also check this proof file")] = None,
    data_dir: DataDir = None,
) -> None:
    """Check an export offline against the pinned key (never the one the export carries) and
    the head seen before; exit 1 naming the first bad entry and what was done to it."""
    from services.audit import export
    from services.audit.verification import SeenHead

    try:
        pinned = _pinned_audit_key(key, data_dir)
        found = export.load(export_file)
        seen = SeenHead(**json.loads(state.read_text())) if state and state.exists() else None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    verdict = export.verify(found, pinned, seen)
    typer.echo(("OK: " if verdict.ok else "INVALID: ") + verdict.message)
    if not verdict.ok:
        raise typer.Exit(1)
    if state is not None:
        from services.audit.verification import key_in_effect

        signer = key_in_effect(pinned, found.rotations)
        from wegweiser.platform.files import write_private

        write_private(state, json.dumps(SeenHead.of(found.head, signer).__dict__, indent=1))
    if proof is not None:
        _check_proof(proof, found)


def _pinned_audit_key(key: Path | None, data_dir: Path | None) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from wegweiser.platform.keys import KeyRing

    if key is None:  # this installation's own current key (it follows its own rotations)
        ring = KeyRing(_settings(data_dir).keys_path)
        if not ring.audit_public_path.exists():
            raise ValueError(f"no pinned key: pass --key (none in {ring.audit_public_path})")
        key = ring.audit_public_path
    loaded = load_pem_public_key(key.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{key} is not an Ed25519 public key")
    return loaded


def _check_proof(proof: Path, found: Any) -> None:
    from services.audit import export
    from services.audit.ledger import check_consistency, check_inclusion

    doc = json.loads(proof.read_text())
    if doc["kind"] == "inclusion":
        good = check_inclusion(
            doc["entry"].encode(), doc["proof"], doc["root"], doc["index"], doc["size"]
        ) and doc["root"] == (export.ledger_of(found.entries).root(doc["size"]))
    else:
        good = (
            check_consistency(
                doc["prior_root"], doc["prior_size"], doc["root"], doc["size"], doc["proof"]
            )
            and doc["root"] == found.head.root
        )
    typer.echo(f"{doc['kind']} proof {'OK' if good else 'INVALID'}")
    raise typer.Exit(0 if good else 1)


@audit_app.command("prove")
def audit_prove(
    export_file: Path,
    index: Annotated[
        int | None, typer.Option(help="prove this entry (1-based) is included")
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="prove the log grew append-only from this size")
    ] = None,
) -> None:
    """Print an inclusion proof for one entry, or a consistency proof between two sizes."""
    from services.audit import export

    found = export.load(export_file)
    entries, head = found.entries, found.head
    ledger = export.ledger_of(entries)
    if index is not None:
        doc = {
            "kind": "inclusion",
            "index": index,
            "size": head.size,
            "root": head.root,
            "entry": entries[index - 1].decode(),
            "proof": ledger.prove_inclusion(index),
        }
    elif since is not None:
        doc = {
            "kind": "consistency",
            "prior_size": since,
            "prior_root": ledger.root(since),
            "size": head.size,
            "root": head.root,
            "proof": ledger.prove_consistency(since),
        }
    else:
        raise typer.BadParameter("give --index N or --since SIZE")
    typer.echo(json.dumps(doc, indent=1))


@audit_app.command("trail")
def audit_trail(referral: str, data_dir: DataDir = None) -> None:
    """Every recorded event of one referral, in order, with its consent (metadata only)."""
    from services.audit import queries, store

    db = _audit_db(_settings(data_dir))
    for row in queries.trail(db.run_sync(lambda s: store.referral_entries(s, referral))):
        what = row["state"] or row["action"] or ""
        typer.echo(
            f"{row['index']:>6} {row['time']}  {row['type']:<48} {what:<12} "
            f"consent {row['consent'] or '-'}"
        )


user_app = typer.Typer(no_args_is_help=True, help="Who may sign in to the web app.")
app.add_typer(user_app, name="user")


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

    settings = _settings(data_dir)
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

    settings = _settings(data_dir)
    db = database(settings)
    db.migrate()
    for row in db.run_sync(accounts.users):
        typer.echo(f"{row.username:<24} {row.role:<13} {row.office_id or '-'}")
    db.dispose()


api_client_app = typer.Typer(
    no_args_is_help=True, help="Who may call intake's API: the web app, an office's software."
)
app.add_typer(api_client_app, name="api-client")


def _intake_db(settings: Settings):  # type: ignore[no-untyped-def]
    from wegweiser.supervisor import service_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = service_database(settings, "intake")
    db.migrate()
    return db


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

    settings = _settings(data_dir)
    offices = list(settings.all_offices) if web else list(office or [])
    target = settings.web_intake_credential_path if web and out is None else out
    db = _intake_db(settings)
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

    db = _intake_db(_settings(data_dir))
    for row in db.run_sync(access.clients):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        typer.echo(f"{row.client_id:<24} {state:<22} {','.join(row.offices):<40} {row.name}")
    db.dispose()


@api_client_app.command("revoke")
def api_client_revoke(client_id: str, data_dir: DataDir = None) -> None:
    """Revoke a client: it gets no new token, and its tokens are refused within seconds."""
    from services.intake import access

    db = _intake_db(_settings(data_dir))
    try:
        db.run_sync(lambda s: access.revoke(s, client_id))
    except access.Refused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(f"revoked {client_id}")


db_app = typer.Typer(
    no_args_is_help=True, help="Each service's database schema (Alembic revisions)."
)
app.add_typer(db_app, name="db")
Service = Annotated[str | None, typer.Argument(help="one service (default: every service)")]


def _services(service: str | None) -> list[str]:
    if service is None:
        return list(SERVICES)
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return [service]


def _no_file(url: str) -> bool:
    """A SQLite database that does not exist yet (looking must not create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists()


@db_app.command("upgrade")
def db_upgrade(service: Service = None, data_dir: DataDir = None) -> None:
    """Bring the databases to the newest revision (services also do so when they start)."""
    from wegweiser.platform import migrations
    from wegweiser.supervisor import service_database

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for name in _services(service):
        db = service_database(settings, name)
        try:
            db.migrate()
            typer.echo(f"{name:<10} at {migrations.current(name, db)}")
        except migrations.SchemaMismatch as exc:
            typer.echo(f"{name:<10} refused: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            db.dispose()


@db_app.command("status")
def db_status(service: Service = None, data_dir: DataDir = None) -> None:
    """Each database's revision against the newest; exit 1 unless all are up to date and
    match the models."""
    from wegweiser.platform import migrations
    from wegweiser.supervisor import service_database

    settings = _settings(data_dir)
    behind = False
    for name in _services(service):
        db = service_database(settings, name)
        try:
            at = None if _no_file(db.url) else migrations.current(name, db)
            head = migrations.head(name)
            diffs = migrations.differences(name, db) if at and at == head else []
        finally:
            db.dispose()
        if at is None:
            verdict = "not created yet"
        elif at != head:
            verdict = f"behind: run `wegweiser db upgrade {name}`"
        elif diffs:
            verdict = f"differs from the models: {migrations.describe(diffs)}"
        else:
            verdict = "up to date"
        behind = behind or verdict != "up to date"
        typer.echo(f"{name:<10} at {at or '-':<6} newest {head:<6} {verdict}")
    raise typer.Exit(1 if behind else 0)


@db_app.command("revision")
def db_revision(
    service: Annotated[str, typer.Argument(help="the service whose models changed")],
    message: Annotated[str, typer.Option("--message", "-m", help="what the revision does")],
) -> None:
    """For developers: write the next revision of a service from what its models have that
    its revisions lack (compared on a scratch SQLite database; review what it writes)."""
    import tempfile

    from wegweiser.platform import migrations
    from wegweiser.supervisor import service_database

    _services(service)
    with tempfile.TemporaryDirectory() as scratch:
        settings = _settings(Path(scratch))
        db = service_database(settings, service)
        try:
            db.migrate()
            if not migrations.differences(service, db):
                typer.echo(f"{service}: the models and the revisions agree; nothing to write")
                return
            typer.echo(f"wrote {migrations.revision(service, db, message)}")
        finally:
            db.dispose()


broker_app = typer.Typer(
    no_args_is_help=True, help="The broker's accounts, stream and consumers (administrator)."
)
app.add_typer(broker_app, name="broker")


@broker_app.command("accounts")
def broker_accounts(data_dir: DataDir = None) -> None:
    """Write the NATS accounts for this installation to <data_dir>/nats/auth.conf (to include
    in your own nats-server's configuration) and reload an embedded server running here."""
    from wegweiser.provisioning import reload_accounts

    settings = _settings(data_dir)
    reloaded = reload_accounts(settings)
    where = settings.data_dir / "nats" / "auth.conf"
    typer.echo(f"wrote {where}" + ("; the embedded nats-server reloaded it" if reloaded else ""))


@broker_app.command("watch")
def broker_watch(data_dir: DataDir = None) -> None:
    """Create the stream and every consumer, then keep them: recreate what goes missing
    (what `up` runs beside its services; run it as a service of its own under systemd)."""
    from wegweiser import provisioning
    from wegweiser.platform.lifecycle import stop_on_signals

    settings = _settings(data_dir)
    configure_logging(settings.log_level, settings.log_json, "broker")
    url = _nats_url(settings)

    async def run() -> None:
        stop = stop_on_signals()
        await provisioning.provision(settings, url, provisioning.known_agencies(settings))
        await provisioning.watch(settings, url, stop)

    asyncio.run(run())
