"""Partner agencies: the county invites, approves and revokes them; an agency's own
commands (`wegweiser-agency`'s too)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from schemas.vocabulary import ReasonCode
from wegweiser.cli.common import DataDir, Seed, T, county, duration, load_settings, running_nats
from wegweiser.logging import configure_logging
from wegweiser.settings import Settings

if TYPE_CHECKING:  # the use cases load the directory's store: only the commands that use them
    from wegweiser.agencies import Credentials

REASONS_HELP = ", ".join(code.value for code in ReasonCode)

agency_app = typer.Typer(
    no_args_is_help=True,
    help="Partner agencies: the county invites, approves and revokes them; an agency enrols, "
    "rotates its keys and listens (the agency's commands are `wegweiser-agency`'s too).",
)


def _as_agency(
    settings: Settings, agency: str, seed: Path | None, act: Callable[[Any], Awaitable[str]]
) -> str:
    """Connect as the agency (its own credentials unless `seed` names others) and `act`;
    refused credentials end the command with a clear message, exit 2."""
    from services.agency import AgencyClient
    from wegweiser.platform.connect import NotAuthorized
    from wegweiser.platform.keys import KeyRing

    async def run() -> str:
        async with await AgencyClient.connect(
            running_nats(settings),
            agency,
            seed=seed or settings.agency_seed_path(agency),
            attempts=3,
            office_keys=KeyRing(settings.keys_path).office_sealing_public(),
        ) as client:
            return await act(client)

    try:
        return asyncio.run(run())
    except NotAuthorized as exc:
        typer.echo(
            f"{exc}; an agency's credentials come from `wegweiser agency credentials`", err=True
        )
        raise typer.Exit(2) from None


@agency_app.command("credentials")
def agency_credentials(
    agency: Annotated[str, typer.Argument(help="the agency id from the directory")],
    data_dir: DataDir = None,
) -> None:
    """Issue an agency's credentials for its adapter. NATS: an nkey that can read only its own
    referrals and publish only its own answers (creates its consumer, reloads the embedded
    server's users). Webhook: the secret that signs deliveries and callbacks. E-mail: the key
    pair the gateway holds to open its referrals in the portal. FHIR: the bearer token of its
    FHIR endpoint, and the secret that signs its Subscriptions' notifications."""
    issued = _decide(county(load_settings(data_dir)).credentials(agency))
    for line in _handed_over(issued):
        typer.echo(line)


def _handed_over(issued: Credentials) -> list[str]:
    """What the county reads out of an agency's credentials, to hand them over."""
    from wegweiser.agencies import EmailCredentials, FhirCredentials, WebhookCredentials

    agency = issued.agency_id
    match issued:
        case WebhookCredentials():
            return [
                f"webhook secret for {agency} (give it to the agency only): {issued.secret}",
                f"answers go to: {issued.answers_url}",
                "how to verify and answer: docs/webhooks.md",
            ]
        case FhirCredentials():
            return [
                f"FHIR access token for {agency} (give it to the agency only): {issued.token}",
                f"notification secret for {agency} (signs its Subscriptions' notifications): "
                f"{issued.notification_secret}",
                f"FHIR base: {issued.fhir_base}",
            ]
        case EmailCredentials():
            return [
                f"{agency} receives e-mail notices at {issued.referral_address}; the gateway "
                f"holds its key pair in {issued.key_folder} to open its referrals "
                "in the portal (published as held by the gateway)."
            ]
    return [
        f"nkey seed for {agency}: {issued.seed}  (secret: give it to the agency only)",
        f"public key: {issued.public_key}",
        f"inbox prefix the agency must use: {issued.inbox_prefix}",
        "users of the embedded nats-server reloaded"
        if issued.reloaded
        else f"add its user to your nats-server: see {issued.auth_conf}",
    ]


def _decide(step: Awaitable[T]) -> T:
    """Run one administration step; a refusal ends the command with its reason, exit 2."""
    from services.directory.enrolment import Refused
    from wegweiser.agencies import UnknownAgency

    try:
        return asyncio.run(step)  # type: ignore[arg-type]
    except Refused as exc:
        typer.echo(f"refused ({exc.code}): {exc}", err=True)
        raise typer.Exit(2) from None
    except UnknownAgency as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@agency_app.command("invite")
def agency_invite(
    agency: Annotated[str, typer.Argument(help="the agency id from the directory")],
    valid_for: Annotated[str, typer.Option(help="how long the code works (ISO 8601)")] = "P7D",
    data_dir: DataDir = None,
) -> None:
    """The county: a one-time enrolment code for an agency, to hand to it (shown once)."""
    settings = load_settings(data_dir)
    invitation = _decide(county(settings).invite(agency, duration(valid_for), by=_operator()))
    typer.echo(
        f"enrolment {invitation.enrolment_id} for {agency}, valid until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    typer.echo(f"code (give it to the agency only): {invitation.code}")
    typer.echo(f"the agency runs: wegweiser agency enrol CODE --directory {settings.directory_url}")


@agency_app.command("enrolments")
def agency_enrolments(data_dir: DataDir = None) -> None:
    """The county: enrolments waiting for a decision."""
    for row in _decide(county(load_settings(data_dir)).pending()):
        user = row.broker_user or "-"
        typer.echo(f"{row.enrolment_id}  {row.agency_id:<36} {row.status:<10} {user[:12]}")


@agency_app.command("approve")
def agency_approve(enrolment_id: str, data_dir: DataDir = None) -> None:
    """The county: publish the agency's own keys at once and give it access (its broker user,
    or a webhook secret sealed to its key); the keys the county held for it retire."""
    row = _decide(county(load_settings(data_dir)).approve(enrolment_id, by=_operator()))
    typer.echo(f"approved {enrolment_id}: {row.agency_id} ({row.channel}) with its own keys")


@agency_app.command("refuse")
def agency_refuse(enrolment_id: str, data_dir: DataDir = None) -> None:
    """The county: end an enrolment with nothing published (a request, or an invitation not
    yet used: its code is refused from then on)."""
    row = _decide(county(load_settings(data_dir)).refuse(enrolment_id, by=_operator()))
    typer.echo(f"refused {enrolment_id} ({row.agency_id})")


@agency_app.command("revoke")
def agency_revoke(agency: str, data_dir: DataDir = None) -> None:
    """The county: end every key of an agency now. Its broker user is removed (its
    connections close within seconds), nothing more is sealed to it, its answers are refused."""
    revoked = _decide(county(load_settings(data_dir)).revoke(agency, by=_operator()))
    typer.echo(
        f"revoked {agency}: {revoked.keys_ended} keys ended"
        + ("; broker users reloaded" if revoked.reloaded else "; no embedded broker runs here")
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

    settings = load_settings(data_dir)
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
    url = nats_url or running_nats(settings)
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
    reason: Annotated[
        str | None,
        typer.Option(help="a reason code, required for reject, hold, fail: " + REASONS_HELP),
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option(help="for complete: provided, partly-provided or not-provided"),
    ] = None,
    comment: Annotated[
        str | None,
        typer.Option(help="free text for the office, sealed to it before it leaves"),
    ] = None,
    office: Annotated[
        str | None,
        typer.Option(help="the office the comment is for (if several offices' keys are known)"),
    ] = None,
    forward_to: Annotated[
        str | None,
        typer.Option(help="for forward: the agency to pass the referral on to"),
    ] = None,
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--no-wait",
            help="wait for the referral service's verdict (default: on a terminal)",
            show_default=False,
        ),
    ] = None,
    within: Annotated[
        float, typer.Option(help="seconds to wait for the verdict", min=0.5, max=300)
    ] = 10.0,
    seed: Seed = None,
    data_dir: DataDir = None,
) -> None:
    """Answer a referral as an agency. An answer the referral service would refuse for its
    form (an unknown action, reason or outcome; reject, hold or fail without a reason code;
    complete without an outcome; forward without --forward-to) is refused here (exit 2) and
    nothing is sent. With --wait,
    the referral service's verdict: taken (exit 0), refused with its code (exit 1), or none
    in time (exit 3; the answer waits in the stream)."""
    from services.agency.client import AnswerInvalid, checked_answer

    try:
        checked_answer(action, reason, outcome, forward_to)
    except AnswerInvalid as exc:
        typer.echo(f"not sent: {exc}", err=True)
        raise typer.Exit(2) from None
    waiting = sys.stdout.isatty() if wait is None else wait
    verdicts: list[Any] = []

    async def answer(client: Any) -> str:
        try:
            sent: str = await client.answer(
                referral,
                action,
                reason,
                outcome=outcome,
                comment=comment,
                office=office,
                forward_to=forward_to,
            )
        except AnswerInvalid as exc:
            typer.echo(f"not sent: {exc}", err=True)
            raise typer.Exit(2) from None
        if waiting:
            verdicts.append(await client.verdict(sent, within))
        return sent

    sent = _as_agency(load_settings(data_dir), agency, seed, answer)
    if not verdicts:
        typer.echo(f"answer {sent} sent")
        return
    [verdict] = verdicts
    if verdict.state == "taken" and forward_to:
        typer.echo(
            f"answer {sent} taken: intake sends referral {verdict.referral_id} on to "
            f"{forward_to} if the consent covers it (else the refusal comes to this agency)"
        )
    elif verdict.state == "taken":
        now = f"is now {verdict.status}" if verdict.status else "has its deletion confirmed"
        typer.echo(f"answer {sent} taken: referral {verdict.referral_id} {now}")
    elif verdict.state == "refused":
        typer.echo(f"answer {sent} refused: {verdict.code}: {verdict.message}", err=True)
        raise typer.Exit(1)
    else:
        typer.echo(
            f"answer {sent} sent, no verdict within {within:g} s: the referral service "
            "decides it once it runs (see `agency listen`)",
            err=True,
        )
        raise typer.Exit(3)


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
        load_settings(data_dir),
        agency,
        seed,
        lambda client: client.update_capacity(capacity, waiting_days),
    )
    typer.echo(f"capacity update {sent} sent")
