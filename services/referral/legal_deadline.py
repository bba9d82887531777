"""Legal deadlines on a request, and the referral clock that counts back from them.

The deadline, from the day the decision was delivered (German procedural law):
  start    the day of delivery is not counted (§187(1) BGB)
  weeks    n weeks end on the same weekday n weeks later (§188(2) BGB): an asylum lawsuit
           2 weeks (§74(1) AsylG), 1 week when the application was rejected as manifestly
           unfounded or inadmissible (§74(1) with §36(3) AsylG)
  months   n months end on the day with the same number n months later, or on that month's
           last day when it has no such day (§188(2), (3) BGB): an objection 1 month
           (§70 VwGO); delivered 31 January, it ends 28 (in leap years 29) February
  roll     ending on a Saturday, Sunday or public holiday of the Land, it ends on the next
           working day instead (§222(2) ZPO, §57(2) VwGO)
  end      at 24:00 Europe/Berlin of that day (`LegalDeadline.ends_at`)
Public holidays are the `holidays` package's public holidays of the whole Land. Those of
some municipalities only (Corpus Christi in parts of Saxony and Thuringia, Assumption in
Catholic Bavaria) are left out: the deadline may come out a day early, never a day late.
A deadline given directly (kind `other`, or any kind when the delivery date is unknown) is
taken as given, not rolled: the counsellor read it from the decision.

The clock, for an offer sent at `sent_at`. Working time is the policy's hours (08:00 to
16:00 by default) in Europe/Berlin on working days, i.e. neither weekend nor public holiday
of the Land. Always sent_at <= remind_at <= escalate_at <= expire_at, and ack_due <= expire_at:
  ack_due      `acknowledge_within` of working time after sending
  escalate_at  the office is alerted as urgent at the start of the working day from which
               exactly `alert_margin` working days remain, the deadline day counted; if the
               offer is sent at or after that moment, at once (`urgent_from_start`)
  remind_at    the agency is reminded halfway, in working time, from sending to escalation,
               but not before ack_due (and not after escalation: equal means no own reminder)
  expire_at    the unanswered offer lapses at the end of working time on the last working day
               up to the deadline day; sent later than that, at the deadline's end
Given the ordinary clock (`DeadlinePolicy`), each of remind, escalate and expire comes no
later than it would there: a legal deadline only ever tightens the clock.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from holidays.countries.germany import Germany

from schemas.vocabulary import DeadlineKind
from services.referral.domain import DeadlinePolicy, ReferralRuleViolation

BERLIN = ZoneInfo("Europe/Berlin")
LAENDER: dict[str, str] = dict(
    sorted((code, name) for name, code in Germany.subdivisions_aliases.items())
)
"""The 16 Länder, ISO 3166-2 code (without DE-) to name, as the holidays package knows them
(it knows the city of Augsburg too, whose holidays are not a Land's)."""


@dataclass(frozen=True, slots=True)
class Period:
    """A deadline's length in weeks or in months."""

    weeks: int = 0
    months: int = 0

    def last_day(self, delivered_on: date) -> date:
        """The day the period ends, before any roll to a working day (§§187(1), 188 BGB)."""
        month_index = delivered_on.year * 12 + delivered_on.month - 1 + self.months
        year, month = divmod(month_index, 12)
        day = min(delivered_on.day, calendar.monthrange(year, month + 1)[1])
        return date(year, month + 1, day) + timedelta(weeks=self.weeks)


PERIODS: dict[DeadlineKind, Period] = {
    DeadlineKind.ASYLUM_LAWSUIT_2W: Period(weeks=2),
    DeadlineKind.ASYLUM_LAWSUIT_1W: Period(weeks=1),
    DeadlineKind.OBJECTION_1M: Period(months=1),
}


class LegalDeadlineRefused(ReferralRuleViolation):
    """A legal deadline that cannot be recorded; `code` is stable, the message is for people."""

    code = "legal-deadline.refused"


class UnknownLand(LegalDeadlineRefused):
    """The place is not one of the 16 Länder."""

    code = "legal-deadline.unknown-land"

    def __init__(self, land: str) -> None:
        known = ", ".join(sorted(LAENDER))
        super().__init__(f"{land!r} is no German Land; give its ISO 3166-2 code: {known}")


class DeadlineDateMissing(LegalDeadlineRefused):
    """Neither a delivery date the law can count from nor the deadline itself was given."""

    code = "legal-deadline.date-missing"

    def __init__(self, kind: DeadlineKind) -> None:
        needs = "the deadline date" if kind not in PERIODS else "the delivery or deadline date"
        super().__init__(f"a deadline of kind '{kind}' needs {needs}")


class DeliveredInFuture(LegalDeadlineRefused):
    """The decision's delivery date lies after today."""

    code = "legal-deadline.delivered-in-future"

    def __init__(self, delivered_on: date, today: date) -> None:
        super().__init__(
            f"the decision cannot have been delivered on {delivered_on}: today is {today}"
        )


class DeadlineBeforeDelivery(LegalDeadlineRefused):
    """A deadline given directly lies before the delivery it runs from."""

    code = "legal-deadline.before-delivery"

    def __init__(self, ends_on: date, delivered_on: date) -> None:
        super().__init__(f"the deadline {ends_on} lies before the delivery on {delivered_on}")


class DeadlineDisagrees(LegalDeadlineRefused):
    """Both dates were given and the law counts another deadline from the delivery."""

    code = "legal-deadline.disagrees"

    def __init__(self, kind: DeadlineKind, delivered_on: date, given: date, law: date) -> None:
        super().__init__(
            f"delivered on {delivered_on}, the {kind} deadline ends on {law}, not on {given}"
        )


class DeadlinePassed(LegalDeadlineRefused):
    """The deadline ended before today, or before the referral is sent."""

    code = "legal-deadline.passed"

    def __init__(self, ends_on: date, now: date | datetime) -> None:
        super().__init__(f"the deadline ended with {ends_on} (24:00 Europe/Berlin); now is {now}")


@cache
def _public_holidays(land: str, year: int) -> frozenset[date]:
    """The Land's public holidays of one year, as an immutable set. A `holidays` object fills
    in each year when first asked, in shared state, so threads asking at once could lose a
    holiday for good; each year here is made by its own object and then only read."""
    return frozenset(holidays.country_holidays("DE", subdiv=land, years=year))


def is_working_day(day: date, land: str) -> bool:
    """Neither Saturday, Sunday nor a public holiday of the whole Land."""
    return day.weekday() < 5 and day not in _public_holidays(land, day.year)


def berlin_date(moment: datetime) -> date:
    """The calendar day in Germany at an aware moment (the `today` deadlines are checked on)."""
    return moment.astimezone(BERLIN).date()


@dataclass(frozen=True, slots=True)
class LegalDeadline:
    """A request's legal deadline: it ends at the end of `ends_on` at the place `land`."""

    kind: DeadlineKind
    land: str
    ends_on: date
    delivered_on: date | None = None
    period_ends_on: date | None = None  # before the roll to a working day; None if given

    @property
    def ends_at(self) -> datetime:
        """24:00 of `ends_on` in Europe/Berlin, the first moment that is too late."""
        return datetime.combine(self.ends_on + timedelta(days=1), time(), BERLIN)


def legal_deadline(
    kind: DeadlineKind,
    land: str,
    today: date,
    delivered_on: date | None = None,
    ends_on: date | None = None,
) -> LegalDeadline:
    """Count a deadline from its delivery, or take it as given; refuse what cannot be."""
    place = land.upper().removeprefix("DE-")
    if place not in LAENDER:
        raise UnknownLand(land)
    if delivered_on is not None and delivered_on > today:
        raise DeliveredInFuture(delivered_on, today)
    period = PERIODS.get(kind)
    last_day = None
    if period is not None and delivered_on is not None:
        last_day = period.last_day(delivered_on)
        law = last_day
        while not is_working_day(law, place):
            law += timedelta(days=1)
        if ends_on not in (None, law):
            raise DeadlineDisagrees(kind, delivered_on, ends_on, law)
        ends_on = law
    if ends_on is None:
        raise DeadlineDateMissing(kind)
    if delivered_on is not None and ends_on < delivered_on:
        raise DeadlineBeforeDelivery(ends_on, delivered_on)
    if ends_on < today:
        raise DeadlinePassed(ends_on, today)
    return LegalDeadline(kind, place, ends_on, delivered_on, last_day)


@dataclass(frozen=True, slots=True)
class LegalClockPolicy:
    """How fast an offer under a legal deadline must be answered, in working time."""

    acknowledge_within: timedelta = timedelta(hours=4)
    alert_margin: int = 3  # working days left when the office is alerted
    day_starts: time = time(8)
    day_ends: time = time(16)

    def __post_init__(self) -> None:
        if self.acknowledge_within <= timedelta() or self.alert_margin < 1:
            raise ValueError("acknowledge_within and alert_margin must be positive")
        if not self.day_starts < self.day_ends:
            raise ValueError("the working day must start before it ends")


@dataclass(frozen=True, slots=True)
class LegalClock:
    """When an offer under a legal deadline is due, reminded, escalated and expired (UTC)."""

    ack_due: datetime
    remind_at: datetime
    escalate_at: datetime
    expire_at: datetime
    urgent_from_start: bool
    escalation_urgent: bool = False
    """The escalation is the margin's alert (or the offer was sent after it), not an ordinary
    escalation that the ordinary clock places earlier."""


def count_back(
    deadline: LegalDeadline,
    sent_at: datetime,
    policy: LegalClockPolicy,
    ordinary: DeadlinePolicy | None = None,
) -> LegalClock:
    """Place the offer's clock before the deadline (see the module docstring)."""
    if sent_at.utcoffset() is None:
        raise ValueError("sent_at must be timezone-aware")
    sent_at = sent_at.astimezone(UTC)
    hours = _WorkingHours(deadline.land, policy)
    end = deadline.ends_at.astimezone(UTC)
    if sent_at >= end:
        raise DeadlinePassed(deadline.ends_on, sent_at)
    close = hours.window(hours.working_day_back(deadline.ends_on, 1))[1]
    margin = alert_at(deadline, policy)
    urgent = sent_at >= margin
    if ordinary is None:
        remind_by = escalate_by = expire_by = end
    else:
        remind_by = sent_at + ordinary.remind_after
        escalate_by = sent_at + ordinary.escalate_after
        expire_by = sent_at + ordinary.expire_after
    expire_at = min(close if close > sent_at else end, expire_by)
    escalate_at = sent_at if urgent else min(margin, expire_at, escalate_by)
    ack_due = min(hours.add(sent_at, policy.acknowledge_within), expire_at)
    halfway = hours.add(sent_at, hours.between(sent_at, escalate_at) / 2)
    remind_at = min(max(ack_due, halfway), escalate_at, remind_by)
    return LegalClock(
        ack_due, remind_at, escalate_at, expire_at, urgent, urgent or escalate_at == margin
    )


def alert_at(deadline: LegalDeadline, policy: LegalClockPolicy) -> datetime:
    """When the office is alerted that the deadline comes close (UTC): the start of working
    time on the day from which `alert_margin` working days remain, the deadline day counted.
    An offer unacknowledged by then is escalated; a request no agency has accepted by then
    is shown as urgent (`needs_another_agency`)."""
    hours = _WorkingHours(deadline.land, policy)
    return hours.window(hours.working_day_back(deadline.ends_on, policy.alert_margin))[0]


def needs_another_agency(
    deadline: LegalDeadline, policy: LegalClockPolicy, now: datetime, accepted: bool
) -> bool:
    """Whether the office should send the request to another agency now: the alert has come,
    the deadline has not passed, and no agency has accepted the request."""
    return not accepted and alert_at(deadline, policy) <= now < deadline.ends_at


@dataclass(frozen=True, slots=True)
class _WorkingHours:
    land: str
    policy: LegalClockPolicy

    def window(self, day: date) -> tuple[datetime, datetime]:
        starts, ends = (
            datetime.combine(day, t, BERLIN) for t in (self.policy.day_starts, self.policy.day_ends)
        )
        return starts.astimezone(UTC), ends.astimezone(UTC)

    def working_day_back(self, day: date, nth: int) -> date:
        """The nth working day counted back from `day`, `day` itself counted."""
        while True:
            if is_working_day(day, self.land):
                nth -= 1
                if nth == 0:
                    return day
            day -= timedelta(days=1)

    def windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = berlin_date(since)
        while True:
            if is_working_day(day, self.land):
                yield self.window(day)
            day += timedelta(days=1)

    def add(self, since: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of working time after `since`."""
        for starts, ends in self.windows(since):
            if ends <= since:
                continue
            starts = max(starts, since)
            if amount <= ends - starts:
                return starts + amount
            amount -= ends - starts
        raise AssertionError("unreachable: working days never run out")

    def between(self, since: datetime, until: datetime) -> timedelta:
        """The working time from `since` to `until`."""
        total = timedelta()
        for starts, ends in self.windows(since):
            if starts >= until:
                return total
            total += max(timedelta(), min(ends, until) - max(starts, since))
        raise AssertionError("unreachable: working days never run out")
