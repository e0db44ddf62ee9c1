"""The gateway websocket: HELLO, IDENTIFY/READY, RESUME, heartbeats and event dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from .world import JSON, World, public_message

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41250

# Intent bits (https://discord.com/developers/docs/events/gateway#gateway-intents).
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15

_EVENT_INTENTS = {
    "CHANNEL_CREATE": GUILDS, "CHANNEL_UPDATE": GUILDS, "CHANNEL_DELETE": GUILDS,
    "GUILD_ROLE_CREATE": GUILDS, "GUILD_ROLE_UPDATE": GUILDS, "GUILD_ROLE_DELETE": GUILDS,
    "GUILD_CREATE": GUILDS,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS, "GUILD_MEMBER_UPDATE": GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": GUILD_MEMBERS,
}  # fmt: skip


class _Connection:
    """One open websocket with an ordered outgoing queue (dispatch is sync, sends are not)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write())
        self.closed_by_us = False

    async def _write(self) -> None:
        while (frame := await self.queue.get()) is not None:
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return

    def send(self, payload: JSON) -> None:
        self.queue.put_nowait(json.dumps(payload))

    async def close(self, code: int, message: str = "") -> None:
        self.closed_by_us = True
        self.queue.put_nowait(None)
        await self.ws.close(code=code, message=message.encode())


@dataclass
class Session:
    """A gateway session: it outlives its websocket so that a client can RESUME it."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    log: list[tuple[int, str]] = field(default_factory=list)
    conn: _Connection | None = None

    def dispatch(self, event: str, data: JSON) -> None:
        self.seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self.seq, "d": data})
        self.log.append((self.seq, frame))
        if self.conn is not None:
            self.conn.queue.put_nowait(frame)


class Gateway:
    """Serves /gateway and fans events out to every identified session."""

    def __init__(self, world: World, token: str, url: Callable[[], str]) -> None:
        self.world = world
        self.token = token
        self._url = url
        self.sessions: dict[str, Session] = {}
        self.connections: set[_Connection] = set()
        self.connected = asyncio.Event()

    def dispatch(self, event: str, data: JSON, *, intent: int = 0) -> None:
        """Send an event to every session whose intents ask for it."""
        intent = intent or _EVENT_INTENTS.get(event, 0)
        for session in self.sessions.values():
            if not intent or session.intents & intent:
                session.dispatch(event, data)

    def dispatch_message(self, event: str, message: JSON) -> None:
        """MESSAGE_CREATE/UPDATE with guild_id and member; no content without the intent."""
        data = public_message(message)
        guild_id = message.get("guild_id")
        author_id = message["author"]["id"]
        if guild_id is not None:
            guild = self.world.guilds[guild_id]
            if author_id in guild.members:
                data["member"] = self.world.member_payload(guild, author_id, with_user=False)
        mentioned = any(u["id"] == self.world.bot_id for u in message["mentions"])
        private = guild_id is None or author_id == self.world.bot_id or mentioned
        redacted = data | {"content": "", "embeds": [], "attachments": [], "components": []}
        intent = GUILD_MESSAGES if guild_id is not None else DIRECT_MESSAGES
        for session in self.sessions.values():
            if session.intents & intent:
                keep = private or session.intents & MESSAGE_CONTENT
                session.dispatch(event, data if keep else redacted)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """One gateway connection, from HELLO to close."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(ws)
        self.connections.add(conn)
        session: Session | None = None
        conn.send(
            {"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None}
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op, d = payload.get("op"), payload.get("d")
                if op == 1:
                    conn.send({"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    session = await self._identify(conn, d)
                elif op == 6:
                    session = self._resume(conn, d)
                elif op == 8 and session is not None:
                    self._chunk(session, d)
        finally:
            if session is not None and session.conn is conn:
                session.conn = None
                # A client that closes with 1000/1001 ends its session (it cannot resume).
                if ws.close_code in (1000, 1001) and not conn.closed_by_us:
                    self.sessions.pop(session.id, None)
            self.connections.discard(conn)
            conn.queue.put_nowait(None)
        return ws

    async def _identify(self, conn: _Connection, d: JSON) -> Session | None:
        token = str(d.get("token", "")).removeprefix("Bot ")
        if token != self.token:
            await conn.close(4004, "Authentication failed.")
            return None
        session = Session(
            id=secrets.token_hex(16), intents=int(d.get("intents", 0)), shard=d.get("shard")
        )
        session.conn = conn
        self.sessions[session.id] = session
        guilds = list(self.world.guilds.values())
        ready: JSON = {
            "v": 10, "user": self.world.bot_user, "session_id": session.id,
            "resume_gateway_url": self._url(), "session_type": "normal",
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "application": {"id": self.world.bot_id, "flags": 0}, "private_channels": [],
            "relationships": [], "presences": [],
        }  # fmt: skip
        if session.shard is not None:
            ready["shard"] = session.shard
        session.dispatch("READY", ready)
        for guild in guilds:
            session.dispatch("GUILD_CREATE", self.world.guild_payload(guild))
        self.connected.set()
        return session

    def _resume(self, conn: _Connection, d: JSON) -> Session | None:
        session = self.sessions.get(str(d.get("session_id")))
        if session is None or str(d.get("token", "")).removeprefix("Bot ") != self.token:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return None
        if session.conn is not None and session.conn is not conn:
            session.conn.queue.put_nowait(None)
        session.conn = conn
        # Replay what the client missed, then RESUMED, as Discord does.
        seen = int(d.get("seq") or 0)
        for seq, frame in session.log:
            if seq > seen:
                conn.queue.put_nowait(frame)
        session.dispatch("RESUMED", {})
        return session

    def _chunk(self, session: Session, d: JSON) -> None:
        guild = self.world.guilds.get(str(d.get("guild_id")))
        if guild is None:
            return
        wanted = d.get("user_ids")
        ids = [str(u) for u in wanted] if wanted else list(guild.members)
        members = [self.world.member_payload(guild, u) for u in ids if u in guild.members]
        chunk: JSON = {
            "guild_id": guild.id, "members": members, "chunk_index": 0, "chunk_count": 1,
        }  # fmt: skip
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def disconnect(self, code: int = 4000) -> None:
        """Close every websocket; sessions stay resumable."""
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(code, "Sandbox disconnect")

    async def close(self) -> None:
        """Close everything for good."""
        await self.disconnect(1001)
        self.sessions.clear()
        for conn in list(self.connections):
            conn.writer.cancel()
