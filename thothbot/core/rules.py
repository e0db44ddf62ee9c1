"""Validation and normalization of a server's automation rules (Settings → Automation).

The admin pastes a JSON array of rules. ``validate_and_normalize`` refuses what cannot be read
as one, drops the rules and actions that are invalid, and reports every problem with a path
(``[3].match``) and a sentence the admin can act on. Its output normalizes to itself.

What it keeps are ``Rule`` values, the engine's own: from here on rules travel typed, and JSON
is only their form at the edges (the stored text, exports, ``thothbot rules validate``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, NoReturn

from thothbot.core import jsonkeys
from thothbot.core.models import (
    DEFAULT_URGENCY_LABELS,
    MAX_TAG_LENGTH,
    ActionType,
    Ticket,
    Trigger,
)

MAX_RULES = 25
MAX_INPUT_BYTES = 256 * 1024

_MAX_ID = 64
_MAX_NAME = 80
_MAX_MATCH = 200
_MAX_TICKET_TYPE = 64
_MAX_TAG = MAX_TAG_LENGTH

_ID_FORM = re.compile(r"[A-Za-z0-9_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RULE_INDEX = re.compile(r"\[(\d+)\]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BOM = "\ufeff"
_JSON_SPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Action:
    """One normalized action of a rule; ``tag`` is set exactly for ``add_tag``."""

    type: ActionType
    tag: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"type": self.type.value} | ({"tag": self.tag} if self.tag is not None else {})


@dataclass(frozen=True, slots=True)
class Rule:
    """A normalized rule: what the validator keeps, the store saves and the engine runs."""

    id: str
    trigger: Trigger
    actions: tuple[Action, ...]
    enabled: bool = True
    name: str | None = None
    match: str | None = None  # set exactly for message_contains
    type_id: str | None = None
    urgency: tuple[str, ...] | None = None  # None: any urgency, known or not
    # What messages are searched for (casefolded once, not per message); empty unless ``match``.
    match_folded: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = self.match.casefold() if self.match is not None else ""
        object.__setattr__(self, "match_folded", folded)

    @property
    def label(self) -> str:
        return self.name or self.id

    def applies_to(self, ticket: Ticket) -> bool:
        if self.type_id is not None and self.type_id != ticket.type_id:
            return False
        # A ticket whose urgency is not known yet matches no rule with an urgency condition.
        return self.urgency is None or ticket.urgency in self.urgency

    def to_json(self) -> dict[str, Any]:
        """The rule in its normalized JSON form, keys in the order rules are exported."""
        document: dict[str, Any] = {"id": self.id, "enabled": self.enabled}
        if self.name is not None:
            document["name"] = self.name
        document["trigger"] = self.trigger.value
        if self.match is not None:
            document["match"] = self.match
        if self.type_id is not None:
            document["ticketTypeId"] = self.type_id
        if self.urgency is not None:
            document["urgency"] = list(self.urgency)
        document["actions"] = [action.to_json() for action in self.actions]
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Rule:
        """A rule from its normalized JSON (as saved): trusted, not checked again. A rule saved
        before ``enabled`` was always written is enabled."""
        urgency = document.get("urgency")
        return cls(
            id=document["id"],
            trigger=Trigger(document["trigger"]),
            actions=tuple(Action(ActionType(a["type"]), a.get("tag")) for a in document["actions"]),
            enabled=document.get("enabled", True),
            name=document.get("name"),
            match=document.get("match"),
            type_id=document.get("ticketTypeId"),
            urgency=tuple(urgency) if urgency is not None else None,
        )


def rules_json(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """Rules as the JSON array they are stored, exported and printed as."""
    return [rule.to_json() for rule in rules]


def load_rules(text: str) -> list[Rule]:
    """Saved rules (the JSON text ``rules_json`` made) as values."""
    return [Rule.from_json(document) for document in json.loads(text)]


class Severity(StrEnum):
    """What a problem did to the rules."""

    DROPPED_RULE = "dropped_rule"
    DROPPED_ACTION = "dropped_action"
    WARNING = "warning"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where (``[0].actions[1].tag``), how bad, and in words."""

    path: str
    severity: Severity
    message: str

    def line(self) -> str:
        """The problem as ``thothbot rules validate`` and the bot report it."""
        where = f"{self.path}: " if self.path else ""
        return f"{_SEVERITY_WORDS[self.severity]}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class Validation:
    """The normalized rules and every problem found on the way, in rule order."""

    rules: list[Rule]
    problems: list[Problem]

    @property
    def document(self) -> list[dict[str, Any]]:
        """The rules as the normalized JSON array (``thothbot rules validate`` prints it)."""
        return rules_json(self.rules)

    @property
    def refused(self) -> bool:
        """The input was refused as a whole; ``rules`` is empty."""
        return any(p.severity is Severity.REFUSED for p in self.problems)

    @property
    def dropped(self) -> bool:
        """At least one rule or action was dropped."""
        return any(p.severity in _DROPS for p in self.problems)


_SEVERITY_WORDS = {
    Severity.DROPPED_RULE: "dropped rule",
    Severity.DROPPED_ACTION: "dropped action",
    Severity.WARNING: "warning",
    Severity.REFUSED: "refused",
}
_DROPS = frozenset({Severity.DROPPED_RULE, Severity.DROPPED_ACTION})


def validate_and_normalize(raw: str | bytes, labels: Sequence[str] | None = None) -> Validation:
    """Read a pasted rules document (text or UTF-8 bytes) and normalize it; never raises.

    ``labels`` are the server's urgency labels that ``urgency`` conditions may name
    (None: the default low, high and critical).
    """
    try:
        text = _read(raw)
        value, duplicates = _parse(text)
    except _Refusal as refusal:
        return _refuse(refusal.message)
    # json.loads builds only JSON values, and a lone surrogate needs a \udXXX escape: without
    # one, the walk over every value that normalize_rules makes can be skipped.
    validation = _normalize(
        value, check_values=_SURROGATE_ESCAPE.search(text) is not None, labels=labels
    )
    if not duplicates or validation.refused:
        return validation
    return _with_duplicates(validation, duplicates)


def _with_duplicates(
    validation: Validation, duplicates: list[tuple[jsonkeys.Location, str]]
) -> Validation:
    """``validation`` with a warning for each key given twice in one object, in rule order
    (the last value was used, as for any JSON reader; the admin likely meant something else)."""
    warnings = [
        Problem(_location_path((*where, key)), Severity.WARNING, jsonkeys.message(key))
        for where, key in duplicates
    ]
    # Both lists are in rule order; a stable sort by rule keeps each rule's own order.
    merged = sorted([*warnings, *validation.problems], key=_rule_index)
    return Validation(validation.rules, merged)


def _rule_index(problem: Problem) -> int:
    found = _RULE_INDEX.match(problem.path)
    return int(found.group(1)) if found else -1


def _location_path(where: jsonkeys.Location) -> str:
    """``[2].actions[0]`` for the location (2, "actions", 0)."""
    return "".join(f"[{part}]" if isinstance(part, int) else _key_path(part) for part in where)


def normalize_rules(value: object, labels: Sequence[str] | None = None) -> Validation:
    """Normalize an already-parsed JSON value as ``validate_and_normalize`` would; never raises."""
    return _normalize(value, check_values=True, labels=labels)


def _normalize(value: object, *, check_values: bool, labels: Sequence[str] | None) -> Validation:
    """Refuse ``value`` unless it is an array of JSON values, else check it rule by rule."""
    if not isinstance(value, list):
        return _refuse(
            "The rules must be a JSON array of rule objects ([{...}, ...]), "
            f"but this is {_kind(value, json_word=True)}."
        )
    batch = _Batch(value)
    if labels is not None:
        batch.labels = tuple(labels)
    if check_values:
        reason, batch.input_ids = _survey(value)
        if reason is not None:
            return _refuse(reason)
    for index, element in enumerate(value):
        batch.add(index, element)
    return Validation(batch.rules, batch.problems)


# Refusing the input as a whole.


class _Refusal(Exception):
    """The input cannot be read as a JSON array; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _refuse(message: str) -> Validation:
    """A validation that refuses everything with one problem."""
    return Validation(rules=[], problems=[Problem("", Severity.REFUSED, message)])


def _read(raw: str | bytes) -> str:
    """The text of ``raw`` without its BOM; refused when too large, not UTF-8, or blank."""
    if not isinstance(raw, str | bytes | bytearray):  # a caller's mistake, refused all the same
        raise _Refusal(f"The rules must be JSON text, but this is {_kind(raw)}.")
    size = _utf8_size(raw)
    if size > MAX_INPUT_BYTES:
        limit, actual = MAX_INPUT_BYTES // 1024, -(-size // 1024)
        raise _Refusal(f"The rules are {actual} KiB; the limit is {limit} KiB.")
    text = _decode(raw).removeprefix(_BOM)
    if not text.isascii() and _SURROGATE.search(text):
        raise _Refusal(_SURROGATE_REFUSAL)
    if not text.strip(_JSON_SPACE):
        raise _Refusal("The rules are empty; paste a JSON array of rules, or [] for none.")
    return text


def _parse(text: str) -> tuple[object, list[tuple[jsonkeys.Location, str]]]:
    """The JSON value in ``text`` and its repeated keys, or a ``_Refusal`` saying why there is
    no value."""
    try:
        return jsonkeys.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise _Refusal(f"The rules are not valid JSON: {where}: {error.msg}.") from None
    except RecursionError:
        raise _Refusal("The rules are nested too deeply to be read as rules.") from None
    except ValueError:  # an integer longer than Python's int_max_str_digits
        raise _Refusal("The rules are not valid JSON: a number has too many digits.") from None


def _utf8_size(raw: str | bytes) -> int:
    """Size of ``raw`` in UTF-8 bytes, BOM included, as the admin sent it."""
    if isinstance(raw, str):
        return len(raw.encode("utf-8", "surrogatepass"))
    return len(raw)


def _decode(raw: str | bytes) -> str:
    """``raw`` as text; bytes must be UTF-8."""
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Refusal(
            f"The rules are not UTF-8 text (byte {error.start + 1} is invalid); "
            "save them as UTF-8 and try again."
        ) from None


def _reject_constant(name: str) -> NoReturn:
    """Refuse JSON's missing numbers, which Python's parser would otherwise accept."""
    raise _Refusal(f"The rules are not valid JSON: {name} is not a JSON number; use null instead.")


def _survey(value: list[Any]) -> tuple[str | None, frozenset[str]]:
    """Why ``value`` is not JSON data storable as UTF-8 (None if it is), and its ``id`` strings."""
    ids: set[str] = set()
    strings: list[str] = []
    seen: set[int] = set()  # so that shared or circular containers are walked once
    stack: list[list[Any] | dict[Any, Any]] = [value]
    while stack:
        container = stack.pop()
        if id(container) in seen:
            continue
        seen.add(id(container))
        children: Iterable[object] = container
        if isinstance(container, dict):
            strings.extend(container)  # the keys: the join below fails on one that is no string
            if isinstance(ident := container.get("id"), str):
                ids.add(ident)
            children = container.values()
        for child in children:
            if isinstance(child, str):
                strings.append(child)
            elif isinstance(child, (list, dict)):
                stack.append(child)
            elif child is not None and not isinstance(child, (bool, int, float)):
                return f"The rules contain {_kind(child)}, which is not a JSON value.", frozenset()
    try:
        text = "".join(strings)  # one pass in C rather than a search per string
    except TypeError:
        return "The rules contain an object key that is not a string.", frozenset()
    if not text.isascii() and _SURROGATE.search(text):
        return _SURROGATE_REFUSAL, frozenset()
    return None, frozenset(ids)


_SURROGATE_REFUSAL = (
    'The rules contain a lone surrogate such as "\\ud800", which cannot be stored as text.'
)


# Messages.


def _noun(value: object) -> str:
    """The JSON name of ``value``'s type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return f"Python {type(value).__name__}"


def _kind(value: object, *, json_word: bool = False) -> str:
    """What ``value`` is, for a message: "a string", "an array", "null", "a JSON object"."""
    noun = _noun(value)
    if json_word and not noun.startswith("Python"):
        noun = f"JSON {noun}"
    if noun.endswith("null"):
        return noun
    article = "an" if noun[0] in "aeiou" else "a"
    return f"{article} {noun}"


def _quote(text: str, limit: int = 40) -> str:
    """``text`` as a JSON string for a message, shortened when long."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


def _one_of(values: list[str]) -> str:
    """``a, b or c``."""
    return ", ".join(values[:-1]) + " or " + values[-1]


def _key_path(key: str) -> str:
    """``.key`` for a plain identifier, ``["my key"]`` otherwise."""
    if _IDENTIFIER.fullmatch(key):
        return f".{key}"
    return f"[{json.dumps(key, ensure_ascii=False)}]"


def _unknown_key(key: str, known: tuple[str, ...]) -> str:
    """The warning for a key that is not part of the rule format."""
    near = [k for k in known if k.casefold() == key.casefold()]
    hint = f" (keys are case-sensitive: did you mean {_quote(near[0])}?)" if near else ""
    return f"Unknown key {_quote(key)} was ignored{hint}."


# Triggers and action types are handled as plain strings: enum calls and attribute lookups
# would cost more than the rest of a rule's checks.
_TRIGGERS = frozenset(t.value for t in Trigger)
_ACTION_TYPES = frozenset(a.value for a in ActionType)
_MESSAGE_CONTAINS = Trigger.MESSAGE_CONTAINS.value
_ADD_TAG = ActionType.ADD_TAG.value
_TRIGGER_LIST = _one_of([t.value for t in Trigger])
_ACTION_LIST = _one_of([a.value for a in ActionType])
_RULE_DROPPED = ", so the rule was dropped."
_ACTION_DROPPED = ", so the action was dropped."


# Checking one rule.


class _Missing(Enum):
    """Marks a key that is absent, as distinct from one set to null."""

    MISSING = "missing"


_MISSING = _Missing.MISSING


@dataclass(frozen=True, slots=True)
class _Complaint:
    """Why a value was refused, worded to open a sentence: ``"tag" is 52 characters``."""

    text: str


def _text(key: str, value: object, limit: int, *, trim: bool) -> str | _Complaint:
    """``value`` (trimmed if asked) when it is a string of at most ``limit`` characters."""
    if not isinstance(value, str):
        return _Complaint(f'"{key}" must be a string, but it is {_kind(value)}')
    text = value.strip() if trim else str(value)
    if len(text) > limit:
        return _Complaint(f'"{key}" is {len(text)} characters; the limit is {limit}')
    return text


@dataclass(slots=True)
class _RuleCheck:
    """The normalized fields and the problems of one rule, filled in key by key."""

    path: str
    kept_ids: set[str]
    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    trigger: str | None = None  # a valid trigger, once checked
    dropped: bool = False
    labels: tuple[str, ...] = DEFAULT_URGENCY_LABELS  # what ``urgency`` may name

    def drop(self, key: str, complaint: str) -> None:
        """Report a problem with ``key`` that drops the whole rule."""
        self.dropped = True
        self.report(_key_path(key), Severity.DROPPED_RULE, complaint + _RULE_DROPPED)

    def report(self, suffix: str, severity: Severity, message: str) -> None:
        """Record a problem at this rule's path plus ``suffix``."""
        self.problems.append(Problem(self.path + suffix, severity, message))


def _check_id(check: _RuleCheck, value: object) -> None:
    """``id``: kept when well-formed and unused; assigned later when absent."""
    if value is _MISSING or value is None or value == "":
        return
    if not isinstance(value, str):
        check.drop("id", f'"id" must be a string, but it is {_kind(value)}')
    elif len(value) > _MAX_ID:
        check.drop("id", f'"id" is {len(value)} characters; the limit is {_MAX_ID}')
    elif not _ID_FORM.fullmatch(value):
        check.drop("id", '"id" may only contain letters A-Z, digits, "_" and "-"')
    elif value in check.kept_ids:
        check.drop("id", f'"id" is {_quote(value)}, which an earlier rule already uses')
    else:
        check.fields["id"] = str(value)


def _check_enabled(check: _RuleCheck, value: object) -> None:
    """``enabled``: a boolean, true when absent."""
    if value is _MISSING:
        check.fields["enabled"] = True
    elif isinstance(value, bool):
        check.fields["enabled"] = value
    else:
        check.drop("enabled", f'"enabled" must be true or false, but it is {_kind(value)}')


def _check_name(check: _RuleCheck, value: object) -> None:
    """``name``: optional, trimmed, omitted when blank."""
    if value is _MISSING or value is None:
        return
    name = _text("name", value, _MAX_NAME, trim=True)
    if isinstance(name, _Complaint):
        check.drop("name", name.text)
    elif name:
        check.fields["name"] = name


def _check_trigger(check: _RuleCheck, value: object) -> None:
    """``trigger``: required, one of the known triggers."""
    if isinstance(value, str) and value in _TRIGGERS:
        check.trigger = check.fields["trigger"] = str(value)
    elif value is _MISSING:
        check.drop("trigger", f'"trigger" is required (use {_TRIGGER_LIST})')
    elif isinstance(value, str):
        given = _quote(value)
        check.drop("trigger", f'"trigger" is {given}, which is not a trigger (use {_TRIGGER_LIST})')
    else:
        kind = _kind(value)
        check.drop("trigger", f'"trigger" must be one of {_TRIGGER_LIST}, but it is {kind}')


def _check_match(check: _RuleCheck, value: object) -> None:
    """``match``: required text for message_contains, ignored on other triggers."""
    trigger = check.trigger
    if trigger is not None and trigger != _MESSAGE_CONTAINS:
        if value is not _MISSING:
            check.report(
                ".match",
                Severity.WARNING,
                f'"match" only applies to message_contains rules, so it was ignored '
                f"(this rule's trigger is {trigger}).",
            )
        return
    # The trigger is message_contains, or invalid (then a present match is checked anyway,
    # so that the admin sees every problem at once).
    if value is _MISSING:
        if trigger == _MESSAGE_CONTAINS:
            check.drop("match", '"match" is required for a message_contains rule')
        return
    match = _text("match", value, _MAX_MATCH, trim=True)
    if isinstance(match, _Complaint):
        check.drop("match", match.text)
    elif not match:
        check.drop("match", '"match" is empty, and a message_contains rule needs text to find')
    else:
        check.fields["match"] = match


def _check_ticket_type(check: _RuleCheck, value: object) -> None:
    """``ticketTypeId``: optional, not trimmed."""
    if value is _MISSING or value is None:
        return
    type_id = _text("ticketTypeId", value, _MAX_TICKET_TYPE, trim=False)
    if isinstance(type_id, _Complaint):
        check.drop("ticketTypeId", type_id.text)
    elif not type_id:
        check.drop("ticketTypeId", '"ticketTypeId" is empty (leave it out to match every type)')
    else:
        check.fields["ticketTypeId"] = type_id


def _check_urgency(check: _RuleCheck, value: object) -> None:
    """``urgency``: optional; a label or an array of labels, normalized to a list of unique ones."""
    if value is _MISSING or value is None:
        return
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, list):
        kind = _kind(value)
        check.drop("urgency", f'"urgency" must be a label or an array of labels, but it is {kind}')
        return
    if not value:
        check.drop("urgency", '"urgency" is empty (leave it out to match every urgency)')
        return
    wanted: list[str] = []
    for index, label in enumerate(value):
        if not isinstance(label, str):
            check.drop(
                "urgency", f'"urgency" must hold labels, but item {index + 1} is {_kind(label)}'
            )
            return
        if label not in check.labels:
            allowed = _one_of(list(check.labels)) if len(check.labels) > 1 else check.labels[0]
            check.drop(
                "urgency",
                f'"urgency" names {_quote(label)}, which is not one of this server\'s'
                f" urgency labels (use {allowed})",
            )
            return
        if label not in wanted:
            wanted.append(str(label))
    check.fields["urgency"] = wanted


def _check_actions(check: _RuleCheck, value: object) -> None:
    """``actions``: a non-empty array; invalid actions are dropped one by one."""
    if value is _MISSING:
        check.drop("actions", '"actions" is required (a rule needs at least one action)')
        return
    if not isinstance(value, list):
        check.drop("actions", f'"actions" must be an array, but it is {_kind(value)}')
        return
    if not value:
        check.drop("actions", '"actions" is empty (a rule needs at least one action)')
        return
    kept = []
    for index, raw in enumerate(value):
        if (action := _action(check, index, raw)) is not None:
            kept.append(action)
    if kept:
        check.fields["actions"] = kept
    else:
        check.drop("actions", '"actions" has no valid action left')


def _action_type(value: object) -> str | _Complaint:
    """The action's ``type``, or why it has none."""
    if isinstance(value, str) and value in _ACTION_TYPES:
        return str(value)
    if value is _MISSING:
        return _Complaint(f'This action has no "type" (use {_ACTION_LIST})')
    if isinstance(value, str):
        return _Complaint(f'"type" is {_quote(value)}, which is not an action (use {_ACTION_LIST})')
    return _Complaint(f'"type" must be one of {_ACTION_LIST}, but it is {_kind(value)}')


def _action(check: _RuleCheck, index: int, raw: object) -> dict[str, str] | None:
    """The normalized action at ``actions[index]``, or None when it is dropped."""
    path = f".actions[{index}]"
    if not isinstance(raw, dict):
        check.report(
            path,
            Severity.DROPPED_ACTION,
            f"This action is {_kind(raw)}, not an object, so it was dropped.",
        )
        return None
    action_type = _action_type(raw.get("type", _MISSING))
    if isinstance(action_type, _Complaint):
        check.report(path, Severity.DROPPED_ACTION, action_type.text + _ACTION_DROPPED)
        return None
    action = {"type": action_type}
    valid = True
    if action_type == _ADD_TAG:
        valid = _check_tag(check, path, raw.get("tag", _MISSING), action)
    for key in raw:
        if key == "tag" and action_type != _ADD_TAG:
            message = f'"tag" only applies to add_tag actions, so it was ignored on {action_type}.'
            check.report(f"{path}.tag", Severity.WARNING, message)
        elif key not in ("type", "tag"):
            check.report(path + _key_path(key), Severity.WARNING, _unknown_key(key, _ACTION_KEYS))
    return action if valid else None


_ACTION_KEYS = ("type", "tag")


def _check_tag(check: _RuleCheck, path: str, value: object, action: dict[str, str]) -> bool:
    """Put the add_tag action's trimmed ``tag`` into ``action``; False if it has no valid one."""
    if value is _MISSING:
        tag: str | _Complaint = _Complaint('"tag" is required for an add_tag action')
    else:
        tag = _text("tag", value, _MAX_TAG, trim=True)
        if tag == "":
            tag = _Complaint('"tag" is empty')
    if isinstance(tag, _Complaint):
        check.report(f"{path}.tag", Severity.DROPPED_ACTION, tag.text + _ACTION_DROPPED)
        return False
    action["tag"] = tag
    return True


# The table of rule keys, in normalized order: problems are reported in this order too.
_RULE_KEYS: dict[str, Callable[[_RuleCheck, object], None]] = {
    "id": _check_id,
    "enabled": _check_enabled,
    "name": _check_name,
    "trigger": _check_trigger,
    "match": _check_match,
    "ticketTypeId": _check_ticket_type,
    "urgency": _check_urgency,
    "actions": _check_actions,
}
_RULE_KEY_NAMES = tuple(_RULE_KEYS)


# Checking the whole array.


@dataclass(slots=True)
class _Batch:
    """The rules kept so far and the problems found, element by element."""

    source: list[Any]
    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    kept_ids: set[str] = field(default_factory=set)
    input_ids: frozenset[str] | None = None  # found on the first id assignment
    labels: tuple[str, ...] = DEFAULT_URGENCY_LABELS

    def add(self, index: int, element: object) -> None:
        """Check the element at ``index`` and keep it if it is a valid rule within the limit."""
        path = f"[{index}]"
        if not isinstance(element, dict):
            message = f"This rule is {_kind(element)}, not an object, so it was dropped."
            self.problems.append(Problem(path, Severity.DROPPED_RULE, message))
            return
        check = _check_rule(path, element, self.kept_ids, self.labels)
        if not check.dropped and len(self.rules) >= MAX_RULES:
            message = f"Only {MAX_RULES} rules are allowed per server, so this rule was dropped."
            self.problems.append(Problem(path, Severity.DROPPED_RULE, message))
            check.dropped = True
        self.problems.extend(check.problems)
        if check.dropped:
            return
        rule = check.fields  # in normalized order: each check writes only its own key
        if "id" not in rule:
            rule = {"id": self._assign_id(index, element), **rule}
        self.kept_ids.add(rule["id"])
        self.rules.append(Rule.from_json(rule))

    def _assign_id(self, index: int, element: dict[str, Any]) -> str:
        """A deterministic ``rule-xxxxxxxx`` id used by no kept rule and absent from the input."""
        if self.input_ids is None:
            self.input_ids = _survey(self.source)[1]
        canonical = _canonical(element)
        attempt = 0
        while True:
            seed = f"{index}\0{canonical}\0{attempt}".encode("utf-8", "surrogatepass")
            candidate = "rule-" + hashlib.sha256(seed).hexdigest()[:8]
            if candidate not in self.kept_ids and candidate not in self.input_ids:
                return candidate
            attempt += 1


def _check_rule(
    path: str, element: dict[str, Any], kept_ids: set[str], labels: tuple[str, ...]
) -> _RuleCheck:
    """Run every key's check on one rule object, then warn about unknown keys."""
    check = _RuleCheck(path, kept_ids, labels=labels)
    for key, check_key in _RULE_KEYS.items():
        check_key(check, element.get(key, _MISSING))
    for key in element:
        if key not in _RULE_KEYS:
            check.report(_key_path(key), Severity.WARNING, _unknown_key(key, _RULE_KEY_NAMES))
    return check


# One shared encoder: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(element: object) -> str:
    """``element`` as canonical JSON, or "" when it cannot be (circular or absurdly deep)."""
    try:
        return _CANONICAL.encode(element)
    except (ValueError, RecursionError):
        return ""


def unknown_urgency_labels(rules: Sequence[Rule], labels: Sequence[str]) -> list[tuple[str, str]]:
    """Saved rules whose ``urgency`` names a label the classifier no longer has, as warnings.

    Such a rule is kept (the labels may come back) but cannot match until it is edited.
    """
    warnings = []
    for index, rule in enumerate(rules):
        missing = [label for label in rule.urgency or () if label not in labels]
        if missing:
            names = ", ".join(json.dumps(label) for label in missing)
            warnings.append(
                (
                    f"classifier.labels (rule {rule.id})",
                    f"rule [{index}] {json.dumps(rule.id)} uses urgency {names}, which is no"
                    " longer a label, so it will not match those tickets until it is edited.",
                )
            )
    return warnings
