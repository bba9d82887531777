"""Legal deadlines by German procedural law, and the referral clock counted back from them.

Every expected date below was checked by hand against a calendar and the `holidays`
package's public holidays of the Land; none is computed by the code under test.
"""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.vocabulary import DeadlineKind
from services.referral.domain import DeadlinePolicy, ReferralRuleViolation
from services.referral.legal_deadline import (
    LAENDER,
    PERIODS,
    DeadlineDateMissing,
    DeadlineDisagrees,
    DeadlinePassed,
    LegalClock,
    LegalClockPolicy,
    LegalDeadline,
    LegalDeadlineRefused,
    UnknownLand,
    berlin_date,
    count_back,
    is_working_day,
    legal_deadline,
)

K = DeadlineKind
TODAY = date(2026, 1, 1)
POLICY = LegalClockPolicy()
W2, W1, M1 = K.ASYLUM_LAWSUIT_2W, K.ASYLUM_LAWSUIT_1W, K.OBJECTION_1M

DEADLINES = [
    # kind, Land, delivered on, the deadline ends on
    pytest.param(W2, "MV", "2026-11-02", "2026-11-16", id="2w-mon-to-mon"),
    pytest.param(W1, "MV", "2026-11-05", "2026-11-12", id="1w-thu-to-thu"),
    pytest.param(M1, "MV", "2026-11-02", "2026-12-02", id="1m-same-number"),
    pytest.param(M1, "MV", "2026-03-31", "2026-04-30", id="1m-31-mar-to-30-apr"),
    pytest.param(M1, "MV", "2026-12-15", "2027-01-15", id="1m-into-next-year"),
    pytest.param(M1, "BY", "2028-01-31", "2028-02-29", id="1m-31-jan-leap-year-29-feb"),
    pytest.param(M1, "BY", "2028-01-30", "2028-02-29", id="1m-30-jan-leap-year-29-feb"),
    pytest.param(M1, "MV", "2028-02-29", "2028-03-29", id="1m-from-29-feb"),
    pytest.param(M1, "MV", "2027-01-31", "2027-03-01", id="1m-31-jan-28-feb-sun-to-mon"),
    pytest.param(M1, "MV", "2026-01-31", "2026-03-02", id="1m-31-jan-28-feb-sat-to-mon"),
    pytest.param(W2, "MV", "2026-11-07", "2026-11-23", id="2w-sat-to-mon"),
    pytest.param(W1, "BY", "2026-11-08", "2026-11-16", id="1w-sun-to-mon"),
    pytest.param(M1, "MV", "2026-10-15", "2026-11-16", id="1m-sun-to-mon"),
    pytest.param(W2, "MV", "2028-10-17", "2028-11-01", id="reformation-day-mv"),
    pytest.param(W2, "SN", "2028-10-17", "2028-11-01", id="reformation-day-sn"),
    pytest.param(W2, "BY", "2028-10-17", "2028-10-31", id="no-reformation-day-by"),
    pytest.param(W2, "BY", "2028-10-18", "2028-11-02", id="all-saints-by"),
    pytest.param(W2, "MV", "2028-10-18", "2028-11-01", id="no-all-saints-mv"),
    pytest.param(W1, "BY", "2026-05-28", "2026-06-05", id="corpus-christi-by"),
    pytest.param(W1, "NW", "2026-05-28", "2026-06-05", id="corpus-christi-nw"),
    pytest.param(W1, "MV", "2026-05-28", "2026-06-04", id="no-corpus-christi-mv"),
    pytest.param(W1, "SN", "2026-05-28", "2026-06-04", id="corpus-christi-sn-local-only"),
    pytest.param(W2, "SN", "2026-11-04", "2026-11-19", id="repentance-day-sn"),
    pytest.param(W2, "MV", "2026-11-04", "2026-11-18", id="no-repentance-day-mv"),
    pytest.param(W1, "MV", "2027-03-01", "2027-03-09", id="womens-day-mv"),
    pytest.param(W1, "BY", "2027-03-01", "2027-03-08", id="no-womens-day-by"),
    pytest.param(W1, "TH", "2027-09-13", "2027-09-21", id="childrens-day-th"),
    pytest.param(W1, "BY", "2027-12-30", "2028-01-07", id="epiphany-by"),
    pytest.param(W1, "MV", "2027-12-30", "2028-01-06", id="no-epiphany-mv"),
    pytest.param(W1, "MV", "2026-03-30", "2026-04-07", id="easter-monday"),
    pytest.param(W2, "BY", "2026-03-20", "2026-04-07", id="good-friday-to-easter-tuesday"),
    pytest.param(W2, "MV", "2026-12-11", "2026-12-28", id="christmas-fri-sat-sun"),
    pytest.param(M1, "MV", "2026-12-01", "2027-01-04", id="new-year-fri-sat-sun"),
    pytest.param(W2, "DE-MV", "2026-12-11", "2026-12-28", id="iso-3166-2-prefix"),
    pytest.param(W1, "by", "2026-05-28", "2026-06-05", id="lower-case"),
]


@pytest.mark.parametrize(("kind", "land", "delivered", "ends"), DEADLINES)
def test_a_deadline_counts_from_the_day_after_delivery_and_ends_on_a_working_day(
    kind, land, delivered, ends
):
    delivered_on = date.fromisoformat(delivered)
    deadline = legal_deadline(kind, land, today=delivered_on, delivered_on=delivered_on)
    assert deadline.ends_on == date.fromisoformat(ends)
    assert deadline.land == land.upper().removeprefix("DE-")


def test_the_deadline_ends_at_midnight_in_berlin_summer_or_winter():
    winter = LegalDeadline(K.OTHER, "MV", date(2026, 11, 16))
    summer = LegalDeadline(K.OTHER, "MV", date(2026, 6, 5))
    assert winter.ends_at == datetime(2026, 11, 16, 23, tzinfo=UTC)
    assert summer.ends_at == datetime(2026, 6, 5, 22, tzinfo=UTC)


def test_a_deadline_ending_today_is_still_open():
    deadline = legal_deadline(W2, "MV", today=date(2026, 11, 2), delivered_on=date(2026, 10, 19))
    assert deadline.ends_on == date(2026, 11, 2)


def test_a_deadline_given_directly_is_taken_as_given_even_on_a_saturday():
    deadline = legal_deadline(K.OTHER, "MV", today=TODAY, ends_on=date(2026, 11, 21))
    assert (deadline.ends_on, deadline.period_ends_on) == (date(2026, 11, 21), None)


def test_a_lawsuit_deadline_may_be_given_without_its_delivery_date():
    deadline = legal_deadline(W1, "BY", today=TODAY, ends_on=date(2026, 6, 5))
    assert deadline.ends_on == date(2026, 6, 5)


def test_both_dates_are_accepted_when_they_agree_with_the_law():
    deadline = legal_deadline(
        W2,
        "MV",
        today=date(2026, 11, 9),
        delivered_on=date(2026, 11, 7),
        ends_on=date(2026, 11, 23),
    )
    assert (deadline.period_ends_on, deadline.ends_on) == (date(2026, 11, 21), date(2026, 11, 23))


def test_the_day_in_germany_is_the_day_in_berlin():
    assert berlin_date(datetime(2026, 11, 1, 23, 30, tzinfo=UTC)) == date(2026, 11, 2)


REFUSALS = [
    # code, kind, Land, today, delivered on, the deadline given
    pytest.param("legal-deadline.unknown-land", W2, "XX", "2026-01-01", "2026-01-01", None,
                 id="unknown-land"),
    pytest.param("legal-deadline.unknown-land", W2, "Augsburg", "2026-01-01", "2026-01-01", None,
                 id="a-city-is-no-land"),
    pytest.param("legal-deadline.date-missing", K.OTHER, "MV", "2026-01-01", "2026-01-01", None,
                 id="other-without-its-date"),
    pytest.param("legal-deadline.date-missing", M1, "MV", "2026-01-01", None, None,
                 id="no-date-at-all"),
    pytest.param("legal-deadline.delivered-in-future", W1, "MV", "2026-11-02", "2026-11-03", None,
                 id="delivered-tomorrow"),
    pytest.param("legal-deadline.passed", W2, "MV", "2026-11-02", "2026-10-01", None,
                 id="computed-deadline-past"),
    pytest.param("legal-deadline.passed", K.OTHER, "MV", "2026-11-02", None, "2026-11-01",
                 id="given-deadline-past"),
    pytest.param("legal-deadline.before-delivery", K.OTHER, "MV", "2026-11-02", "2026-11-02",
                 "2026-10-30", id="other-before-its-delivery"),
    pytest.param("legal-deadline.disagrees", W2, "MV", "2026-11-02", "2026-11-02", "2026-11-17",
                 id="given-and-computed-disagree"),
]  # fmt: skip


def day(iso: str | None) -> date | None:
    return None if iso is None else date.fromisoformat(iso)


@pytest.mark.parametrize(("code", "kind", "land", "today", "delivered", "ends"), REFUSALS)
def test_a_deadline_that_cannot_be_is_refused_with_a_stable_code(
    code, kind, land, today, delivered, ends
):
    with pytest.raises(LegalDeadlineRefused) as caught:
        legal_deadline(kind, land, date.fromisoformat(today), day(delivered), day(ends))
    assert caught.value.code == code
    assert isinstance(caught.value, ReferralRuleViolation)


def test_refusals_say_precisely_what_is_wrong():
    with pytest.raises(
        DeadlineDisagrees,
        match=r"^delivered on 2026-11-02, the asylum-lawsuit-2w deadline ends on 2026-11-16, "
        r"not on 2026-11-17$",
    ):
        legal_deadline(W2, "MV", date(2026, 11, 2), date(2026, 11, 2), date(2026, 11, 17))
    with pytest.raises(
        DeadlineDateMissing, match=r"^a deadline of kind 'other' needs the deadline"
    ):
        legal_deadline(K.OTHER, "MV", TODAY, TODAY)
    with pytest.raises(UnknownLand, match=r"^'XX' is no German Land.*: BB, BE, BW, BY, HB, HE, "):
        legal_deadline(K.OTHER, "XX", TODAY, ends_on=TODAY)


def berlin(local: str) -> datetime:
    """A moment written as Berlin wall time, as the UTC datetime the clock takes and gives."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


CLOCKS = [
    # the deadline day (MV), sent at, urgent from start;
    # then ack_due, remind_at, escalate_at, expire_at; all Berlin wall time, policy 4 h, 3 days
    pytest.param("2026-11-16", "2026-11-04 10:00", False,
                 "2026-11-04 14:00", "2026-11-09 09:00", "2026-11-12 08:00", "2026-11-16 16:00",
                 id="12-days-ahead-over-a-weekend"),
    pytest.param("2026-11-16", "2026-11-07 12:00", False,
                 "2026-11-09 12:00", "2026-11-10 12:00", "2026-11-12 08:00", "2026-11-16 16:00",
                 id="sent-on-saturday-counts-from-monday"),
    pytest.param("2026-04-07", "2026-03-25 13:00", False,
                 "2026-03-26 09:00", "2026-03-27 14:30", "2026-04-01 08:00", "2026-04-07 16:00",
                 id="easter-and-summer-time-inside-the-margin"),
    pytest.param("2026-10-29", "2026-10-22 10:00", False,
                 "2026-10-22 14:00", "2026-10-23 13:00", "2026-10-27 08:00", "2026-10-29 16:00",
                 id="summer-time-ends-on-the-weekend"),
    pytest.param("2027-01-04", "2026-12-24 15:00", False,
                 "2026-12-28 11:00", "2026-12-28 15:30", "2026-12-30 08:00", "2027-01-04 16:00",
                 id="christmas-and-new-year"),
    pytest.param("2026-12-02", "2026-11-03 09:00", False,
                 "2026-11-03 13:00", "2026-11-16 12:30", "2026-11-30 08:00", "2026-12-02 16:00",
                 id="a-month-ahead"),
    pytest.param("2026-11-16", "2026-11-11 16:00", False,
                 "2026-11-12 12:00", "2026-11-12 08:00", "2026-11-12 08:00", "2026-11-16 16:00",
                 id="sent-at-close-before-the-margin-no-own-reminder"),
    pytest.param("2026-11-16", "2026-11-12 08:00", True,
                 "2026-11-12 12:00", "2026-11-12 08:00", "2026-11-12 08:00", "2026-11-16 16:00",
                 id="sent-as-the-margin-begins"),
    pytest.param("2026-11-16", "2026-11-13 11:00", True,
                 "2026-11-13 15:00", "2026-11-13 11:00", "2026-11-13 11:00", "2026-11-16 16:00",
                 id="sent-late-urgent-from-start"),
    pytest.param("2026-11-16", "2026-11-16 18:00", True,
                 "2026-11-17 00:00", "2026-11-16 18:00", "2026-11-16 18:00", "2026-11-17 00:00",
                 id="sent-on-the-evening-of-the-last-day"),
]  # fmt: skip


@pytest.mark.parametrize(("ends", "sent", "urgent", "ack", "remind", "escalate", "expire"), CLOCKS)
def test_the_clock_counts_back_from_the_deadline_in_working_time(
    ends, sent, urgent, ack, remind, escalate, expire
):
    deadline = LegalDeadline(W2, "MV", date.fromisoformat(ends))
    clock = count_back(deadline, berlin(sent), POLICY)
    assert clock == LegalClock(
        berlin(ack), berlin(remind), berlin(escalate), berlin(expire), urgent, True
    )  # without an ordinary clock, every escalation is the margin's alert
    assert clock.escalate_at.tzinfo is UTC
    assert berlin(sent) <= clock.remind_at <= clock.escalate_at <= clock.expire_at
    assert clock.ack_due <= clock.expire_at <= deadline.ends_at


def test_a_legal_deadline_only_ever_tightens_the_ordinary_clock():
    month_ahead = LegalDeadline(M1, "MV", date(2026, 12, 2))
    clock = count_back(month_ahead, berlin("2026-11-03 09:00"), POLICY, DeadlinePolicy())
    assert clock == LegalClock(
        ack_due=berlin("2026-11-03 13:00"),
        remind_at=berlin("2026-11-05 13:00"),  # halfway to escalation, before the 3 days
        escalate_at=berlin("2026-11-10 09:00"),  # 7 days, not 30 Nov
        expire_at=berlin("2026-11-17 09:00"),  # 14 days, not 2 Dec
        urgent_from_start=False,
        escalation_urgent=False,  # the ordinary escalation, weeks before the margin
    )


def test_the_working_day_and_the_margin_are_the_policys():
    policy = LegalClockPolicy(
        timedelta(hours=2), alert_margin=1, day_starts=time(9), day_ends=time(17)
    )
    deadline = LegalDeadline(W2, "MV", date(2026, 11, 16))
    clock = count_back(deadline, berlin("2026-11-13 16:00"), policy)
    assert clock == LegalClock(
        ack_due=berlin("2026-11-16 10:00"),
        remind_at=berlin("2026-11-16 09:00"),
        escalate_at=berlin("2026-11-16 09:00"),
        expire_at=berlin("2026-11-16 17:00"),
        urgent_from_start=False,
        escalation_urgent=True,
    )


def test_a_referral_sent_after_the_deadline_is_refused():
    deadline = LegalDeadline(W2, "MV", date(2026, 11, 16))
    with pytest.raises(DeadlinePassed) as caught:
        count_back(deadline, berlin("2026-11-17 00:00"), POLICY)
    assert caught.value.code == "legal-deadline.passed"


def test_the_clock_needs_an_aware_moment():
    deadline = LegalDeadline(W2, "MV", date(2026, 11, 16))
    with pytest.raises(ValueError, match="timezone-aware"):
        count_back(deadline, datetime(2026, 11, 4, 9), POLICY)


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param({"acknowledge_within": timedelta()}, id="no-time-to-acknowledge"),
        pytest.param({"alert_margin": 0}, id="no-margin"),
        pytest.param({"day_starts": time(16), "day_ends": time(8)}, id="day-ends-before-it-starts"),
    ],
)
def test_a_clock_policy_that_makes_no_sense_is_refused(policy):
    with pytest.raises(ValueError, match="must"):
        LegalClockPolicy(**policy)


def naive_end(kind: DeadlineKind, delivered: date) -> date:
    """§188 BGB without the roll, counted here independently of the module."""
    if kind is K.OBJECTION_1M:
        year, month = (
            (delivered.year + 1, 1)
            if delivered.month == 12
            else (delivered.year, delivered.month + 1)
        )
        return date(year, month, min(delivered.day, calendar.monthrange(year, month)[1]))
    return delivered + timedelta(weeks=1 if kind is K.ASYLUM_LAWSUIT_1W else 2)


def working(day: date, land: str) -> bool:
    return day.weekday() < 5 and day not in holidays.country_holidays("DE", subdiv=land)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(PERIODS)),
    st.sampled_from(sorted(LAENDER)),
    st.dates(date(2000, 1, 1), date(2040, 12, 31)),
)
def test_a_computed_deadline_is_the_first_working_day_from_the_naive_end(kind, land, delivered):
    deadline = legal_deadline(kind, land, today=delivered, delivered_on=delivered)
    naive = naive_end(kind, delivered)
    assert deadline.period_ends_on == naive
    assert working(deadline.ends_on, land)
    assert deadline.ends_on >= naive
    skipped = (naive + timedelta(days=n) for n in range((deadline.ends_on - naive).days))
    assert not any(working(day, land) for day in skipped)


def test_threads_asking_for_holidays_at_once_all_get_every_holiday() -> None:
    """The `holidays` package fills a year in on first use, in shared state: threads asking
    at once once lost holidays for good. Each year is now made apart and only read."""
    import sys
    import threading

    from services.referral import legal_deadline as module

    days = [date(2027, 1, 1), date(2028, 10, 31), date(2028, 4, 17), date(2029, 10, 3)]

    def ask(into: list[list[bool]]) -> None:
        into.append([is_working_day(d, "MV") for d in days])

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: the race, when there is one, shows
    try:
        for _trial in range(5):  # each from a fresh cache
            module._public_holidays.cache_clear()
            seen: list[list[bool]] = []
            threads = [threading.Thread(target=ask, args=(seen,)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert seen == [[False, False, False, False]] * 8
    finally:
        sys.setswitchinterval(old)
