"""The county's decisions about its partner agencies: invite one to enrol, approve or refuse its
enrolment, revoke it; and what the county sees of each agency meanwhile.

One method per use case, for the command line and the web app alike (the web app reaches them
through the directory's admin routes in `http.py`). The broker follows the directory by itself:
the broker watch renders the accounts anew when an agency's broker user comes or goes
(`wegweiser.provisioning.AccountsSync`), so approving from a browser needs no administrator's
key. Each refusal is `enrolment.Refused`, with a stable code, and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from jwcrypto import jwk
from sqlmodel import Session

from services.directory import enrolment, identities, store
from services.directory.admin_models import (
    AgencyStanding,
    Decided,
    Invited,
    PendingEnrolment,
    Revoked,
)
from services.directory.enrolment import Refused, Status
from services.directory.identities import Use
from services.directory.store import EnrolmentRow
from wegweiser.platform.db import Database, as_utc

log = structlog.get_logger()


class WebhookSecrets(Protocol):
    """Where a webhook agency's signing secret is issued for the gateway to sign with."""

    def issue(self, agency_id: str) -> str: ...


class Administration:
    """The county's use cases on agencies, each one unit of work on the directory's store."""

    def __init__(self, db: Database, webhook_secrets: WebhookSecrets) -> None:
        self.db = db
        self.webhook_secrets = webhook_secrets

    async def agencies(self) -> list[AgencyStanding]:
        """Every agency of the directory, by id, with its keys' custody and open enrolments."""
        return await self.db.read(_standings)

    async def pending(self) -> list[PendingEnrolment]:
        """Enrolments not yet decided, oldest first."""
        return await self.db.read(lambda s: [_pending(r) for r in enrolment.pending(s)])

    async def invite(self, agency_id: str, valid_for: timedelta, by: str) -> Invited:
        """A one-time enrolment code for an agency of the directory."""
        found = await self.db.run(lambda s: enrolment.invite(s, agency_id, valid_for))
        log.info("enrolment.invited", agency_id=agency_id, enrolment_id=found.enrolment_id, by=by)
        return Invited(
            enrolment_id=found.enrolment_id,
            agency_id=found.agency_id,
            code=found.code,
            expires_at=found.expires_at,
        )

    async def approve(self, enrolment_id: str, by: str) -> Decided:
        """Publish the agency's own keys at once; a webhook agency gets a new signing secret,
        kept for the gateway and sealed to the agency's key for it to collect."""

        def approve(session: Session) -> EnrolmentRow:
            row = session.get(EnrolmentRow, enrolment_id)
            webhook = row is not None and row.channel == "webhook" and _requested(row)
            # issued before the commit: an approval never stands without its secret
            secret = self.webhook_secrets.issue(row.agency_id) if row and webhook else None
            return enrolment.approve(session, enrolment_id, webhook_secret=secret)

        row = await self.db.run(approve)
        log.info("enrolment.approved", agency_id=row.agency_id, enrolment_id=row.id, by=by)
        return _decided(row)

    async def refuse(self, enrolment_id: str, by: str) -> Decided:
        """End an enrolment with nothing published: a request refused, or an invitation
        withdrawn before it was used."""
        row = await self.db.run(lambda s: enrolment.refuse(s, enrolment_id))
        log.info("enrolment.refused", agency_id=row.agency_id, enrolment_id=row.id, by=by)
        return _decided(row)

    async def revoke(self, agency_id: str, by: str) -> Revoked:
        """End every key of the agency now; its broker user goes with the watch's next round,
        nothing more is sealed to it, its answers are refused."""

        def revoke(session: Session) -> int:
            if store.get(session, agency_id) is None:
                raise Refused("agency.unknown", f"unknown agency {agency_id!r}", 404)
            return identities.revoke(session, agency_id)

        ended = await self.db.run(revoke)
        log.info("agency.revoked", agency_id=agency_id, keys_ended=ended, by=by)
        return Revoked(agency_id=agency_id, keys_ended=ended)


def _pending(row: EnrolmentRow) -> PendingEnrolment:
    keys = row.request or {}
    sealing = keys.get("sealing_key")
    return PendingEnrolment(
        enrolment_id=row.id,
        agency_id=row.agency_id,
        channel=row.channel,
        status=row.status,
        invited_at=as_utc(row.invited_at),
        expires_at=as_utc(row.expires_at),
        requested_at=as_utc(row.requested_at) if row.requested_at else None,
        broker_user=str(keys["nats_user"]) if "nats_user" in keys else None,
        sealing_kid=jwk.JWK(**sealing).thumbprint() if sealing else None,
    )


def _requested(row: EnrolmentRow) -> bool:
    return row.status == Status.REQUESTED.value


def _decided(row: EnrolmentRow) -> Decided:
    return Decided(
        enrolment_id=row.id, agency_id=row.agency_id, channel=row.channel, status=row.status
    )


def _standings(session: Session) -> list[AgencyStanding]:
    now = datetime.now(UTC)
    keys = identities.current(session, now)
    revoked = identities.revoked_agencies(session)
    waiting: dict[str, list[PendingEnrolment]] = {}
    for row in enrolment.pending(session):
        waiting.setdefault(row.agency_id, []).append(_pending(row))
    out = []
    for agency in sorted(store.all_agencies(session), key=lambda a: a.id):
        sealing = keys.get((agency.id, Use.SEALING))
        out.append(
            AgencyStanding(
                agency_id=agency.id,
                name=agency.name,
                organization=agency.organization,
                channel=agency.channel,
                custody=sealing.custody if sealing else None,
                revoked=agency.id in revoked,
                pending=waiting.get(agency.id, []),
            )
        )
    return out
