"""Interactions as a user sees them, and building their payloads from the bot's own schemas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .limits import walk_components
from .world import EPHEMERAL, JSON, LOADING, SandboxError, World

T = TypeVar("T")

# Callback types (https://discord.com/developers/docs/interactions/receiving-and-responding).
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9
_SELECTS = (3, 5, 6, 7, 8)


async def poll(
    predicate: Callable[[], T | None],
    timeout: float,  # noqa: ASYNC109
    what: str | Callable[[], str],
) -> T:
    """Check `predicate` every 5 ms until it is truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = what() if callable(what) else what
            raise TimeoutError(f"timed out after {timeout} s waiting for {detail}")
        await asyncio.sleep(0.005)


class Interaction:
    """One interaction a user started, and what the bot answered."""

    def __init__(
        self,
        *,
        id: str,
        token: str,
        type: int,
        user_id: str,
        channel_id: str | None,
        guild_id: str | None,
        payload: JSON,
        target: JSON | None = None,
    ) -> None:
        self.id = id
        self.token = token
        self.type = type
        self.user_id = user_id
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.payload = payload  # the INTERACTION_CREATE data sent to the bot
        self.target = target  # the message a component or modal interaction came from
        self.callback: JSON | None = None  # {"type", "data"} once the bot answered
        self.followups: list[JSON] = []
        self.original: JSON | None = None
        self.modal: JSON | None = None
        self.deferred = False
        self.created_at = time.monotonic()
        self.final = False  # the user has a visible answer

    def __repr__(self) -> str:
        cb = self.callback["type"] if self.callback else None
        return f"<Interaction id={self.id} type={self.type} callback={cb} final={self.final}>"

    async def response(self, timeout: float = 5.0) -> JSON:  # noqa: ASYNC109
        """The callback the bot sent: {"type", "data"}."""
        return await poll(lambda: self.callback, timeout, f"a callback to {self!r}")

    async def done(self, timeout: float = 5.0) -> Interaction:  # noqa: ASYNC109
        """Wait until the bot gave a final visible answer (a deferral alone is not one)."""
        await poll(lambda: self.final, timeout, lambda: f"a final answer to {self!r}")
        return self

    @property
    def ephemeral(self) -> bool:
        """Whether the first answer the user saw is only visible to them."""
        first = self.original or (self.followups[0] if self.followups else None)
        if first is None and self.callback is not None:
            first = self.callback.get("data") or {}
        return bool(first and int(first.get("flags") or 0) & EPHEMERAL)

    def text(self) -> str:
        """Everything the user would read: contents and embeds of the original and follow-ups."""
        parts: list[str] = []
        for message in [self.original, *self.followups]:
            if message is not None:
                parts.extend(message_text(message))
        if self.modal is not None:
            parts.append(str(self.modal.get("title") or ""))
        return "\n".join(p for p in parts if p)

    # changes applied by the REST layer

    def answered(self, callback_type: int, data: JSON) -> None:
        """Record the callback."""
        self.callback = {"type": callback_type, "data": data}
        self.deferred = callback_type in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE)
        if callback_type == MODAL:
            self.modal = data
        self.final = callback_type in (CHANNEL_MESSAGE, UPDATE_MESSAGE, MODAL, AUTOCOMPLETE_RESULT)

    @property
    def loading(self) -> bool:
        """Whether the original is still the 'thinking' message of a deferral."""
        return self.original is not None and bool(int(self.original["flags"]) & LOADING)


def message_text(message: JSON) -> list[str]:
    """The readable text of one message: content, embed titles, descriptions, fields, footers."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        for item in embed.get("fields") or []:
            parts += [str(item.get("name") or ""), str(item.get("value") or "")]
        parts.append((embed.get("footer") or {}).get("text") or "")
    for _, component in walk_components(message.get("components") or []):
        if component.get("type") == 10:  # text display (components v2)
            parts.append(component.get("content") or "")
    return parts


def find_command(world: World, guild_id: str | None, name: str, type_: int) -> JSON:
    """A synced command by name: the guild's first, then global."""
    scopes = [guild_id, None] if guild_id is not None else [None]
    for scope in scopes:
        for command in world.commands.get(scope, []):
            if command["name"] == name and int(command.get("type", 1)) == type_:
                return command
    known = sorted(c["name"] for s in scopes for c in world.commands.get(s, []))
    raise SandboxError(f"no synced command {name!r} of type {type_} (synced: {known})")


class OptionBuilder:
    """Turns name->value options into Discord's nested option list and resolved data."""

    def __init__(self, world: World, guild_id: str | None) -> None:
        self.world = world
        self.guild_id = guild_id
        self.resolved: dict[str, dict[str, JSON]] = {}

    def build(
        self,
        command: JSON,
        path: Sequence[str],
        options: Mapping[str, Any],
        attachments: Mapping[str, tuple[str, bytes]],
    ) -> list[JSON]:
        """The `options` of data for the command path (subcommand names after the command)."""
        schema: list[JSON] = command.get("options") or []
        chain: list[JSON] = []
        for part in path:
            sub = next((o for o in schema if o["name"] == part and o["type"] in (1, 2)), None)
            if sub is None:
                raise SandboxError(f"{command['name']!r} has no subcommand {part!r}")
            chain.append({"type": sub["type"], "name": part, "options": []})
            schema = sub.get("options") or []
        if any(o["type"] in (1, 2) for o in schema):
            subs = [o["name"] for o in schema if o["type"] in (1, 2)]
            raise SandboxError(f"{command['name']!r} {' '.join(path)} needs a subcommand: {subs}")
        leaf = self._leaf(schema, {**options, **attachments})
        if not chain:
            return leaf
        chain[-1]["options"] = leaf
        for outer, inner in zip(chain[-2::-1], chain[:0:-1], strict=True):
            outer["options"] = [inner]
        return [chain[0]]

    def _leaf(self, schema: list[JSON], values: Mapping[str, Any]) -> list[JSON]:
        by_name = {o["name"]: o for o in schema}
        for name in values:
            if name not in by_name:
                raise SandboxError(f"unknown option {name!r} (options: {sorted(by_name)})")
        out = []
        for option in schema:
            if option["name"] not in values:
                if option.get("required"):
                    raise SandboxError(f"required option {option['name']!r} is missing")
                continue
            value = self._value(option, values[option["name"]])
            out.append({"name": option["name"], "type": option["type"], "value": value})
        return out

    def _value(self, option: JSON, value: Any) -> Any:
        kind = int(option["type"])
        name = option["name"]
        if kind == 3:
            value = str(value)
            lo, hi = option.get("min_length"), option.get("max_length")
            if (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi):
                raise SandboxError(f"option {name!r}: length {len(value)} outside [{lo}, {hi}]")
        elif kind in (4, 10):
            value = int(value) if kind == 4 else float(value)
            lo, hi = option.get("min_value"), option.get("max_value")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise SandboxError(f"option {name!r}: {value} outside [{lo}, {hi}]")
        elif kind == 5:
            value = bool(value)
        elif kind in (6, 9) and str(value) in self.world.users:
            value = self._user(str(value))
        elif kind in (8, 9):
            value = self._role(str(value))
        elif kind == 7:
            value = self._channel(option, str(value))
        elif kind == 11:
            value = self._attachment(name, value)
        elif kind == 6:
            raise SandboxError(f"option {name!r}: unknown user {value}")
        choices = option.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise SandboxError(f"option {name!r}: {value!r} is not one of the choices {choices}")
        return value

    def _add(self, kind: str, key: str, data: JSON) -> None:
        self.resolved.setdefault(kind, {})[key] = data

    def _user(self, user_id: str) -> str:
        self._add("users", user_id, self.world.users[user_id])
        guild = self.world.guilds.get(self.guild_id or "")
        if guild is not None and user_id in guild.members:
            member = self.world.member_payload(guild, user_id, with_user=False)
            member["permissions"] = str(self.world.guild_permissions(guild, user_id))
            self._add("members", user_id, member)
        return user_id

    def _role(self, role_id: str) -> str:
        guild = self.world.guilds.get(self.guild_id or "")
        if guild is None or role_id not in guild.roles:
            raise SandboxError(f"unknown role or user {role_id}")
        self._add("roles", role_id, guild.roles[role_id])
        return role_id

    def _channel(self, option: JSON, channel_id: str) -> str:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise SandboxError(f"option {option['name']!r}: unknown channel {channel_id}")
        allowed = option.get("channel_types")
        if allowed and channel["type"] not in allowed:
            raise SandboxError(
                f"option {option['name']!r}: channel type {channel['type']} not allowed"
            )
        data = {k: channel.get(k) for k in ("id", "name", "type", "parent_id", "topic", "position")}
        data["permissions"] = str(self.world.guild_permissions(
            self.world.guilds[channel["guild_id"]], self.world.bot_id
        ))  # fmt: skip
        self._add("channels", channel_id, data)
        return channel_id

    def _attachment(self, name: str, value: Any) -> str:
        if not (isinstance(value, tuple) and len(value) == 2):
            raise SandboxError(f"option {name!r} is an attachment: pass (filename, bytes)")
        stored = self.world.store_file(str(value[0]), bytes(value[1]))
        self._add("attachments", stored["id"], {k: v for k, v in stored.items() if k != "content"})
        return str(stored["id"])


def find_component(message: JSON, custom_id: str) -> JSON:
    """The component with this custom_id on a message, or SandboxError."""
    found = [c for _, c in walk_components(message.get("components") or [])]
    for component in found:
        if component.get("custom_id") == custom_id:
            if component.get("disabled"):
                raise SandboxError(f"component {custom_id!r} is disabled")
            return component
    ids = [c["custom_id"] for c in found if c.get("custom_id")]
    raise SandboxError(f"message {message['id']} has no component {custom_id!r} (has {ids})")


def component_data(component: JSON, values: Sequence[str] | None) -> JSON:
    """data of a component interaction: custom_id, component_type, and values for selects."""
    data: JSON = {"custom_id": component["custom_id"], "component_type": component["type"]}
    if component["type"] in _SELECTS:
        data["values"] = list(values or [])
    elif values:
        raise SandboxError(f"component {component['custom_id']!r} is not a select menu")
    return data


def modal_components(modal: JSON, values: Mapping[str, str | Sequence[str]]) -> list[JSON]:
    """The submitted components, mirroring the modal's structure, with the user's values."""
    used: set[str] = set()

    def fill(component: JSON, label: str | None) -> JSON | None:
        custom_id = component.get("custom_id")
        if custom_id is None:
            return None
        keys = [custom_id, label, component.get("label")]
        key = next((k for k in keys if k is not None and k in values), None)
        if key is not None:
            used.add(key)
        if component["type"] == 4:
            value = str(values[key]) if key is not None else str(component.get("value") or "")
            if component.get("required", True) and not value:
                raise SandboxError(f"text input {custom_id!r} is required")
            lo, hi = component.get("min_length"), component.get("max_length")
            if value and ((lo and len(value) < lo) or (hi and len(value) > hi)):
                raise SandboxError(f"text input {custom_id!r}: length outside [{lo}, {hi}]")
            return {"type": 4, "custom_id": custom_id, "value": value}
        picked = values.get(key, []) if key is not None else []
        return {"type": component["type"], "custom_id": custom_id,
                "values": [picked] if isinstance(picked, str) else list(picked)}  # fmt: skip

    out: list[JSON] = []
    for top in modal.get("components") or []:
        if top["type"] == 1:
            inner = [f for c in top.get("components") or [] if (f := fill(c, None)) is not None]
            out.append({"type": 1, "components": inner})
        elif top["type"] == 18:
            filled = fill(top["component"], top.get("label"))
            if filled is not None:
                entry: JSON = {"type": 18, "component": filled}
                if "id" in top:
                    entry["id"] = top["id"]
                out.append(entry)
    unknown = set(values) - used
    if unknown:
        raise SandboxError(f"the modal has no inputs {sorted(unknown)}")
    return out
