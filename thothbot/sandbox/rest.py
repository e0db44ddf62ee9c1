"""REST API v10: routing, authentication, and the user, guild, channel and message endpoints."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .hooks import InteractionEndpoints
from .limits import check_channel, check_message, normalize_channel_name
from .routing import (
    Call,
    Failure,
    Handler,
    Hold,
    RecordedRequest,
    failure_response,
    json_response,
    read_body,
)
from .world import (
    ALL_PERMISSIONS,
    ATTACH_FILES,
    JSON,
    MANAGE_CHANNELS,
    MANAGE_MESSAGES,
    MANAGE_ROLES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    ApiError,
    Guild,
    form_error,
    missing_permissions,
    public_message,
)

if TYPE_CHECKING:
    from .sandbox import Sandbox

MAX_CATEGORY_CHILDREN = 50
MAX_GUILD_CHANNELS = 500


class Rest(InteractionEndpoints):
    """The REST endpoints, reading and changing the sandbox's world."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.world = sandbox.world
        self.failures: list[Failure] = []
        self.holds: list[Hold] = []
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        s, i = r"(?P<{}>\d+)", r"(?P<token>[^/]+)"
        app, g, c, m, u = (s.format(n) for n in ("app", "guild", "channel", "message", "user"))
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", lambda _: self.world.bot_user, True),
            ("GET", f"/users/{u}", self.get_user, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/oauth2/applications/@me", self.application, True),
            ("GET", "/applications/@me", self.application, True),
            ("GET", "/gateway", lambda _: {"url": self.sb.gateway_url}, False),
            ("GET", "/gateway/bot", self.gateway_bot, True),
            ("GET", f"/applications/{app}/commands", self.get_commands, True),
            ("PUT", f"/applications/{app}/commands", self.put_commands, True),
            ("GET", f"/applications/{app}/guilds/{g}/commands", self.get_commands, True),
            ("PUT", f"/applications/{app}/guilds/{g}/commands", self.put_commands, True),
            ("GET", f"/guilds/{g}", self.get_guild, True),
            ("GET", f"/guilds/{g}/channels", self.guild_channels, True),
            ("POST", f"/guilds/{g}/channels", self.create_channel, True),
            (
                "GET",
                f"/guilds/{g}/roles",
                lambda call: list(self._guild(call).roles.values()),
                True,
            ),
            ("GET", f"/guilds/{g}/members", self.list_members, True),
            ("GET", f"/guilds/{g}/members/{u}", self.get_member, True),
            ("PUT", f"/guilds/{g}/members/{u}/roles/(?P<role>\\d+)", self.member_role, True),
            ("DELETE", f"/guilds/{g}/members/{u}/roles/(?P<role>\\d+)", self.member_role, True),
            (
                "GET",
                f"/channels/{c}",
                lambda call: self.world.channel(call.params["channel"]),
                True,
            ),
            ("PATCH", f"/channels/{c}", self.edit_channel, True),
            ("DELETE", f"/channels/{c}", self.delete_channel, True),
            ("PUT", f"/channels/{c}/permissions/(?P<target>\\d+)", self.put_overwrite, True),
            ("DELETE", f"/channels/{c}/permissions/(?P<target>\\d+)", self.delete_overwrite, True),
            ("POST", f"/channels/{c}/typing", lambda _: None, True),
            ("GET", f"/channels/{c}/messages", self.history, True),
            ("POST", f"/channels/{c}/messages", self.create_message, True),
            ("GET", f"/channels/{c}/messages/{m}", self.get_message, True),
            ("PATCH", f"/channels/{c}/messages/{m}", self.edit_message, True),
            ("DELETE", f"/channels/{c}/messages/{m}", self.delete_message, True),
            ("PUT", f"/channels/{c}/messages/{m}/reactions/(?P<emoji>[^/]+)/@me", self.react, True),
            (
                "DELETE",
                f"/channels/{c}/messages/{m}/reactions/(?P<emoji>[^/]+)/@me",
                self.react,
                True,
            ),
            ("POST", f"/interactions/(?P<id>\\d+)/{i}/callback", self.callback, False),
            ("POST", f"/webhooks/{app}/{i}", self.execute_webhook, False),
            ("GET", f"/webhooks/{app}/{i}", self.get_webhook, False),
            ("GET", f"/webhooks/{app}/{i}/messages/(?P<mid>@original|\\d+)", self.hook_get, False),
            (
                "PATCH",
                f"/webhooks/{app}/{i}/messages/(?P<mid>@original|\\d+)",
                self.hook_edit,
                False,
            ),
            (
                "DELETE",
                f"/webhooks/{app}/{i}/messages/(?P<mid>@original|\\d+)",
                self.hook_del,
                False,
            ),
        ]
        for method, path, handler, auth in table:
            self.routes.append((method, re.compile(path), handler, auth))

    # plumbing

    async def handle(self, request: web.Request) -> web.Response:
        """Record, inject failures, authenticate, route, and answer in Discord's shapes."""
        path = "/" + request.match_info["tail"]
        body, files = await read_body(request)
        record = RecordedRequest(
            method=request.method, path=path, query=dict(request.query), json=body, files=files,
            at=time.monotonic(), reason=request.headers.get("X-Audit-Log-Reason"),
        )  # fmt: skip
        self.sb.requests.append(record)
        hold = next((h for h in self.holds if h.request is None and h.matches(record)), None)
        if hold is not None:
            hold.request = record  # taken: the next matching request goes through
            if not hold.after:
                hold.take(record)
                await hold.released()
                if hold.dropped:
                    record.status = 502
                    return json_response(502, {"message": "502: Bad Gateway", "code": 0})
        response = self._answer(request, record)
        record.status = response.status
        if hold is not None and hold.after:
            hold.take(record)
            await hold.released()
        return response

    def _answer(self, request: web.Request, record: RecordedRequest) -> web.Response:
        uploaded = sum(len(data) for _, data in record.files)
        if uploaded > self.sb.attachment_size_limit:
            # Discord's answer to files over the upload limit, whatever the endpoint.
            return json_response(413, {"message": "Request entity too large", "code": 40005})
        for failure in self.failures:
            if failure.method in ("*", record.method) and failure.pattern.search(record.path):
                failure.count -= 1
                if failure.count <= 0:
                    self.failures.remove(failure)
                return failure_response(failure)
        for method, pattern, handler, auth in self.routes:
            match = pattern.fullmatch(record.path)
            if match is None or method != record.method:
                continue
            if auth and request.headers.get("Authorization") != f"Bot {self.sb.bot_token}":
                return json_response(401, {"message": "401: Unauthorized", "code": 0})
            call = Call(record.method, match.groupdict(), record.query, record.json, record.files)
            try:
                result = handler(call)
            except ApiError as e:
                return json_response(e.status, e.body)
            return web.Response(status=204) if result is None else json_response(200, result)
        return json_response(404, {"message": "404: Not Found", "code": 0})

    def _guild(self, call: Call) -> Guild:
        guild = self.world.guilds.get(call.params["guild"])
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def _bot_can(self, guild: Guild, bits: int) -> None:
        if self.world.guild_permissions(guild, self.world.bot_id) & bits != bits:
            raise missing_permissions()

    def _bot_can_in(self, channel: JSON, bits: int) -> None:
        perms = self.world.bot_permissions(channel)
        if not perms & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if perms & bits != bits:
            raise missing_permissions()

    # users, application, gateway

    def get_user(self, call: Call) -> JSON:
        user = self.world.users.get(call.params["user"])
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return user

    def create_dm(self, call: Call) -> JSON:
        recipient = str(call.body.get("recipient_id"))
        if recipient not in self.world.users or recipient == self.world.bot_id:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return self.world.dm_channel(recipient)

    def application(self, _: Call) -> JSON:
        bot = self.world.bot_user
        return {
            "id": self.world.bot_id, "name": bot["username"], "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": self.sb.owner_user,
            "verify_key": "0" * 64, "flags": 0, "team": None, "summary": "", "rpc_origins": [],
            "interactions_endpoint_url": None, "bot": bot, "tags": [],
        }  # fmt: skip

    def gateway_bot(self, _: Call) -> JSON:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.sb.gateway_url, "shards": 1, "session_start_limit": limit}

    # application commands

    def _scope(self, call: Call) -> str | None:
        if call.params["app"] != self.world.bot_id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild" in call.params:
            self._guild(call)
            return call.params["guild"]
        return None

    def get_commands(self, call: Call) -> list[JSON]:
        return self.world.commands.get(self._scope(call), [])

    def put_commands(self, call: Call) -> list[JSON]:
        scope = self._scope(call)
        old = {(c["name"], c["type"]): c for c in self.world.commands.get(scope, [])}
        out: list[JSON] = []
        for i, raw in enumerate(call.json or []):
            type_ = int(raw.get("type", 1))
            name = str(raw.get("name") or "")
            if not 1 <= len(name) <= 32:
                raise form_error(
                    f"{i}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
                )
            if type_ == 1 and not 1 <= len(raw.get("description") or "") <= 100:
                raise form_error(
                    f"{i}.description",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            if len(raw.get("options") or []) > 25:
                raise form_error(
                    f"{i}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            previous = old.get((name, type_))
            command: JSON = {
                "description": "", "default_member_permissions": None, "dm_permission": True,
                "nsfw": False, "options": [], **raw, "type": type_,
                "id": previous["id"] if previous else self.world.next_id(),
                "application_id": self.world.bot_id, "version": self.world.next_id(),
            }  # fmt: skip
            if scope is not None:
                command["guild_id"] = scope
            out.append(command)
        self.world.commands[scope] = out
        return out

    # guilds and members

    def get_guild(self, call: Call) -> JSON:
        data = self.world.guild_payload(self._guild(call))
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            data.pop(key)
        return data

    def guild_channels(self, call: Call) -> list[JSON]:
        return [self.world.channels[c] for c in self._guild(call).channel_ids]

    def list_members(self, call: Call) -> list[JSON]:
        guild = self._guild(call)
        after = int(call.query.get("after", 0))
        limit = int(call.query.get("limit", 1))
        ids = sorted((u for u in guild.members if int(u) > after), key=int)[:limit]
        return [self.world.member_payload(guild, u) for u in ids]

    def get_member(self, call: Call) -> JSON:
        guild = self._guild(call)
        if call.params["user"] not in guild.members:
            raise ApiError(404, 10007, "Unknown Member")
        return self.world.member_payload(guild, call.params["user"])

    def member_role(self, call: Call) -> None:
        guild = self._guild(call)
        user_id, role_id = call.params["user"], call.params["role"]
        if user_id not in guild.members:
            raise ApiError(404, 10007, "Unknown Member")
        if role_id not in guild.roles:
            raise ApiError(404, 10011, "Unknown Role")
        self._bot_can(guild, MANAGE_ROLES)
        roles: list[str] = guild.members[user_id]["roles"]
        if call.method == "PUT" and role_id not in roles:
            roles.append(role_id)
        elif call.method == "DELETE" and role_id in roles:
            roles.remove(role_id)
        self.sb.member_changed(guild, user_id)

    # channels

    def _overwrites(self, guild: Guild, raw: Any) -> list[JSON]:
        """Normalized overwrites; the bot may only grant or deny what it has itself."""
        bot_perms = self.world.guild_permissions(guild, self.world.bot_id)
        out = []
        for i, item in enumerate(raw or []):
            target, type_ = str(item.get("id")), int(item.get("type", 0))
            if (type_ == 0 and target not in guild.roles) or (
                type_ == 1 and target not in self.world.users
            ):
                raise form_error(
                    f"permission_overwrites.{i}.id", "UNKNOWN_OVERWRITE", "Unknown overwrite target"
                )
            allow, deny = int(item.get("allow") or 0), int(item.get("deny") or 0)
            self._check_grant(bot_perms, allow | deny)
            out.append({"id": target, "type": type_, "allow": str(allow), "deny": str(deny)})
        return out

    @staticmethod
    def _check_grant(bot_perms: int, bits: int) -> None:
        # Only administrators may put Manage Roles in an overwrite.
        if bot_perms != ALL_PERMISSIONS and (bits & MANAGE_ROLES or bits & ~bot_perms):
            raise missing_permissions()

    def _check_parent(
        self, guild: Guild, parent_id: Any, type_: int, moving: str | None
    ) -> str | None:
        if parent_id in (None, ""):
            return None
        parent = self.world.channels.get(str(parent_id))
        if (
            parent is None
            or parent.get("guild_id") != guild.id
            or parent["type"] != 4
            or type_ == 4
        ):
            raise form_error("parent_id", "CHANNEL_PARENT_INVALID_TYPE", "Not a category")
        children = [
            c for c in guild.channel_ids
            if self.world.channels[c].get("parent_id") == parent["id"] and c != moving
        ]  # fmt: skip
        if len(children) >= MAX_CATEGORY_CHILDREN:
            raise form_error(
                "parent_id",
                "CHANNEL_PARENT_MAX_CHANNELS",
                f"Maximum number of channels in category reached ({MAX_CATEGORY_CHILDREN})",
            )
        return str(parent["id"])

    def create_channel(self, call: Call) -> JSON:
        guild = self._guild(call)
        self._bot_can(guild, MANAGE_CHANNELS)
        body = call.body
        type_ = int(body.get("type") or 0)
        if type_ not in (0, 2, 4, 5, 13, 15):
            raise form_error(
                "type", "BASE_TYPE_CHOICES", "Value must be one of (0, 2, 4, 5, 13, 15)."
            )
        if "name" not in body:
            raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        check_channel(body)
        parent_id = self._check_parent(guild, body.get("parent_id"), type_, None)
        if len(guild.channel_ids) >= MAX_GUILD_CHANNELS:
            raise ApiError(
                400, 30013, f"Maximum number of guild channels reached ({MAX_GUILD_CHANNELS})"
            )
        extra: JSON = {
            "permission_overwrites": self._overwrites(guild, body.get("permission_overwrites"))
        }
        for key in ("topic", "nsfw", "rate_limit_per_user", "position"):
            if body.get(key) is not None:
                extra[key] = body[key]
        name = normalize_channel_name(str(body["name"]), type_)
        channel = self.world.add_channel(guild, name, type_, parent_id, extra)
        self.sb.gateway.dispatch("CHANNEL_CREATE", channel)
        return channel

    def _guild_channel(self, call: Call) -> tuple[Guild, JSON]:
        channel = self.world.channel(call.params["channel"])
        if "guild_id" not in channel:
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        return self.world.guilds[channel["guild_id"]], channel

    def edit_channel(self, call: Call) -> JSON:
        guild, channel = self._guild_channel(call)
        self._bot_can_in(channel, MANAGE_CHANNELS)
        body = call.body
        check_channel(body)
        changes: JSON = {}
        if "parent_id" in body:
            changes["parent_id"] = self._check_parent(
                guild, body["parent_id"], channel["type"], channel["id"]
            )
        if "permission_overwrites" in body:
            self._bot_can_in(channel, MANAGE_ROLES)
            changes["permission_overwrites"] = self._overwrites(
                guild, body["permission_overwrites"]
            )
        if "name" in body:
            changes["name"] = normalize_channel_name(str(body["name"]), channel["type"])
        for key in ("topic", "nsfw", "rate_limit_per_user", "position"):
            if key in body:
                changes[key] = body[key]
        channel.update(changes)
        self.sb.gateway.dispatch("CHANNEL_UPDATE", channel)
        return channel

    def delete_channel(self, call: Call) -> JSON:
        _, channel = self._guild_channel(call)
        self._bot_can_in(channel, MANAGE_CHANNELS)
        orphans = self.world.remove_channel(channel)
        self.sb.gateway.dispatch("CHANNEL_DELETE", channel)
        for child in orphans:
            self.sb.gateway.dispatch("CHANNEL_UPDATE", child)
        return channel

    def put_overwrite(self, call: Call) -> None:
        guild, channel = self._guild_channel(call)
        self._bot_can_in(channel, MANAGE_ROLES)
        item = {**call.body, "id": call.params["target"]}
        (new,) = self._overwrites(guild, [item])
        rest = [o for o in channel["permission_overwrites"] if o["id"] != new["id"]]
        channel["permission_overwrites"] = [*rest, new]
        self.sb.gateway.dispatch("CHANNEL_UPDATE", channel)

    def delete_overwrite(self, call: Call) -> None:
        _, channel = self._guild_channel(call)
        self._bot_can_in(channel, MANAGE_ROLES)
        target = call.params["target"]
        channel["permission_overwrites"] = [
            o for o in channel["permission_overwrites"] if o["id"] != target
        ]
        self.sb.gateway.dispatch("CHANNEL_UPDATE", channel)

    # messages

    def _check_send(self, channel: JSON, files: list[tuple[str, bytes]]) -> None:
        if channel["type"] == 1:
            recipient = channel["recipients"][0]
            if recipient["bot"] or not self.world.dms_open.get(recipient["id"], True):
                raise ApiError(403, 50007, "Cannot send messages to this user")
            return
        if channel["type"] == 4:
            raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
        self._bot_can_in(channel, SEND_MESSAGES | (ATTACH_FILES if files else 0))

    def create_message(self, call: Call) -> JSON:
        channel = self.world.channel(call.params["channel"])
        self._check_send(channel, call.files)
        check_message(call.body, call.files)
        nonce = call.body.get("nonce")
        if call.body.get("enforce_nonce") and nonce is not None:
            # Discord answers a repeated nonce with the first message instead of a second one.
            twin = self.world.by_nonce(channel["id"], self.world.bot_id, nonce)
            if twin is not None:
                return public_message(twin)
        message = self.world.build_message(channel, self.world.bot_id, call.body, call.files)
        self.world.store_message(message, in_channel=True)
        self.sb.gateway.dispatch_message("MESSAGE_CREATE", message)
        return public_message(message)

    # channel webhooks

    def _channel_webhook(self, call: Call) -> JSON | None:
        hook = self.world.webhooks.get(call.params["app"])
        if hook is not None and hook["token"] != call.params["token"]:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return hook

    def execute_webhook(self, call: Call) -> JSON | None:
        """POST /webhooks/{id}/{token}: a channel webhook posts (``?wait=true`` answers the
        message, as Discord does; without it 204), else an interaction follow-up."""
        hook = self._channel_webhook(call)
        if hook is None:
            return self.followup(call)
        check_message(call.body, call.files)
        message = self.world.webhook_message(hook, call.body, call.files)
        self.world.store_message(message, in_channel=True)
        self.sb.gateway.dispatch_message("MESSAGE_CREATE", message)
        if call.query.get("wait") in ("1", "true", "True"):
            return public_message(message)
        return None

    def get_webhook(self, call: Call) -> JSON:
        """GET /webhooks/{id}/{token}: the webhook, without its token, as Discord answers."""
        hook = self._channel_webhook(call)
        if hook is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        return {k: v for k, v in hook.items() if k != "token"}

    def history(self, call: Call) -> list[JSON]:
        channel = self.world.channel(call.params["channel"])
        self._bot_can_in(channel, 0)
        if not self.world.bot_permissions(channel) & READ_MESSAGE_HISTORY:
            return []  # Discord answers an empty page, not an error
        limit = max(1, min(100, int(call.query.get("limit", 50))))
        messages = self.world.channel_messages[channel["id"]]
        q = call.query
        if "before" in q:
            picked = [m for m in messages if int(m["id"]) < int(q["before"])][-limit:]
        elif "after" in q:
            picked = [m for m in messages if int(m["id"]) > int(q["after"])][:limit]
        elif "around" in q:
            pivot = int(q["around"])
            older = (
                [m for m in messages if int(m["id"]) < pivot][-(limit // 2) :] if limit > 1 else []
            )
            newer = [m for m in messages if int(m["id"]) >= pivot][: limit - len(older)]
            picked = older + newer
        else:
            picked = messages[-limit:]
        # Newest first, as Discord, and without nonces: Discord does not return them here.
        return [_without_nonce(public_message(m)) for m in reversed(picked)]

    def get_message(self, call: Call) -> JSON:
        channel = self.world.channel(call.params["channel"])
        self._bot_can_in(channel, READ_MESSAGE_HISTORY)
        return _without_nonce(
            public_message(self.world.message(channel["id"], call.params["message"]))
        )

    def edit_message(self, call: Call) -> JSON:
        message = self.world.message(call.params["channel"], call.params["message"])
        if message["author"]["id"] != self.world.bot_id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        self.sb.edit_message(message, call.body, call.files)
        return public_message(message)

    def delete_message(self, call: Call) -> None:
        channel = self.world.channel(call.params["channel"])
        message = self.world.message(channel["id"], call.params["message"])
        if message["author"]["id"] != self.world.bot_id and "guild_id" in channel:
            self._bot_can_in(channel, MANAGE_MESSAGES)
        self.sb.delete_message(message)

    def react(self, call: Call) -> None:
        message = self.world.message(call.params["channel"], call.params["message"])
        reactions: list[JSON] = message.setdefault("reactions", [])
        emoji = call.params["emoji"]
        entry = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
        if call.method == "PUT" and entry is None:
            reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "me": True})
        elif call.method == "DELETE" and entry is not None:
            reactions.remove(entry)


def _without_nonce(message: JSON) -> JSON:
    message.pop("nonce", None)
    return message
