"""Running automation rules: which rules an event fires, what their actions do, and the cascade.

Every matching enabled rule fires, in array order. Events raised by actions (an escalation
raising ``ticket_escalated``) are handled after all rules of the current event, in the order
raised. Within one incoming event and its cascade each rule fires at most once per ticket,
and the cascade is at most ``MAX_DEPTH`` levels deep, so no rule set can loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from thothbot.core import tickets
from thothbot.core.models import (
    ActionOutcome,
    ActionType,
    Assigned,
    AssignmentQueued,
    Effect,
    Escalated,
    Event,
    Firing,
    MessagePosted,
    RuleFired,
    SlaBreach,
    TagAdded,
    Ticket,
    TicketEscalated,
    TicketOpened,
    TicketRated,
    Trigger,
    UrgencyKnown,
)
from thothbot.core.routing import QueuedTicket, RoutingState
from thothbot.core.rules import Action, Rule
from thothbot.core.settings import GuildSettings

MAX_DEPTH = 3


class RuleSet:
    """A server's enabled rules, indexed by trigger once."""

    __slots__ = ("_by_trigger", "_needs_routing", "rules", "uses_round_robin")

    def __init__(self, normalized: Iterable[Rule]) -> None:
        self.rules = tuple(r for r in normalized if r.enabled)
        self._by_trigger: dict[Trigger, tuple[Rule, ...]] = {
            trigger: tuple(r for r in self.rules if r.trigger is trigger) for trigger in Trigger
        }
        self.uses_round_robin = any(
            a.type is ActionType.ASSIGN_ROUND_ROBIN for r in self.rules for a in r.actions
        )
        escalated_assigns = self._has(Trigger.TICKET_ESCALATED, ActionType.ASSIGN_ROUND_ROBIN)
        self._needs_routing = {
            trigger: self._has(trigger, ActionType.ASSIGN_ROUND_ROBIN)
            or (escalated_assigns and self._has(trigger, ActionType.ESCALATE))
            for trigger in Trigger
        }

    def _has(self, trigger: Trigger, action: ActionType) -> bool:
        return any(a.type is action for r in self._by_trigger[trigger] for a in r.actions)

    def needs_routing(self, trigger: Trigger) -> bool:
        """Whether an event of this trigger can reach ``assign_round_robin``, cascade included."""
        return self._needs_routing[trigger]

    def for_trigger(self, trigger: Trigger) -> tuple[Rule, ...]:
        return self._by_trigger[trigger]

    def matching_message(self, ticket: Ticket, content: str) -> list[Rule]:
        """``message_contains`` rules a message's text matches (case-insensitive, casefolded)."""
        folded = content.casefold()
        return [
            rule
            for rule in self._by_trigger[Trigger.MESSAGE_CONTAINS]
            if rule.match_folded in folded and rule.applies_to(ticket)
        ]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one event and its cascade, in order, for the shell to save
    and perform: the ticket as they leave it (the one given when they changed nothing), and
    the routing state as it leaves (None when they were given none)."""

    ticket: Ticket
    effects: tuple[Effect, ...]
    firings: tuple[Firing, ...]
    queued: tuple[QueuedTicket, ...]
    routing: RoutingState | None


@dataclass(frozen=True, slots=True)
class Context:
    """Everything rules may read besides the ticket itself."""

    rules: RuleSet
    settings: GuildSettings
    routing: RoutingState | None = None


def trigger_for(event: Event, ticket: Ticket, settings: GuildSettings) -> Trigger | None:
    """The trigger an event stands for, or None when it fires no rule at all."""
    if isinstance(event, TicketOpened):
        return Trigger.TICKET_OPENED
    if isinstance(event, UrgencyKnown):
        return Trigger.TICKET_OPENED if ticket.is_open else None
    if isinstance(event, TicketEscalated):
        return Trigger.TICKET_ESCALATED
    if isinstance(event, MessagePosted):
        if not tickets.takes_message(ticket, event.author_kind):
            return None
        return Trigger.MESSAGE_CONTAINS
    if isinstance(event, TicketRated):
        return Trigger.CSAT_NEGATIVE if event.rating <= settings.csat_negative_max else None
    if isinstance(event, SlaBreach):
        return Trigger.SLA_BREACH if ticket.is_open else None
    raise TypeError(f"unknown event {event!r}")


def run_rules(ticket: Ticket, event: Event, context: Context) -> Decision:
    """Fire the rules for ``event`` and everything it cascades into, and return what they
    decided; nothing given changes."""
    cascade = _Cascade(ticket, context)
    cascade.run(event)
    return Decision(
        cascade.ticket,
        tuple(cascade.effects),
        tuple(cascade.firings),
        tuple(cascade.queued),
        cascade.routing,
    )


class _Cascade:
    """One incoming event and the events its actions raise, handled breadth-first; the ticket
    and routing state as they stand so far, and what was done, in order."""

    def __init__(self, ticket: Ticket, context: Context) -> None:
        self.ticket = ticket
        self.routing = context.routing
        self.context = context
        self.effects: list[Effect] = []
        self.firings: list[Firing] = []
        self.queued: list[QueuedTicket] = []
        self.pending: deque[tuple[Event, int]] = deque()
        self.fired: set[str] = set()

    def run(self, event: Event) -> None:
        self.pending.append((event, 1))
        while self.pending:
            current, depth = self.pending.popleft()
            trigger = trigger_for(current, self.ticket, self.context.settings)
            if trigger is None:
                continue
            for rule in self._candidates(trigger, current):
                if rule.id not in self.fired:
                    self.fired.add(rule.id)
                    self._fire(rule, trigger, current.at, depth)

    def _candidates(self, trigger: Trigger, event: Event) -> list[Rule]:
        rules = self.context.rules
        if isinstance(event, MessagePosted):
            return rules.matching_message(self.ticket, event.content)
        candidates = [rule for rule in rules.for_trigger(trigger) if rule.applies_to(self.ticket)]
        if isinstance(event, UrgencyKnown):
            # The rules without an urgency condition fired when the ticket was opened.
            return [rule for rule in candidates if rule.urgency is not None]
        return candidates

    def _fire(self, rule: Rule, trigger: Trigger, at: datetime, depth: int) -> None:
        self.effects.append(RuleFired(at, self.ticket.id, rule.id, trigger))
        results = tuple(self._apply(action, rule, at, depth) for action in rule.actions)
        self.firings.append(Firing(at, self.ticket.id, trigger, rule.id, results))

    def _apply(self, action: Action, rule: Rule, at: datetime, depth: int) -> ActionOutcome:
        if action.type is ActionType.ADD_TAG:
            return self._add_tag(action, rule, at)
        if action.type is ActionType.ESCALATE:
            return self._escalate(rule, at, depth)
        return self._assign_round_robin(rule, at)

    def _add_tag(self, action: Action, rule: Rule, at: datetime) -> ActionOutcome:
        assert action.tag is not None  # normalized add_tag actions always carry a tag
        tagged = tickets.add_tag(self.ticket, action.tag)
        if isinstance(tagged, str):
            return ActionOutcome(action.type, False, f"no-op: {tagged}", action.tag)
        self.ticket = tagged
        self.effects.append(TagAdded(at, self.ticket.id, action.tag, rule.id))
        return ActionOutcome(action.type, True, f'added the tag "{action.tag}"', action.tag)

    def _escalate(self, rule: Rule, at: datetime, depth: int) -> ActionOutcome:
        kind = ActionType.ESCALATE
        reason = f"Automation: {rule.label}"
        escalated = tickets.escalate(self.ticket, reason)
        if escalated is None:
            return ActionOutcome(kind, False, "no-op: the ticket is already escalated")
        self.ticket = escalated
        self.effects.append(Escalated(at, self.ticket.id, reason, rule.id, rule.name))
        if depth >= MAX_DEPTH:
            return ActionOutcome(
                kind, True, f"escalated; cascade depth limit ({MAX_DEPTH}) stops further rules"
            )
        self.pending.append((TicketEscalated(at, reason), depth + 1))
        return ActionOutcome(kind, True, "escalated; bot replies paused")

    def _assign_round_robin(self, rule: Rule, at: datetime) -> ActionOutcome:
        kind = ActionType.ASSIGN_ROUND_ROBIN
        ticket = self.ticket
        if ticket.assignee_id is not None:
            return ActionOutcome(kind, False, f"no-op: already assigned to {ticket.assignee_id}")
        routing = self.routing
        assert routing is not None  # the shell gathers routing state whenever rules use it
        if ticket.id in routing.queued:
            return ActionOutcome(kind, False, "no-op: already waiting in the assignment queue")
        pool_key, members = self.context.settings.pool(ticket.type_id)
        agent = routing.next_agent(pool_key, members)
        if agent is None:
            self.routing = routing.with_queued(ticket.id)
            self.queued.append(QueuedTicket(ticket.id, ticket.type_id, rule.id, at))
            self.effects.append(AssignmentQueued(at, ticket.id, rule.id))
            why = "the staff pool is empty" if not members else "nobody is on duty with capacity"
            return ActionOutcome(kind, True, f"queued: {why}")
        self.routing = routing.assigned(pool_key, agent, ticket.id)
        self.ticket = tickets.assign_round_robin(ticket, agent)
        self.effects.append(Assigned(at, ticket.id, agent, rule.id))
        return ActionOutcome(kind, True, f"assigned to {agent}")
