"""Intake's use cases, one method each: what the office's HTTP API (and anything else that
drives intake) calls. Each method is one unit of work on intake's store, with the directory
asked where a use case needs it; a person's data is opened once per call at most.

Refusals are exceptions in the domain's words (`office.NotFound`, `Forbidden`, `Conflict`,
`UnknownAgency`, `case.NotSealable`, `consent.rules.ConsentViolation`, `vault.PersonErased`,
`DirectoryUnavailable`, `access.Refused`); nothing is written when one is raised. The entry
points map them to their own outcomes (HTTP status codes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from schemas.events import ConsentTerms
from schemas.queries import (
    AgencyCard,
    Candidate,
    CheckPlace,
    Excluded,
    PlaceCheck,
    ResolveAgencies,
    Suggestions,
)
from schemas.vocabulary import Need, ReasonCode, ReferralStatus, WithdrawnBy
from services.consent.rules import covers_recipient
from services.consent.texts import PersonLanguage
from services.intake import (
    access,
    admission,
    case,
    commands,
    forwarding,
    person,
    receipt,
    reoffer,
    unmet,
    views,
)
from services.intake.api_models import (
    CommentPublic,
    PersonData,
    PersonLinkIssued,
    PersonPage,
    PersonRecipient,
    PersonReferral,
    PlanPublic,
    ReferralPublic,
    Refusal,
    RequestCreate,
    RequestDetail,
    RequestPublic,
    Suggestion,
    SuggestionsPublic,
    TrailItem,
    WithdrawalPublic,
)
from services.intake.directory_client import DirectoryUnavailable
from services.intake.office import Forbidden, Office
from services.intake.store import PersonLink, PlanRow, ReferralView, TrailEntry
from services.intake.vault import PersonErased
from services.referral.legal_deadline import LegalClockPolicy
from wegweiser.platform.db import Database, as_utc


class Directory(Protocol):
    """What intake asks the directory (over NATS in the service; see directory_client.py)."""

    async def resolve(self, query: ResolveAgencies) -> Suggestions: ...

    async def lookup(self, agency_id: str) -> AgencyCard | None: ...

    async def place(self, query: CheckPlace) -> PlaceCheck: ...


class UnknownAgency(Exception):
    """The agency is not in the directory, or takes no referrals."""


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int
    office_id: str


@dataclass(frozen=True)
class Receipt:
    """What the person's receipt is made from."""

    terms: ConsentTerms
    withdrawn_at: datetime | None
    names: dict[str, str]
    """The agencies' names by id, where the directory gave them."""


class Intake:
    """The offices' requests, consents and referrals, for the offices this intake serves."""

    def __init__(
        self,
        db: Database,
        directory: Directory,
        offices: dict[str, Office],
        tokens: access.Tokens,
        revocations: access.Revocations,
        legal: LegalClockPolicy | None = None,
    ) -> None:
        self.db = db
        self.directory = directory
        self.offices = offices
        self.tokens = tokens
        self.revocations = revocations
        self.legal = legal or LegalClockPolicy()
        """When the office is alerted that a request's legal deadline comes close."""

    # --- who calls -----------------------------------------------------------------------

    async def issue_token(self, client_id: str, secret: str, scope: str | None) -> Token:
        """A bearer token for one office, to a client that proves its secret (OAuth 2.0
        client credentials); `access.Refused` with the OAuth error code otherwise."""
        client = await self.db.read(lambda s: access.authenticate(s, client_id, secret))
        office_id = access.office_for(client, scope)
        issued, lifetime = self.tokens.issue(client.client_id, office_id)
        return Token(issued, lifetime, office_id)

    async def caller(self, token: str) -> Office:
        """The office a bearer token acts for: `access.Refused` for a token that is forged,
        expired or of a revoked client; `Forbidden` for an office not served here."""
        claims = self.tokens.check(token)
        if await self.revocations.is_revoked(claims.client_id):
            raise access.Refused("invalid_token", f"client {claims.client_id} is revoked")
        office = self.offices.get(claims.office)
        if office is None:
            raise Forbidden(f"office {claims.office!r} is not served by this intake")
        return office

    # --- requests and consents -----------------------------------------------------------

    async def record_request(self, office: Office, body: RequestCreate) -> RequestPublic:
        """Record a request with its consent, once the directory knows its place and the
        agencies its consent names (`admission.Inadmissible` otherwise, nothing written)."""
        deadline = None
        if (given := body.legal_deadline) is not None:
            deadline = admission.legal_deadline(
                given.kind, given.land, datetime.now(UTC), given.delivered_on, given.ends_on
            )
        kinds_named = any(r.agency_id is None for r in body.consent.recipients)
        admission.auto_reoffer(body.auto_reoffer, deadline is not None, kinds_named)
        warnings = await self._admit(body)
        row, consent_id = await self.db.run(
            lambda s: commands.record_request(office, s, body, deadline)
        )
        return RequestPublic(
            request_id=row.id,
            consent_id=consent_id,
            needs=body.needs,
            urgency=row.urgency,
            recorded_at=row.recorded_at,
            warnings=[
                Refusal(code=w.code, field=".".join(map(str, w.loc)), detail=w.message)
                for w in warnings
            ],
        )

    async def _admit(self, body: RequestCreate) -> list[admission.Problem]:
        """The directory's word on the place and the named agencies; a directory that does
        not answer does not stop the counsellor recording (a warning says what went
        unchecked; suggestions and sending ask the directory again)."""
        try:
            place = await self.directory.place(
                CheckPlace(municipality=body.municipality, postcode=body.postcode)
            )
            unknown = [
                (index, recipient.agency_id)
                for index, recipient in enumerate(body.consent.recipients)
                if recipient.agency_id is not None
                and await self.directory.lookup(recipient.agency_id) is None
            ]
        except DirectoryUnavailable:
            return [admission.UNCHECKED]
        return admission.admit(body.municipality, body.postcode, place, unknown)

    async def request(self, office: Office, request_id: str) -> RequestDetail:
        """A request with its person's data (for its office only) and its consent."""
        now = datetime.now(UTC)
        found = await self.db.read(
            lambda s: views.request_detail(office, s, request_id, self.legal, now)
        )
        return RequestDetail.model_validate(found)

    async def suggestions(
        self, office: Office, request_id: str, need: Need | None = None
    ) -> SuggestionsPublic:
        """The directory's candidates for each need of the request (or `need`), each marked
        whether the consent covers it, and the agencies ruled out with their reasons."""

        def read(s: Session) -> tuple[case.Request, set[str]]:
            sent = views.referrals_of(office, s, request_id)
            return views.load_request(office, s, request_id), {r.agency_id for r in sent}

        request, tried = await self.db.read(read)
        person, terms, now = request.person, request.terms, datetime.now(UTC)
        out: list[Suggestion] = []
        excluded: list[Excluded] = []
        bridges: list[Suggestion] = []

        def suggestion(n: Need, c: Candidate) -> Suggestion:
            refused = case.why_not_sendable(request, c.agency, now)
            return Suggestion(
                need=n,
                candidate=c,
                consent_covers=covers_recipient(terms, c.agency.agency_id, c.agency.kind),
                sendable=refused is None,
                not_sendable=None
                if refused is None
                else Refusal(code=refused.code, detail=str(refused)),
            )

        for n in [need] if need else person.needs:
            answer = await self.directory.resolve(_query(n, request))
            out += [suggestion(n, c) for c in answer.candidates]
            excluded += answer.excluded
            bridges += [
                suggestion(n, b.candidate).model_copy(
                    update={"interpreter": suggestion(Need.INTERPRETING, b.interpreter)}
                )
                for b in answer.bridges
            ]
        return SuggestionsPublic(
            suggestions=out,
            excluded=excluded,
            bridges=bridges,
            next_to_try=[a.agency_id for a in case.next_to_try(out, tried)],
        )

    async def receipt(self, office: Office, consent_id: str, *, named: bool = True) -> Receipt:
        """A consent's terms, for the person's receipt, when it was withdrawn, and (`named`)
        the names of the agencies it shares with, as the directory gives them."""
        terms, withdrawn_at = await self.db.read(
            lambda s: views.load_consent(office, s, consent_id)
        )
        names = await self.agency_names(terms) if named else {}
        return Receipt(terms, withdrawn_at, names)

    async def agency_names(self, terms: ConsentTerms) -> dict[str, str]:
        """The names of the agencies a consent names by id, as the directory gives them, so
        that the person reads names, not ids; an agency the directory does not answer for
        (unknown, or the directory down) keeps its id."""
        names: dict[str, str] = {}
        for agency_id in {r.agency_id for r in terms.recipients if r.agency_id}:
            try:
                card = await self.directory.lookup(agency_id)
            except DirectoryUnavailable:
                return names
            if card is not None:
                names[agency_id] = card.name
        return names

    async def withdraw(self, office: Office, consent_id: str) -> WithdrawalPublic:
        """Withdraw a consent: open referrals are cancelled, every agency that received data
        is asked to delete it, and the person's data is erased unless another consent stands."""
        done = await self.db.run(lambda s: commands.withdraw_consent(office, s, consent_id))
        assert done.consent.withdrawn_at is not None
        return WithdrawalPublic(
            consent_id=consent_id,
            request_id=done.consent.request_id,
            withdrawn_at=as_utc(done.consent.withdrawn_at),
            person_data_erased=done.person_data_erased,
            referrals=[public(office, v) for v in done.referrals],
        )

    # --- the person's own page ------------------------------------------------------------

    async def issue_person_link(
        self, office: Office, consent_id: str, language: PersonLanguage
    ) -> PersonLinkIssued:
        """A new link to the person's page for one of the office's consents; an earlier one
        stops working (`person.py` says why the token is shown only now)."""
        issued = await self.db.run(lambda s: person.issue(office, s, consent_id, language))
        return PersonLinkIssued(
            consent_id=consent_id,
            language=language,
            token=issued.token,
            issued_at=issued.link.issued_at,
        )

    async def person_page(self, token: str) -> PersonPage:
        """The person's page their link opens (`person.UnknownLink` for any other token)."""

        def read(s: Session) -> person.Page:
            link = person.find(s, token)
            return person.page(self._office_of(link), s, link)

        found = await self.db.read(read)
        names = await self.agency_names(found.terms)
        return PersonPage(
            consent_id=found.link.consent_id,
            language=PersonLanguage(found.link.language),
            terms=found.terms,
            withdrawn_at=found.withdrawn_at,
            recipients=[
                PersonRecipient(
                    agency_id=r.agency_id,
                    agency_name=names.get(r.agency_id or ""),
                    kind=r.kind,
                    categories=sorted(receipt.categories_for(found.terms, r)),
                )
                for r in found.terms.recipients
            ],
            referrals=[
                PersonReferral(
                    agency_id=r.agency_id,
                    agency_name=r.agency_name,
                    status=ReferralStatus(r.status),
                    deletion=r.deletion,
                    updated_at=as_utc(r.updated_at),
                )
                for r in found.referrals
            ],
        )

    async def withdraw_by_person(self, token: str) -> PersonPage:
        """The person withdraws their consent on their page: exactly what the office's
        withdrawal does, recorded as theirs. Withdrawing again changes nothing."""

        def withdraw(s: Session) -> None:
            link = person.find(s, token)
            commands.withdraw_consent(
                self._office_of(link), s, link.consent_id, by=WithdrawnBy.PERSON
            )

        await self.db.run(withdraw)
        return await self.person_page(token)

    async def person_data(self, token: str) -> PersonData:
        """Everything intake holds about the person for the request of their link."""

        def export(s: Session) -> PersonData:
            link = person.find(s, token)
            office = self._office_of(link)
            found = views.request_detail(office, s, link.request_id, self.legal, datetime.now(UTC))
            detail = RequestDetail.model_validate(found)
            terms, withdrawn_at = views.load_consent(office, s, link.consent_id)
            referrals = views.referrals_of(office, s, link.request_id)
            return PersonData(
                exported_at=datetime.now(UTC),
                language=PersonLanguage(link.language),
                request=detail,
                consent=receipt.receipt_json(terms, withdrawn_at),
                referrals=[public(office, r, views.trail(s, r.id)) for r in referrals],
            )

        data = await self.db.read(export)
        if data.request.municipality:
            try:
                place = await self.directory.place(
                    CheckPlace(municipality=data.request.municipality)
                )
            except DirectoryUnavailable:  # the key alone, then
                return data
            data.municipality_name = place.municipality_name
        return data

    def _office_of(self, link: PersonLink) -> Office:
        """The office a link was issued by; a link of an office no longer served here opens
        nothing."""
        office = self.offices.get(link.office_id)
        if office is None:
            raise person.UnknownLink("this link opens no page")
        return office

    # --- referrals -----------------------------------------------------------------------

    async def send_referral(
        self, office: Office, request_id: str, agency_id: str
    ) -> tuple[ReferralPublic, bool]:
        """Offer the request to one agency; (the referral, whether it is new). Sending to an
        agency that already has an open referral of the request returns that one."""
        await self.db.read(lambda s: views.readable_request(office, s, request_id))
        agency = await self.directory.lookup(agency_id)
        if agency is None:
            raise UnknownAgency(f"unknown agency {agency_id!r}: not in the directory")
        view, created = await self.db.run(
            lambda s: commands.request_referral(office, s, request_id, agency)
        )
        return public(office, view), created

    async def send_plan(self, office: Office, request_id: str, agency_ids: list[str]) -> PlanPublic:
        """Offer the request to several agencies as one plan, all or none."""
        await self.db.read(lambda s: views.readable_request(office, s, request_id))
        agencies = []
        for agency_id in agency_ids:
            agency = await self.directory.lookup(agency_id)
            if agency is None:
                raise UnknownAgency(f"unknown agency {agency_id!r}: not in the directory")
            agencies.append(agency)
        plan, parts = await self.db.run(
            lambda s: commands.request_plan(office, s, request_id, agencies)
        )
        return plan_public(office, plan, parts)

    async def follow_up(self) -> int:
        """Decide what agencies and alerts left for intake: forwards to send or refuse,
        urgent alerts to re-offer, requests whose unmet needs to record; how many."""
        decided = await self.forward_pending() + await self.reoffer_pending()
        return decided + await self.unmet_pending()

    async def unmet_pending(self) -> int:
        """Record the unmet needs of every request marked for it (unmet.py); how many
        requests were checked. Without the directory, those at recording wait for it."""
        checked = 0
        for request_id, office_id in await self.db.read(unmet.pending):
            found: dict[Need, Suggestions] = {}
            opened = await self._opened(office_id, request_id)
            if opened is not None:
                for need in opened.person.needs:
                    found[need] = await self.directory.resolve(_query(need, opened))
            person = opened.person if opened is not None else None  # opened once, here
            await self.db.run(
                partial(unmet.record, request_id=request_id, person=person, found=found)
            )
            checked += 1
        return checked

    async def reoffer_pending(self) -> int:
        """Offer the next agency on every urgent alert of a request that allows it
        (reoffer.py); how many alerts were decided."""
        decided = 0
        for reoffer_id, request_id, office_id, alerted in await self.db.read(reoffer.pending):
            office = self.offices.get(office_id)
            agency = await self.directory.lookup(alerted)
            kind = agency.kind if agency is not None else None
            suggested: list[AgencyCard] = []
            if office is not None and kind is not None:
                try:
                    found = await self.suggestions(office, request_id)
                except PersonErased:
                    found = SuggestionsPublic(suggestions=[], excluded=[])
                suggested = case.next_to_try(found.suggestions, set(), kind, most=20)
            decide = partial(
                reoffer.decide, self.offices, reoffer_id=reoffer_id, kind=kind, suggested=suggested
            )
            decided += await self._decided(decide)
        return decided

    async def _opened(self, office_id: str, request_id: str) -> case.Request | None:
        """A request with its person's data opened, if its office is served here and the
        data is not erased."""
        office = self.offices.get(office_id)
        if office is None:
            return None
        try:
            return await self.db.read(partial(views.load_request, office, request_id=request_id))
        except PersonErased:
            return None

    async def forward_pending(self) -> int:
        """Send, or refuse, every forward an agency asked for that is not yet decided
        (forwarding.py); how many were decided. Another instance deciding the same forward
        first is no error: the new referral's id is the same, the second attempt is dropped."""
        decided = 0
        for forward_id in await self.db.read(forwarding.pending):
            target = await self.db.read(partial(forwarding.target_of, forward_id=forward_id))
            if target is None:
                continue
            agency = await self.directory.lookup(target)
            decide = partial(forwarding.decide, self.offices, forward_id=forward_id, agency=agency)
            decided += await self._decided(decide)
        return decided

    async def _decided(self, decide: Callable[[Session], object]) -> bool:
        """Whether this instance made the decision: another instance making it first is no
        error (the new referral's id is the same, so the second attempt is dropped)."""
        try:
            await self.db.run(decide)
        except IntegrityError:
            return False
        return True

    async def plans_of(self, office: Office, request_id: str) -> list[PlanPublic]:
        found = await self.db.read(lambda s: views.plans_of(office, s, request_id))
        return [plan_public(office, plan, parts) for plan, parts in found]

    async def plan(self, office: Office, plan_id: str) -> PlanPublic:
        plan, parts = await self.db.read(lambda s: views.load_plan(s, office.office_id, plan_id))
        return plan_public(office, plan, parts)

    async def cancel_plan(self, office: Office, plan_id: str, reason: ReasonCode) -> PlanPublic:
        """Ask the referral service to withdraw every open referral of the plan."""
        plan, parts = await self.db.run(
            lambda s: commands.request_plan_cancellation(office, s, plan_id, reason)
        )
        return plan_public(office, plan, parts)

    async def referrals_of(self, office: Office, request_id: str) -> list[ReferralPublic]:
        found = await self.db.read(lambda s: views.referrals_of(office, s, request_id))
        return [public(office, v) for v in found]

    async def referrals(
        self,
        office: Office,
        status: ReferralStatus | None = None,
        *,
        overdue: bool = False,
        limit: int = 100,
    ) -> list[ReferralPublic]:
        """The office's referrals, newest first; `overdue` keeps only those overdue."""
        found = await self.db.read(
            lambda s: views.office_referrals(office, s, status, overdue=overdue, limit=limit)
        )
        return [public(office, v, client_reference=reference) for v, reference in found]

    async def referral(self, office: Office, referral_id: str) -> ReferralPublic:
        """One referral of the office, with its whole trail."""

        def query(s: Session) -> ReferralPublic:
            view = views.load_referral(s, office.office_id, referral_id)
            return public(office, view, views.trail(s, referral_id))

        return await self.db.read(query)

    async def cancel(
        self, office: Office, referral_id: str, reason: ReasonCode, comment: str | None = None
    ) -> tuple[ReferralPublic, bool]:
        """Ask the referral service to withdraw a referral the office sent; (the referral,
        whether anything new was asked: a repeated cancel returns the referral as it is).
        A comment is sealed to the agency first (its key from the directory)."""
        note = None
        if comment is not None:
            view = await self.db.read(
                lambda s: views.load_referral(s, office.office_id, referral_id)
            )
            agency = await self.directory.lookup(view.agency_id)
            if agency is None:
                raise UnknownAgency(f"agency {view.agency_id!r} is no longer in the directory")
            note = case.seal_comment(comment, referral_id, agency, office.signer, office.office_id)
        view, asked = await self.db.run(
            lambda s: commands.request_cancellation(office, s, referral_id, reason, note)
        )
        return public(office, view), asked


def _query(need: Need, request: case.Request) -> ResolveAgencies:
    """The directory's question for one need of a request."""
    person = request.person
    return ResolveAgencies(
        need=need,
        languages=tuple(person.languages),
        municipality=person.municipality,
        postcode=person.postcode,
        age=person.age,
        urgency=request.urgency,
    )


def plan_public(office: Office, plan: PlanRow, parts: list[ReferralView]) -> PlanPublic:
    return PlanPublic(
        plan_id=plan.id,
        request_id=plan.request_id,
        created_at=as_utc(plan.created_at),
        state=case.plan_state(view.status for view in parts),
        referrals=[public(office, view) for view in parts],
    )


def public(
    office: Office,
    view: ReferralView,
    trail: list[TrailEntry] | None = None,
    client_reference: str | None = None,
) -> ReferralPublic:
    """A referral as the office's API shows it; an agency's comment opened with the office's
    key for this answer only (it rests sealed)."""

    def comment(stored: dict[str, object] | None) -> CommentPublic | None:
        opened = case.open_comment(stored, view.id, office.sealing, office.office_id)
        return CommentPublic(text=opened.text, unreadable=opened.unreadable) if opened else None

    return ReferralPublic(
        referral_id=view.id,
        request_id=view.request_id,
        client_reference=client_reference,
        created_at=as_utc(view.created_at),
        updated_at=as_utc(view.updated_at),
        agency_id=view.agency_id,
        agency_name=view.agency_name,
        status=view.status,
        reason=view.reason,
        outcome=view.outcome,
        comment=comment(view.comment),
        problem=view.problem,
        overdue=view.overdue,
        deletion=view.deletion,
        legal_deadline_ends_on=view.deadline_on,
        forwarded_from=view.forwarded_from,
        forwarded_to=view.forwarded_to,
        trail=[
            TrailItem(
                kind=t.kind,
                status=t.status,
                version=t.version,
                reason=t.reason,
                outcome=t.outcome,
                comment=comment(t.comment),
                occurred_at=as_utc(t.occurred_at),
            )
            for t in trail or []
        ],
    )
