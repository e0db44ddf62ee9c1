"""SLA deadline arithmetic: plain minutes, business hours, holidays and DST."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thothbot.core.models import SlaTarget
from thothbot.core.sla import (
    MAX_CLOSED_DAYS,
    WEEKDAYS,
    BusinessCalendar,
    SlaPolicy,
    add_minutes,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = [["09:00", "17:00"]]


def weekly(days: tuple[str, ...], intervals: list[list[str]]) -> dict[str, list[list[str]]]:
    """The same opening hours on each of `days`, as from_spec reads them."""
    return {day: [list(pair) for pair in intervals] for day in days}


OFFICE = BusinessCalendar.from_spec(
    "Europe/Berlin", weekly(WEEKDAYS[:5], NINE_TO_FIVE), ["2026-12-25"]
)
LUNCH = BusinessCalendar.from_spec(
    "America/New_York", weekly(WEEKDAYS[:5], [["09:00", "12:00"], ["13:00", "17:00"]]), []
)
EVERY_DAY = BusinessCalendar.from_spec("Europe/Berlin", weekly(WEEKDAYS, NINE_TO_FIVE), [])
NIGHTS = BusinessCalendar.from_spec("Europe/Berlin", weekly(WEEKDAYS, [["01:00", "04:00"]]), [])
NY_NIGHTS = BusinessCalendar.from_spec(
    "America/New_York", weekly(WEEKDAYS, [["01:00", "04:00"]]), []
)
ALWAYS = BusinessCalendar.from_spec("Europe/Berlin", weekly(WEEKDAYS, [["00:00", "24:00"]]), [])


def berlin(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def new_york(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)


def test_plain_deadline_without_calendar_is_elapsed_time_in_utc() -> None:
    deadline = add_minutes(berlin(3, 28, 23), 180, None)
    assert deadline == berlin(3, 29, 3)  # 3 real hours across the spring jump
    assert deadline.tzinfo is UTC


def test_naive_and_negative_inputs_are_refused() -> None:
    naive = berlin(1, 5, 10).replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_minutes(naive, 10, None)
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.add_business_minutes(naive, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        SlaPolicy().deadlines(naive)
    with pytest.raises(ValueError, match="negative"):
        OFFICE.add_business_minutes(berlin(1, 5, 10), -1)


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        pytest.param(berlin(1, 5, 10), 60, berlin(1, 5, 11), id="inside-hours"),
        pytest.param(berlin(1, 5, 7), 60, berlin(1, 5, 10), id="before-opening"),
        pytest.param(berlin(1, 5, 18), 60, berlin(1, 6, 10), id="after-closing"),
        pytest.param(berlin(1, 10, 12), 60, berlin(1, 12, 10), id="on-a-weekend"),
        pytest.param(berlin(12, 25, 10), 60, berlin(12, 28, 10), id="on-a-holiday"),
        pytest.param(berlin(1, 5, 16), 60, berlin(1, 5, 17), id="runs-out-at-closing"),
        pytest.param(berlin(1, 9, 16), 120, berlin(1, 12, 10), id="spans-a-weekend"),
        pytest.param(berlin(12, 24, 16), 120, berlin(12, 28, 10), id="spans-a-holiday"),
        pytest.param(berlin(1, 5, 9), 480, berlin(1, 5, 17), id="one-full-day"),
        pytest.param(berlin(1, 5, 10), 5 * 480, berlin(1, 12, 10), id="one-week"),
    ],
)
def test_office_hours_deadlines(start: datetime, minutes: int, expected: datetime) -> None:
    deadline = OFFICE.add_business_minutes(start, minutes)
    assert deadline == expected
    assert deadline.tzinfo is UTC


def test_zero_minutes_is_start_when_open_else_next_opening() -> None:
    assert OFFICE.add_business_minutes(berlin(1, 5, 10), 0) == berlin(1, 5, 10)
    assert OFFICE.add_business_minutes(berlin(1, 5, 9), 0) == berlin(1, 5, 9)
    assert OFFICE.add_business_minutes(berlin(1, 5, 17), 0) == berlin(1, 6, 9)
    assert OFFICE.add_business_minutes(berlin(1, 10, 12), 0) == berlin(1, 12, 9)


def test_is_open_includes_opening_but_not_closing() -> None:
    assert OFFICE.is_open(berlin(1, 5, 9))
    assert OFFICE.is_open(berlin(1, 5, 16, 59))
    assert not OFFICE.is_open(berlin(1, 5, 17))
    assert not OFFICE.is_open(berlin(1, 10, 12))  # Saturday
    assert not OFFICE.is_open(berlin(12, 25, 12))  # holiday


def test_lunch_break_is_skipped() -> None:
    assert LUNCH.add_business_minutes(new_york(1, 5, 11), 120) == new_york(1, 5, 14)
    assert not LUNCH.is_open(new_york(1, 5, 12, 30))
    assert LUNCH.business_minutes_between(new_york(1, 5, 0), new_york(1, 6, 0)) == 420


def test_several_intervals_per_day() -> None:
    shifts = [["20:00", "22:00"], ["08:00", "10:00"], ["12:00", "13:00"]]  # any order
    calendar = BusinessCalendar.from_spec("Europe/Berlin", {"mon": shifts}, [])
    assert calendar.add_business_minutes(berlin(1, 5, 9), 180) == berlin(1, 5, 21)
    assert calendar.business_minutes_between(berlin(1, 5, 0), berlin(1, 6, 0)) == 300
    assert calendar.add_business_minutes(berlin(1, 5, 22), 60) == berlin(1, 12, 9)


def test_touching_intervals_and_midnight_end_run_on_without_a_gap() -> None:
    calendar = BusinessCalendar.from_spec(
        "Europe/Berlin",
        {"mon": [["18:00", "24:00"]], "tue": [["00:00", "03:00"], ["03:00", "06:00"]]},
        [],
    )
    assert calendar.add_business_minutes(berlin(1, 5, 23), 240) == berlin(1, 6, 3)
    assert calendar.is_open(berlin(1, 5, 23, 59))
    assert calendar.is_open(berlin(1, 6, 0))
    assert not calendar.is_open(berlin(1, 6, 6))


def test_always_open_calendar_counts_real_time_across_dst() -> None:
    start = berlin(3, 28, 12)
    assert ALWAYS.add_business_minutes(start, 24 * 60) == start.astimezone(UTC) + timedelta(days=1)
    assert ALWAYS.add_business_minutes(start, 24 * 60) == berlin(3, 29, 13)
    autumn = berlin(10, 24, 12)
    assert ALWAYS.add_business_minutes(autumn, 24 * 60) == berlin(10, 25, 11)
    assert ALWAYS.business_minutes_between(berlin(3, 29, 0), berlin(3, 30, 0)) == 23 * 60
    assert ALWAYS.business_minutes_between(berlin(10, 25, 0), berlin(10, 26, 0)) == 25 * 60


def test_berlin_spring_forward() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    assert EVERY_DAY.business_minutes_between(berlin(3, 29, 0), berlin(3, 30, 0)) == 480
    assert EVERY_DAY.add_business_minutes(berlin(3, 28, 16), 120) == berlin(3, 29, 10)
    # The night shift 01:00-04:00 loses the missing hour.
    assert NIGHTS.business_minutes_between(berlin(3, 29, 0), berlin(3, 30, 0)) == 120
    assert NIGHTS.add_business_minutes(berlin(3, 29, 1), 120) == berlin(3, 29, 4)
    assert NIGHTS.add_business_minutes(berlin(3, 29, 0), 150) == berlin(3, 30, 1, 30)


def test_berlin_fall_back() -> None:
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; the night shift gains the repeated hour.
    assert EVERY_DAY.business_minutes_between(berlin(10, 25, 0), berlin(10, 26, 0)) == 480
    assert NIGHTS.business_minutes_between(berlin(10, 25, 0), berlin(10, 26, 0)) == 240
    deadline = NIGHTS.add_business_minutes(berlin(10, 25, 1), 240)
    assert deadline == berlin(10, 25, 4)
    assert deadline == datetime(2026, 10, 25, 3, tzinfo=UTC)


def test_new_york_spring_forward() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    assert NY_NIGHTS.business_minutes_between(new_york(3, 8, 0), new_york(3, 9, 0)) == 120
    assert NY_NIGHTS.add_business_minutes(new_york(3, 8, 1), 150) == new_york(3, 9, 1, 30)
    assert NY_NIGHTS.add_business_minutes(new_york(3, 7, 3), 120) == new_york(3, 8, 3)


def test_interval_edges_inside_the_spring_gap_map_to_the_jump() -> None:
    calendar = BusinessCalendar.from_spec(
        "Europe/Berlin", {"sun": [["02:00", "02:30"], ["02:30", "03:30"]]}, []
    )
    # 02:00-02:30 never shows on the clock; 02:30-03:30 is really 03:00-03:30 CEST.
    assert calendar.business_minutes_between(berlin(3, 29, 0), berlin(3, 30, 0)) == 30
    assert calendar.add_business_minutes(berlin(3, 29, 0), 10) == berlin(3, 29, 3, 10)
    assert calendar.business_minutes_between(berlin(3, 22, 0), berlin(3, 23, 0)) == 90


def test_input_in_another_zone_is_read_as_the_same_instant() -> None:
    tokyo = datetime(2026, 1, 5, 18, tzinfo=ZoneInfo("Asia/Tokyo"))  # 10:00 in Berlin
    deadline = OFFICE.add_business_minutes(tokyo, 60)
    assert deadline == berlin(1, 5, 11)
    assert deadline.tzinfo is UTC
    assert OFFICE.is_open(datetime(2026, 1, 5, 8, 30, tzinfo=UTC))  # 09:30 in Berlin


def test_business_minutes_between_is_zero_for_empty_or_reversed_spans() -> None:
    assert OFFICE.business_minutes_between(berlin(1, 5, 10), berlin(1, 5, 10)) == 0
    assert OFFICE.business_minutes_between(berlin(1, 6, 10), berlin(1, 5, 10)) == 0
    assert OFFICE.business_minutes_between(berlin(1, 5, 10), berlin(1, 5, 10, 30)) == 30


def test_closed_for_ever_raises_instead_of_looping() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=week) for week in range(MAX_CLOSED_DAYS // 7 + 2)]
    calendar = BusinessCalendar.from_spec(
        "Europe/Berlin", {"mon": NINE_TO_FIVE}, [day.isoformat() for day in mondays]
    )
    with pytest.raises(ValueError, match="closed for"):
        calendar.add_business_minutes(berlin(1, 1, 0), 1)


@settings(max_examples=150, deadline=None)
@given(
    calendar=st.sampled_from([OFFICE, LUNCH, NIGHTS, NY_NIGHTS, ALWAYS]),
    start=st.datetimes(
        # Hypothesis takes naive bounds and attaches the zones itself.
        min_value=datetime(2025, 12, 1, tzinfo=UTC).replace(tzinfo=None),
        max_value=datetime(2027, 1, 31, tzinfo=UTC).replace(tzinfo=None),
        timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
        allow_imaginary=False,
    ),
    minutes=st.integers(min_value=0, max_value=6000),
)
def test_minutes_between_start_and_deadline_are_the_minutes_added(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    deadline = calendar.add_business_minutes(start, minutes)
    assert deadline >= start
    assert calendar.business_minutes_between(start, deadline) == minutes
    if minutes:  # and it is the earliest such instant
        earlier = deadline - timedelta(microseconds=1)
        assert calendar.business_minutes_between(start, earlier) < minutes


@pytest.mark.parametrize(
    ("timezone", "weekly", "holidays", "message"),
    [
        ("Europe/Berln", {"mon": NINE_TO_FIVE}, [], 'Unknown time zone "Europe/Berln".'),
        ("Europe", {"mon": NINE_TO_FIVE}, [], 'Unknown time zone "Europe".'),
        (
            "Europe/Berlin",
            {"mon": [["09:00", "12:00"], ["13:00", "25:00"]]},
            [],
            'weekly.mon[1]: "25:00" is not a time of day (HH:MM).',
        ),
        (
            "Europe/Berlin",
            {"mon": [["9:00", "17:00"]]},
            [],
            'weekly.mon[0]: "9:00" is not a time of day (HH:MM).',
        ),
        (
            "Europe/Berlin",
            {"tue": [["09:00", "12:00"], ["11:00", "13:00"]]},
            [],
            "weekly.tue: the intervals 09:00-12:00 and 11:00-13:00 overlap.",
        ),
        (
            "Europe/Berlin",
            {"fri": [["09:00", "08:00"]]},
            [],
            "weekly.fri[0]: the end 08:00 is not after the start 09:00.",
        ),
        (
            "Europe/Berlin",
            {"monday": NINE_TO_FIVE},
            [],
            'weekly: unknown day "monday"; use mon, tue, wed, thu, fri, sat, sun.',
        ),
        (
            "Europe/Berlin",
            {"mon": NINE_TO_FIVE},
            ["2026-12-25", "2026-12-26", "2026-13-01"],
            'holidays[2]: "2026-13-01" is not a date (YYYY-MM-DD).',
        ),
        (
            "Europe/Berlin",
            {"mon": [], "sat": []},
            [],
            "weekly: there are no opening hours at all, so no deadline could ever be reached.",
        ),
        (
            "Europe/Berlin",
            {"mon": ["09:00-17:00"]},
            [],
            'weekly.mon[0]: an interval is two times like ["09:00", "17:00"].',
        ),
        (
            "Europe/Berlin",
            {"mon": NINE_TO_FIVE},
            "2026-12-25",
            'holidays: expected a list of dates like ["2026-12-25"].',
        ),
    ],
)
def test_from_spec_names_the_problem(
    timezone: str, weekly: dict[str, list[list[str]]], holidays: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        BusinessCalendar.from_spec(timezone, weekly, holidays)


def test_from_spec_reads_intervals_midnight_and_missing_days() -> None:
    calendar = BusinessCalendar.from_spec(
        "Europe/Berlin",
        {"tue": [["13:00", "17:00"], ["09:00", "12:00"]], "sat": [["20:00", "24:00"]]},
        [],
    )
    assert calendar.weekly == ((), ((540, 720), (780, 1020)), (), (), (), ((1200, 1440),), ())
    assert calendar.holidays == frozenset()


def test_to_spec_round_trip() -> None:
    calendar = BusinessCalendar.from_spec(
        "America/New_York",
        {"tue": [["09:00", "12:00"], ["13:00", "17:00"]], "sun": [["00:00", "24:00"]]},
        ["2026-12-25", "2026-07-03", "2026-07-03"],
    )
    spec: dict[str, Any] = calendar.to_spec()
    assert spec == {
        "timezone": "America/New_York",
        "weekly": {"tue": [["09:00", "12:00"], ["13:00", "17:00"]], "sun": [["00:00", "24:00"]]},
        "holidays": ["2026-07-03", "2026-12-25"],
    }
    assert BusinessCalendar.from_spec(**spec) == calendar
    office: dict[str, Any] = OFFICE.to_spec()
    assert BusinessCalendar.from_spec(**office) == OFFICE


def test_policy_without_targets_has_no_deadlines() -> None:
    assert SlaPolicy(calendar=OFFICE).deadlines(berlin(1, 5, 10)) == {}


def test_policy_with_one_target() -> None:
    deadlines = SlaPolicy(resolution_minutes=60).deadlines(berlin(1, 10, 12))
    assert deadlines == {SlaTarget.RESOLUTION: berlin(1, 10, 13)}


def test_policy_with_both_targets_in_business_hours() -> None:
    policy = SlaPolicy(first_response_minutes=60, resolution_minutes=480, calendar=OFFICE)
    deadlines = policy.deadlines(berlin(1, 9, 16))  # Friday 16:00
    assert list(deadlines) == [SlaTarget.FIRST_RESPONSE, SlaTarget.RESOLUTION]
    assert deadlines[SlaTarget.FIRST_RESPONSE] == berlin(1, 9, 17)
    assert deadlines[SlaTarget.RESOLUTION] == berlin(1, 12, 16)
