"""Round robin over staff pools, with duty, capacity and a queue for when nobody is free."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

SERVER_POOL = ""
"""Pool key of the server-wide staff pool; a ticket type with its own staff uses its type id."""


@dataclass(frozen=True, slots=True)
class QueuedTicket:
    ticket_id: int
    type_id: str | None
    rule_id: str | None
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What round robin needs to decide: duty, load against capacity, and one pointer per pool.

    A value: an assignment or a queued ticket makes a new state. ``queued`` holds the tickets
    asked about that wait in the queue; ``moved_pointers`` the pools whose pointer moved since
    the state was read (the ones to save).
    """

    capacity: int | None = None
    off_duty: frozenset[str] = frozenset()
    load: Mapping[str, int] = field(default_factory=dict)
    pointers: Mapping[str, str] = field(default_factory=dict)
    queued: frozenset[int] = frozenset()
    moved_pointers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Read-only copies: a dict the caller passed may change later, this state does not.
        object.__setattr__(self, "load", MappingProxyType(dict(self.load)))
        object.__setattr__(self, "pointers", MappingProxyType(dict(self.pointers)))

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

    def assigned(self, pool_key: str, agent: str, ticket_id: int) -> RoutingState:
        """The state once ``agent`` of the pool takes the ticket: the pool's pointer is on
        them, they carry one ticket more, and the ticket waits in no queue."""
        return replace(
            self,
            load={**self.load, agent: self.load.get(agent, 0) + 1},
            pointers={**self.pointers, pool_key: agent},
            queued=self.queued - {ticket_id},
            moved_pointers=self.moved_pointers | {pool_key},
        )

    def with_queued(self, ticket_id: int) -> RoutingState:
        """The state once the ticket waits in the queue."""
        return replace(self, queued=self.queued | {ticket_id})


@dataclass(frozen=True, slots=True)
class Drained:
    """Queued tickets given out: each with its agent, oldest first, and the state after."""

    assignments: tuple[tuple[QueuedTicket, str], ...]
    routing: RoutingState


def drain_queue(
    queue: Iterable[QueuedTicket],
    pool_of: Callable[[str | None], tuple[str, Sequence[str]]],
    pools: Mapping[str, Sequence[str]],
    state: RoutingState,
) -> Drained:
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
        state = state.assigned(pool_key, agent, entry.ticket_id)
        assignments.append((entry, agent))
        live = _live_pools(pools, state)
    return Drained(tuple(assignments), state)


def _live_pools(pools: Mapping[str, Sequence[str]], state: RoutingState) -> set[str]:
    """Pools in which somebody could take a ticket now."""
    return {key for key, members in pools.items() if any(map(state.is_eligible, members))}
