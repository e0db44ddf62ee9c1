"""The shell around the core: gather what it needs, let it decide, save, then hand out the effects.

Each public method is one unit of work on the store (atomic, never interleaved with another),
followed by publishing the resulting effects to the sink the adapter gave us. The bot, the
ingress, ``thothbot simulate`` and the tests all drive tickets through this class.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from thothbot.changes import Changes, Topic
from thothbot.core import delivery, tickets
from thothbot.core.answers import (
    SavedAnswer,
    check_text,
    first_not_sent,
    matching_answers,
    parse_triggers,
)
from thothbot.core.channels import Closing, DiscordSetup, Opening
from thothbot.core.classify import TicketText, ticket_text
from thothbot.core.destinations import Ops
from thothbot.core.engine import Context, Decision, RuleSet, run_rules, trigger_for
from thothbot.core.errors import DomainError, TicketNotFound
from thothbot.core.masking import masked_document
from thothbot.core.models import (
    AnswerReplied,
    Assigned,
    AuthorKind,
    Effect,
    Escalated,
    Event,
    Firing,
    MessagePosted,
    SlaBreach,
    SlaBreached,
    SlaTarget,
    Ticket,
    TicketEscalated,
    TicketOpened,
    TicketRated,
    TicketSource,
    UrgencyKnown,
)
from thothbot.core.routing import drain_queue
from thothbot.core.rules import (
    Rule,
    Validation,
    load_rules,
    unknown_urgency_labels,
    validate_and_normalize,
)
from thothbot.core.settings import Classifier as ClassifierSettings
from thothbot.core.settings import GuildSettings, SettingsResult, parse_settings
from thothbot.core.sla import SlaClock
from thothbot.core.stats import DeskStats, desk_stats
from thothbot.service.outbox import Handed, Handoff
from thothbot.store.group_commit import GroupCommit
from thothbot.store.interfaces import Database, Tx

if TYPE_CHECKING:
    from thothbot.outbound import Guard  # aiohttp: only the processes that send need it

log = logging.getLogger(__name__)

T = TypeVar("T")


class EffectSink(Protocol):
    """Where effects go once saved: the bot renders them in Discord; tests and simulate record."""

    async def publish(self, guild_id: str, effects: Sequence[Effect]) -> None: ...


class RecordingSink:
    """Keeps every published effect, in order."""

    def __init__(self) -> None:
        self.effects: list[Effect] = []

    async def publish(self, guild_id: str, effects: Sequence[Effect]) -> None:
        self.effects.extend(effects)


@dataclass(frozen=True, slots=True)
class GuildConfig:
    """A server's rules and settings, compiled; cached until the stored revision moves."""

    guild_id: str
    revision: int
    rules: list[Rule]  # as saved, disabled ones included
    ruleset: RuleSet
    settings: GuildSettings  # with the members of the staff roles merged in
    document: dict[str, Any]  # the settings as saved, for export
    setup: DiscordSetup | None
    answers: list[SavedAnswer]


@dataclass(frozen=True, slots=True)
class RulesSaved:
    validation: Validation
    saved: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CloseSteps:
    """What a Discord ticket's close leaves to do (transcripts, rating, deletion), saved in the
    close's own transaction so a crash right after it loses none of them."""

    closed_by_name: str
    reason: str | None
    upload_limit: int  # bytes of files one message may carry
    delete_after: timedelta  # the channel stays this long at least, for the rating


@dataclass(frozen=True, slots=True)
class Escalation:
    """What posting an escalated ticket needs, read in one unit: the ticket, its server's
    configuration, and the event that opened it (name and payload) when it came from the
    ingress."""

    ticket: Ticket
    config: GuildConfig
    source: tuple[str, dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class ApiTicket:
    """A ticket another system sends (an ingress event), for ``Desk.open_tickets``."""

    guild_id: str
    customer_id: str
    subject: str  # a long one is cut, the whole of it kept in the body
    at: datetime
    body: str
    ref: str  # the sender's id for it


@dataclass(frozen=True, slots=True)
class Unlabelled:
    """A ticket waiting for its urgency: what the classifier reads, under which settings."""

    ticket_id: int
    guild_id: str
    text: TicketText
    settings: ClassifierSettings


@dataclass(slots=True)
class _Result:
    """What a unit hands back to the event loop: effects to publish, deadlines to note."""

    guild_id: str
    effects: list[Effect]
    new_deadlines: list[datetime]
    # The ticket as the unit saved it and its server's configuration, when the unit was about
    # one ticket: the outbox rows of its escalations are made from them without reading again.
    ticket: Ticket | None = None
    config: GuildConfig | None = None
    deliveries: bool = False  # escalations were put in the outbox for the due reads
    handed: list[Handed] = field(default_factory=list)  # and #ops posts for this process's worker
    unlabelled: bool = False  # a ticket opened without its urgency: the triage loop labels it


class Desk:
    """The ticket desk: every change to tickets, rules, settings, routing and SLA passes here."""

    def __init__(
        self,
        store: Database,
        sink: EffectSink | None = None,
        *,
        outbox: bool = False,
        outbound: Guard | None = None,
        changes: Changes | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.store = store
        self.sink: EffectSink = sink or RecordingSink()
        # With an outbox, each escalation is saved for delivery in the transaction that made it,
        # and the outbox topic is announced once it is committed (the delivery worker wakes).
        self.outbox = outbox
        # Where destinations may lead (THOTH_OUTBOUND_ALLOW); checked at save when set.
        self.outbound = outbound
        # After each commit: what changed, for every background loop that cares.
        self.changes = changes or Changes()
        # Labels recorded while another is being saved share the next transaction (triage
        # labels many tickets at once under load).
        self._labels = GroupCommit(store)
        # With a handoff, #ops posts go to the worker of this process with the unit's reads.
        self.handoff = handoff
        self._configs: dict[str, GuildConfig] = {}
        self._next_deadline: datetime | None = None
        self._deadline_known = False

    def batch(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Share transactions between the units run inside this block: for a batch caller
        (``thothbot simulate``) that makes many in a row, one commit for many instead of one
        each. Every unit still stands alone: one that raises is rolled back by itself, the
        others are kept. Effects are handed out as each unit ends, before its commit, so only
        a caller whose effects do not leave the process, or that redoes its work after a
        crash, should batch."""
        return self.store.batch()

    # Configuration

    def _config(self, tx: Tx, guild_id: str) -> GuildConfig:
        cached = self._configs.get(guild_id)
        if cached is not None and cached.revision == tx.revision(guild_id):
            return cached
        row = tx.guild(guild_id)
        rules = load_rules(row.rules)
        document = json.loads(row.settings)
        settings = GuildSettings.model_validate(document)
        setup = tx.discord_setup(guild_id)
        roster = tx.roster(guild_id)
        if roster:
            settings = settings.with_roster(setup.staff_role_id if setup else None, roster)
        config = GuildConfig(
            guild_id=guild_id,
            revision=row.revision,
            rules=rules,
            ruleset=RuleSet(rules),
            settings=settings,
            document=document,
            setup=setup,
            answers=tx.answers(guild_id),
        )
        self._configs[guild_id] = config
        return config

    async def config(self, guild_id: str) -> GuildConfig:
        return await self.store.run(lambda tx: self._config(tx, guild_id))

    async def settings_export(self, guild_id: str) -> dict[str, Any]:
        """The settings as saved, secrets masked: what exports and text boxes show."""
        return masked_document((await self.config(guild_id)).document)

    async def save_rules(self, guild_id: str, raw: str | bytes) -> RulesSaved:
        """Validate and save rules; refused input, or input with nothing valid, saves nothing."""
        labels = (await self.config(guild_id)).settings.classifier.labels
        validation = validate_and_normalize(raw, labels)
        if validation.refused:
            return RulesSaved(validation, saved=False)
        if not validation.rules and validation.dropped:
            return RulesSaved(
                validation,
                saved=False,
                reason="No valid rule was found, so the rules you had are kept.",
            )
        await self.store.run(lambda tx: tx.save_rules(guild_id, validation.rules))
        return RulesSaved(validation, saved=True)

    async def save_settings(self, guild_id: str, raw: str | bytes, at: datetime) -> SettingsResult:
        """Validate and save settings (or raise ``SettingsInvalid``), then drain the queue.
        A secret pasted back masked, as the export shows it, keeps the stored secret."""
        stored = (await self.config(guild_id)).document
        result = parse_settings(raw, stored)
        if self.outbound is not None:
            # After the masked values are restored: the guard checks the URLs that will be
            # called, not the "…" an export shows.
            await self.outbound.check_settings(result.settings)

        def unit(tx: Tx) -> _Result:
            tx.save_settings(guild_id, result.settings.to_document())
            tx.enable_destinations(guild_id)  # destinations disabled after a 410 try again
            config = self._config(tx, guild_id)
            result.warnings.extend(
                unknown_urgency_labels(config.rules, config.settings.classifier.labels)
            )
            return _Result(guild_id, self._drain(tx, config, at), [])

        await self._run(unit)
        return result

    async def add_answer(
        self, guild_id: str, triggers: str, text: str, by: str, at: datetime
    ) -> SavedAnswer:
        """Save an answer given once per ticket when a customer writes one of ``triggers``
        (comma-separated phrases, as typed in ``/answer add``)."""
        phrases, body = parse_triggers(triggers), check_text(text)
        answer_id = await self.store.run(
            lambda tx: tx.insert_answer(guild_id, phrases, body, by, at)
        )
        return SavedAnswer(answer_id, phrases, body)

    async def remove_answer(self, guild_id: str, answer_id: int) -> bool:
        """Delete a saved answer; whether the server had it."""
        return await self.store.run(lambda tx: tx.delete_answer(guild_id, answer_id))

    # Tickets

    async def open_ticket(
        self,
        guild_id: str,
        customer_id: str,
        subject: str,
        at: datetime,
        *,
        body: str = "",
        type_id: str | None = None,
        source: TicketSource = TicketSource.DISCORD,
        ref: str | None = None,
        channel_id: str | None = None,
        urgency: str | None = None,
        number: int | None = None,
        opening: int | None = None,
    ) -> Ticket:
        """Open a ticket; pass its ``urgency`` label when known, so ticket_opened rules see it.

        ``number`` is one taken earlier with ``reserve_number`` (the bot names the channel
        first). A customer's Discord tickets are held to the server's ``max_open_tickets``.
        ``opening`` is the opening this ticket finishes (``begin_opening``); its ``channel_id``
        is recorded on it in the same unit, so a restart finds the channel.
        """
        subject, body = tickets.subject_and_body(subject, body)
        draft = Ticket(
            id=0,
            guild_id=guild_id,
            number=number or 0,
            customer_id=customer_id,
            subject=subject,
            created_at=at,
            type_id=type_id,
            body=body,
            source=source,
            ref=ref,
            channel_id=channel_id,
        )

        def unit(tx: Tx) -> tuple[Ticket, _Result]:
            config = self._config(tx, guild_id)
            if urgency is not None:
                _check_urgency(config, urgency)
            if source == TicketSource.DISCORD:
                tickets.check_open_limit(
                    tx.open_tickets_of(guild_id, customer_id), config.settings.max_open_tickets
                )
            return self._open(tx, config, draft, urgency, opening)

        return await self._run_returning(unit)

    async def open_tickets(self, batch: Sequence[ApiTicket]) -> list[Ticket]:
        """Open tickets from other systems in one unit of work, in order, their urgency not
        known yet (the ingress worker's batches): all of them, or none if one fails."""

        def unit(tx: Tx) -> list[tuple[Ticket, _Result]]:
            opened = []
            for new in batch:
                subject, body = tickets.subject_and_body(new.subject, new.body)
                draft = Ticket(
                    0, new.guild_id, 0, new.customer_id, subject, new.at, body=body,
                    source=TicketSource.API, ref=new.ref,
                )  # fmt: skip
                opened.append(self._open(tx, self._config(tx, new.guild_id), draft, None, None))
            for _, result in opened:
                self._save_deliveries(tx, result)
            return opened

        opened = await self.store.run(unit)
        for _, result in opened:
            await self._finish(result)
        return [ticket for ticket, _ in opened]

    def _open(
        self,
        tx: Tx,
        config: GuildConfig,
        draft: Ticket,
        urgency: str | None,
        opening: int | None,
    ) -> tuple[Ticket, _Result]:
        """Insert a checked ticket, start its SLA clocks and run the ticket_opened rules."""
        inserted = tx.insert_ticket(draft)
        if opening is not None:
            tx.opening_saved(opening, inserted.id, draft.channel_id)
        # The urgency is saved with what the rules decide.
        ticket = inserted if urgency is None else tickets.with_urgency(inserted, urgency)
        at = draft.created_at
        deadlines = config.settings.sla_policy(draft.type_id).deadlines(at)
        tx.start_clocks(ticket.id, deadlines)
        decision = self._decide(tx, config, ticket, TicketOpened(at), fresh=True)
        ticket = decision.ticket
        _save(tx, inserted, ticket)
        return ticket, _Result(
            ticket.guild_id,
            list(decision.effects),
            list(deadlines.values()),
            ticket,
            config,
            unlabelled=ticket.urgency is None,
        )

    async def begin_opening(
        self,
        guild_id: str,
        customer_id: str,
        subject: str,
        at: datetime,
        *,
        body: str = "",
        type_id: str | None = None,
    ) -> tuple[GuildConfig, Ticket | Opening]:
        """Begin a Discord ticket in one unit of work: check the server is set up and knows
        ``type_id`` and that the customer may open one (or raise why not), then either find the
        ticket they opened with the same subject moments ago (a double click does not make
        two) or take a number and keep what the ticket needs before its channel exists, so a
        crash while the channel is made is finished or undone after a restart. With the
        server's configuration, for making the channel."""
        subject, body = tickets.subject_and_body(subject, body)

        def unit(tx: Tx) -> tuple[GuildConfig, Ticket | Opening]:
            config = self._config(tx, guild_id)
            if config.setup is None:
                raise DomainError(
                    "This server is not set up for tickets yet: an admin runs /setup."
                )
            types = config.settings.types
            if type_id is not None and type_id not in types:
                known = ", ".join(types) or "none"
                raise DomainError(f"There is no ticket type {type_id!r} here (types: {known}).")
            mine = tx.open_tickets_of(guild_id, customer_id)
            twin = tickets.duplicate_of(mine, subject, at)
            if twin is not None:
                return config, twin
            tickets.check_open_limit(mine, config.settings.max_open_tickets)
            opening = tx.insert_opening(
                guild_id, customer_id, subject, body=body, type_id=type_id, at=at
            )
            return config, opening

        return await self.store.run(unit)

    async def reserve_number(self, guild_id: str) -> int:
        """Take the server's next ticket number now (the bot names a channel before opening)."""
        return await self.store.run(lambda tx: tx.reserve_number(guild_id))

    async def set_urgency(self, ticket_id: int, label: str, at: datetime) -> list[Effect]:
        """Record a ticket's urgency (the classifier's label, or staff's).

        When it was not known yet, the ticket_opened rules with an urgency condition run now,
        as they would have at opening; a later change of label runs no rules.
        """

        def unit(tx: Tx) -> _Result:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            _check_urgency(config, label)
            ticket = tickets.with_urgency(stored, label)
            effects: list[Effect] = []
            if stored.urgency is None:
                decision = self._decide(tx, config, ticket, UrgencyKnown(at))
                ticket, effects = decision.ticket, list(decision.effects)
            _save(tx, stored, ticket)
            return _Result(ticket.guild_id, effects, [], ticket, config)

        return await self._run(unit, run=self._labels.run)

    async def unlabelled(self, limit: int) -> list[Unlabelled]:
        """Open tickets whose urgency is not known yet, oldest first, each with what the
        classifier reads of it and its server's classifier settings, in one read."""

        def unit(tx: Tx) -> list[Unlabelled]:
            found = []
            for ticket in tx.unlabelled_tickets(limit):
                source = tx.source_event(ticket)
                text = ticket_text(ticket.subject, ticket.body, source[1] if source else None)
                settings = self._config(tx, ticket.guild_id).settings.classifier
                found.append(Unlabelled(ticket.id, ticket.guild_id, text, settings))
            return found

        return await self.store.run(unit)

    async def ticket(self, ticket_id: int) -> Ticket:
        return await self.store.run(lambda tx: _load(tx, ticket_id))

    async def escalation(self, ticket_id: int) -> Escalation:
        """A ticket with what its #ops post or webhook needs, in one read."""

        def unit(tx: Tx) -> Escalation:
            ticket = _load(tx, ticket_id)
            return Escalation(ticket, self._config(tx, ticket.guild_id), tx.source_event(ticket))

        return await self.store.run(unit)

    async def ticket_by_channel(self, channel_id: str) -> Ticket | None:
        return await self.store.run(lambda tx: tx.ticket_by_channel(channel_id))

    async def clocks(self, ticket_id: int) -> list[tuple[SlaTarget, datetime, str]]:
        """A ticket's SLA clocks: (target, deadline, status) each, by target."""
        return await self.store.run(lambda tx: tx.clocks(ticket_id))

    async def post_message(
        self, ticket_id: int, author_id: str, content: str, at: datetime, *, is_bot: bool = False
    ) -> list[Effect]:
        """A message in a ticket: first staff reply for SLA, then ``message_contains`` rules.
        A closed ticket refuses it; a bot's message changes nothing."""

        def unit(tx: Tx) -> _Result:
            stored = _load(tx, ticket_id)
            return self._message(tx, stored, author_id, content, at, is_bot=is_bot)

        return await self._run(unit)

    async def post_in_channel(
        self, channel_id: str, author_id: str, content: str, at: datetime, *, is_bot: bool
    ) -> list[Effect]:
        """A message in a Discord channel: a ticket's message when the channel is a ticket's
        and it takes the message (``tickets.takes_message``); otherwise nothing, silently."""

        def unit(tx: Tx) -> _Result:
            stored = tx.ticket_by_channel(channel_id)
            if stored is None:
                return _Result("", [], [])
            return self._message(tx, stored, author_id, content, at, is_bot=is_bot, quiet=True)

        return await self._run(unit)

    def _message(
        self,
        tx: Tx,
        stored: Ticket,
        author_id: str,
        content: str,
        at: datetime,
        *,
        is_bot: bool,
        quiet: bool = False,
    ) -> _Result:
        """One message of a ticket; ``quiet`` drops one the ticket does not take instead of
        refusing it (in Discord nobody asked the desk, the message is just there)."""
        config = self._config(tx, stored.guild_id)
        kind = tickets.author_kind(
            stored, author_id, is_staff=config.settings.is_staff(author_id), is_bot=is_bot
        )
        nothing = _Result(stored.guild_id, [], [])
        if quiet and not tickets.takes_message(stored, kind):
            return nothing
        ticket, first_reply = tickets.record_message(stored, kind, at)  # refused when closed
        if not tickets.takes_message(ticket, kind):
            return nothing
        if first_reply:
            clock = tx.pending_clocks(ticket.id).get(SlaTarget.FIRST_RESPONSE)
            # A reply after the deadline leaves the clock pending: the breach still fires.
            if clock is not None and tickets.target_met(clock.deadline, at):
                tx.resolve_clock(clock, "met", at)
        event = MessagePosted(at, author_id, kind, content)
        decision = self._decide(tx, config, ticket, event)
        ticket, effects = decision.ticket, list(decision.effects)
        _save(tx, stored, ticket)
        matching = matching_answers(ticket, kind, content, config.answers)
        reply = first_not_sent(matching, set(tx.answers_sent(ticket.id))) if matching else None
        if reply is not None:
            tx.mark_answer_sent(ticket.id, reply.id)
            effects.append(AnswerReplied(at, ticket.id, reply.id, reply.text))
        return _Result(ticket.guild_id, effects, [], ticket, config)

    async def escalate(
        self, ticket_id: int, by: str, at: datetime, reason: str | None = None
    ) -> list[Effect]:
        """A staff member escalates; ``ticket_escalated`` rules run."""

        def unit(tx: Tx) -> _Result:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            why = (reason or "").strip() or "Escalated by staff"
            ticket = tickets.escalate_by_staff(stored, why, is_staff=config.settings.is_staff(by))
            decision = self._decide(tx, config, ticket, TicketEscalated(at, why))
            ticket = decision.ticket
            _save(tx, stored, ticket)
            effects = [Escalated(at, ticket.id, why, None), *decision.effects]
            return _Result(ticket.guild_id, effects, [], ticket, config)

        return await self._run(unit)

    async def assign(self, ticket_id: int, agent: str, by: str, at: datetime) -> list[Effect]:
        """Assign by hand (a claim or /ticket assign); capacity does not apply."""

        def unit(tx: Tx) -> _Result:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            if not config.settings.is_staff(by):
                raise DomainError("Only staff can assign tickets.")
            ticket = tickets.assign(stored, agent, is_staff=config.settings.is_staff(agent))
            if ticket is None:
                return _Result(stored.guild_id, [], [])
            _save(tx, stored, ticket)
            tx.dequeue([ticket.id])
            effects: list[Effect] = [Assigned(at, ticket.id, agent, None)]
            if stored.assignee_id is not None:
                effects.extend(self._drain(tx, config, at))
            return _Result(ticket.guild_id, effects, [])

        return await self._run(unit)

    async def discard(self, ticket_id: int) -> None:
        """Remove a ticket that could not be set up (its Discord channel failed) as if it had
        never been opened; its effects are the caller's to drop."""
        await self.store.run(lambda tx: tx.delete_ticket(ticket_id))
        self._deadline_known = False  # its SLA clocks are gone

    async def claim(self, ticket_id: int, agent: str, at: datetime) -> tuple[Ticket, list[Effect]]:
        """A staff member takes an escalated ticket from #ops (or with ``/ticket claim``): the
        ticket as claimed (for the answer, without reading it again) and the effects; none
        when it was theirs already."""

        def unit(tx: Tx) -> tuple[tuple[Ticket, list[Effect]], _Result]:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            ticket = tickets.claim(stored, agent, is_staff=config.settings.is_staff(agent))
            if ticket is None:
                return (stored, []), _Result(stored.guild_id, [], [])
            _save(tx, stored, ticket)
            tx.dequeue([ticket.id])
            effects: list[Effect] = [Assigned(at, ticket.id, agent, None)]
            if stored.assignee_id not in (None, agent):  # the previous assignee has room again
                effects.extend(self._drain(tx, config, at))
            return (ticket, effects), _Result(ticket.guild_id, effects, [])

        return await self._run_returning(unit)

    async def tag(self, ticket_id: int, tag: str, by: str, *, add: bool) -> Ticket:
        """Staff add or remove a tag by hand (no rule runs: tags are not a trigger)."""

        def unit(tx: Tx) -> Ticket:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            is_staff = config.settings.is_staff(by)
            ticket = tickets.tag_by_staff(stored, tag, add=add, is_staff=is_staff)
            _save(tx, stored, ticket)
            return ticket

        return await self.store.run(unit)

    async def close(
        self, ticket_id: int, by: str, at: datetime, *, steps: CloseSteps | None = None
    ) -> list[Effect]:
        """Close a ticket; with ``steps``, its Discord steps are saved as pending with it."""

        def unit(tx: Tx) -> _Result:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            ticket = tickets.close(stored, by, at, is_staff=config.settings.is_staff(by))
            _save(tx, stored, ticket)
            if steps is not None:
                tx.insert_closing(
                    Closing(
                        ticket_id=ticket.id,
                        guild_id=ticket.guild_id,
                        channel_id=ticket.channel_id,
                        closed_by=by,
                        closed_by_name=steps.closed_by_name,
                        reason=steps.reason,
                        upload_limit=steps.upload_limit,
                        closed_at=at,
                        delete_at=at + steps.delete_after,
                        next_at=at,
                    )
                )
            for target, clock in tx.pending_clocks(ticket.id).items():
                met = target is SlaTarget.RESOLUTION and tickets.target_met(clock.deadline, at)
                tx.resolve_clock(clock, "met" if met else "stopped", at)
            effects: list[Effect] = []
            # An empty queue (most closes) holds neither this ticket nor any to assign.
            if tx.has_queue(ticket.guild_id):
                tx.dequeue([ticket.id])
                if ticket.assignee_id is not None:
                    effects = self._drain(tx, config, at, queued=True)
            return _Result(ticket.guild_id, effects, [])

        effects = await self._run(unit)
        if steps is not None:
            self.changes.changed(Topic.CLOSINGS)  # the bot's closings loop does them now
        return effects

    async def rate(self, ticket_id: int, by: str, rating: int, at: datetime) -> list[Effect]:
        """The customer rates a closed ticket; a low rating fires ``csat_negative``."""

        def unit(tx: Tx) -> _Result:
            stored = _load(tx, ticket_id)
            config = self._config(tx, stored.guild_id)
            ticket = tickets.rate(stored, by, rating)
            decision = self._decide(tx, config, ticket, TicketRated(at, rating))
            _save(tx, stored, decision.ticket)
            return _Result(ticket.guild_id, list(decision.effects), [], decision.ticket, config)

        return await self._run(unit)

    async def set_duty(
        self, guild_id: str, user_id: str, on_duty: bool, at: datetime
    ) -> list[Effect]:
        """Go on or off duty for round robin; coming on duty takes queued tickets."""

        def unit(tx: Tx) -> _Result:
            config = self._config(tx, guild_id)
            if not config.settings.is_staff(user_id):
                raise DomainError("Only staff go on or off duty.")
            tx.set_duty(guild_id, user_id, on_duty)
            return _Result(guild_id, self._drain(tx, config, at) if on_duty else [], [])

        return await self._run(unit)

    async def dry_run(
        self, guild_id: str, content: str, at: datetime, type_id: str | None = None
    ) -> list[Firing]:
        """Which rules a customer's message would fire, and what they would do; saves nothing."""

        def unit(tx: Tx) -> list[Firing]:
            config = self._config(tx, guild_id)
            ticket = Ticket(0, guild_id, 0, "customer", "(test)", at, type_id=type_id)
            event = MessagePosted(at, "customer", AuthorKind.CUSTOMER, content)
            trigger = trigger_for(event, ticket, config.settings)
            routing = None
            if trigger is not None and config.ruleset.needs_routing(trigger):
                routing = tx.routing_state(guild_id, config.settings.capacity, [])
            context = Context(config.ruleset, config.settings, routing)
            return list(run_rules(ticket, event, context).firings)

        return await self.store.run(unit)

    async def stats(self, guild_id: str, now: datetime, days: int = 30) -> DeskStats:
        since = now - timedelta(days=days)

        def unit(tx: Tx) -> DeskStats:
            config = self._config(tx, guild_id)
            return desk_stats(
                tx.tickets_since(guild_id, since),
                tx.breaches_since(guild_id, since),
                config.settings.csat_negative_max,
            )

        return await self.store.run(unit)

    async def save_setup(self, setup: DiscordSetup) -> None:
        await self.store.run(lambda tx: tx.save_discord_setup(setup))

    async def save_roster(
        self, guild_id: str, roster: Mapping[str, Iterable[str]], at: datetime
    ) -> list[Effect]:
        """Refresh who holds the staff roles; new staff may take queued tickets."""

        def unit(tx: Tx) -> _Result:
            if not tx.save_roster(guild_id, roster):
                return _Result(guild_id, [], [])
            return _Result(guild_id, self._drain(tx, self._config(tx, guild_id), at), [])

        return await self._run(unit)

    async def firings(self, guild_id: str, limit: int = 20) -> list[Firing]:
        return await self.store.run(lambda tx: tx.recent_firings(guild_id, limit))

    # SLA

    async def next_deadline(self) -> datetime | None:
        """The earliest pending SLA deadline of any ticket."""
        if not self._deadline_known:
            self._next_deadline = await self.store.run(lambda tx: tx.next_deadline())
            self._deadline_known = True
        return self._next_deadline

    async def process_due(self, until: datetime, *, inclusive: bool = True) -> list[Effect]:
        """Fire every SLA breach whose deadline has come by ``until``, each at its own deadline."""
        effects: list[Effect] = []
        while True:
            upcoming = await self.next_deadline()
            if upcoming is None or upcoming > until or (upcoming == until and not inclusive):
                return effects

            def unit(tx: Tx) -> list[_Result]:
                results = [self._breach(tx, c) for c in tx.due_clocks(until, inclusive=inclusive)]
                self._next_deadline = tx.next_deadline()
                for result in results:
                    self._save_deliveries(tx, result)
                return results

            for result in await self.store.run(unit):
                effects.extend(result.effects)
                await self._finish(result)

    def _breach(self, tx: Tx, clock: SlaClock) -> _Result:
        stored = _load(tx, clock.ticket_id)
        config = self._config(tx, stored.guild_id)
        tx.resolve_clock(clock, "breached", clock.deadline)
        decision = self._decide(tx, config, stored, SlaBreach(clock.deadline, clock.target))
        _save(tx, stored, decision.ticket)
        effects = [SlaBreached(clock.deadline, stored.id, clock.target), *decision.effects]
        # Not handing the ticket on: another of its clocks may breach later in this unit, and
        # its outbox rows are made once all have (from the ticket as they leave it).
        return _Result(stored.guild_id, effects, [])

    # Internals

    def _decide(
        self, tx: Tx, config: GuildConfig, ticket: Ticket, event: Event, *, fresh: bool = False
    ) -> Decision:
        """Gather routing state if rules may need it, run the rules, and save their firings and
        routing; the decision, whose ticket the caller saves and whose effects it publishes. A
        ``fresh`` ticket, inserted in this unit, cannot be queued yet."""
        routing = None
        trigger = trigger_for(event, ticket, config.settings)
        if trigger is not None and config.ruleset.needs_routing(trigger):
            maybe_queued = [] if fresh else [ticket.id]
            routing = tx.routing_state(ticket.guild_id, config.settings.capacity, maybe_queued)
        decision = run_rules(ticket, event, Context(config.ruleset, config.settings, routing))
        if decision.firings:
            tx.insert_firings(ticket.guild_id, decision.firings)
        if decision.routing is not None:
            tx.enqueue(ticket.guild_id, decision.queued)
            tx.save_pointers(ticket.guild_id, decision.routing)
        return decision

    def _drain(
        self, tx: Tx, config: GuildConfig, at: datetime, *, queued: bool = False
    ) -> list[Effect]:
        """Assign this server's queued tickets, oldest first, to whoever is eligible now
        (``queued``: the caller has seen the queue is not empty); the assignments' effects."""
        if not queued and not tx.has_queue(config.guild_id):
            return []
        settings = config.settings
        routing = tx.routing_state(config.guild_id, settings.capacity)
        queue = tx.queue(config.guild_id)
        drained = drain_queue(queue, settings.pool, settings.pools(), routing)
        effects: list[Effect] = []
        for entry, agent in drained.assignments:
            ticket = _load(tx, entry.ticket_id)
            _save(tx, ticket, tickets.assign_round_robin(ticket, agent))
            effects.append(Assigned(at, ticket.id, agent, entry.rule_id))
        tx.dequeue(entry.ticket_id for entry, _ in drained.assignments)
        tx.save_pointers(config.guild_id, drained.routing)
        return effects

    async def _run(
        self,
        unit: Callable[[Tx], _Result],
        run: Callable[[Callable[[Tx], _Result]], Awaitable[_Result]] | None = None,
    ) -> list[Effect]:
        """Run ``unit`` with its outbox rows (``run``: the store's, or a group commit's), then
        publish and announce what it did."""

        def with_deliveries(tx: Tx) -> _Result:
            result = unit(tx)
            self._save_deliveries(tx, result)
            return result

        result = await (run or self.store.run)(with_deliveries)
        await self._finish(result)
        return result.effects

    async def _run_returning(self, unit: Callable[[Tx], tuple[T, _Result]]) -> T:
        def with_deliveries(tx: Tx) -> tuple[T, _Result]:
            value, result = unit(tx)
            self._save_deliveries(tx, result)
            return value, result

        value, result = await self.store.run(with_deliveries)
        await self._finish(result)
        return value

    def _save_deliveries(self, tx: Tx, result: _Result) -> None:
        """Put each escalation in the outbox, once per destination, in the same transaction.
        While the handoff is open, an #ops post is held for this process's worker with its try
        marked: the mark is durable before the worker asks Discord, as a try's must be, and it
        only says "look before posting again", which is true of a post not tried yet too."""
        if not self.outbox:
            return
        hold = self.handoff is not None and self.handoff.open
        rows: list[tuple[str, int, str, str, datetime]] = []
        for effect in result.effects:
            if not isinstance(effect, Escalated):
                continue
            if result.ticket is not None and result.ticket.id == effect.ticket_id:
                ticket = result.ticket
            else:
                ticket = _load(tx, effect.ticket_id)
            if result.config is not None and result.config.guild_id == ticket.guild_id:
                config = result.config
            else:
                config = self._config(tx, ticket.guild_id)
            source = tx.source_event(ticket)
            known = delivery.facts(ticket, source[1] if source else {})
            reason = (
                f"Rule: {effect.rule_name or effect.rule_id}" if effect.rule_id else effect.reason
            )
            # The row names its destination (never its URL or secret, which stay sealed in
            # the settings); the worker looks them up when it sends.
            for d in delivery.destinations(config.settings, known):
                row = (ticket.guild_id, ticket.id, d.reference.to_json(), reason, effect.at)
                if hold and isinstance(d, Ops):
                    event_id = delivery.new_event_id(effect.at, secrets.token_bytes(10))
                    held = tx.hold_delivery(row, event_id)
                    result.handed.append(Handed(held, Escalation(ticket, config, source)))
                else:
                    rows.append(row)
        if rows:
            tx.insert_deliveries(rows)
            result.deliveries = True

    async def _finish(self, result: _Result) -> None:
        if result.handed:
            assert self.handoff is not None
            self.handoff.put(result.handed)
        if result.deliveries:
            self.changes.changed(Topic.OUTBOX)
        if result.unlabelled:
            self.changes.changed(Topic.URGENCY)
        if result.new_deadlines:
            if self._deadline_known:
                earliest = min(result.new_deadlines)
                if self._next_deadline is None or earliest < self._next_deadline:
                    self._next_deadline = earliest
            self.changes.changed(Topic.DEADLINES)
        if result.effects:
            await self.sink.publish(result.guild_id, result.effects)


def _check_urgency(config: GuildConfig, label: str) -> None:
    labels = config.settings.classifier.labels
    if label not in labels:
        raise DomainError(
            f"{label!r} is not an urgency label of this server (use {', '.join(labels)})."
        )


def _save(tx: Tx, stored: Ticket, ticket: Ticket) -> None:
    """Save what the core returned, when it differs from the ticket as it was read."""
    if ticket != stored:
        tx.save_ticket(ticket)


def _load(tx: Tx, ticket_id: int) -> Ticket:
    ticket = tx.ticket(ticket_id)
    if ticket is None:
        raise TicketNotFound(f"There is no ticket with id {ticket_id}.")
    return ticket
