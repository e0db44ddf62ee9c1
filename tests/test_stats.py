"""The numbers /stats shows, from plain ticket values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests import support
from tests.support import at
from thothbot.core.models import Status, Ticket
from thothbot.core.stats import DeskStats, desk_stats


def ticket(
    number: int,
    *,
    replied_after: float | None = None,
    closed: bool = False,
    rating: int | None = None,
) -> Ticket:
    """Ticket ``number``, opened at T0, with a first staff reply ``replied_after`` minutes later."""
    return support.ticket(
        number,
        customer_id=f"U{number}",
        status=Status.CLOSED if closed else Status.OPEN,
        first_staff_reply_at=at(replied_after) if replied_after is not None else None,
        closed_at=at(60) if closed else None,
        rating=rating,
    )


def test_no_tickets_gives_zeros_and_no_averages() -> None:
    assert desk_stats([], 0, 2) == DeskStats(
        opened=0,
        open_now=0,
        closed=0,
        rated=0,
        csat=None,
        median_first_response=None,
        breaches=0,
    )


def test_breaches_are_passed_through() -> None:
    assert desk_stats([], 4, 2).breaches == 4


def test_open_and_closed_tickets_are_counted() -> None:
    tickets = [ticket(1), ticket(2, closed=True), ticket(3, closed=True), ticket(4)]
    stats = desk_stats(tickets, 0, 2)
    assert (stats.opened, stats.open_now, stats.closed) == (4, 2, 2)


def test_csat_is_the_share_of_ratings_above_the_negative_threshold() -> None:
    ratings = [1, 2, 3, 5]
    tickets = [ticket(i, closed=True, rating=r) for i, r in enumerate(ratings, 1)]
    tickets.append(ticket(9, closed=True))  # not rated: not counted
    stats = desk_stats(tickets, 0, 2)
    assert stats.rated == 4
    assert stats.csat == pytest.approx(0.5)
    # A rating equal to the threshold counts as negative.
    assert desk_stats(tickets, 0, 3).csat == pytest.approx(0.25)
    assert desk_stats(tickets, 0, 1).csat == pytest.approx(0.75)


def test_csat_is_none_without_ratings() -> None:
    stats = desk_stats([ticket(1, closed=True), ticket(2)], 0, 2)
    assert stats.rated == 0
    assert stats.csat is None


def test_median_first_response_of_an_odd_count_is_the_middle_one() -> None:
    tickets = [ticket(1, replied_after=30), ticket(2, replied_after=5), ticket(3, replied_after=90)]
    assert desk_stats(tickets, 0, 2).median_first_response == timedelta(minutes=30)


def test_median_first_response_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    tickets = [
        ticket(1, replied_after=10),
        ticket(2, replied_after=40),
        ticket(3, replied_after=20),
        ticket(4, replied_after=1000),
    ]
    assert desk_stats(tickets, 0, 2).median_first_response == timedelta(minutes=30)


def test_tickets_without_a_staff_reply_do_not_count_for_first_response() -> None:
    tickets = [ticket(1), ticket(2, replied_after=0.5), ticket(3, closed=True)]
    assert desk_stats(tickets, 0, 2).median_first_response == timedelta(seconds=30)
    assert desk_stats([ticket(1)], 0, 2).median_first_response is None
