"""The county's administration of its partner agencies as `wegweiser agency` runs it on the
administrator's machine: the directory's decisions (`services.directory.admin`) with the broker
following at once, and the credentials each channel's adapter needs.

The broker watch follows the directory by itself within a second; these use cases reload the
embedded broker's accounts and make a NATS agency's consumer themselves, so that the agency
can connect the moment the command returns. The broker's address is asked for only by a step
that needs it. A refusal is a named error and changes nothing: `UnknownAgency`, or the
directory's `Refused` with its stable code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from services.directory import identities, importer, store
from services.directory.admin import Administration
from services.directory.admin_models import Decided, Invited, PendingEnrolment
from services.gateway.fhir.access import TokenFolder
from wegweiser import provisioning
from wegweiser.platform import grants, nats_auth
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing, public_dict
from wegweiser.platform.secrets import SecretFolder
from wegweiser.settings import Settings
from wegweiser.supervisor import runtime_info

ATTEMPTS = 3
"""Tries of each NATS server before a use case gives up: a command run by hand says the broker
is unreachable rather than wait for it."""


class UnknownAgency(Exception):
    """No agency of this id is in the directory."""

    def __init__(self, agency_id: str) -> None:
        super().__init__(f"unknown agency {agency_id!r}: not in the directory")
        self.agency_id = agency_id


@dataclass(frozen=True)
class WebhookCredentials:
    """A webhook agency's secret, which signs deliveries and callbacks, and where it answers."""

    agency_id: str
    secret: str
    answers_url: str


@dataclass(frozen=True)
class FhirCredentials:
    """A FHIR agency's new access token and the secret that signs its notifications."""

    agency_id: str
    token: str
    notification_secret: str
    fhir_base: str


@dataclass(frozen=True)
class EmailCredentials:
    """An e-mail agency's key pair, held by the gateway in `key_folder` and published."""

    agency_id: str
    referral_address: str | None
    key_folder: Path


@dataclass(frozen=True)
class NatsCredentials:
    """A NATS agency's nkey seed, which reads only its referrals and answers only as itself."""

    agency_id: str
    seed: Path
    public_key: str
    inbox_prefix: str
    reloaded: bool
    """Whether embedded nats-servers run here and were given its user; else see `auth_conf`."""
    auth_conf: Path


Credentials = WebhookCredentials | FhirCredentials | EmailCredentials | NatsCredentials


@dataclass(frozen=True)
class Revocation:
    """An agency's keys ended, and whether the embedded broker users were reloaded."""

    agency_id: str
    keys_ended: int
    reloaded: bool


@dataclass(frozen=True)
class DirectoryImport:
    """What an import found and did, and whether the embedded broker's accounts were reloaded."""

    report: importer.Report
    reloaded: bool


class CountyAdministration:
    """The county's use cases on its partner agencies, one method each."""

    def __init__(self, settings: Settings, directory: Database, broker: Callable[[], str]) -> None:
        """`directory`: the directory's database, migrated; `broker`: the NATS address."""
        self.settings = settings
        self.directory = directory
        self.broker = broker
        self.secrets = SecretFolder(settings.webhook_secrets_path)
        self.decisions = Administration(directory, self.secrets)

    async def credentials(self, agency_id: str) -> Credentials:
        """Issue the credentials of the agency's channel (see each result's type)."""
        found = await self.directory.read(lambda s: store.get(s, agency_id))
        if found is None:
            raise UnknownAgency(agency_id)
        match found.channel:
            case "webhook":
                secret = self.secrets.ensure(agency_id)
                return WebhookCredentials(
                    agency_id, secret, f"{self._gateway()}/webhooks/{agency_id}/answers"
                )
            case "fhir":  # the gateway keeps the token's digest; an earlier token stops working
                token = TokenFolder.under(self.settings.keys_path).issue(agency_id)
                secret = self.secrets.ensure(agency_id)
                return FhirCredentials(
                    agency_id, token, secret, f"{self._gateway()}/fhir/{agency_id}"
                )
            case "email":
                ring = KeyRing(self.settings.keys_path)
                key = public_dict(ring.ensure_agency(agency_id))
                await self.directory.run(lambda s: identities.publish_on_file(s, {agency_id: key}))
                return EmailCredentials(
                    agency_id, found.referral_address, self.settings.keys_path / "agencies"
                )
        return await self._nats_credentials(agency_id)

    async def _nats_credentials(self, agency_id: str) -> NatsCredentials:
        seeds = provisioning.seeds(self.settings)
        seed = seeds.ensure(seeds.agency_path(agency_id))
        reloaded = await self._reload()
        url = self.broker()
        if reloaded:  # the agency's user exists once the server's reload is done
            await (
                await provisioning.connect_as(
                    url, seed, f"wegweiser-agency-{agency_id}", attempts=ATTEMPTS
                )
            ).close()
        await provisioning.provision_agency(self.settings, url, agency_id, ATTEMPTS)
        return NatsCredentials(
            agency_id,
            seed,
            nats_auth.public_key(seed),
            grants.inbox_prefix(agency_id),
            reloaded,
            self.settings.data_dir / "nats" / "auth.conf",
        )

    async def invite(self, agency_id: str, valid_for: timedelta, by: str) -> Invited:
        """A one-time enrolment code for an agency of the directory."""
        return await self.decisions.invite(agency_id, valid_for, by)

    async def pending(self) -> list[PendingEnrolment]:
        """Enrolments waiting for a decision, oldest first."""
        return await self.decisions.pending()

    async def approve(self, enrolment_id: str, by: str) -> Decided:
        """Publish the agency's own keys and give it access; a NATS agency's broker user and
        consumer are made now if an embedded broker runs here."""
        decided = await self.decisions.approve(enrolment_id, by)
        if decided.channel == "nats" and await self._reload():
            await provisioning.provision_agency(
                self.settings, self.broker(), decided.agency_id, ATTEMPTS
            )
        return decided

    async def refuse(self, enrolment_id: str, by: str) -> Decided:
        """End an enrolment with nothing published."""
        return await self.decisions.refuse(enrolment_id, by)

    async def revoke(self, agency_id: str, by: str) -> Revocation:
        """End every key of the agency now, and its broker user with the embedded broker's
        reload."""
        revoked = await self.decisions.revoke(agency_id, by)
        return Revocation(agency_id, revoked.keys_ended, await self._reload())

    async def import_directory(self, source: Path, kind: str | None) -> DirectoryImport:
        """Import HSDS data (`importer.import_file`: all of it, or nothing when any record is
        invalid); once imported, the embedded broker's accounts follow the agencies' channels
        at once (the gateway's rights)."""
        report = await self.directory.run(lambda s: importer.import_file(s, source, kind))
        return DirectoryImport(report, report.ok and await self._reload())

    async def _reload(self) -> bool:
        return await asyncio.to_thread(provisioning.reload_accounts, self.settings)

    def _gateway(self) -> str:
        """The running gateway's address, else the configured one."""
        return str(
            runtime_info(self.settings.data_dir).get("gateway_url") or self.settings.gateway_url
        )
