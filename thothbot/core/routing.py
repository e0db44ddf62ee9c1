"""Round robin over staff pools, with duty, capacity and a queue for when nobody is free."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

SERVER_POOL = ""
"""Pool key of the server-wide staff pool; a ticket type with its own staff uses its type id."""


@dataclass(frozen=True, slots=True)
class QueuedTicket:
    ticket_id: int
    type_id: str | None
    rule_id: str | None
    queued_at: datetime


@dataclass(slots=True)
class RoutingState:
    """What round robin needs to decide: duty, load against capacity, and one pointer per pool."""

    capacity: int | None = None
    off_duty: set[str] = field(default_factory=set)
    load: dict[str, int] = field(default_factory=dict)
    pointers: dict[str, str] = field(default_factory=dict)
    queued: set[int] = field(default_factory=set)
    moved_pointers: set[str] = field(default_factory=set)

    def is_eligible(self, agent: str) -> bool:
        if agent in self.off_duty:
            return False
        return self.capacity is None or self.load.get(agent, 0) < self.capacity

    def next_agent(self, pool_key: str, members: Sequence[str]) -> str | None:
        """The first eligible agent after the one this pool assigned last, in pool order."""
        if not members:
            return None
        last = self.pointers.get(pool_key)
        start = members.index(last) + 1 if last in members else 0
        for offset in range(len(members)):
            agent = members[(start + offset) % len(members)]
            if self.is_eligible(agent):
                return agent
        return None

    def record_assignment(self, pool_key: str, agent: str) -> None:
        self.pointers[pool_key] = agent
        self.moved_pointers.add(pool_key)
        self.load[agent] = self.load.get(agent, 0) + 1


def drain_queue(
    queue: Iterable[QueuedTicket],
    pool_of: Callable[[str | None], tuple[str, Sequence[str]]],
    pools: Mapping[str, Sequence[str]],
    state: RoutingState,
) -> list[tuple[QueuedTicket, str]]:
    """Assign queued tickets (given oldest first) to whoever is eligible now.

    The walk stops as soon as no pool has an eligible agent left, so with a lazy cursor a
    long queue is read only as far as there is somebody to take its tickets.
    """
    assignments: list[tuple[QueuedTicket, str]] = []
    live = _live_pools(pools, state)
    for entry in queue:
        if not live:
            break
        pool_key, members = pool_of(entry.type_id)
        if pool_key not in live:
            continue
        agent = state.next_agent(pool_key, members)
        assert agent is not None  # the pool is live
        state.record_assignment(pool_key, agent)
        state.queued.discard(entry.ticket_id)
        assignments.append((entry, agent))
        live = _live_pools(pools, state)
    return assignments


def _live_pools(pools: Mapping[str, Sequence[str]], state: RoutingState) -> set[str]:
    """Pools in which somebody could take a ticket now."""
    return {key for key, members in pools.items() if any(map(state.is_eligible, members))}
