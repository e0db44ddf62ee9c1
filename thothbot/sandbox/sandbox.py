"""The Sandbox: a loopback Discord (REST + gateway) and the driver tests use to act as users."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from .gateway import Gateway
from .interactions import (
    Interaction,
    OptionBuilder,
    component_data,
    find_command,
    find_component,
    modal_components,
    poll,
)
from .rest import Rest
from .routing import Failure, Hold, RecordedRequest, serve_file
from .world import (
    DEFAULT_EVERYONE,
    EPHEMERAL,
    JSON,
    LOADING,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    ApiError,
    Guild,
    SandboxError,
    World,
    public_message,
)

T = TypeVar("T")

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # a bot's uploads to a server without boosts, or a DM


class Sandbox:
    """A fake Discord on loopback that a real discord.py bot connects to."""

    def __init__(
        self,
        *,
        bot_token: str = "sandbox-token",  # noqa: S107 - a fake token for a fake Discord
        bot_name: str = "thothbot",
    ) -> None:
        self.bot_token = bot_token
        self.world = World(bot_name)
        self.application_id: str = self.world.bot_id
        self.owner_user = World._user(self.world.next_id(), "sandbox-developer", bot=False)
        self.requests: list[RecordedRequest] = []
        # Discord refuses a callback 3 s after the interaction was created.
        self.interaction_timeout = 3.0
        # The most a message's files may weigh together: reported to the bot in every
        # interaction (``attachment_size_limit``) and enforced on every upload (413, 40005).
        self.attachment_size_limit = ATTACHMENT_SIZE_LIMIT
        self.interactions: list[Interaction] = []
        self._by_token: dict[str, Interaction] = {}
        self.api_url = ""
        self.gateway_url = ""
        self.gateway = Gateway(self.world, bot_token, lambda: self.gateway_url)
        self.rest = Rest(self)
        self._runner: web.AppRunner | None = None

    # lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve REST under /api/v10 and the gateway at /gateway."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest.handle)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/attachments/{id}/{filename}", partial(serve_file, self))
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        base = f"http://{bound_host}:{bound_port}"
        self.world.base_url = base
        self.api_url = f"{base}/api/v10"
        self.gateway_url = f"ws://{bound_host}:{bound_port}/gateway"

    async def stop(self) -> None:
        """Close the websockets and the server."""
        for hold in self.rest.holds:
            hold.drop()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.stop()

    @property
    def started(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    @property
    def bot_user(self) -> JSON:
        """The bot's user object."""
        return self.world.bot_user

    @property
    def bot_connected(self) -> asyncio.Event:
        """An asyncio.Event set once a bot has identified."""
        return self.gateway.connected

    async def disconnect_bots(self) -> None:
        """Close every gateway socket with 4000 so that clients reconnect and RESUME."""
        await self.gateway.disconnect(4000)

    # world building

    def add_guild(
        self,
        name: str,
        *,
        owner_id: str | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE,
    ) -> str:
        """A guild with @everyone (id == guild id), the bot as a member, and an owner."""
        if owner_id is None:
            owner_id = self.world.add_user(f"{name}-owner", bot=False, dms_open=True)
        guild = self.world.add_guild(name, owner_id, everyone_permissions)
        self.gateway.dispatch("GUILD_CREATE", self.world.guild_payload(guild))
        return guild.id

    def add_role(self, guild_id: str, name: str, *, permissions: int = 0) -> str:
        """A role; returns its id."""
        role_id = self.world.add_role(guild_id, name, permissions)
        role = self.world.guilds[guild_id].roles[role_id]
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": guild_id, "role": role})
        return role_id

    def add_user(self, username: str, *, bot: bool = False, dms_open: bool = True) -> str:
        """A user (not a member of anything yet); returns the id."""
        return self.world.add_user(username, bot=bot, dms_open=dms_open)

    def add_member(self, guild_id: str, user_id: str, roles: Sequence[str] = ()) -> None:
        """Make a user join a guild."""
        self.world.add_member(guild_id, user_id, roles)
        guild = self.world.guilds[guild_id]
        data = self.world.member_payload(guild, user_id) | {"guild_id": guild_id}
        self.gateway.dispatch("GUILD_MEMBER_ADD", data)

    def remove_member(self, guild_id: str, user_id: str) -> None:
        """A member leaves (or is kicked from) a guild."""
        guild = self.world.guild(guild_id)
        if guild.members.pop(user_id, None) is None:
            raise SandboxError(f"user {user_id} is not a member of guild {guild_id}")
        user = self.world.user(user_id)
        self.gateway.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": guild_id, "user": user})

    def set_member_roles(self, guild_id: str, user_id: str, roles: Sequence[str]) -> None:
        """Replace a member's roles."""
        self.world.set_member_roles(guild_id, user_id, roles)
        self.member_changed(self.world.guilds[guild_id], user_id)

    def add_channel(
        self,
        guild_id: str,
        name: str,
        *,
        type: int = 0,
        parent_id: str | None = None,
        topic: str | None = None,
        overwrites: Sequence[JSON] = (),
    ) -> str:
        """A channel (0 text, 4 category) made by an admin; returns its id."""
        guild = self.world.guild(guild_id)
        if parent_id is not None:
            try:
                parent_id = self.rest._check_parent(guild, parent_id, type, None)
            except ApiError as e:
                raise SandboxError(f"cannot put a channel in {parent_id}: {e.body}") from None
        extra: JSON = {"permission_overwrites": [
            {"id": str(o["id"]), "type": int(o.get("type", 0)), "allow": str(o.get("allow", 0)),
             "deny": str(o.get("deny", 0))} for o in overwrites
        ]}  # fmt: skip
        if type != 4:
            extra["topic"] = topic
        channel = self.world.add_channel(guild, name, type, parent_id, extra)
        self.gateway.dispatch("CHANNEL_CREATE", channel)
        return str(channel["id"])

    def set_bot_permissions(self, guild_id: str, permissions: int) -> None:
        """Set the permissions of the bot's own role."""
        guild = self.world.guild(guild_id)
        role = guild.roles[guild.bot_role_id]
        role["permissions"] = str(permissions)
        self.gateway.dispatch("GUILD_ROLE_UPDATE", {"guild_id": guild_id, "role": role})

    def add_webhook(self, channel_id: str, name: str = "Captain Hook") -> str:
        """A channel webhook; returns its URL (Discord's "Copy Webhook URL")."""
        hook = self.world.add_webhook(self._channel(channel_id), name)
        return f"{self.api_url}/webhooks/{hook['id']}/{hook['token']}"

    def delete_webhook(self, url: str) -> None:
        """Delete a channel webhook, as an admin does in the channel's settings."""
        del self.world.webhooks[url.rstrip("/").split("/")[-2]]

    def set_overwrite(
        self, channel_id: str, target_id: str, *, allow: int = 0, deny: int = 0, member: bool = True
    ) -> None:
        """Set a channel's permission overwrite for a member (or a role), as an admin would."""
        channel = self._channel(channel_id)
        kept = [o for o in channel["permission_overwrites"] if o["id"] != str(target_id)]
        kept.append({"id": str(target_id), "type": 1 if member else 0, "allow": str(allow),
                     "deny": str(deny)})  # fmt: skip
        channel["permission_overwrites"] = kept
        self.gateway.dispatch("CHANNEL_UPDATE", channel)

    def dm_channel(self, user_id: str) -> str:
        """The id of the DM channel between the bot and a user (created if needed)."""
        return str(self.world.dm_channel(user_id)["id"])

    # acting as users

    async def send_message(
        self,
        channel_id: str,
        author_id: str,
        content: str,
        *,
        attachments: Sequence[tuple[str, bytes]] = (),
    ) -> JSON:
        """A user posts a message (MESSAGE_CREATE); returns the stored message."""
        channel = self._channel(channel_id)
        self.world.user(author_id)
        if "guild_id" in channel:
            guild = self.world.guilds[channel["guild_id"]]
            if author_id not in guild.members:
                raise SandboxError(f"user {author_id} is not a member of guild {guild.id}")
            perms = self.world.channel_permissions(channel, author_id)
            if perms & (VIEW_CHANNEL | SEND_MESSAGES) != VIEW_CHANNEL | SEND_MESSAGES:
                raise SandboxError(f"user {author_id} cannot send messages in {channel['name']}")
        elif channel["recipients"][0]["id"] != author_id:
            raise SandboxError(f"user {author_id} is not the recipient of DM {channel_id}")
        message = self.world.build_message(
            channel, author_id, {"content": content}, list(attachments)
        )
        self.world.store_message(message, in_channel=True)
        self.gateway.dispatch_message("MESSAGE_CREATE", message)
        return message

    async def slash(
        self,
        guild_id: str,
        channel_id: str,
        user_id: str,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        attachments: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> Interaction:
        """A user runs a slash command ("ticket close") the bot synced, with name->value options."""
        channel = self._guild_channel(guild_id, channel_id, user_id)
        name, *path = command.split()
        found = find_command(self.world, guild_id, name, 1)
        builder = OptionBuilder(self.world, guild_id)
        data: JSON = {
            "id": found["id"], "name": name, "type": 1,
            "options": builder.build(found, path, options or {}, attachments or {}),
        }  # fmt: skip
        if builder.resolved:
            data["resolved"] = builder.resolved
        if "guild_id" in found:
            data["guild_id"] = found["guild_id"]  # discord.py looks among guild commands only then
        return self._interact(2, channel, user_id, data)

    async def click(
        self,
        channel_id: str,
        message_id: str,
        custom_id: str,
        user_id: str,
        *,
        values: Sequence[str] | None = None,
    ) -> Interaction:
        """A user clicks a button (or picks `values` in a select) on a message."""
        channel = self._channel(channel_id)
        message = self.world.message_index.get(str(message_id))
        if message is None or message["channel_id"] != channel["id"]:
            raise SandboxError(f"no message {message_id} in channel {channel_id}")
        if "guild_id" not in channel and channel["recipients"][0]["id"] != user_id:
            raise SandboxError(f"user {user_id} cannot see DM channel {channel_id}")
        if "guild_id" in channel:
            self._guild_channel(channel["guild_id"], channel_id, user_id)
        data = component_data(find_component(message, custom_id), values)
        return self._interact(3, channel, user_id, data, target=message)

    async def submit_modal(
        self,
        interaction: Interaction,
        values: Mapping[str, str | Sequence[str]],
        user_id: str | None = None,
    ) -> Interaction:
        """A user fills in and submits the modal the bot opened in answer to `interaction`."""
        if interaction.modal is None:
            raise SandboxError(f"{interaction!r} did not open a modal")
        components = modal_components(interaction.modal, values)
        data = {"custom_id": interaction.modal["custom_id"], "components": components}
        channel = self._channel(interaction.channel_id or "")
        user = user_id or interaction.user_id
        return self._interact(5, channel, user, data, target=interaction.target)

    async def message_command(
        self, guild_id: str, channel_id: str, user_id: str, name: str, message_id: str
    ) -> Interaction:
        """A user runs a message context-menu command on a message."""
        channel = self._guild_channel(guild_id, channel_id, user_id)
        found = find_command(self.world, guild_id, name, 3)
        target = self.world.message_index.get(str(message_id))
        if target is None or target["channel_id"] != channel["id"]:
            raise SandboxError(f"no message {message_id} in channel {channel_id}")
        data: JSON = {
            "id": found["id"], "name": name, "type": 3, "target_id": target["id"],
            "resolved": {"messages": {target["id"]: public_message(target)}},
        }  # fmt: skip
        if "guild_id" in found:
            data["guild_id"] = found["guild_id"]
        return self._interact(2, channel, user_id, data)

    def _channel(self, channel_id: str) -> JSON:
        channel = self.world.channels.get(str(channel_id))
        if channel is None:
            raise SandboxError(f"unknown channel {channel_id}")
        return channel

    def _guild_channel(self, guild_id: str, channel_id: str, user_id: str) -> JSON:
        channel = self._channel(channel_id)
        guild = self.world.guild(guild_id)
        if channel.get("guild_id") != guild.id:
            raise SandboxError(f"channel {channel_id} is not in guild {guild_id}")
        if user_id not in guild.members:
            raise SandboxError(f"user {user_id} is not a member of guild {guild_id}")
        if not self.world.channel_permissions(channel, user_id) & VIEW_CHANNEL:
            raise SandboxError(f"user {user_id} cannot see channel {channel['name']}")
        return channel

    def _interact(
        self, type_: int, channel: JSON, user_id: str, data: JSON, *, target: JSON | None = None
    ) -> Interaction:
        """Create an interaction and send INTERACTION_CREATE."""
        interaction_id = self.world.next_id()
        token = "sandbox." + secrets.token_urlsafe(32)
        user = self.world.user(user_id)
        payload: JSON = {
            "id": interaction_id, "application_id": self.application_id, "type": type_,
            "token": token, "version": 1, "attachment_size_limit": self.attachment_size_limit,
            "data": data, "channel_id": channel["id"], "locale": "en-US", "entitlements": [],
        }  # fmt: skip
        guild_id = channel.get("guild_id")
        if guild_id is not None:
            guild = self.world.guilds[guild_id]
            perms = self.world.channel_permissions(channel, user_id)
            member = self.world.member_payload(guild, user_id) | {"permissions": str(perms)}
            payload |= {
                "guild_id": guild_id, "guild": {"id": guild_id, "locale": "en-US", "features": []},
                "guild_locale": "en-US", "member": member, "context": 0,
                "channel": channel | {"permissions": str(perms)},
                "app_permissions": str(self.world.bot_permissions(channel)),
                "authorizing_integration_owners": {"0": guild_id},
            }  # fmt: skip
        else:
            payload |= {
                "user": user, "context": 1, "channel": channel,
                "app_permissions": str(self.world.bot_permissions(channel)),
                "authorizing_integration_owners": {"0": "0"},
            }  # fmt: skip
        if target is not None:
            payload["message"] = public_message(target)
        interaction = Interaction(
            id=interaction_id, token=token, type=type_, user_id=user_id,
            channel_id=channel["id"], guild_id=guild_id, payload=payload, target=target,
        )  # fmt: skip
        self.interactions.append(interaction)
        self._by_token[token] = interaction
        self.gateway.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # shared with the REST layer

    def interaction_by_token(self, token: str) -> Interaction | None:
        """The interaction a callback or webhook token belongs to."""
        return self._by_token.get(token)

    def interaction_message(
        self, inter: Interaction, body: JSON, files: list[tuple[str, bytes]]
    ) -> JSON:
        """A message the bot sends via an interaction (ephemeral ones stay out of the channel)."""
        channel = self.world.channels[inter.channel_id or ""]
        message = self.world.build_message(channel, self.world.bot_id, body, files)
        if inter.type == 2:
            message["type"] = 23 if inter.payload["data"].get("type", 1) != 1 else 20
        user = self.world.users[inter.user_id]
        message |= {
            "webhook_id": self.application_id, "application_id": self.application_id,
            "interaction_metadata": {"id": inter.id, "type": inter.type, "user": user,
                                     "authorizing_integration_owners": {}},
        }  # fmt: skip
        ephemeral = bool(message["flags"] & EPHEMERAL)
        self.world.store_message(message, in_channel=not ephemeral)
        if not ephemeral:
            self.gateway.dispatch_message("MESSAGE_CREATE", message)
        return message

    def edit_message(self, message: JSON, body: JSON, files: list[tuple[str, bytes]]) -> None:
        """Edit a message and tell the gateway (an edit also ends a 'thinking' state)."""
        self.world.edit_message(message, body, files)
        message["flags"] &= ~LOADING
        if not message["flags"] & EPHEMERAL:
            self.gateway.dispatch_message("MESSAGE_UPDATE", message)

    def delete_message(self, message: JSON) -> None:
        """Delete a message and tell the gateway."""
        self.world.remove_message(message)
        if not message["flags"] & EPHEMERAL:
            event: JSON = {"id": message["id"], "channel_id": message["channel_id"]}
            if "guild_id" in message:
                event["guild_id"] = message["guild_id"]
            self.gateway.dispatch(
                "MESSAGE_DELETE", event, intent=1 << 9 if "guild_id" in message else 1 << 12
            )

    def member_changed(self, guild: Guild, user_id: str) -> None:
        """GUILD_MEMBER_UPDATE for a member."""
        data = self.world.member_payload(guild, user_id) | {"guild_id": guild.id}
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", data)

    # observing

    def messages(self, channel_id: str) -> list[JSON]:
        """The channel's messages, oldest first (attachments keep their bytes under `content`)."""
        return list(self.world.channel_messages.get(str(channel_id), []))

    def dm_messages(self, user_id: str) -> list[JSON]:
        """What the bot sent in its DM channel with a user."""
        channel_id = self.world.dm_by_user.get(str(user_id))
        if channel_id is None:
            return []
        return [
            m for m in self.world.channel_messages[channel_id]
            if m["author"]["id"] == self.world.bot_id
        ]  # fmt: skip

    def channel(self, channel_id: str) -> JSON | None:
        """A channel by id, or None."""
        return self.world.channels.get(str(channel_id))

    def channels(self, guild_id: str) -> list[JSON]:
        """A guild's channels in creation order."""
        return [self.world.channels[c] for c in self.world.guild(guild_id).channel_ids]

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """The recorded requests with this method whose path matches (re.search)."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Poll `predicate` every 5 ms until it is truthy and return its value."""
        name = getattr(predicate, "__qualname__", repr(predicate))

        def what() -> str:
            last = ", ".join(f"{r.method} {r.path} -> {r.status}" for r in self.requests[-5:])
            return f"{name} (last requests: {last or 'none'})"

        return await poll(predicate, timeout, what)

    # time and crash points

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock on (what Discord forgets with time, such as nonces)."""
        self.world.clock_offset += seconds

    # failure injection

    def hold_next(
        self,
        method: str,
        path_regex: str,
        *,
        after: bool = False,
        where: Callable[[RecordedRequest], bool] | None = None,
    ) -> Hold:
        """Hold the next request matching method ("*": any), path (re.search) and ``where``
        (a test of the recorded request, its JSON body say) until the returned hold is
        released: before Discord acts on it, or ``after`` it acted, holding only the answer.
        ``await hold.wait()`` returns the request once it is held."""
        hold = Hold(method.upper(), re.compile(path_regex), after=after, where=where)
        self.rest.holds.append(hold)
        return hold

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 429,
        count: int = 1,
        retry_after: float = 0.05,
        code: int | None = None,
    ) -> None:
        """Answer the next `count` requests matching method ("*": any) and path (re.search)."""
        self.rest.failures.append(
            Failure(method.upper(), re.compile(path_regex), status, count, retry_after, code)
        )
