"""Slash commands, the message listener and the "Save as answer" menu: thin, they call flows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from thothbot.bot import render
from thothbot.bot.flows import NEEDED, Flows
from thothbot.bot.items import AnswerModal, Interaction, panel_buttons
from thothbot.core.channels import DiscordSetup
from thothbot.core.errors import DomainError
from thothbot.service import Desk

MANAGE_SERVER = discord.Permissions(manage_guild=True)


def require_admin(interaction: Interaction) -> None:
    if not interaction.permissions.manage_guild:
        raise DomainError("You need the Manage Server permission for this.")


class Tickets(commands.Cog):
    """What customers and staff do with tickets."""

    ticket = app_commands.Group(name="ticket", description="Open and work support tickets")
    tag = app_commands.Group(name="tag", description="A ticket's tags", parent=ticket)

    def __init__(
        self, client: discord.Client, flows: Flows, desk: Desk, clock: Callable[[], datetime]
    ) -> None:
        self.client = client  # whose own messages come back through the gateway
        self.flows = flows
        self.desk = desk
        self.now = clock

    @ticket.command(name="open", description="Open a support ticket")
    @app_commands.describe(subject="What it is about", type="The kind of ticket")
    async def open(
        self,
        interaction: Interaction,
        subject: app_commands.Range[str, 1, 200],
        type: str | None = None,
        description: app_commands.Range[str, 0, 4000] = "",
    ) -> None:
        await self.flows.open(interaction, subject, type, description)

    @ticket.command(name="close", description="Close this ticket")
    async def close(self, interaction: Interaction, reason: str | None = None) -> None:
        await self.flows.close(interaction, None, reason)

    @ticket.command(name="claim", description="Take this ticket")
    async def claim(self, interaction: Interaction) -> None:
        await self.flows.claim(interaction)

    @ticket.command(name="escalate", description="Send this ticket to the ops channel")
    async def escalate(self, interaction: Interaction, reason: str | None = None) -> None:
        await self.flows.escalate(interaction, None, reason)

    @ticket.command(name="assign", description="Give this ticket to a staff member")
    async def assign(self, interaction: Interaction, member: discord.Member) -> None:
        await self.flows.assign(interaction, member)

    @ticket.command(name="info", description="Status, assignee, tags, urgency and SLA")
    async def info(self, interaction: Interaction) -> None:
        await self.flows.info(interaction)

    @tag.command(name="add", description="Tag this ticket")
    async def tag_add(self, interaction: Interaction, tag: app_commands.Range[str, 1, 40]) -> None:
        await self.flows.tag(interaction, tag, add=True)

    @tag.command(name="remove", description="Remove a tag from this ticket")
    async def tag_remove(self, interaction: Interaction, tag: str) -> None:
        await self.flows.tag(interaction, tag, add=False)

    @app_commands.command(name="duty", description="Go on or off duty for round robin")
    async def duty(self, interaction: Interaction, state: Literal["on", "off"]) -> None:
        async with self.flows.guarded(interaction):
            await self.flows.defer(interaction)
            guild_id = self.flows.guild_id(interaction)
            await self.desk.set_duty(guild_id, str(interaction.user.id), state == "on", self.now())
            await self.flows.reply(
                interaction,
                "You are on duty: round robin assigns you tickets."
                if state == "on"
                else "You are off duty: round robin skips you.",
            )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Every message in a server channel goes to the desk, which decides whether a ticket
        takes it (rules, SLA, answers). Only our own posts coming back are not sent: the desk
        takes no bot's message, and this saves it a read for each of ours."""
        me = self.client.user
        if message.guild is None or (me is not None and message.author.id == me.id):
            return
        content = message.content
        if message.attachments:
            content += "\n" + "\n".join(f"[attachment: {a.filename}]" for a in message.attachments)
        await self.desk.post_in_channel(
            str(message.channel.id),
            str(message.author.id),
            content,
            message.created_at,
            is_bot=message.author.bot,
        )


class Admin(commands.Cog):
    """What admins and staff configure: setup, panel, rules, routing, answers, stats."""

    settings = app_commands.Group(
        name="settings", description="Rules and routing", default_permissions=MANAGE_SERVER
    )
    automation = app_commands.Group(
        name="automation", description="Try and inspect rules", default_permissions=MANAGE_SERVER
    )
    answer = app_commands.Group(name="answer", description="Saved answers")

    def __init__(
        self, bot: commands.Bot, flows: Flows, desk: Desk, clock: Callable[[], datetime]
    ) -> None:
        self.bot = bot  # whose command tree takes the "Save as answer" menu
        self.flows = flows
        self.desk = desk
        self.now = clock
        self.save_menu = app_commands.ContextMenu(name="Save as answer", callback=self.save_as)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.save_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.save_menu.name, type=self.save_menu.type)

    @app_commands.command(name="setup", description="Set up tickets on this server")
    @app_commands.default_permissions(manage_guild=True)
    async def setup(
        self,
        interaction: Interaction,
        staff_role: discord.Role,
        ops_channel: discord.TextChannel,
        category: discord.CategoryChannel | None = None,
        log_channel: discord.TextChannel | None = None,
    ) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            await self.flows.defer(interaction)
            guild = interaction.guild
            assert guild is not None
            if category is None:
                category = await guild.create_category(
                    "Tickets",
                    overwrites={
                        guild.default_role: discord.PermissionOverwrite(view_channel=False),
                        guild.me: discord.PermissionOverwrite(
                            view_channel=True, manage_channels=True, send_messages=True
                        ),
                    },
                )
            await self.desk.save_setup(
                DiscordSetup(
                    str(guild.id),
                    str(staff_role.id),
                    str(ops_channel.id),
                    str(log_channel.id) if log_channel else None,
                    (str(category.id),),
                )
            )
            await self.flows.sync_roster(guild)
            lines = [
                f"Staff role: {staff_role.mention}. Escalations go to {ops_channel.mention};"
                f" tickets open in **{category.name}**"
                + (f"; transcripts go to {log_channel.mention}." if log_channel else ".")
            ]
            for place in (category, ops_channel, log_channel):
                if place is None:
                    continue
                perms = place.permissions_for(guild.me)
                missing = [n.replace("_", " ").title() for n in NEEDED if not getattr(perms, n)]
                if missing:
                    lines.append(f"I am missing in {place.mention}: {', '.join(missing)}.")
            await self.flows.reply(interaction, "\n".join(lines))

    @app_commands.command(name="panel", description="Post the ticket panel")
    @app_commands.default_permissions(manage_guild=True)
    async def panel(
        self, interaction: Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            config = await self.desk.config(self.flows.guild_id(interaction))
            target = channel or interaction.channel
            if not isinstance(target, discord.TextChannel):
                raise DomainError("Pick a text channel for the panel.")
            types = [(key, t.label or key) for key, t in config.settings.types.items()]
            await target.send(
                embed=discord.Embed(
                    title="Need help?",
                    description="Open a ticket and our team will answer you in a private channel.",
                    color=render.COLOR_OPEN,
                ),
                view=panel_buttons(types),
            )
            await self.flows.reply(interaction, f"The panel is in {target.mention}.")

    @settings.command(name="automation", description="Save automation rules (file or text box)")
    async def automation_rules(
        self, interaction: Interaction, file: discord.Attachment | None = None
    ) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            await self.flows.document_from(interaction, "rules", file)

    @settings.command(name="automation-export", description="The current rules as rules.json")
    async def automation_export(self, interaction: Interaction) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            await self.flows.export(interaction, "rules")

    @settings.command(name="routing", description="Save routing, SLA and ticket types")
    async def routing(
        self, interaction: Interaction, file: discord.Attachment | None = None
    ) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            await self.flows.document_from(interaction, "settings", file)

    @settings.command(name="routing-export", description="The current settings as settings.json")
    async def routing_export(self, interaction: Interaction) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            await self.flows.export(interaction, "settings")

    @automation.command(name="test", description="Which rules a message would fire (dry run)")
    async def automation_test(
        self,
        interaction: Interaction,
        content: str,
        type: str | None = None,
    ) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            firings = await self.desk.dry_run(
                self.flows.guild_id(interaction), content, self.now(), type
            )
            heading = (
                f"{len(firings)} rule(s) would fire (nothing was changed):"
                if firings
                else "No rule would fire."
            )
            await self.flows.reply(
                interaction, render.problems(render.firing_lines(firings), heading)
            )

    @automation.command(name="log", description="The latest rule firings")
    async def automation_log(
        self, interaction: Interaction, limit: app_commands.Range[int, 1, 50] = 10
    ) -> None:
        async with self.flows.guarded(interaction):
            require_admin(interaction)
            firings = await self.desk.firings(self.flows.guild_id(interaction), limit)
            heading = "Latest firings, newest first:" if firings else "No rule has fired yet."
            await self.flows.reply(
                interaction, render.problems(render.firing_lines(firings), heading)
            )

    @answer.command(name="add", description="Save an answer the bot gives on trigger phrases")
    async def answer_add(
        self,
        interaction: Interaction,
        triggers: str,
        text: app_commands.Range[str, 1, 2000],
    ) -> None:
        await self.flows.add_answer(interaction, triggers, text)

    @answer.command(name="list", description="The saved answers")
    async def answer_list(self, interaction: Interaction) -> None:
        async with self.flows.guarded(interaction):
            config = await self.flows.require_staff(interaction)
            lines = render.answer_lines(config.answers)
            await self.flows.reply(
                interaction,
                render.problems(lines, "Saved answers:" if lines else "No saved answers."),
            )

    @answer.command(name="remove", description="Delete a saved answer")
    async def answer_remove(self, interaction: Interaction, id: int) -> None:
        async with self.flows.guarded(interaction):
            await self.flows.require_staff(interaction)
            guild_id = self.flows.guild_id(interaction)
            removed = await self.desk.remove_answer(guild_id, id)
            if not removed:
                raise DomainError(f"There is no saved answer {id}; /answer list shows them.")
            await self.flows.reply(interaction, f"Removed answer {id}.")

    async def save_as(self, interaction: Interaction, message: discord.Message) -> None:
        async with self.flows.guarded(interaction):
            config = await self.flows.require_staff(interaction)
            if not config.settings.is_staff(str(message.author.id)):
                raise DomainError("Only a staff member's message can be saved as an answer.")
            if not message.content.strip():
                raise DomainError("That message has no text to save.")
            await interaction.response.send_modal(AnswerModal(message.content))

    @app_commands.command(name="stats", description="Tickets, CSAT, first response, breaches")
    async def stats(self, interaction: Interaction) -> None:
        async with self.flows.guarded(interaction):
            await self.flows.require_staff(interaction)
            numbers = await self.desk.stats(self.flows.guild_id(interaction), self.now())
            await self.flows.reply(interaction, embed=render.stats(numbers, 30))
