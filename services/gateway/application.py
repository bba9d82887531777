"""The partner gateway's use cases, one method each: what its feeds hand on (to an e-mail
agency, to a FHIR agency's view), what an agency sends back (a signed webhook callback, an
answer from the portal, a FHIR Task update or Subscription), what the portal shows, and what
the timers do (send the staged mail, forget old links). The bootstrap only wires this to the
feeds, the HTTP apps and the timers; the tests drive it with a real store and no broker.

Refusals are exceptions in the domain's words (`NoWebhookAgency`, `BadSignature`,
`MalformedCallback`, `callbacks.CallbackRefused`, `sealing.NoOfficeKey`, `NoPortalSession`,
`OutOfDateForm`, `MalformedAnswer`, `CaseDeleted`, `links.LinkRefused`, `FhirRefused`);
nothing is written when one is raised. The HTTP apps map them to status codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fhir.resources.R4B.subscription import Subscription
from fhir.resources.R4B.task import Task
from jwcrypto import jwk
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlmodel import Session

from schemas.events import SealedNote
from schemas.vocabulary import AgencyAction
from services.gateway import callbacks, handlers, links, portal, webhook
from services.gateway.fhir import subscriptions, tasks
from services.gateway.fhir.errors import FhirRefused, invalid
from services.gateway.fhir.store import SubscriptionRow, TaskRow
from services.gateway.fhir.subscriptions import Notifier
from services.gateway.handlers import MailAgency
from services.gateway.mail import Mailer
from services.gateway.store import CaseRow, SessionRow
from wegweiser.platform import sealing
from wegweiser.platform.consumer import describe
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing


class Agencies(Protocol):
    """The agencies the gateway serves now (services.gateway.partners.Partners)."""

    def secret(self, agency_id: str) -> str | None: ...

    def mail_agency(self, agency_id: str) -> MailAgency | None: ...

    def agency_key(self, agency_id: str) -> jwk.JWK | None: ...

    def fhir_admits(self, agency_id: str, token: str) -> bool: ...

    def fhir_address(self, agency_id: str) -> str | None: ...


class NoWebhookAgency(Exception):
    """A callback for an agency that is not served by webhook (or no longer)."""

    def __init__(self, agency_id: str) -> None:
        super().__init__(f"no webhook agency {agency_id}")


class BadSignature(Exception):
    """A callback that does not carry the agency's valid, fresh signature."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"bad webhook signature: {error}")


class MalformedCallback(Exception):
    """A signed callback that is no answer; `detail`: what is wrong (pydantic's errors)."""

    def __init__(self, detail: str | list[Any]) -> None:
        super().__init__(str(detail))
        self.detail = detail


class NoPortalSession(Exception):
    def __init__(self) -> None:
        super().__init__("no open session: use the link from your e-mail")


class OutOfDateForm(Exception):
    """A portal form whose CSRF token is not the session's."""

    def __init__(self) -> None:
        super().__init__("the form is out of date: reload the page")


class MalformedAnswer(Exception):
    """A portal answer the lifecycle would refuse for its form (the message says why)."""


class CaseDeleted(Exception):
    def __init__(self) -> None:
        super().__init__(links.DELETED)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gateway:
    """The gateway of one county: its store, the agencies it serves, the key ring (the
    e-mail agencies' keys it holds, the offices' public keys), the mail sender, and the
    notifier of FHIR Subscriptions."""

    db: Database
    agencies: Agencies
    ring: KeyRing
    mailer: Mailer
    notifier: Notifier
    clock: Callable[[], datetime] = field(default=_now)
    session_lasts: timedelta = timedelta(minutes=30)
    """How long a portal session lasts after its link is opened."""
    links_keep: timedelta = timedelta(days=7)
    """How long expired links are kept (a used one is refused as used till then)."""

    # What the feeds hand on.

    async def tell_by_mail(self, agency: MailAgency, msg: Msg) -> str | None:
        """Record the news for an e-mail agency, then send the notices staged."""
        now = self.clock()
        await self.db.run(lambda s: handlers.tell_by_mail(s, agency, msg.subject, msg.data, now))
        await self.send_mail()
        return None

    async def tell_fhir_agency(self, agency_id: str, msg: Msg) -> str | None:
        """Follow the event in the agency's FHIR view, then notify its Subscriptions."""
        now = self.clock()
        changed = await self.db.run(
            lambda s: tasks.record(s, agency_id, msg.subject, msg.data, now)
        )
        if changed is not None:
            await self.notifier.task_changed(agency_id, changed)
        return None

    # What the timers do.

    async def send_mail(self) -> int:
        """Send every notice not sent yet; how many were sent."""
        return await self.mailer.send_pending(self.db.run, self.clock())

    async def prune_links(self) -> tuple[int, int]:
        """Forget old links and ended portal sessions; (links, sessions) forgotten."""
        now = self.clock()
        return await self.db.run(lambda s: links.prune(s, now, self.links_keep))

    # What a webhook agency sends.

    async def take_callback(
        self, agency_id: str, body: bytes, headers: dict[str, str]
    ) -> callbacks.Taken:
        """Take a signed callback once (callbacks.take): checked in the order of the refusals
        NoWebhookAgency, BadSignature, MalformedCallback, NoOfficeKey, CallbackRefused."""
        secret = self.agencies.secret(agency_id)
        if secret is None:
            raise NoWebhookAgency(agency_id)
        try:
            webhook.verify(secret, body, headers)
        except webhook.WebhookVerificationError as exc:
            raise BadSignature(exc) from None
        webhook_id = headers["webhook-id"]
        if len(webhook_id) > callbacks.LONGEST_ID:
            raise MalformedCallback(f"webhook-id longer than {callbacks.LONGEST_ID} characters")
        try:
            answer = callbacks.CallbackAnswer.model_validate_json(body)
        except ValidationError as exc:
            # without the input: a body that is no JSON would be bytes, and none is echoed
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise MalformedCallback(list(errors)) from None
        note = self._sealed(answer.comment, answer.referral_id, answer.office)
        now = self.clock()
        return await self.db.run(
            lambda s: callbacks.take(s, agency_id, webhook_id, answer, now, note)
        )

    # What an e-mail agency does on the portal.

    async def open_link(self, token: str) -> str:
        """Use a one-time link (links.LinkRefused if it cannot be): a new portal session on
        its referral; the session's token."""

        def redeem(session: Session) -> tuple[str, str] | links.LinkRefused:
            now = self.clock()
            try:
                link = links.redeem(session, token, now)
            except links.LinkRefused as refused:
                return refused
            return links.open_session(session, link, now, self.session_lasts)

        opened = await self.db.run(redeem)
        if isinstance(opened, links.LinkRefused):
            raise opened
        return opened[0]

    async def show_case(self, session_token: str | None) -> portal.CaseView:
        """The case of the session's referral, opened (NoPortalSession, CaseDeleted)."""
        found, case = await self._session_case(session_token)
        if case is not None and case.deleted_at is not None:
            raise CaseDeleted()
        agency = self.agencies.mail_agency(found.agency_id)
        key, signers = self.agencies.agency_key(found.agency_id), self.ring.office_public()
        details, error = portal.opened_case(case, key, signers)
        return portal.CaseView(
            referral_id=found.referral_id,
            agency_name=agency.name if agency else found.agency_id,
            state=case.last_event if case else "unknown",
            csrf=found.csrf,
            case=details,
            office_comment=portal.office_comment(case, key, signers),
            error=error,
        )

    async def answer_from_portal(
        self, session_token: str | None, form: portal.PortalForm
    ) -> AgencyAction:
        """Stage the agency's answer, its comment sealed to the office that sent the referral;
        the action taken (NoPortalSession, OutOfDateForm, MalformedAnswer, NoOfficeKey)."""
        found, case = await self._session_case(session_token)
        if form.csrf != found.csrf:
            raise OutOfDateForm()
        try:
            answer = callbacks.AnswerTerms(
                action=form.action,
                reason=form.reason or None,
                outcome=form.outcome or None,
                forward_to=(form.forward_to or "").strip() or None,
            )
        except ValidationError as exc:
            raise MalformedAnswer(describe(exc)) from None
        text = (form.comment or "").strip() or None
        office = case.office_id if case is not None else None  # the office that sent it
        note = self._sealed(text, found.referral_id, office)
        await self.db.run(
            lambda s: handlers.stage_answer(
                s,
                found.agency_id,
                found.referral_id,
                answer.action,
                reason=answer.reason,
                outcome=answer.outcome,
                comment=note,
                forward_to=answer.forward_to,
            )
        )
        return answer.action

    async def _session_case(self, token: str | None) -> tuple[SessionRow, CaseRow | None]:
        def find(session: Session) -> tuple[SessionRow, CaseRow | None] | None:
            found = links.current_session(session, token, self.clock())
            return None if found is None else (found, session.get(CaseRow, found.referral_id))

        opened = await self.db.run(find)
        if opened is None:
            raise NoPortalSession()
        return opened

    def _sealed(
        self, comment: str | None, referral_id: str, office: str | None
    ) -> SealedNote | None:
        """An agency's comment sealed to the office at once (NoOfficeKey if no key fits)."""
        if comment is None:
            return None
        return sealing.comment_to_office(
            comment, referral_id, self.ring.office_sealing_public(), office
        )

    # What a FHIR agency reads and sends (FhirRefused: not found, not allowed).

    async def search_tasks(self, agency_id: str, terms: tasks.Search) -> list[TaskRow]:
        return await self.db.run(lambda s: tasks.search(s, agency_id, terms))

    async def task(self, agency_id: str, referral_id: str, kind: str = "Task") -> TaskRow:
        """The agency's referral, as a Task or as the ServiceRequest it focuses on."""
        return await self.db.run(lambda s: tasks.owned(s, agency_id, referral_id, kind))

    async def consent(self, agency_id: str, consent_id: str) -> TaskRow:
        return await self.db.run(lambda s: tasks.consent_row(s, agency_id, consent_id))

    async def sealed_case(self, agency_id: str, referral_id: str) -> tuple[TaskRow, str]:
        """The referral and its case as the JWE the office sealed (410 once deleted)."""
        row = await self.task(agency_id, referral_id, "Binary")
        if row.sealed_case is None:
            raise FhirRefused(
                410, "deleted", "fhir.deleted", f"the case of {referral_id} was deleted"
            )
        return row, row.sealed_case

    async def update_task(
        self, agency_id: str, task_id: str, submitted: Task, if_match: str | None
    ) -> tasks.Update:
        """Take the agency's Task update as its answer (tasks.update), its comment sealed."""

        def seal(comment: str, row: TaskRow) -> SealedNote:
            try:
                return sealing.comment_to_office(
                    comment, row.referral_id, self.ring.office_sealing_public(), row.office_id
                )
            except sealing.NoOfficeKey as exc:
                raise invalid("fhir.no-office-key", str(exc), "Task.statusReason.text") from None

        now = self.clock()
        return await self.db.run(
            lambda s: tasks.update(s, agency_id, task_id, submitted, now, seal, if_match)
        )

    async def subscribe(self, agency_id: str, submitted: Subscription) -> SubscriptionRow:
        """Record the Subscription and shake hands with its endpoint: active if it answers,
        in error if not. Its endpoint must be under the agency's listed address."""
        allowed = self.agencies.fhir_address(agency_id)
        made = await self.db.run(
            lambda s: subscriptions.open_subscription(s, agency_id, submitted, allowed)
        )
        await self.notifier.handshake(agency_id, made)
        return await self.subscription(agency_id, made)

    async def subscription(self, agency_id: str, subscription_id: str) -> SubscriptionRow:
        return await self.db.run(lambda s: subscriptions.owned(s, agency_id, subscription_id))

    async def unsubscribe(self, agency_id: str, subscription_id: str) -> None:
        await self.db.run(lambda s: subscriptions.close(s, agency_id, subscription_id))
