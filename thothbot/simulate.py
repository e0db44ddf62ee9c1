"""``thothbot simulate``: play a scenario through the real desk on an in-memory database.

A scenario is JSON Lines, one happening per line, each with ``at`` (ISO-8601 with an offset,
never going back). SLA deadlines that pass between two lines are processed at their own time,
before the later line; a deadline equal to a line's time is processed after that line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Any, BinaryIO, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from thothbot.application import standalone_desk
from thothbot.core.errors import DomainError, InvalidInput, RulesRefused
from thothbot.core.models import (
    AnswerReplied,
    Assigned,
    AssignmentQueued,
    Effect,
    Escalated,
    RuleFired,
    SlaBreached,
    TagAdded,
    TicketSource,
)
from thothbot.core.rules import Problem
from thothbot.core.settings import parse_settings
from thothbot.service import Desk, RecordingSink

GUILD = "simulation"


class LineKind(StrEnum):
    """What a line of the simulation's output says: an effect, or a scenario line refused."""

    RULE_FIRED = "rule_fired"
    TAG_ADDED = "tag_added"
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    ASSIGNMENT_QUEUED = "assignment_queued"
    SLA_BREACHED = "sla_breached"
    ANSWER_REPLIED = "answer_replied"
    REJECTED = "rejected"


class ScenarioError(InvalidInput):
    """A malformed scenario line; the simulation stops before anything runs."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    at: datetime

    @field_validator("at", mode="before")
    @classmethod
    def _aware(cls, value: object) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 time string, like 2026-11-23T09:00:00+01:00")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f'"{value}" is not an ISO-8601 time') from None
        if moment.tzinfo is None:
            raise ValueError(f'"{value}" has no UTC offset; add one, like +00:00 or Z')
        return moment


class OpenLine(_Line):
    kind: Literal["open"]
    ticket: str
    user: str
    subject: str
    type: str | None = None
    body: str = ""
    urgency: str | None = None  # as the classifier would label it, for urgency rules


class MessageLine(_Line):
    kind: Literal["message"]
    ticket: str
    user: str
    content: str


class EscalateLine(_Line):
    kind: Literal["escalate"]
    ticket: str
    user: str
    reason: str | None = None


class CloseLine(_Line):
    kind: Literal["close"]
    ticket: str
    user: str


class RateLine(_Line):
    kind: Literal["rate"]
    ticket: str
    user: str
    rating: int


class DutyLine(_Line):
    kind: Literal["duty"]
    user: str
    on: bool


class TickLine(_Line):
    kind: Literal["tick"]


ScenarioLine = Annotated[
    OpenLine | MessageLine | EscalateLine | CloseLine | RateLine | DutyLine | TickLine,
    Field(discriminator="kind"),
]
_LINE = TypeAdapter[ScenarioLine](ScenarioLine)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = ("open", "message", "escalate", "close", "rate", "duty", "tick")


def read_scenario(source: Iterable[bytes]) -> Iterator[tuple[int, ScenarioLine]]:
    """Every non-blank line with its number, parsed as it is read (a scenario of any length
    costs the memory of one line); raises ``ScenarioError`` at the first bad one."""
    previous: datetime | None = None
    # Lines end at b"\n" only: JSON allows U+2028, U+0085 and friends raw inside strings.
    # UTF-8 never puts a "\n" byte inside a character, so decoding line by line is exact.
    for number, data in enumerate(source, start=1):
        raw = data.removesuffix(b"\n").decode("utf-8", errors="replace")
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except ValueError as error:
            raise ScenarioError(number, f"not valid JSON ({error})") from None
        if not isinstance(document, dict):
            raise ScenarioError(number, "each line must be a JSON object")
        if document.get("kind") not in KINDS:
            raise ScenarioError(
                number, f"unknown kind {json.dumps(document.get('kind'))}; use one of {KINDS}"
            )
        try:
            line = _LINE.validate_python(document)
        except ValidationError as error:
            raise ScenarioError(number, _first_problem(error)) from None
        if previous is not None and line.at < previous:
            raise ScenarioError(number, f"time goes back ({line.at.isoformat()} < {previous})")
        previous = line.at
        yield number, line


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(p) for p in problem["loc"][1:])  # drop the discriminator tag
    if problem["type"] == "missing":
        return f'"{where}" is missing'
    if problem["type"] == "extra_forbidden":
        return f'"{where}" is not a field of this kind of line'
    return f'"{where}": {problem["msg"].removeprefix("Value error, ")}'


Emit = Callable[[dict[str, Any]], None]


class Simulation:
    """Plays parsed scenario lines against a desk and emits one JSON-ready object per effect."""

    def __init__(self, desk: Desk, sink: RecordingSink, emit: Emit) -> None:
        self.desk = desk
        self.sink = sink
        self.emit = emit
        self.ids: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.zone: tzinfo = UTC  # effects are shown in the offset of the scenario's first line

    async def run(self, lines: Iterable[tuple[int, ScenarioLine]]) -> None:
        first = True
        # Effects are printed, not promised to anyone: the units share commits.
        async with self.desk.batch():
            for number, line in lines:
                if first:
                    self.zone, first = line.at.tzinfo or UTC, False
                await self.desk.process_due(line.at, inclusive=False)
                self._flush()
                try:
                    await self._apply(line)
                except DomainError as error:
                    self._reject(number, line, str(error))
                self._flush()
                await self.desk.process_due(line.at, inclusive=True)
                self._flush()

    async def _apply(self, line: ScenarioLine) -> None:
        desk = self.desk
        match line:
            case OpenLine():
                if line.ticket in self.ids:
                    raise DomainError(f"Ticket {line.ticket} was already opened.")
                ticket = await desk.open_ticket(
                    GUILD, line.user, line.subject, line.at, body=line.body, type_id=line.type,
                    source=TicketSource.SIMULATE, ref=line.ticket, urgency=line.urgency,
                )  # fmt: skip
                self.ids[line.ticket] = ticket.id
                self.names[ticket.id] = line.ticket
            case MessageLine():
                await desk.post_message(self._id(line.ticket), line.user, line.content, line.at)
            case EscalateLine():
                await desk.escalate(self._id(line.ticket), line.user, line.at, line.reason)
            case CloseLine():
                await desk.close(self._id(line.ticket), line.user, line.at)
            case RateLine():
                await desk.rate(self._id(line.ticket), line.user, line.rating, line.at)
            case DutyLine():
                await desk.set_duty(GUILD, line.user, line.on, line.at)
            case TickLine():
                pass

    def _id(self, name: str) -> int:
        if name not in self.ids:
            raise DomainError(f"There is no ticket {name}; open it first.")
        return self.ids[name]

    def _flush(self) -> None:
        for effect in self.sink.effects:
            self.emit(effect_line(effect, self.names[effect.ticket_id], self.zone))
        self.sink.effects.clear()

    def _reject(self, number: int, line: ScenarioLine, message: str) -> None:
        at = line.at.astimezone(self.zone).isoformat()
        rejected: dict[str, Any] = {"at": at, "kind": LineKind.REJECTED.value, "line": number}
        ticket = getattr(line, "ticket", None)
        if ticket is not None:
            rejected["ticket"] = ticket
        self.emit(rejected | {"message": message})


def effect_line(effect: Effect, ticket: str, zone: tzinfo = UTC) -> dict[str, Any]:
    """An effect as one JSON object: ``at``, ``kind``, ``ticket``, then what it says."""
    at = effect.at.astimezone(zone).isoformat()
    body: dict[str, Any]
    kind: LineKind
    match effect:
        case RuleFired():
            kind, body = (
                LineKind.RULE_FIRED,
                {"rule": effect.rule_id, "trigger": effect.trigger.value},
            )
        case TagAdded():
            kind, body = LineKind.TAG_ADDED, {"tag": effect.tag, "rule": effect.rule_id}
        case Escalated():
            kind, body = LineKind.ESCALATED, {"reason": effect.reason, "rule": effect.rule_id}
        case Assigned():
            kind, body = LineKind.ASSIGNED, {"assignee": effect.assignee_id, "rule": effect.rule_id}
        case AssignmentQueued():
            kind, body = LineKind.ASSIGNMENT_QUEUED, {"rule": effect.rule_id}
        case SlaBreached():
            kind, body = LineKind.SLA_BREACHED, {"target": effect.target.value}
        case AnswerReplied():
            kind, body = LineKind.ANSWER_REPLIED, {"answer": effect.answer_id}
    return {"at": at, "kind": kind.value, "ticket": ticket} | body


@dataclass(frozen=True, slots=True)
class Report:
    """What the inputs looked like: the rules' problems and the settings' warnings."""

    rule_problems: list[Problem]
    settings_warnings: list[tuple[str, str]]


async def run_scenario(
    rules: str | bytes,
    settings: str | bytes | None,
    scenario: BinaryIO,
    emit: Emit,
    *,
    database: str | None = None,
) -> Report:
    """Check every input, then play the scenario, emitting effects as they happen.

    The scenario is read twice, a line at a time: checked whole first, then played. Raises
    ``InvalidInput`` (refused rules, invalid settings, a malformed line) before it runs. The
    desk works on an in-memory database unless ``database`` names a file.
    """
    start = _check(scenario)
    scenario.seek(0)
    warnings = parse_settings(settings).warnings if settings is not None else []
    sink = RecordingSink()
    async with standalone_desk(sink, database) as desk:
        if settings is not None:
            # First: rules' urgency labels are checked against the settings' classifier labels.
            # Without lines there is no ticket for the settings to act on, so any time will do.
            await desk.save_settings(GUILD, settings, start or _EPOCH)
        saved = await desk.save_rules(GUILD, rules)
        if saved.validation.refused:
            raise RulesRefused(saved.validation.problems[0].message)
        await Simulation(desk, sink, emit).run(read_scenario(scenario))
    return Report(saved.validation.problems, warnings)


def _check(scenario: BinaryIO) -> datetime | None:
    """Read the whole scenario for its first bad line (``ScenarioError``); the first line's time."""
    start = None
    for _, line in read_scenario(scenario):
        if start is None:
            start = line.at
    return start


class PrettyPrinter:
    """Effects as a table for people: time, ticket, and what happened in words."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._header = False

    def emit(self, line: dict[str, Any]) -> None:
        if not self._header:
            self.out.write(f"{'TIME':<25}  {'TICKET':<8}  WHAT\n")
            self._header = True
        self.out.write(f"{line['at']:<25}  {line.get('ticket', ''):<8}  {_describe(line)}\n")


def _describe(line: dict[str, Any]) -> str:
    rule = f" (rule {line['rule']})" if line.get("rule") else ""
    match line["kind"]:
        case LineKind.RULE_FIRED:
            return f"rule {line['rule']} fired on {line['trigger']}"
        case LineKind.TAG_ADDED:
            return f'  tagged "{line["tag"]}"'
        case LineKind.ESCALATED:
            return f"  escalated: {line['reason']}" if rule else f"escalated: {line['reason']}"
        case LineKind.ASSIGNED:
            return f"  assigned to {line['assignee']}{rule}"
        case LineKind.ASSIGNMENT_QUEUED:
            return "  queued for assignment: nobody is eligible right now"
        case LineKind.SLA_BREACHED:
            return f"SLA breached: {line['target'].replace('_', ' ')}"
        case LineKind.REJECTED:
            return f"line {line['line']} rejected: {line['message']}"
    return json.dumps(line)
