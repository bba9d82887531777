"""Composition root of the intake service: HTTP API, projection consumer, outbox relay."""

from __future__ import annotations

from services.intake import access, projection
from services.intake.application import Intake
from services.intake.directory_client import DirectoryClient
from services.intake.http import create_app
from services.intake.office import Office
from services.intake.vault import Vault, master_key
from services.referral.legal_deadline import LegalClockPolicy
from wegweiser import registry
from wegweiser.platform import keys
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    """Wire intake: the referral-event projection, the use cases and the HTTP server."""
    runtime = ServiceRuntime(registry.service("intake"), settings)
    runtime.consume("intake-referral-events", projection.routes())
    app = create_app(
        settings.intake_allowed_hosts, frozenset(settings.intake_origins), runtime.tracing
    )

    async def wire() -> None:
        if settings.environment == "development":
            await access.register_development_clients(runtime.db.run, settings)
        ring = KeyRing(settings.keys_path)
        token_key = keys.load_or_create(
            settings.keys_path / "intake" / "token-signing.jwk", keys.generate_signing_key
        )
        vault = Vault(master_key(settings.intake_master_key, settings.keys_path))
        offices = {
            office_id: Office(
                office_id,
                vault,
                ring.office_signing(office_id),
                ring.office_sealing(office_id),
                controller=name,
            )
            for office_id, name in settings.all_offices.items()
        }
        app.state.intake = Intake(
            runtime.db,
            DirectoryClient(runtime.nc),
            offices,
            access.Tokens(token_key),
            access.Revocations(lambda: runtime.db.read(access.revoked_ids)),
            LegalClockPolicy(settings.legal_acknowledge_within, settings.legal_alert_margin),
        )

    async def follow_up() -> None:
        await app.state.intake.follow_up()

    runtime.before_start(wire)
    runtime.every(settings.follow_up_every, follow_up)
    runtime.serve_http(app, settings.intake_host, settings.intake_port)
    return runtime
