"""The sandbox drives a real discord.py bot over real HTTP and websocket."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from thothbot.sandbox import Interaction, Sandbox, SandboxError
from thothbot.sandbox.testing import pointed_at, running


@dataclass
class Ids:
    guild: str
    staff: str
    general: str
    alice: str
    bob: str
    closed: str  # a user whose DMs are closed


@dataclass
class Seen:
    messages: list[discord.Message] = field(default_factory=list)
    resumed: int = 0


class CloseButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"ticket:close:(?P<id>\d+)"
):
    def __init__(self, ticket: int) -> None:
        super().__init__(
            discord.ui.Button(label="Close", custom_id=f"ticket:close:{ticket}"),
        )
        self.ticket = ticket

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CloseButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"Ticket {self.ticket} closed", view=None)


class Feedback(discord.ui.Modal, title="Feedback"):
    comment: discord.ui.TextInput[Feedback] = discord.ui.TextInput(
        label="Comment", custom_id="comment"
    )
    rating: discord.ui.Label[Feedback] = discord.ui.Label(
        text="Rating", component=discord.ui.TextInput(custom_id="rating", max_length=1)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.rating.component, discord.ui.TextInput)
        text = f"Thanks: {self.comment.value} ({self.rating.component.value}/5)"
        await interaction.response.send_message(text, ephemeral=True)


def make_bot(ids: Ids, seen: Seen) -> commands.Bot:
    intents = discord.Intents.none()
    intents.guilds = intents.members = intents.message_content = True
    intents.guild_messages = intents.dm_messages = True
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
    guild = discord.Object(int(ids.guild))
    ticket = app_commands.Group(name="ticket", description="Tickets", guild_ids=[guild.id])

    @ticket.command(name="open", description="Open a ticket")
    async def open_(
        interaction: discord.Interaction,
        subject: str,
        priority: int,
        who: discord.Member,
        evidence: discord.Attachment | None = None,
    ) -> None:
        size = len(await evidence.read()) if evidence else 0
        await interaction.response.send_message(
            f"Opened {subject} p{priority} for {who.name}, evidence {size} bytes", ephemeral=True
        )
        await interaction.followup.send("Staff will answer soon")

    @ticket.command(name="slow", description="Thinks first")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        file = discord.File(io.BytesIO(b"report"), filename="report.txt")
        await interaction.followup.send("Done thinking", file=file)

    @app_commands.command(name="feedback", description="Leave feedback")
    @app_commands.guilds(guild)
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback())

    @app_commands.context_menu(name="Make ticket")
    @app_commands.guilds(guild)
    async def make_ticket(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"Ticket from: {message.content}")

    bot.tree.add_command(ticket)
    bot.tree.add_command(feedback)
    bot.tree.add_command(make_ticket)
    bot.add_dynamic_items(CloseButton)

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    async def on_message(message: discord.Message) -> None:
        if message.author != bot.user:
            seen.messages.append(message)

    async def on_resumed() -> None:
        seen.resumed += 1

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    bot.add_listener(on_message)
    bot.add_listener(on_resumed)
    return bot


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with pointed_at(Sandbox()) as sb:
        yield sb


@pytest.fixture
def ids(sandbox: Sandbox) -> Ids:
    alice, bob = sandbox.add_user("alice"), sandbox.add_user("bob")
    closed = sandbox.add_user("closed", dms_open=False)
    guild = sandbox.add_guild("Acme", owner_id=alice)
    staff = sandbox.add_role(guild, "Staff", permissions=1 << 13)
    sandbox.add_member(guild, bob, [staff])
    sandbox.add_member(guild, closed)
    general = sandbox.add_channel(guild, "general")
    return Ids(guild, staff, general, alice, bob, closed)


@pytest.fixture
async def bot(sandbox: Sandbox, ids: Ids) -> AsyncIterator[tuple[commands.Bot, Seen]]:
    seen = Seen()
    client = make_bot(ids, seen)
    async with running(client, sandbox):
        yield client, seen


Bot = tuple[commands.Bot, Seen]


def text_channel(bot: commands.Bot, channel_id: str) -> discord.TextChannel:
    channel = bot.get_channel(int(channel_id))
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_ready_sees_guild_roles_members(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    guild = client.get_guild(int(ids.guild))
    assert guild is not None
    assert guild.name == "Acme"
    assert guild.default_role.id == guild.id
    assert {r.name for r in guild.roles} >= {"@everyone", "Staff", "thothbot"}
    assert guild.me is not None
    assert guild.me.guild_permissions.manage_channels
    bob = guild.get_member(int(ids.bob))
    assert bob is not None
    assert [r.name for r in bob.roles] == ["@everyone", "Staff"]
    assert guild.owner_id == int(ids.alice)
    assert guild.member_count == 4
    assert text_channel(client, ids.general).name == "general"
    assert sandbox.bot_connected.is_set()
    synced = f"/applications/{sandbox.application_id}/guilds/{ids.guild}/commands"
    assert [r.path for r in sandbox.requests_to("PUT", "commands")] == [synced]


async def test_on_message_in_guild_and_dm(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    _, seen = bot
    await sandbox.send_message(ids.general, ids.bob, "my printer is on fire <@" + ids.alice + ">")
    await sandbox.send_message(sandbox.dm_channel(ids.bob), ids.bob, "hello in private")
    await sandbox.wait_for(lambda: len(seen.messages) == 2)
    guild_msg, dm_msg = seen.messages
    assert guild_msg.content.startswith("my printer")
    assert guild_msg.author.id == int(ids.bob)
    assert isinstance(guild_msg.author, discord.Member)
    assert guild_msg.guild is not None
    assert [u.id for u in guild_msg.mentions] == [int(ids.alice)]
    assert dm_msg.guild is None
    assert isinstance(dm_msg.channel, discord.DMChannel)
    with pytest.raises(SandboxError):
        await sandbox.send_message(ids.general, sandbox.add_user("stranger"), "hi")


async def test_private_channel_embed_and_button(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    guild = client.get_guild(int(ids.guild))
    assert guild is not None
    assert guild.me is not None
    bob = guild.get_member(int(ids.bob))
    assert bob is not None
    hidden = {guild.default_role: discord.PermissionOverwrite(view_channel=False)}
    lonely = await guild.create_text_channel("No Bot", overwrites=hidden)
    with pytest.raises(discord.Forbidden) as denied:  # the bot hid the channel from itself
        await lonely.send("hello?")
    assert denied.value.code == 50001
    overwrites: dict[discord.Role | discord.Member, discord.PermissionOverwrite] = {
        **hidden,
        bob: discord.PermissionOverwrite(view_channel=True),
        guild.me: discord.PermissionOverwrite(view_channel=True),
    }
    channel = await guild.create_text_channel("Ticket 0001", overwrites=overwrites, topic="t")
    view = discord.ui.View()
    view.add_item(CloseButton(1))
    embed = discord.Embed(title="Ticket #1", description="Printer on fire")
    embed.add_field(name="Priority", value="high")
    sent = await channel.send("New ticket", embed=embed, view=view)

    stored = sandbox.channel(str(channel.id))
    assert stored is not None
    assert stored["name"] == "ticket-0001"
    assert stored["topic"] == "t"
    kinds = {o["id"]: (o["type"], o["allow"], o["deny"]) for o in stored["permission_overwrites"]}
    assert kinds[ids.guild] == (0, "0", str(1 << 10))
    assert kinds[ids.bob] == (1, str(1 << 10), "0")
    (message,) = sandbox.messages(str(channel.id))
    assert message["id"] == str(sent.id)
    assert message["embeds"][0]["title"] == "Ticket #1"
    assert message["components"][0]["components"][0]["custom_id"] == "ticket:close:1"
    await sandbox.wait_for(lambda: client.get_channel(channel.id) is not None)


async def test_slash_options_attachment_ephemeral_and_followup(
    sandbox: Sandbox, ids: Ids, bot: Bot
) -> None:
    options = {"subject": "Printer", "priority": 2, "who": ids.bob}
    files = {"evidence": ("log.txt", b"x" * 1234)}
    inter = await sandbox.slash(
        ids.guild, ids.general, ids.alice, "ticket open", options, attachments=files
    )
    await sandbox.wait_for(lambda: inter.followups)
    assert inter.ephemeral
    assert "Opened Printer p2 for bob, evidence 1234 bytes" in inter.text()
    assert "Staff will answer soon" in inter.text()
    channel_texts = [m["content"] for m in sandbox.messages(ids.general)]
    assert channel_texts == ["Staff will answer soon"]  # the ephemeral answer is not in the channel
    callback = sandbox.requests_to("POST", r"/interactions/\d+/.+/callback")[0]
    assert callback.status == 200
    assert callback.json["data"]["flags"] == 64

    with pytest.raises(SandboxError, match="unknown option"):
        await sandbox.slash(ids.guild, ids.general, ids.alice, "ticket open", {"nope": 1})
    with pytest.raises(SandboxError, match="required option"):
        await sandbox.slash(ids.guild, ids.general, ids.alice, "ticket open", {"subject": "x"})
    with pytest.raises(SandboxError, match="no synced command"):
        await sandbox.slash(ids.guild, ids.general, ids.alice, "nothing")


async def test_defer_then_followup_replaces_thinking(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    inter = await sandbox.slash(ids.guild, ids.general, ids.alice, "ticket slow")
    await inter.done()
    assert inter.deferred
    assert inter.ephemeral
    assert inter.followups == []
    assert inter.original is not None
    assert inter.original["content"] == "Done thinking"
    assert inter.original["attachments"][0]["content"] == b"report"
    assert sandbox.messages(ids.general) == []


async def test_dynamic_button_updates_message(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    view = discord.ui.View()
    view.add_item(CloseButton(7))
    sent = await text_channel(client, ids.general).send("Ticket 7", view=view)
    inter = await sandbox.click(ids.general, str(sent.id), "ticket:close:7", ids.bob)
    assert (await inter.response())["type"] == 7
    (message,) = sandbox.messages(ids.general)
    assert message["content"] == "Ticket 7 closed"
    assert message["components"] == []
    assert "Ticket 7 closed" in inter.text()
    with pytest.raises(SandboxError, match="no component"):
        await sandbox.click(ids.general, str(sent.id), "ticket:close:8", ids.bob)

    alice = await client.fetch_user(int(ids.alice))
    dm = await alice.send("Your ticket 9", view=discord.ui.View().add_item(CloseButton(9)))
    in_dm = await sandbox.click(
        sandbox.dm_channel(ids.alice), str(dm.id), "ticket:close:9", ids.alice
    )
    await in_dm.done()
    assert in_dm.guild_id is None
    assert "user" in in_dm.payload
    assert sandbox.dm_messages(ids.alice)[0]["content"] == "Ticket 9 closed"


async def test_modal_opened_and_submitted(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    inter = await sandbox.slash(ids.guild, ids.general, ids.alice, "feedback")
    await inter.done()
    assert inter.modal is not None
    assert inter.modal["title"] == "Feedback"
    with pytest.raises(SandboxError, match="length"):
        await sandbox.submit_modal(inter, {"comment": "great", "rating": "10"})
    submitted = await sandbox.submit_modal(inter, {"comment": "great", "rating": "5"})
    await submitted.done()
    assert submitted.type == 5
    assert submitted.ephemeral
    assert "Thanks: great (5/5)" in submitted.text()


async def test_message_command(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    msg = await sandbox.send_message(ids.general, ids.bob, "please help")
    inter = await sandbox.message_command(
        ids.guild, ids.general, ids.alice, "Make ticket", msg["id"]
    )
    await inter.done()
    assert "Ticket from: please help" in inter.text()
    assert not inter.ephemeral


async def test_second_callback_and_late_callback(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    inter = await sandbox.slash(ids.guild, ids.general, ids.alice, "feedback")
    await inter.done()
    url = f"{sandbox.api_url}/interactions/{inter.id}/{inter.token}/callback"
    async with aiohttp.ClientSession() as http, http.post(url, json={"type": 6}) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == 40060

    sandbox.interaction_timeout = 0.0  # every callback now arrives after Discord's 3 s window
    late = await sandbox.slash(ids.guild, ids.general, ids.alice, "feedback")
    await sandbox.wait_for(lambda: len(sandbox.requests_to("POST", "/callback")) == 3)
    assert sandbox.requests_to("POST", "/callback")[-1].status == 404
    assert late.callback is None


async def test_history_edit_delete(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    channel = text_channel(client, ids.general)
    first = await channel.send("one")
    await sandbox.send_message(ids.general, ids.bob, "two")
    await channel.send("three")
    assert [m.content async for m in channel.history(limit=2)] == ["three", "two"]
    assert [m.content async for m in channel.history(after=first)] == ["two", "three"]
    await first.edit(content="one, edited")
    stored = sandbox.messages(ids.general)[0]
    assert stored["content"] == "one, edited"
    assert stored["edited_timestamp"] is not None
    await first.delete()
    assert [m["content"] for m in sandbox.messages(ids.general)] == ["two", "three"]
    file = discord.File(io.BytesIO(b"transcript"), filename="t.txt")
    await channel.send("with a file", file=file, allowed_mentions=discord.AllowedMentions.none())
    last = sandbox.messages(ids.general)[-1]
    assert last["attachments"][0]["filename"] == "t.txt"
    assert last["attachments"][0]["content"] == b"transcript"
    assert last["allowed_mentions"] == {"parse": []}


async def test_auto_sharded_client_and_injected_failures(sandbox: Sandbox, ids: Ids) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    client = discord.AutoShardedClient(intents=intents, guild_ready_timeout=0.05)
    async with running(client, sandbox):
        assert client.get_guild(int(ids.guild)) is not None
        channel = client.get_channel(int(ids.general))
        assert isinstance(channel, discord.TextChannel)
        sandbox.fail_next("*", "/messages", status=403, code=50001)
        with pytest.raises(discord.Forbidden):
            await channel.send("x")
        sandbox.fail_next("POST", "/messages", status=400, code=50035)
        with pytest.raises(discord.HTTPException):
            await channel.send("x")
        await channel.send("fine now")
    assert "/gateway/bot" in [r.path for r in sandbox.requests]


async def test_429_is_retried(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    sandbox.fail_next("POST", rf"^/channels/{ids.general}/messages$", status=429, retry_after=0.01)
    await text_channel(client, ids.general).send("after a rate limit")
    sent = sandbox.requests_to("POST", r"^/channels/\d+/messages$")
    assert [r.status for r in sent] == [429, 200]
    assert [m["content"] for m in sandbox.messages(ids.general)] == ["after a rate limit"]


async def test_limits_are_enforced(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    channel = text_channel(client, ids.general)
    with pytest.raises(discord.HTTPException) as long_message:
        await channel.send("x" * 2001)
    assert long_message.value.status == 400
    assert long_message.value.code == 50035
    assert "2000 or fewer" in str(long_message.value)
    with pytest.raises(discord.HTTPException, match="4096"):
        await channel.send(embed=discord.Embed(description="y" * 4097))

    category = sandbox.add_channel(ids.guild, "Tickets", type=4)
    for i in range(50):
        sandbox.add_channel(ids.guild, f"t-{i}", parent_id=category)
    guild = client.get_guild(int(ids.guild))
    assert guild is not None
    await sandbox.wait_for(lambda: guild.get_channel(int(category)))
    cat = guild.get_channel(int(category))
    assert isinstance(cat, discord.CategoryChannel)
    with pytest.raises(discord.HTTPException, match=r"Maximum number of channels in category"):
        await guild.create_text_channel("one-too-many", category=cat)


async def test_forbidden_dm_and_missing_permissions(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    client, _ = bot
    closed = await client.fetch_user(int(ids.closed))
    with pytest.raises(discord.Forbidden) as dm:
        await closed.send("hi")
    assert dm.value.code == 50007
    alice = await client.fetch_user(int(ids.alice))
    await alice.send("your ticket was closed")
    assert [m["content"] for m in sandbox.dm_messages(ids.alice)] == ["your ticket was closed"]

    sandbox.set_bot_permissions(ids.guild, 0)
    guild = client.get_guild(int(ids.guild))
    assert guild is not None
    await sandbox.wait_for(
        lambda: guild.me is not None and not guild.me.guild_permissions.manage_channels
    )
    with pytest.raises(discord.Forbidden) as denied:
        await guild.create_text_channel("nope")
    assert denied.value.code == 50013


async def test_resume_after_disconnect(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    _, seen = bot
    await sandbox.disconnect_bots()
    await sandbox.send_message(ids.general, ids.bob, "while you were away")
    await sandbox.wait_for(lambda: seen.resumed == 1 and seen.messages)
    assert seen.messages[0].content == "while you were away"


async def test_rest_edges(sandbox: Sandbox, ids: Ids) -> None:
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {sandbox.bot_token}"}
        async with http.get(f"{sandbox.api_url}/nowhere", headers=auth) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
        async with http.get(
            f"{sandbox.api_url}/users/@me", headers={"Authorization": "Bot x"}
        ) as resp:
            assert resp.status == 401
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong-token")
    await client.close()
    assert [r.status for r in sandbox.requests] == [404, 401, 401]


async def test_interaction_waits_name_the_problem(sandbox: Sandbox, ids: Ids) -> None:
    inter = Interaction(
        id="1", token="t", type=2, user_id=ids.alice, channel_id=None, guild_id=None, payload={}
    )
    with pytest.raises(TimeoutError, match="final answer"):
        await inter.done(timeout=0.01)
    await asyncio.sleep(0)


async def test_uploads_over_the_limit_are_refused_as_discord_does(
    sandbox: Sandbox, ids: Ids, bot: Bot
) -> None:
    client, _ = bot
    sandbox.attachment_size_limit = 1000
    channel = text_channel(client, ids.general)
    half = [discord.File(io.BytesIO(b"x" * 500), f"{n}.txt") for n in "ab"]
    await channel.send("exactly the limit", files=half)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("one byte over", file=discord.File(io.BytesIO(b"x" * 1001), "c.txt"))
    assert (refused.value.status, refused.value.code) == (413, 40005)
    assert "Request entity too large" in str(refused.value)
    alice = await client.fetch_user(int(ids.alice))
    with pytest.raises(discord.HTTPException, match="Request entity too large"):
        await alice.send(file=discord.File(io.BytesIO(b"x" * 1001), "d.txt"))
    assert [m["content"] for m in sandbox.messages(ids.general)] == ["exactly the limit"]
    # The limit the sandbox enforces is the one it tells the bot in every interaction.
    options = {"subject": "Printer", "priority": 2, "who": ids.bob}
    inter = await sandbox.slash(ids.guild, ids.general, ids.alice, "ticket open", options)
    assert inter.payload["attachment_size_limit"] == 1000


@pytest.mark.parametrize("after", [False, True])
async def test_a_held_request_waits_before_or_after_discord_acts(
    sandbox: Sandbox, ids: Ids, bot: Bot, after: bool
) -> None:
    client, _ = bot
    channel = text_channel(client, ids.general)
    hold = sandbox.hold_next(
        "POST", rf"^/channels/{ids.general}/messages$", after=after,
        where=lambda r: (r.json or {}).get("content") == "held",
    )  # fmt: skip
    await channel.send("not this one")
    sending = asyncio.create_task(channel.send("held"))
    held = await hold.wait()
    assert held.json["content"] == "held"
    posted = [m["content"] for m in sandbox.messages(ids.general)]
    assert posted == (["not this one", "held"] if after else ["not this one"])
    assert not sending.done()
    hold.release()
    message = await sending
    assert message.content == "held"
    assert [m["content"] for m in sandbox.messages(ids.general)] == ["not this one", "held"]


async def test_a_dropped_request_is_never_acted_on(sandbox: Sandbox, ids: Ids, bot: Bot) -> None:
    """What a crash leaves: the client is gone, and the request it had sent is lost."""
    client, _ = bot
    hold = sandbox.hold_next("POST", rf"^/channels/{ids.general}/messages$")
    sending = asyncio.create_task(text_channel(client, ids.general).send("lost"))
    await hold.wait()
    sending.cancel()
    hold.drop()
    await sandbox.wait_for(lambda: hold.request is not None and hold.request.status == 502)
    assert sandbox.messages(ids.general) == []
