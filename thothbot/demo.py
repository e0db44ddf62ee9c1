"""``thothbot demo``: the real bot against the local Discord sandbox, playing a short story.

A customer opens a ticket from the panel and asks for a refund; rules tag and escalate it; the
ops channel gets the embed; a staff member claims and answers; the ticket closes; the customer
rates it 1 and the negative-CSAT rule fires. It prints what each person would see. The same
world and bot starter serve the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from thothbot.application import bot_desk
from thothbot.bot.client import ThothBot, point_at
from thothbot.llm import UrgencyClassifier
from thothbot.napping import utc_now
from thothbot.sandbox import Interaction, Sandbox
from thothbot.sandbox.testing import running
from thothbot.store import Store
from thothbot.triage import Classifier, Triage

MANAGE_GUILD = 1 << 5
# Inside the package, so an installed thothbot (a wheel, the container image) has them too; the
# top-level rules.example.json is the same file for people to read (a test keeps them equal).
RULES = resources.files("thothbot") / "examples" / "rules.example.json"
SETTINGS = """{
  "types": {"billing": {"label": "Billing"}, "general": {"label": "Something else"}},
  "sla": {"first_response_minutes": 30},
  "csat_negative_max": 2
}"""


@dataclass(frozen=True, slots=True)
class World:
    """A sample server: an admin, a customer, two support staff, #help, #ops and #ticket-log."""

    guild: str
    admin: str
    customer: str
    sam: str
    riley: str
    staff_role: str
    help: str
    ops: str
    log: str


def build_world(sandbox: Sandbox, *, customer_dms_open: bool = True) -> World:
    admin = sandbox.add_user("Avery")
    customer = sandbox.add_user("Dana", dms_open=customer_dms_open)
    sam, riley = sandbox.add_user("Sam"), sandbox.add_user("Riley")
    guild = sandbox.add_guild("Acme Support", owner_id=admin)
    staff_role = sandbox.add_role(guild, "Support")
    admin_role = sandbox.add_role(guild, "Admin", permissions=MANAGE_GUILD)
    sandbox.add_member(guild, admin, [admin_role])
    sandbox.add_member(guild, customer)
    sandbox.add_member(guild, sam, [staff_role])
    sandbox.add_member(guild, riley, [staff_role])
    return World(
        guild=guild,
        admin=admin,
        customer=customer,
        sam=sam,
        riley=riley,
        staff_role=staff_role,
        help=sandbox.add_channel(guild, "help"),
        ops=sandbox.add_channel(guild, "ops"),
        log=sandbox.add_channel(guild, "ticket-log"),
    )


async def configure(sandbox: Sandbox, world: World) -> list[tuple[str, str, Interaction]]:
    """What an admin does first (``/setup``, the example settings and rules) and staff going on
    duty: the server the demo, the end-to-end tests and the bench start from. Each step as
    (who, command, its finished interaction)."""
    places = {"staff_role": world.staff_role, "ops_channel": world.ops, "log_channel": world.log}
    steps: list[tuple[str, str, dict[str, str], dict[str, tuple[str, bytes]] | None]] = [
        (world.admin, "setup", places, None),
        (world.admin, "settings routing", {"file": "settings.json"},
         {"file": ("settings.json", SETTINGS.encode())}),
        (world.admin, "settings automation", {"file": "rules.json"},
         {"file": ("rules.json", RULES.read_bytes())}),
        (world.sam, "duty", {"state": "on"}, None),
        (world.riley, "duty", {"state": "on"}, None),
    ]  # fmt: skip
    done = []
    for who, command, options, attachments in steps:
        interaction = await sandbox.slash(
            world.guild, world.help, who, command, options, attachments=attachments
        )
        done.append((who, command, await interaction.done()))
    expected = {"setup": "Staff role", "duty": "on duty"}
    refused = [
        f"/{command}: {answer.text()}"
        for _, command, answer in done
        if expected.get(command, "Saved") not in answer.text()
    ]
    if refused:
        raise RuntimeError("the sample server could not be set up: " + "; ".join(refused))
    return done


@contextlib.asynccontextmanager
async def running_bot(
    sandbox: Sandbox,
    db_path: str | Path,
    guild_ids: tuple[int, ...],
    *,
    clock: Callable[[], datetime] = utc_now,
    close_delay: float = 0.5,
    classifier: Classifier | None = None,
    **options: Any,
) -> AsyncIterator[ThothBot]:
    """The real bot, connected to the sandbox (already pointed at) until the block ends, with
    the triage loop labelling tickets' urgency as under ``thothbot run`` (the keyword
    heuristic, unless a ``classifier`` is given)."""
    store = await Store.open(db_path)
    desk = bot_desk(store)
    bot = ThothBot(
        desk,
        guild_ids=guild_ids,
        clock=clock,
        close_delay=close_delay,
        guild_ready_timeout=0.05,
        **options,
    )
    triage = Triage(desk, classifier or UrgencyClassifier(None), clock=clock)
    try:
        async with running(bot, sandbox):
            labelling = asyncio.create_task(triage.run(), name="triage")
            try:
                yield bot
            finally:
                labelling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await labelling
    finally:
        await store.close()


class Narrator:
    """Prints what happened since the last step, as the people in it would see it."""

    def __init__(self, sandbox: Sandbox, world: World, out: TextIO) -> None:
        self.sandbox, self.world, self.out = sandbox, world, out
        self._seen: set[str] = set()
        self.names = {
            world.admin: "Avery (admin)",
            world.customer: "Dana (customer)",
            world.sam: "Sam (support)",
            world.riley: "Riley (support)",
        }

    def step(self, title: str) -> None:
        self.out.write(f"\n== {title}\n")

    def say(self, who: str, what: str) -> None:
        self.out.write(f"  {self.names.get(who, who)}: {what}\n")

    def answer(self, who: str, interaction: Interaction) -> None:
        text = self._names(interaction.text().strip())
        if text:
            note = " (only they see this)" if interaction.ephemeral else ""
            self.out.write(f"  -> {self.names.get(who, who)} sees{note}: {_indent(text)}\n")

    def news(self) -> None:
        """Every message not shown yet, in the server's channels and the customer's DMs."""
        for channel in self.sandbox.channels(self.world.guild):
            self._show(f"#{channel['name']}", self.sandbox.messages(channel["id"]))
        self._show("DM to Dana", self.sandbox.dm_messages(self.world.customer))

    def _show(self, where: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            if message["id"] in self._seen:
                continue
            self._seen.add(message["id"])
            author = message["author"]
            name = "thothbot" if author.get("bot") else self.names.get(author["id"], author["id"])
            lines = [message.get("content") or ""]
            for embed in message.get("embeds") or []:
                lines.append(f"[embed] {embed.get('title', '')}")
                if embed.get("description"):
                    lines.append(f"  {embed['description']}")
                lines.extend(f"  {f['name']}: {f['value']}" for f in embed.get("fields") or [])
            buttons = [
                c.get("label", "")
                for row in message.get("components") or []
                for c in row.get("components") or []
            ]
            if buttons:
                lines.append("[buttons] " + " | ".join(buttons))
            files = [a["filename"] for a in message.get("attachments") or []]
            if files:
                lines.append("[files] " + ", ".join(files))
            text = self._names("\n".join(line for line in lines if line))
            self.out.write(f"  {where} | {name}: {_indent(text)}\n")

    def _names(self, text: str) -> str:
        for user_id, name in self.names.items():
            text = text.replace(f"<@{user_id}>", f"@{name.split()[0]}")
        for channel in self.sandbox.channels(self.world.guild):
            text = text.replace(f"<#{channel['id']}>", f"#{channel['name']}")
        return text.replace(f"<@&{self.world.staff_role}>", "@Support")


def _indent(text: str) -> str:
    return text.replace("\n", "\n      ")


def _button(message: dict[str, Any], label: str) -> str:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("label") == label:
                return str(component["custom_id"])
    raise LookupError(f"no {label!r} button on message {message['id']}")


async def play(out: TextIO) -> None:
    """Run the story once and print it."""
    async with Sandbox() as sandbox:
        point_at(sandbox.api_url, sandbox.gateway_url)
        world = build_world(sandbox)
        story = Narrator(sandbox, world, out)
        with tempfile.TemporaryDirectory() as folder:
            async with running_bot(sandbox, Path(folder) / "demo.db", (int(world.guild),)) as bot:
                await _story(sandbox, world, story, bot)
    out.write("\nThat was the real bot, over HTTP and a websocket, against a local Discord.\n")


async def _story(sandbox: Sandbox, world: World, story: Narrator, bot: ThothBot) -> None:
    g = world.guild

    async def settle() -> None:
        await asyncio.sleep(0.05)  # the gateway echo of what the bot just did
        await bot.effects.settled()
        story.news()

    story.step("Avery sets up the server, saves the rules and posts the ticket panel")
    for who, command, answer in await configure(sandbox, world):
        if command == "duty":
            story.say(who, "/duty on")
        else:
            story.answer(who, answer)
    story.answer(
        world.admin, await (await sandbox.slash(g, world.help, world.admin, "panel")).done()
    )
    await settle()

    story.step("Dana opens a Billing ticket from the panel")
    panel = sandbox.messages(world.help)[-1]
    modal = await sandbox.click(world.help, panel["id"], _button(panel, "Billing"), world.customer)
    await modal.response()
    story.say(world.customer, "clicks Billing and fills in the form")
    opened = await sandbox.submit_modal(
        modal,
        {"subject": "Charged twice for order 1042", "description": "My card shows two charges."},
    )
    story.answer(world.customer, await opened.done())
    await settle()
    ticket_channel = next(c for c in sandbox.channels(g) if c["name"] == "ticket-0001")["id"]

    story.step("Dana asks for a refund: the rules tag and escalate it to #ops")
    await sandbox.send_message(
        ticket_channel, world.customer, "Can I get a refund for one of them?"
    )
    story.say(world.customer, "Can I get a refund for one of them?")
    await sandbox.wait_for(lambda: len(sandbox.messages(world.ops)) >= 1)
    await settle()

    story.step("Riley claims the escalation and answers")
    post = sandbox.messages(world.ops)[-1]
    claim = await sandbox.click(world.ops, post["id"], _button(post, "Claim"), world.riley)
    story.answer(world.riley, await claim.done())
    reply = "Sorry about that! The second charge is refunded; you will see it in 3-5 days."
    await sandbox.send_message(ticket_channel, world.riley, reply)
    story.say(world.riley, reply)
    await settle()

    story.step("Riley closes the ticket: transcripts go to #ticket-log and to Dana")
    closing = await sandbox.slash(
        g, ticket_channel, world.riley, "ticket close", {"reason": "Refund issued"}
    )
    story.answer(world.riley, await closing.done())
    await sandbox.wait_for(lambda: len(sandbox.dm_messages(world.customer)) >= 2)
    await settle()

    story.step("Dana rates the ticket 1: the negative-CSAT rule fires")
    ask = sandbox.dm_messages(world.customer)[-1]
    rating = await sandbox.click(ask["channel_id"], ask["id"], _button(ask, "1"), world.customer)
    story.say(world.customer, "clicks 1")
    story.answer(world.customer, await rating.done())
    await settle()
    log = await sandbox.slash(g, world.help, world.admin, "automation log", {"limit": 3})
    story.say(world.admin, "/automation log limit:3")
    story.answer(world.admin, await log.done())
    await sandbox.wait_for(lambda: sandbox.channel(ticket_channel) is None, timeout=5)
    story.step("The ticket channel is gone")
    story.out.write("  #ticket-0001 was deleted after the close delay.\n")


def main(out: TextIO) -> None:
    asyncio.run(play(out))
