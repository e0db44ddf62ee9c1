"""The numbers ``/stats`` shows, computed from plain ticket values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from statistics import median

from thothbot.core.models import Ticket


@dataclass(frozen=True, slots=True)
class DeskStats:
    opened: int
    open_now: int
    closed: int
    rated: int
    csat: float | None  # share of ratings above the negative threshold; None with no ratings
    median_first_response: timedelta | None
    breaches: int


def desk_stats(tickets: Sequence[Ticket], breaches: int, csat_negative_max: int) -> DeskStats:
    """Stats over the tickets opened in the period (``breaches`` counted by the store)."""
    ratings = [t.rating for t in tickets if t.rating is not None]
    responses = [
        (t.first_staff_reply_at - t.created_at).total_seconds()
        for t in tickets
        if t.first_staff_reply_at is not None
    ]
    return DeskStats(
        opened=len(tickets),
        open_now=sum(1 for t in tickets if t.is_open),
        closed=sum(1 for t in tickets if not t.is_open),
        rated=len(ratings),
        csat=sum(1 for r in ratings if r > csat_negative_max) / len(ratings) if ratings else None,
        median_first_response=timedelta(seconds=median(responses)) if responses else None,
        breaches=breaches,
    )
