"""The web app's use cases, one method each: what a counsellor, the ombudsperson, the county's
administrator and a person do on its pages. A method gathers what one page needs from intake,
the audit API or the directory's admin routes (over HTTP, see clients.py) and from the web
app's own accounts, and returns it as a view the route renders.

Refusals come as the clients raise them (`Refused` with the service's status and detail,
`Unavailable`); the routes map them to the office's error page. The person's page must never
show that page, so its outcomes are values (`LinkThrottled`, `NoSuchLink`, `IntakeDown`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from schemas.vocabulary import CLOSED_STATES
from services.audit import export
from services.audit.verification import SeenHead, key_in_effect
from services.directory.admin_models import (
    AgencyStanding,
    Decided,
    Invited,
    PendingEnrolment,
    Revoked,
)
from services.intake import person
from services.web import accounts
from services.web.accounts import SessionPolicy, SignedIn
from services.web.clients import (
    AuditClient,
    DirectoryAdminClient,
    IntakeClient,
    Refused,
    Unavailable,
)
from services.web.integrity import SeenHeads, Verification, check_export
from services.web.signin import Outcome, SignIn
from services.web.throttle import Backoff, Throttle

Json: TypeAlias = dict[str, Any]
Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]
log = structlog.get_logger()

LINKS = Throttle(address=Backoff(free=10), scope="link:")
"""Failed person links per client address (the sign-in counts are not touched)."""
NO_PAGE = {401, 404}
"""What intake answers for a person's token that opens nothing."""


@dataclass(frozen=True)
class RequestPage:
    """A request as the counsellor's page shows it: the request, its consent, what was sent
    (referrals and plans), and what could be sent (the directory's suggestions)."""

    detail: Json
    consent: Json
    referrals: list[Json]
    plans: list[Json]
    suggestions: list[Json]
    excluded: list[Json]
    next_to_try: list[tuple[str, str]]
    """Agencies to try next, with their names (only those among the suggestions)."""
    bridges: list[tuple[Json, str]]
    """Each agency with its interpreter, and what one tick on it sends (`bridge_choice`)."""
    already: set[str]
    """The agencies with a referral still open: not to be offered again."""


@dataclass(frozen=True)
class Recorded:
    request_id: str
    warnings: list[str]
    """The codes of what the directory could not confirm (the request is recorded)."""


@dataclass(frozen=True)
class PlanCancelled:
    request_id: str
    cancelled: bool
    """False: no reason given, so nothing was cancelled (the page asks for one)."""


@dataclass(frozen=True)
class ReasonMissing:
    """A referral not cancelled for want of a reason: shown again to ask for one."""

    referral: Json


@dataclass(frozen=True)
class Receipt:
    document: Json
    link: str | None = None
    """A new link to the person's own page, if one was asked for (shown this once)."""


@dataclass(frozen=True)
class AuditOverview:
    referrals: list[Json]
    """Newest offer first."""
    overdue: list[Json]
    anomaly_count: int


@dataclass(frozen=True)
class Figures:
    """A metadata page with the monitoring report's tables for the year so far, by name."""

    rows: Any
    figures: dict[str, Json]


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    taken_at: datetime


@dataclass(frozen=True)
class Agencies:
    standings: list[AgencyStanding]
    waiting: list[PendingEnrolment]
    """Enrolment requests waiting for a decision, oldest first."""


@dataclass(frozen=True)
class Invitation:
    invited: Invited
    directory_url: str
    """Where the agency enrols."""


@dataclass(frozen=True)
class PersonFound:
    """Intake's answer for a person's token."""

    found: Json


@dataclass(frozen=True)
class LinkThrottled:
    """Too many wrong links from this address: no lookup until `retry_after` has passed."""

    retry_after: timedelta


@dataclass(frozen=True)
class NoSuchLink:
    """No page behind the token (unknown, replaced, erased or malformed): all look alike."""


@dataclass(frozen=True)
class IntakeDown:
    """Intake could not answer: the page cannot be shown now."""


PersonOutcome: TypeAlias = PersonFound | LinkThrottled | NoSuchLink | IntakeDown


def bridge_choice(bridge: Json, already: set[str]) -> str:
    """What one tick on an agency with its interpreter sends: both, "agency+interpreter";
    the agency alone where the interpreter cannot be sent (shown with its reason) or already
    was."""
    agency = bridge["candidate"]["agency"]["agency_id"]
    interpreter = bridge["interpreter"]
    other = interpreter["candidate"]["agency"]["agency_id"]
    return f"{agency}+{other}" if interpreter["sendable"] and other not in already else agency


@dataclass
class WebApplication:
    """The web app's use cases over its clients, its accounts (`run`, `sign_in`) and its clock.
    The office a counsellor acts for is the first argument of the office's use cases."""

    run: Run
    intake: IntakeClient
    audit: AuditClient
    audit_key: Callable[[], Ed25519PublicKey]
    """The audit log's key as this installation pinned it."""
    signing_in: SignIn
    directory: DirectoryAdminClient | None = None
    seen_heads: SeenHeads | None = None
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    # --- sessions ------------------------------------------------------------------------

    async def signed_in(self, token: str | None) -> SignedIn | None:
        """The user of a live session, which this request keeps alive; None if there is none."""
        now = self.now()
        return await self.run(lambda s: accounts.current(s, token, now, self.policy))  # type: ignore[no-any-return]

    async def sign_in(self, username: str, password: str, address: str) -> Outcome:
        """A new session, or why not (wrong name or password, or too many tries)."""
        return await self.signing_in(username, password, address)

    async def sign_out(self, token: str | None) -> None:
        await self.run(lambda s: accounts.close_session(s, token))

    async def forget_ended_sessions(self) -> int:
        """Delete the sessions whose browsers never came back to end them; how many."""
        now = self.now()
        ended = int(await self.run(lambda s: accounts.forget_ended_sessions(s, now, self.policy)))
        if ended:
            log.info("web.sessions_forgotten", sessions=ended)
        return ended

    # --- the office ----------------------------------------------------------------------

    async def referrals(self, office: str, overdue: bool = False) -> list[Json]:
        """The office's referrals, newest first (only the overdue ones, if asked)."""
        return await self.intake.get(office, "/referrals", overdue=overdue or None, limit=200)  # type: ignore[no-any-return]

    async def record_request(self, office: str, body: Json) -> Recorded:
        created = await self.intake.post(office, "/requests", body)
        warnings = [w["code"] for w in created.get("warnings", [])]
        return Recorded(created["request_id"], warnings)

    async def request_page(self, office: str, request_id: str) -> RequestPage:
        """The request and its consent, what was sent, and (while its person's data is there
        and the consent stands) what the directory suggests."""
        detail = await self.intake.get(office, f"/requests/{request_id}")
        consent, sent, plans = await asyncio.gather(
            self.consent(office, detail["consent_id"]),
            self.intake.get(office, f"/requests/{request_id}/referrals"),
            self.intake.get(office, f"/requests/{request_id}/plans"),
        )
        found: Json = {"suggestions": [], "excluded": [], "next_to_try": []}
        if not detail["erased"] and not detail["consent_withdrawn_at"]:
            found = await self.intake.get(office, f"/requests/{request_id}/suggestions")
        names = {s["candidate"]["agency"]["agency_id"]: s["candidate"]["agency"]["name"]
                 for s in found["suggestions"]}  # fmt: skip
        already = {r["agency_id"] for r in sent if r["status"] not in CLOSED_STATES}
        return RequestPage(
            detail=detail,
            consent=consent,
            referrals=sent,
            plans=plans,
            suggestions=found["suggestions"],
            excluded=found["excluded"],
            next_to_try=[(a, names[a]) for a in found.get("next_to_try", []) if a in names],
            bridges=[(b, bridge_choice(b, already)) for b in found.get("bridges", [])],
            already=already,
        )

    async def send(self, office: str, request_id: str, agencies: list[str]) -> int:
        """Refer the request to `agencies`: one alone, several together as one plan (to all
        of them or to none); how many were sent to."""
        if len(agencies) == 1:
            one = {"agency_id": agencies[0]}
            await self.intake.post(office, f"/requests/{request_id}/referrals", one)
        elif agencies:
            together = {"agency_ids": agencies}
            await self.intake.post(office, f"/requests/{request_id}/plans", together)
        return len(agencies)

    async def cancel_plan(self, office: str, plan_id: str, reason: str | None) -> PlanCancelled:
        """Cancel a plan for `reason`; without one, nothing is cancelled."""
        if reason is None:
            plan = await self.intake.get(office, f"/plans/{plan_id}")
            return PlanCancelled(plan["request_id"], cancelled=False)
        plan = await self.intake.post(office, f"/plans/{plan_id}/cancel", {"reason": reason})
        return PlanCancelled(plan["request_id"], cancelled=True)

    async def referral(self, office: str, referral_id: str) -> Json:
        return await self.intake.get(office, f"/referrals/{referral_id}")  # type: ignore[no-any-return]

    async def cancel_referral(
        self, office: str, referral_id: str, reason: str | None, comment: str | None
    ) -> ReasonMissing | None:
        """Cancel a referral for `reason` (with the counsellor's `comment`, if any); without a
        reason, nothing is cancelled and the referral is returned to ask for one."""
        if reason is None:
            return ReasonMissing(await self.referral(office, referral_id))
        said = {"reason": reason, **({"comment": comment} if comment else {})}
        await self.intake.post(office, f"/referrals/{referral_id}/cancel", said)
        return None

    async def consent(self, office: str, consent_id: str) -> Json:
        """A consent as its receipt records it."""
        path = f"/consents/{consent_id}/receipt"
        return await self.intake.get(office, path, format="json")  # type: ignore[no-any-return]

    async def receipt_text(self, office: str, consent_id: str, language: str) -> str:
        """The receipt as plain text, to download."""
        path = f"/consents/{consent_id}/receipt"
        return await self.intake.text(office, path, language=language)

    async def receipt(
        self, office: str, consent_id: str, language: str, link_base: str | None = None
    ) -> Receipt:
        """The receipt's document; with `link_base`, also a new link to the person's own page
        under it (an earlier link of the consent stops working), asked for only once the
        document is there, so that a link is never lost to a failed page."""
        path = f"/consents/{consent_id}/receipt"
        document = await self.intake.get(office, path, language=language, format="document")
        if link_base is None:
            return Receipt(document)
        issued = await self.intake.post(
            office, f"/consents/{consent_id}/person-link", {"language": language}
        )
        return Receipt(document, f"{link_base}/p/{issued['token']}")

    async def withdraw_consent(self, office: str, consent_id: str) -> str:
        """Withdraw a consent on the person's word; the request it belongs to."""
        done = await self.intake.post(office, f"/consents/{consent_id}/withdraw")
        return str(done["request_id"])

    # --- the ombudsperson ------------------------------------------------------------------

    async def audit_overview(self, agency: str = "", state: str = "") -> AuditOverview:
        """The referrals the log knows (of `agency`, in `state`), newest offer first, with
        the overdue ones and how many anomalies were found."""
        rows = await self.audit.get("/referrals", agency=agency, state=state)
        overdue = await self.audit.get("/overdue")
        anomalies = await self.audit.get("/anomalies")
        return AuditOverview(
            referrals=sorted(rows, key=lambda r: r["offered_at"] or "", reverse=True),
            overdue=overdue,
            anomaly_count=sum(len(v) for v in anomalies.values()),
        )

    async def trail(self, referral_id: str) -> list[Json]:
        return await self.audit.get(f"/referrals/{referral_id}/trail")  # type: ignore[no-any-return]

    async def answer_times(self) -> Figures:
        return await self._with_figures("/agencies/answer-times")

    async def overdue(self) -> Figures:
        return await self._with_figures("/overdue")

    async def withdrawals(self) -> Figures:
        return await self._with_figures("/withdrawals")

    async def _with_figures(self, path: str) -> Figures:
        """The audit API's `path`, and the monitoring report's tables for this year so far
        (protected as always)."""
        today = date.today()
        period = {"from": f"{today.year}-01-01", "to": str(today)}
        rows, found = await asyncio.gather(
            self.audit.get(path), self.audit.get("/report", **period)
        )
        return Figures(rows, {table["name"]: table for table in found["current"]["tables"]})

    async def anomalies(self) -> Json:
        return await self.audit.get("/anomalies")  # type: ignore[no-any-return]

    async def verify_log(self) -> Verification:
        """Check an export against the pinned key and the head accepted last; a log that
        passes has its head kept as the one accepted last."""
        seen = self.seen_heads.last() if self.seen_heads else None
        doc = await self.audit.get("/export", **({"since": seen.size} if seen else {}))
        verdict = check_export(doc, self.audit_key(), seen)
        if verdict.ok and self.seen_heads:
            found = export.parse(doc)
            key = key_in_effect(self.audit_key(), found.rotations)
            self.seen_heads.keep(SeenHead.of(found.head, key))
        return verdict

    async def export(self) -> ExportFile:
        """The log as the audit API exports it, to download."""
        response = await self.audit.call("GET", "/export")
        return ExportFile(response.content, self.now())

    async def report(self, first: str, last: str, county: str, language: str) -> str:
        """The monitoring report for a period, as the one offline HTML file the audit makes."""
        return await self.audit.text(
            "/report.html", **{"from": first, "to": last}, county=county, language=language
        )

    # --- the administrator -----------------------------------------------------------------

    def _directory(self) -> DirectoryAdminClient:
        if self.directory is None:
            raise Unavailable("the directory's admin routes are not configured for the web app")
        return self.directory

    async def agencies(self, by: str) -> Agencies:
        """Every agency's standing, and the enrolment requests waiting, oldest first."""
        standings = await self._directory().agencies(by)
        waiting = [e for a in standings for e in a.pending if e.status == "requested"]
        return Agencies(standings, sorted(waiting, key=lambda e: e.requested_at or e.invited_at))

    async def agency(self, agency_id: str, by: str) -> AgencyStanding | None:
        standings = await self._directory().agencies(by)
        return next((a for a in standings if a.agency_id == agency_id), None)

    async def invite(self, agency_id: str, valid_for: timedelta, by: str) -> Invitation:
        directory = self._directory()
        invited = await directory.invite(agency_id, valid_for, by)
        return Invitation(invited, directory.public_url)

    async def approve(self, enrolment_id: str, by: str) -> Decided:
        return await self._directory().approve(enrolment_id, by)

    async def refuse(self, enrolment_id: str, by: str) -> Decided:
        return await self._directory().refuse(enrolment_id, by)

    async def revoke(self, agency_id: str, by: str) -> Revoked:
        return await self._directory().revoke(agency_id, by)

    # --- the person's own page -------------------------------------------------------------

    async def person_page(self, token: str, address: str) -> PersonOutcome:
        return await self._open(token, address, self.intake.person.page)

    async def person_withdraws(self, token: str, address: str) -> PersonOutcome:
        return await self._open(token, address, self.intake.person.withdraw)

    async def person_data(self, token: str, address: str) -> PersonOutcome:
        return await self._open(token, address, self.intake.person.data)

    async def _open(
        self, token: str, address: str, call: Callable[[str], Awaitable[Any]]
    ) -> PersonOutcome:
        """Intake's answer for the token, unless the address must wait; a token that opens
        nothing (a malformed one is never sent on) counts against the address."""
        wait = await self.run(lambda s: LINKS.retry_after(s, None, address, self.now()))
        if wait is not None:
            return LinkThrottled(wait)
        if person.plausible(token):
            try:
                return PersonFound(await call(token))
            except Refused as refused:
                if refused.status not in NO_PAGE:
                    return IntakeDown()
            except Unavailable:
                return IntakeDown()
        await self.run(lambda s: LINKS.record_failure(s, None, address, self.now()))
        return NoSuchLink()
