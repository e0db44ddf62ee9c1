"""The sandbox's model of Discord: users, guilds, roles, members, channels and messages."""

from __future__ import annotations

import mimetypes
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits the sandbox checks (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

# Close to what Discord gives @everyone in a new server.
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE | ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS
    | ATTACH_FILES | READ_MESSAGE_HISTORY | USE_EXTERNAL_EMOJIS | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS | SEND_MESSAGES_IN_THREADS
)  # fmt: skip
DEFAULT_BOT = (
    VIEW_CHANNEL | SEND_MESSAGES | MANAGE_CHANNELS | MANAGE_ROLES | EMBED_LINKS | ATTACH_FILES
    | READ_MESSAGE_HISTORY
)  # fmt: skip

EPHEMERAL = 1 << 6
LOADING = 1 << 7
NONCE_WINDOW = 5 * 60.0  # seconds Discord remembers a message nonce ("a few minutes")

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


class SandboxError(Exception):
    """A test asked the sandbox for something Discord would not allow a user to do."""


class ApiError(Exception):
    """A REST error answer, shaped like Discord's."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: JSON = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def form_error(path: str, code: str, message: str) -> ApiError:
    """A 400 50035 Invalid Form Body naming the field at dotted `path`."""
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path.split(".")):
        errors = {key: errors}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def missing_permissions() -> ApiError:
    """Discord's answer when the bot lacks a permission."""
    return ApiError(403, 50013, "Missing Permissions")


def now_iso() -> str:
    """The current time as Discord writes it."""
    return datetime.now(UTC).isoformat()


@dataclass
class Guild:
    """One guild: its roles (by id, @everyone first), members and channel ids."""

    id: str
    name: str
    owner_id: str
    bot_role_id: str = ""
    roles: dict[str, JSON] = field(default_factory=dict)
    members: dict[str, JSON] = field(default_factory=dict)
    channel_ids: list[str] = field(default_factory=list)


@dataclass
class StoredFile:
    """An uploaded attachment's bytes, served at its url."""

    filename: str
    data: bytes
    content_type: str


class World:
    """All state, with no I/O: the REST and gateway layers read and change it."""

    def __init__(self, bot_name: str) -> None:
        self._last_id = 0
        self.base_url = ""  # http://host:port, set when the server starts
        self.users: dict[str, JSON] = {}
        self.dms_open: dict[str, bool] = {}
        self.guilds: dict[str, Guild] = {}
        self.channels: dict[str, JSON] = {}
        self.channel_messages: dict[str, list[JSON]] = {}
        self.message_index: dict[str, JSON] = {}  # every message, ephemeral ones too
        self.files: dict[str, StoredFile] = {}
        self.dm_by_user: dict[str, str] = {}
        self.commands: dict[str | None, list[JSON]] = {}  # guild id (None: global) -> commands
        self.webhooks: dict[str, JSON] = {}  # channel webhooks by id, with their token
        # The sandbox's clock, for what Discord forgets with time (nonces): tests move it on.
        self.clock_offset = 0.0
        self.nonce_times: dict[str, float] = {}  # message id -> when its nonce was sent
        self.bot_id = self.next_id()
        self.users[self.bot_id] = self._user(self.bot_id, bot_name, bot=True)
        self.dms_open[self.bot_id] = False

    def now(self) -> float:
        """The sandbox's time (Unix seconds), which tests can move forward."""
        return time.time() + self.clock_offset

    # ids and users

    def next_id(self) -> str:
        """A fresh snowflake that encodes the current time, as Discord's do."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    @staticmethod
    def _user(user_id: str, username: str, *, bot: bool) -> JSON:
        return {
            "id": user_id, "username": username, "discriminator": "0", "global_name": None,
            "avatar": None, "bot": bot, "flags": 0, "public_flags": 0,
        }  # fmt: skip

    @property
    def bot_user(self) -> JSON:
        """The bot's user object."""
        return self.users[self.bot_id]

    def add_user(self, username: str, *, bot: bool, dms_open: bool) -> str:
        """Create a user."""
        user_id = self.next_id()
        self.users[user_id] = self._user(user_id, username, bot=bot)
        self.dms_open[user_id] = dms_open
        return user_id

    def user(self, user_id: str) -> JSON:
        """A user, or SandboxError."""
        try:
            return self.users[str(user_id)]
        except KeyError:
            raise SandboxError(f"unknown user {user_id}") from None

    # guilds, roles, members

    def guild(self, guild_id: str) -> Guild:
        """A guild, or SandboxError."""
        try:
            return self.guilds[str(guild_id)]
        except KeyError:
            raise SandboxError(f"unknown guild {guild_id}") from None

    def add_guild(self, name: str, owner_id: str, everyone: int) -> Guild:
        """Create a guild with @everyone (id == guild id) and the bot's managed role."""
        guild = Guild(id=self.next_id(), name=name, owner_id=owner_id)
        self.guilds[guild.id] = guild
        guild.roles[guild.id] = self._role(guild.id, "@everyone", everyone, 0)
        guild.bot_role_id = self.add_role(guild.id, self.bot_user["username"], DEFAULT_BOT)
        guild.roles[guild.bot_role_id]["managed"] = True
        guild.roles[guild.bot_role_id]["tags"] = {"bot_id": self.bot_id}
        self.add_member(guild.id, owner_id, ())
        self.add_member(guild.id, self.bot_id, (guild.bot_role_id,))
        return guild

    @staticmethod
    def _role(role_id: str, name: str, permissions: int, position: int) -> JSON:
        return {
            "id": role_id, "name": name, "permissions": str(permissions), "position": position,
            "color": 0, "colors": {"primary_color": 0}, "hoist": False, "managed": False,
            "mentionable": False, "icon": None, "unicode_emoji": None, "flags": 0,
        }  # fmt: skip

    def add_role(self, guild_id: str, name: str, permissions: int) -> str:
        """Create a role; the newest role sits highest, as in Discord's UI."""
        guild = self.guild(guild_id)
        role_id = self.next_id()
        guild.roles[role_id] = self._role(role_id, name, permissions, len(guild.roles))
        return role_id

    def add_member(self, guild_id: str, user_id: str, roles: Any) -> JSON:
        """Make a user a member of a guild."""
        guild = self.guild(guild_id)
        self.user(user_id)
        guild.members[user_id] = {"roles": self._check_roles(guild, roles), "joined_at": now_iso()}
        return guild.members[user_id]

    @staticmethod
    def _check_roles(guild: Guild, roles: Any) -> list[str]:
        ids = [str(r) for r in roles]
        for role_id in ids:
            if role_id not in guild.roles or role_id == guild.id:
                raise SandboxError(f"role {role_id} is not a role of guild {guild.id}")
        return ids

    def set_member_roles(self, guild_id: str, user_id: str, roles: Any) -> None:
        """Replace a member's roles."""
        guild = self.guild(guild_id)
        if user_id not in guild.members:
            raise SandboxError(f"user {user_id} is not a member of guild {guild_id}")
        guild.members[user_id]["roles"] = self._check_roles(guild, roles)

    def member_payload(self, guild: Guild, user_id: str, *, with_user: bool = True) -> JSON:
        """A member object as the gateway and REST send it."""
        member = guild.members[user_id]
        data: JSON = {
            "roles": list(member["roles"]), "joined_at": member["joined_at"], "flags": 0,
            "deaf": False, "mute": False, "nick": None, "avatar": None, "pending": False,
            "premium_since": None, "communication_disabled_until": None,
        }  # fmt: skip
        if with_user:
            data["user"] = self.users[user_id]
        return data

    def guild_payload(self, guild: Guild) -> JSON:
        """The full GUILD_CREATE object."""
        return {
            "id": guild.id, "name": guild.name, "owner_id": guild.owner_id, "icon": None,
            "unavailable": False, "large": False, "member_count": len(guild.members),
            "roles": list(guild.roles.values()),
            "channels": [self.channels[c] for c in guild.channel_ids],
            "members": [self.member_payload(guild, u) for u in guild.members],
            "features": [], "emojis": [], "stickers": [], "threads": [], "presences": [],
            "voice_states": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "preferred_locale": "en-US", "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "nsfw_level": 0, "premium_tier": 0, "system_channel_id": None,
            "joined_at": guild.members[self.bot_id]["joined_at"],
        }  # fmt: skip

    # permissions (Discord's algorithm: base from roles, then channel overwrites)

    def guild_permissions(self, guild: Guild, user_id: str) -> int:
        """A member's guild-wide permissions."""
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        perms = int(guild.roles[guild.id]["permissions"])
        for role_id in guild.members.get(user_id, {}).get("roles", []):
            perms |= int(guild.roles[role_id]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def channel_permissions(self, channel: JSON, user_id: str) -> int:
        """A member's permissions in one guild channel."""
        guild = self.guilds[channel["guild_id"]]
        perms = self.guild_permissions(guild, user_id)
        if perms == ALL_PERMISSIONS:
            return perms
        overwrites = {o["id"]: o for o in channel.get("permission_overwrites", [])}
        everyone = overwrites.get(guild.id)
        if everyone is not None:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in guild.members.get(user_id, {}).get("roles", []):
            if role_id in overwrites:
                allow |= int(overwrites[role_id]["allow"])
                deny |= int(overwrites[role_id]["deny"])
        perms = (perms & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and own.get("type") == 1:
            perms = (perms & ~int(own["deny"])) | int(own["allow"])
        # Without View Channel every other permission is implicitly denied.
        return perms if perms & VIEW_CHANNEL else 0

    def bot_permissions(self, channel: JSON) -> int:
        """The bot's permissions in a channel (DMs: everything a DM allows)."""
        if "guild_id" not in channel:
            return VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
        return self.channel_permissions(channel, self.bot_id)

    # channels

    def channel(self, channel_id: str) -> JSON:
        """A channel, or a 404 10003."""
        try:
            return self.channels[str(channel_id)]
        except KeyError:
            raise ApiError(404, 10003, "Unknown Channel") from None

    def add_channel(
        self, guild: Guild, name: str, type_: int, parent_id: str | None, extra: JSON
    ) -> JSON:
        """Store a guild channel (no checks: REST checks before calling)."""
        channel_id = self.next_id()
        channel: JSON = {
            "id": channel_id, "guild_id": guild.id, "type": type_, "name": name,
            "position": len(guild.channel_ids), "parent_id": parent_id,
            "permission_overwrites": [], "nsfw": False, "flags": 0,
        }  # fmt: skip
        if type_ != 4:
            channel |= {"topic": None, "rate_limit_per_user": 0, "last_message_id": None}
        channel.update(extra)
        self.channels[channel_id] = channel
        self.channel_messages[channel_id] = []
        guild.channel_ids.append(channel_id)
        return channel

    def remove_channel(self, channel: JSON) -> list[JSON]:
        """Delete a channel and its messages; returns the children a category leaves behind."""
        del self.channels[channel["id"]]
        for message in self.channel_messages.pop(channel["id"], []):
            self.message_index.pop(message["id"], None)
        guild = self.guilds[channel["guild_id"]]
        guild.channel_ids.remove(channel["id"])
        orphans = [self.channels[c] for c in guild.channel_ids]
        orphans = [c for c in orphans if c.get("parent_id") == channel["id"]]
        for child in orphans:
            child["parent_id"] = None
        return orphans

    def dm_channel(self, user_id: str) -> JSON:
        """The bot's DM channel with a user, created on first use."""
        user = self.user(user_id)
        if user_id not in self.dm_by_user:
            channel_id = self.next_id()
            self.channels[channel_id] = {
                "id": channel_id, "type": 1, "recipients": [user], "last_message_id": None,
                "flags": 0,
            }  # fmt: skip
            self.channel_messages[channel_id] = []
            self.dm_by_user[user_id] = channel_id
        return self.channels[self.dm_by_user[user_id]]

    # messages

    def store_file(self, filename: str, data: bytes) -> JSON:
        """Keep an upload and return its attachment object (with the bytes under `content`)."""
        file_id = self.next_id()
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self.files[file_id] = StoredFile(filename, data, content_type)
        url = f"{self.base_url}/attachments/{file_id}/{filename}"
        return {
            "id": file_id, "filename": filename, "size": len(data), "url": url,
            "proxy_url": url, "content_type": content_type, "content": data,
        }  # fmt: skip

    def _attachments(
        self, body: JSON, files: list[tuple[str, bytes]], old: list[JSON]
    ) -> list[JSON]:
        """The attachments after a create or an edit: kept old ones, then new uploads."""
        described = body.get("attachments")
        if described is None:
            kept = list(old)
            described = []
        else:
            keep_ids = {str(a.get("id")) for a in described}
            kept = [a for a in old if a["id"] in keep_ids]
        by_index = {str(a.get("id")): a for a in described}
        new = []
        for index, (filename, data) in enumerate(files):
            stored = self.store_file(filename, data)
            extra = by_index.get(str(index), {})
            if extra.get("description"):
                stored["description"] = extra["description"]
            new.append(stored)
        return kept + new

    def mentions(self, content: str, allowed: JSON | None) -> tuple[list[JSON], list[str], bool]:
        """Who a message pings: what its content mentions, filtered by allowed_mentions."""
        users = [u for u in dict.fromkeys(_USER_MENTION.findall(content)) if u in self.users]
        roles = list(dict.fromkeys(_ROLE_MENTION.findall(content)))
        everyone = "@everyone" in content or "@here" in content
        if allowed is not None:
            parse = allowed.get("parse") or []
            if "users" not in parse:
                users = [u for u in users if u in {str(x) for x in allowed.get("users") or []}]
            if "roles" not in parse:
                roles = [r for r in roles if r in {str(x) for x in allowed.get("roles") or []}]
            everyone = everyone and "everyone" in parse
        return [self.users[u] for u in users], roles, everyone

    def build_message(
        self, channel: JSON, author_id: str, body: JSON, files: list[tuple[str, bytes]]
    ) -> JSON:
        """A new message record (not stored yet)."""
        content = body.get("content") or ""
        allowed = body.get("allowed_mentions")
        mentions, mention_roles, everyone = self.mentions(content, allowed)
        message: JSON = {
            "id": self.next_id(), "channel_id": channel["id"], "type": 0, "content": content,
            "author": self.users[author_id], "embeds": _embeds(body.get("embeds")),
            "components": body.get("components") or [],
            "attachments": self._attachments(body, files, []), "mentions": mentions,
            "mention_roles": mention_roles, "mention_everyone": everyone, "pinned": False,
            "tts": bool(body.get("tts")), "timestamp": now_iso(), "edited_timestamp": None,
            "flags": int(body.get("flags") or 0), "allowed_mentions": allowed,
        }  # fmt: skip
        if "guild_id" in channel:
            message["guild_id"] = channel["guild_id"]
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
            self.nonce_times[message["id"]] = self.now()
        return message

    def by_nonce(self, channel_id: str, author_id: str, nonce: Any) -> JSON | None:
        """The author's message in the channel sent with this nonce within NONCE_WINDOW of the
        sandbox's clock: Discord remembers a nonce for a few minutes only."""
        since = self.now() - NONCE_WINDOW
        return next(
            (
                m
                for m in self.channel_messages.get(channel_id, [])
                if m.get("nonce") == nonce
                and m["author"]["id"] == author_id
                and self.nonce_times.get(m["id"], 0.0) >= since
            ),
            None,
        )

    def add_webhook(self, channel: JSON, name: str) -> JSON:
        """A channel webhook (what Integrations > Webhooks makes), with its token."""
        webhook_id = self.next_id()
        hook: JSON = {
            "id": webhook_id, "type": 1, "channel_id": channel["id"],
            "guild_id": channel.get("guild_id"), "name": name, "avatar": None,
            "token": f"hook-{webhook_id}-token", "application_id": None,
        }  # fmt: skip
        self.webhooks[webhook_id] = hook
        return hook

    def webhook_message(self, hook: JSON, body: JSON, files: list[tuple[str, bytes]]) -> JSON:
        """A message a channel webhook posts: authored by the webhook, not by a user."""
        channel = self.channel(hook["channel_id"])
        message = self.build_message(channel, self.bot_id, body, files)
        message.pop("nonce", None)  # webhooks take no nonce
        author = {"id": hook["id"], "username": str(body.get("username") or hook["name"]),
                  "avatar": None, "discriminator": "0000", "bot": True}  # fmt: skip
        message |= {"author": author, "webhook_id": hook["id"]}
        return message

    def store_message(self, message: JSON, *, in_channel: bool) -> None:
        """Index a message, and keep it in its channel unless it is ephemeral."""
        self.message_index[message["id"]] = message
        if in_channel:
            self.channel_messages[message["channel_id"]].append(message)
            self.channels[message["channel_id"]]["last_message_id"] = message["id"]

    def edit_message(self, message: JSON, body: JSON, files: list[tuple[str, bytes]]) -> None:
        """Apply an edit (content, embeds, components, attachments, flags, allowed_mentions)."""
        for key in ("content", "components", "allowed_mentions"):
            if key in body:
                message[key] = body[key] if body[key] is not None else _EMPTY[key]
        if "embeds" in body:
            message["embeds"] = _embeds(body["embeds"])
        if "flags" in body and body["flags"] is not None:
            # Only some flags can change; ephemeral stays as it was.
            message["flags"] = (message["flags"] & (EPHEMERAL | LOADING)) | (
                int(body["flags"]) & ~(EPHEMERAL | LOADING)
            )
        if "attachments" in body or files:
            message["attachments"] = self._attachments(body, files, message["attachments"])
        users, roles, everyone = self.mentions(message["content"], message.get("allowed_mentions"))
        message |= {"mentions": users, "mention_roles": roles, "mention_everyone": everyone}
        message["edited_timestamp"] = now_iso()

    def remove_message(self, message: JSON) -> None:
        """Forget a message."""
        self.message_index.pop(message["id"], None)
        stored = self.channel_messages.get(message["channel_id"], [])
        if message in stored:
            stored.remove(message)

    def message(self, channel_id: str, message_id: str) -> JSON:
        """A message of a channel, or a 404 10008."""
        message = self.message_index.get(str(message_id))
        if message is None or message["channel_id"] != str(channel_id):
            raise ApiError(404, 10008, "Unknown Message")
        return message


_EMPTY: JSON = {"content": "", "components": [], "allowed_mentions": None}


def _embeds(embeds: list[JSON] | None) -> list[JSON]:
    """Embeds as Discord stores them (it adds the type)."""
    return [{"type": "rich", **e} for e in embeds or []]


def public_message(message: JSON) -> JSON:
    """A stored message as the API returns it (without the sandbox's attachment bytes)."""
    data = {k: v for k, v in message.items() if k != "allowed_mentions"}
    data["attachments"] = [
        {k: v for k, v in a.items() if k != "content"} for a in message["attachments"]
    ]
    return data
