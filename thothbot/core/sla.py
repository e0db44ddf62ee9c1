"""SLA deadlines: plain minutes, or business minutes counted in a calendar's opening hours.

Weekly hours and holidays are local wall-clock times in the calendar's zone, but every sum runs
on UTC instants, so DST days have their real length: 09:00-17:00 is 8 hours on any day, and
01:00-04:00 across the spring jump is 2. Time is always passed in; outputs are in UTC.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from thothbot.core.models import SlaTarget

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Giving up after this many closed days in a row stops the search on a calendar whose open
# days are all holidays, yet allows deadlines of any length on calendars that do open.
MAX_CLOSED_DAYS = 3660

_DAY = timedelta(days=1)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Interval = tuple[int, int]
Span = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Weekly opening hours (minutes after local midnight, Monday first) and closed dates."""

    timezone: str
    weekly: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date]

    @classmethod
    def from_spec(
        cls,
        timezone: str,
        weekly: Mapping[str, Sequence[Sequence[str]]],
        holidays: Sequence[str],
    ) -> BusinessCalendar:
        """Build a calendar from settings strings; a ValueError names the first problem found."""
        _zone(timezone)
        if not isinstance(weekly, Mapping):
            raise ValueError('weekly: expected an object mapping days like "mon" to intervals.')
        days: list[tuple[Interval, ...]] = [() for _ in WEEKDAYS]
        for name, intervals in weekly.items():
            if name not in WEEKDAYS:
                raise ValueError(f'weekly: unknown day "{name}"; use {", ".join(WEEKDAYS)}.')
            days[WEEKDAYS.index(name)] = _parse_day(f"weekly.{name}", intervals)
        if not any(days):
            raise ValueError(
                "weekly: there are no opening hours at all, so no deadline could ever be reached."
            )
        if isinstance(holidays, str) or not isinstance(holidays, Sequence):
            raise ValueError('holidays: expected a list of dates like ["2026-12-25"].')
        closed = frozenset(_parse_date(f"holidays[{i}]", text) for i, text in enumerate(holidays))
        return cls(timezone, tuple(days), closed)

    def to_spec(self) -> dict[str, object]:
        """The settings form that from_spec reads back into an equal calendar."""
        return {
            "timezone": self.timezone,
            "weekly": {
                name: [[_hhmm(start), _hhmm(end)] for start, end in intervals]
                for name, intervals in zip(WEEKDAYS, self.weekly, strict=True)
                if intervals
            },
            "holidays": [day.isoformat() for day in sorted(self.holidays)],
        }

    def is_open(self, at: datetime) -> bool:
        """Whether `at` is in opening hours; an interval includes its opening, not its close."""
        instant = _utc(at, "at")
        day = self._local_date(instant)
        # No earlier date's hours reach past `at`, but a clock turned back across midnight can
        # still show one date when the next one's hours have begun.
        return any(
            opens <= instant < closes
            for spans in (_spans(self, day), _spans(self, day + _DAY))
            for opens, closes in spans
        )

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The earliest instant by which `minutes` business minutes have elapsed since `start`.

        Counting begins at `start` if open, else at the next opening; minutes that run out
        exactly at a closing time end there, not at the next opening.
        """
        cursor = _utc(start, "start")
        if minutes < 0:
            raise ValueError(f"minutes must not be negative, got {minutes}.")
        remaining = timedelta(minutes=minutes)
        day = self._local_date(cursor)
        closed_days = 0
        while closed_days < MAX_CLOSED_DAYS:
            spans = _spans(self, day)
            for opens, closes in spans:
                if closes <= cursor:
                    continue
                begin = max(opens, cursor)
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
            closed_days = 0 if spans else closed_days + 1
            day += _DAY
        raise ValueError(
            f"The calendar is closed for {MAX_CLOSED_DAYS} days in a row up to {day}, "
            "so the deadline could never be reached."
        )

    def business_minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes elapsed in [start, end); 0 if end is not after start."""
        low, high = _utc(start, "start"), _utc(end, "end")
        total = timedelta()
        day, last = self._local_date(low), self._local_date(high) + _DAY  # + a day: see is_open
        while day <= last:
            for opens, closes in _spans(self, day):
                total += max(min(closes, high) - max(opens, low), timedelta())
            day += _DAY
        return total / timedelta(minutes=1)

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(_zone(self.timezone)).date()


def add_minutes(start: datetime, minutes: int, calendar: BusinessCalendar | None) -> datetime:
    """`minutes` after `start`: elapsed minutes without a calendar, business minutes with one."""
    if calendar is not None:
        return calendar.add_business_minutes(start, minutes)
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}.")
    return _utc(start, "start") + timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Minutes allowed per SLA target, counted in the calendar's hours when there is one."""

    first_response_minutes: int | None = None
    resolution_minutes: int | None = None
    calendar: BusinessCalendar | None = None

    def deadlines(self, created_at: datetime) -> dict[SlaTarget, datetime]:
        """The deadline of each target that is set, first response before resolution."""
        _utc(created_at, "created_at")
        targets = (
            (SlaTarget.FIRST_RESPONSE, self.first_response_minutes),
            (SlaTarget.RESOLUTION, self.resolution_minutes),
        )
        return {
            target: add_minutes(created_at, minutes, self.calendar)
            for target, minutes in targets
            if minutes is not None
        }


@lru_cache(maxsize=4096)
def _spans(calendar: BusinessCalendar, day: date) -> tuple[Span, ...]:
    """The local date's opening intervals as UTC instants; none on holidays or closed days."""
    if day in calendar.holidays:
        return ()
    zone = _zone(calendar.timezone)
    midnight = datetime.combine(day, time(), zone)
    spans: list[Span] = []
    for start, end in calendar.weekly[day.weekday()]:
        opens = _instant(midnight + timedelta(minutes=start), zone)
        closes = _instant(midnight + timedelta(minutes=end), zone)
        if opens < closes:  # else it lies wholly inside a spring-forward gap, never on the clock
            spans.append((opens, closes))
    return tuple(spans)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant at which the clock in `zone` reads `wall` or later.

    That is plain conversion (the first occurrence of a time repeated in autumn), except that a
    time skipped in spring maps to the jump itself, so later wall times never map earlier.
    """
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # fold=1 reads a skipped time with the offset from after the jump, landing before it;
    # tz transitions fall on whole seconds, so bisecting seconds finds the jump exactly.
    low, high = int(wall.replace(fold=1).timestamp()), int(instant.timestamp())
    offset_before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}.")
    return moment.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
        raise ValueError(f'Unknown time zone "{name}".') from None


def _parse_day(where: str, intervals: object) -> tuple[Interval, ...]:
    if isinstance(intervals, str) or not isinstance(intervals, Sequence):
        raise ValueError(f'{where}: expected a list of intervals like [["09:00", "17:00"]].')
    parsed: list[Interval] = []
    for i, pair in enumerate(intervals):
        here = f"{where}[{i}]"
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f'{here}: an interval is two times like ["09:00", "17:00"].')
        start, end = _parse_time(here, pair[0]), _parse_time(here, pair[1])
        if end <= start:
            raise ValueError(f"{here}: the end {_hhmm(end)} is not after the start {_hhmm(start)}.")
        parsed.append((start, end))
    parsed.sort()
    for first, second in pairwise(parsed):
        if second[0] < first[1]:
            raise ValueError(
                f"{where}: the intervals {_hhmm(first[0])}-{_hhmm(first[1])} and "
                f"{_hhmm(second[0])}-{_hhmm(second[1])} overlap."
            )
    return tuple(parsed)


def _parse_time(where: str, text: object) -> int:
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match:
        hours, minutes = int(match[1]), int(match[2])
        if (hours < 24 and minutes < 60) or (hours, minutes) == (24, 0):
            return hours * 60 + minutes
    raise ValueError(f'{where}: "{text}" is not a time of day (HH:MM).')


def _parse_date(where: str, text: object) -> date:
    if isinstance(text, str) and _DATE.fullmatch(text):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(text)
    raise ValueError(f'{where}: "{text}" is not a date (YYYY-MM-DD).')


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class SlaClock:
    ticket_id: int
    target: SlaTarget
    deadline: datetime
