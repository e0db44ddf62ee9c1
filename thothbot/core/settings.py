"""A server's routing, SLA and ticket-type settings: one JSON document with plain-worded checks.

The shape is the one ``thothbot simulate --settings`` reads and the bot's settings commands show::

    {"staff": ["S1", "S2"],
     "types": {"billing": {"label": "Billing", "staff": ["S3"], "sla": {"resolution_minutes": 60}}},
     "capacity": null, "csat_negative_max": 2,
     "sla": {"first_response_minutes": 30, "resolution_minutes": 480,
             "business_hours": {"timezone": "Europe/Berlin",
                                "weekly": {"mon": [["09:00", "17:00"]]},
                                "holidays": ["2026-12-25"]}}}
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from thothbot.core import jsonkeys
from thothbot.core.errors import SettingsInvalid
from thothbot.core.masking import keep_masked
from thothbot.core.models import DEFAULT_URGENCY_LABELS
from thothbot.core.routing import SERVER_POOL
from thothbot.core.sla import BusinessCalendar, SlaPolicy

MAX_SETTINGS_BYTES = 256 * 1024

UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
TypeId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RoleId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")]
Minutes = Annotated[int, Field(gt=0, le=525_600)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BusinessHours(_Strict):
    timezone: str
    weekly: dict[str, list[list[str]]]
    holidays: list[str] = []
    _calendar: BusinessCalendar | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build_calendar(self) -> BusinessHours:
        self._calendar = BusinessCalendar.from_spec(self.timezone, self.weekly, self.holidays)
        return self

    @property
    def calendar(self) -> BusinessCalendar:
        assert self._calendar is not None  # built by the validator
        return self._calendar


class Sla(_Strict):
    first_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    business_hours: BusinessHours | None = None


class TicketType(_Strict):
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)] | (
        None
    ) = None
    staff: list[UserId] = []
    staff_role: RoleId | None = None  # in Discord: members of this role are the type's staff too
    sla: Sla | None = None


MAX_LABELS = 10
MAX_LABEL_LENGTH = 32
MAX_INSTRUCTIONS = 2000
_LABEL_FORM = re.compile(r"[a-z0-9_-]+")


class Classifier(_Strict):
    """The urgency classifier: its labels, lowest first, and the admin's guidance for the model."""

    labels: list[str] = list(DEFAULT_URGENCY_LABELS)
    instructions: str | None = None

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: list[str]) -> list[str]:
        if not labels:
            raise ValueError("needs at least one label (the first is the lowest urgency)")
        if len(labels) > MAX_LABELS:
            raise ValueError(f"has {len(labels)} labels; the limit is {MAX_LABELS}")
        for label in labels:
            if not label:
                raise ValueError("contains an empty label")
            if len(label) > MAX_LABEL_LENGTH:
                raise ValueError(
                    f"label {json.dumps(label[:40])} is {len(label)} characters;"
                    f" the limit is {MAX_LABEL_LENGTH}"
                )
            if not _LABEL_FORM.fullmatch(label):
                raise ValueError(
                    f"label {json.dumps(label)} may only contain lowercase letters a-z,"
                    ' digits, "_" and "-"'
                )
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"lists {json.dumps(duplicates[0])} more than once")
        return labels

    @field_validator("instructions")
    @classmethod
    def _check_instructions(cls, instructions: str | None) -> str | None:
        if instructions is not None and len(instructions) > MAX_INSTRUCTIONS:
            raise ValueError(
                f"are {len(instructions)} characters long; the limit is {MAX_INSTRUCTIONS}"
            )
        return instructions


def _check_url(url: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url) or len(url) > 2000:
        raise ValueError("must be an http:// or https:// address")
    return url


Url = Annotated[str, AfterValidator(_check_url)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
MAX_DESTINATIONS = 10
SECRET_BYTES = (24, 64)  # what the Standard Webhooks specification asks of a signing secret


def signing_secret(secret: str) -> bytes | None:
    """The key in a destination secret, taken in every form the official Standard Webhooks
    library takes: with or without ``whsec_``, base64 padded or not; None if it is not one."""
    text = secret.strip().removeprefix("whsec_")
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        return None
    text = text.rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return None


class EmbedTemplate(_Strict):
    """How #ops posts look: text with ``$event.path`` references into the ticket's event."""

    title: Reference | None = None
    fields: dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], Reference] = {}

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, fields: dict[str, str]) -> dict[str, str]:
        if len(fields) > 25:
            raise ValueError(f"has {len(fields)} fields; an embed holds at most 25")
        return fields


class OpsMentions(_Strict):
    """Who an escalation may ping; nothing else the bot posts ever pings."""

    roles: list[RoleId] = []
    users: list[RoleId] = []


class When(_Strict):
    """A destination's condition: every listed key must match (a ticket without the value
    does not match a key that lists values)."""

    urgency: list[str] | None = None
    tier: list[str] | None = None
    channel: list[str] | None = None
    type: list[str] | None = None


class Destination(_Strict):
    """Where else escalations go: a Discord channel webhook, or an HTTP endpoint signed with
    Standard Webhooks (``secret``: ``whsec_`` and base64, as the official libraries take it)."""

    kind: Literal["discord_webhook", "http"]
    url: Url
    secret: str | None = None
    when: When = When()

    @field_validator("secret")
    @classmethod
    def _check_secret_form(cls, secret: str | None, info: ValidationInfo) -> str | None:
        if secret is None:
            return None
        key = signing_secret(secret)
        # Stored settings saved under the older 16-byte minimum still load; new ones need 24.
        low = SECRET_BYTES[0] if info.context and info.context.get("new") else 16
        if key is None or not low <= len(key) <= SECRET_BYTES[1]:
            raise ValueError(
                f"must be {SECRET_BYTES[0]} to {SECRET_BYTES[1]} bytes in base64, with or without"
                ' "whsec_" in front (thothbot keys create prints one)'
            )
        # One spelling whatever was pasted: what signing and Standard Webhooks libraries read.
        return "whsec_" + base64.b64encode(key).decode("ascii")

    @model_validator(mode="after")
    def _check_secret(self) -> Destination:
        if self.kind == "http" and self.secret is None:
            raise ValueError("an http destination needs a secret (whsec_...) to sign with")
        if self.kind == "discord_webhook" and self.secret is not None:
            raise ValueError("a discord_webhook destination takes no secret")
        return self


class GuildSettings(_Strict):
    staff: list[UserId] = []
    types: dict[TypeId, TicketType] = {}
    capacity: Annotated[int, Field(gt=0, le=1000)] | None = None
    csat_negative_max: Annotated[int, Field(ge=1, le=4)] = 2
    max_open_tickets: Annotated[int, Field(ge=1, le=50)] = 3  # per customer, Discord tickets
    sla: Sla = Sla()
    classifier: Classifier = Classifier()
    embed: EmbedTemplate | None = None
    ops_mentions: OpsMentions = OpsMentions()
    # Post escalations through this channel webhook instead of the bot's ops channel.
    ops_webhook: Url | None = None
    destinations: Annotated[list[Destination], Field(max_length=MAX_DESTINATIONS)] = []
    _policies: dict[str | None, SlaPolicy] = PrivateAttr(default_factory=dict)

    def is_staff(self, user_id: str) -> bool:
        return user_id in self.staff or any(user_id in t.staff for t in self.types.values())

    def pool(self, type_id: str | None) -> tuple[str, Sequence[str]]:
        """The staff pool that round robin walks for a ticket of this type, and its key."""
        ticket_type = self.types.get(type_id) if type_id is not None else None
        if ticket_type is not None and ticket_type.staff:
            return type_id or SERVER_POOL, ticket_type.staff
        return SERVER_POOL, self.staff

    def pools(self) -> dict[str, Sequence[str]]:
        """Every pool round robin walks, by key: the server's and each staffed type's."""
        pools: dict[str, Sequence[str]] = {SERVER_POOL: self.staff}
        pools.update((key, t.staff) for key, t in self.types.items() if t.staff)
        return pools

    def sla_policy(self, type_id: str | None) -> SlaPolicy:
        """The server's SLA with the type's keys replacing the server's same keys."""
        policy = self._policies.get(type_id)
        if policy is None:
            policy = self._policies[type_id] = self._merge_sla(type_id)
        return policy

    def _merge_sla(self, type_id: str | None) -> SlaPolicy:
        keys = self.sla.model_dump(exclude={"business_hours"})
        hours = self.sla.business_hours
        ticket_type = self.types.get(type_id) if type_id is not None else None
        if ticket_type is not None and ticket_type.sla is not None:
            override = ticket_type.sla
            for key in override.model_fields_set:
                if key == "business_hours":
                    hours = override.business_hours
                else:
                    keys[key] = getattr(override, key)
        return SlaPolicy(
            first_response_minutes=keys["first_response_minutes"],
            resolution_minutes=keys["resolution_minutes"],
            calendar=hours.calendar if hours is not None else None,
        )

    def with_roster(
        self, server_role: str | None, roster: Mapping[str, Sequence[str]]
    ) -> GuildSettings:
        """These settings with the members of the staff roles (``roster``: role id to member ids)
        added to the server's staff and to each type's, as round robin and staff checks see them.
        """

        def merged(staff: Sequence[str], role: str | None) -> list[str]:
            extra = roster.get(role, ()) if role is not None else ()
            return list(dict.fromkeys([*staff, *extra]))

        types = {
            key: t.model_copy(update={"staff": merged(t.staff, t.staff_role)})
            for key, t in self.types.items()
        }
        return self.model_copy(update={"staff": merged(self.staff, server_role), "types": types})

    def to_document(self) -> dict[str, Any]:
        """The settings as JSON, in the shape they are pasted; it re-imports unchanged."""
        return self.model_dump(mode="json", exclude_unset=True)


@dataclass(frozen=True, slots=True)
class SettingsResult:
    settings: GuildSettings
    warnings: list[tuple[str, str]]


def parse_settings(raw: str | bytes, stored: Mapping[str, Any] | None = None) -> SettingsResult:
    """Validate settings: unknown keys are ignored with a warning, other problems refuse.

    With the ``stored`` settings, a masked secret (as exports show them) keeps the stored one.
    """
    size = len(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
    if size > MAX_SETTINGS_BYTES:
        raise SettingsInvalid([("", f"The settings are {size // 1024} KiB; the limit is 256 KiB.")])
    try:
        document, duplicates = jsonkeys.loads(raw)
    except UnicodeDecodeError:
        raise SettingsInvalid([("", "The settings are not UTF-8 text.")]) from None
    except (ValueError, RecursionError) as error:
        raise SettingsInvalid([("", f"The settings are not valid JSON: {error}.")]) from None
    if not isinstance(document, dict):
        raise SettingsInvalid([("", "The settings must be a JSON object ({...}).")])
    if stored is not None:
        document = keep_masked(document, stored)
    result = settings_from_document(document)
    # A key given twice: the last value is used, as any JSON reader does, but said so.
    result.warnings[:0] = [
        (_path((*where, key)), jsonkeys.message(key)) for where, key in duplicates
    ]
    return result


def settings_from_document(document: dict[str, Any]) -> SettingsResult:
    """Validate an already parsed settings object."""
    warnings: list[tuple[str, str]] = []
    while True:
        try:
            # "new": checks that apply to what is being saved, not to what was stored before.
            checked = GuildSettings.model_validate(document, context={"new": True})
            return SettingsResult(checked, warnings)
        except ValidationError as error:
            unknown = [e["loc"] for e in error.errors() if e["type"] == "extra_forbidden"]
            problems = [
                (_path(e["loc"]), _message(e))
                for e in error.errors()
                if e["type"] != "extra_forbidden"
            ]
            if problems:
                raise SettingsInvalid(problems) from None
            # Only unknown keys: drop them, say so, and validate what is left.
            for loc in unknown:
                warnings.append((_path(loc), f'Unknown key "{loc[-1]}" was ignored.'))
                document = _without(document, loc)


def _without(document: dict[str, Any], loc: tuple[int | str, ...]) -> dict[str, Any]:
    """A copy of the document with the key at ``loc`` removed."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    parent: Any = copy
    for part in loc[:-1]:
        parent = parent[part]
    del parent[loc[-1]]
    return copy


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "bool_type": "must be true or false",
}


def _message(error: Any) -> str:
    kind = error["type"]
    if kind in _MESSAGES:
        return f"{_MESSAGES[kind]}."
    text = str(error["msg"])
    return text.removeprefix("Value error, ").rstrip(".") + "."
