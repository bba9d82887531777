"""Unmet needs (issue 21, part 1): intake records, for the monitoring report, each need of a
request that found no agency when it was recorded, and each need of a request whose every
referral ended without an agency helping; once per stage, and with no personal data. Intake
and the directory's answers in this process."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralCancelled, ReferralRejected
from schemas.queries import AgencyCard, CheckPlace, PlaceCheck, ResolveAgencies, Suggestions
from schemas.vocabulary import ReasonCode, ReferralStatus
from services.intake.application import Directory
from tests.support.intake import IntakeApp
from wegweiser.demo import sample_request

AGENCY = "lup-mbe-ludwigslust"


async def recorded(office: httpx.AsyncClient, needs: list[str], reference: str) -> str:
    body = sample_request(client_reference=reference, needs=needs, age=19)
    made = await office.post("/requests", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["request_id"])


def unmet(intake: IntakeApp) -> list[dict]:
    return [event["data"] for event in intake.staged_events(subjects.NEED_UNMET)]


async def test_a_need_no_agency_fits_is_recorded_once_with_metadata_only(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    request_id = await recorded(office, ["language-course", "migration-counselling"], "gap-1")
    assert await intake.intake.unmet_pending() == 1
    [event] = unmet(intake)
    assert event["request_id"] == request_id and event["stage"] == "none-fitting"
    assert event["need"] == "language-course"  # migration counselling found agencies
    assert (event["county"], event["municipality"]) == ("13076", "13076090")
    assert event["languages"] == ["ar", "de"] and event["age_band"] == "18-26"
    assert {e["code"] for e in event["excluded"]} <= {
        "area.outside", "language.not-offered", "age.outside-limits", "capacity.none", "inactive",
    }  # fmt: skip
    assert sum(e["agencies"] for e in event["excluded"]) >= 1  # why the two course providers
    said = str(intake.staged_events(subjects.NEED_UNMET))
    assert "Demo Client" not in said and "+49" not in said and "residence" not in said
    assert await intake.intake.unmet_pending() == 0  # checked: nothing twice


class Listing:
    """The directory, asked to list `limit` candidates and exclusions at most; its answers."""

    def __init__(self, directory: Directory, limit: int) -> None:
        self.directory, self.limit = directory, limit
        self.answers: list[Suggestions] = []

    async def resolve(self, query: ResolveAgencies) -> Suggestions:
        answer = await self.directory.resolve(query.model_copy(update={"limit": self.limit}))
        self.answers.append(answer)
        return answer

    async def lookup(self, agency_id: str) -> AgencyCard | None:
        return await self.directory.lookup(agency_id)

    async def place(self, query: CheckPlace) -> PlaceCheck:
        return await self.directory.place(query)


async def test_the_agencies_ruled_out_are_counted_all_though_the_answer_lists_fewer(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    await recorded(office, ["language-course"], "gap-listed-all")
    await intake.intake.unmet_pending()
    listing_one = Listing(intake.intake.directory, limit=1)
    intake.intake.directory = listing_one
    await recorded(office, ["language-course"], "gap-listed-one")
    await intake.intake.unmet_pending()
    every, one = unmet(intake)
    [answer] = listing_one.answers
    assert answer.excluded_total is not None and answer.excluded_total > len(answer.excluded) == 1
    assert one["excluded"] == every["excluded"]
    assert sum(e["agencies"] for e in one["excluded"]) >= answer.excluded_total


async def sent_and_ended(
    intake: IntakeApp, office: httpx.AsyncClient, reference: str, how: type, reason: ReasonCode
) -> str:
    """A request for migration counselling (which finds agencies), sent to one agency, whose
    referral then ends `how`, for `reason`; the request's id."""
    request_id = await recorded(office, ["migration-counselling"], reference)
    await intake.intake.unmet_pending()  # at recording: found agencies, nothing unmet
    assert unmet(intake) == []
    sent = await office.post(f"/requests/{request_id}/referrals", json={"agency_id": AGENCY})
    referral_id = sent.json()["referral_id"]
    ended = how(
        referral_id=referral_id,
        request_id=request_id,
        agency_id=AGENCY,
        status=ReferralStatus.REJECTED if how is ReferralRejected else ReferralStatus.CANCELLED,
        version=2,
        occurred_at=datetime.now(UTC),
        reason=reason,
    )
    kind = "rejected" if how is ReferralRejected else "cancelled"
    intake.project(
        subjects.referral_event(AGENCY, kind),
        new_event(ended, source="/wegweiser/referral", subject=referral_id),
    )
    return request_id


async def test_a_request_every_agency_declined_counts_its_needs_as_unmet(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    await sent_and_ended(intake, office, "gap-2", ReferralRejected, ReasonCode.NO_CAPACITY)
    assert await intake.intake.unmet_pending() == 1
    [event] = unmet(intake)
    assert (event["need"], event["stage"]) == ("migration-counselling", "none-took-it")


async def test_a_referral_withdrawn_because_the_need_was_met_is_no_gap(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    await sent_and_ended(intake, office, "gap-3", ReferralCancelled, ReasonCode.NEED_MET)
    assert await intake.intake.unmet_pending() == 0
    assert unmet(intake) == []
