"""Persistent buttons and the modals they open.

Every button is a ``DynamicItem``: its custom id (``thoth:<what>:<ticket>``) carries all it
needs, so buttons keep working after a restart with nothing held in memory.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, cast

import discord

from thothbot.core.models import RATING_MAX, RATING_MIN

Interaction = discord.Interaction[Any]


class Handlers(Protocol):
    """What the buttons and modals call: the bot's flows (bot/flows.py). Named here, not
    imported, so that this module needs nothing else of the bot."""

    async def open(
        self, interaction: Interaction, subject: str, type_id: str | None, description: str
    ) -> None: ...
    async def claim(self, interaction: Interaction, ticket_id: int | None = None) -> None: ...
    async def close(
        self, interaction: Interaction, ticket_id: int | None, reason: str | None
    ) -> None: ...
    async def escalate(
        self, interaction: Interaction, ticket_id: int | None, reason: str | None
    ) -> None: ...
    async def rate(self, interaction: Interaction, ticket_id: int, rating: int) -> None: ...
    async def save_document(self, interaction: Interaction, kind: str, raw: bytes) -> None: ...
    async def add_answer(self, interaction: Interaction, triggers: str, text: str) -> None: ...


class _WithFlows(Protocol):
    flows: Handlers


def flows_of(interaction: Interaction) -> Handlers:
    """The flows of the bot an interaction reached: only ThothBot registers these items."""
    return cast(_WithFlows, interaction.client).flows


Button = discord.ui.Button[discord.ui.View]


class OpenButton(discord.ui.DynamicItem[Button], template=r"thoth:open:(?P<type>[^:]*)"):
    """A panel button: opens the ticket modal for one ticket type ("" for none)."""

    def __init__(self, type_id: str | None, label: str = "Open ticket") -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.primary,
                custom_id=f"thoth:open:{type_id or ''}",
            )
        )
        self.type_id = type_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> OpenButton:
        return cls(match["type"] or None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_modal(OpenTicketModal(self.type_id))


class _TicketButton(discord.ui.DynamicItem[Button], template=r"thoth:(?P<what>x):(?P<id>[0-9]+)"):
    """A button about one ticket; subclasses say what it does."""

    what = ""
    label = ""
    style = discord.ButtonStyle.secondary

    def __init__(self, ticket_id: int, *, disabled: bool = False, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or self.label,
                style=self.style,
                custom_id=f"thoth:{self.what}:{ticket_id}",
                disabled=disabled,
            )
        )
        self.ticket_id = ticket_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> _TicketButton:
        return cls(int(match["id"]))


class ClaimButton(_TicketButton, template=r"thoth:claim:(?P<id>[0-9]+)"):
    what, label, style = "claim", "Claim", discord.ButtonStyle.success

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).claim(interaction, self.ticket_id)


class CloseButton(_TicketButton, template=r"thoth:close:(?P<id>[0-9]+)"):
    what, label, style = "close", "Close", discord.ButtonStyle.secondary

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).close(interaction, self.ticket_id, reason=None)


class EscalateButton(_TicketButton, template=r"thoth:escalate:(?P<id>[0-9]+)"):
    what, label, style = "escalate", "Escalate", discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).escalate(interaction, self.ticket_id, reason=None)


class RateButton(
    discord.ui.DynamicItem[Button], template=r"thoth:rate:(?P<id>[0-9]+):(?P<rating>[1-5])"
):
    """One of the five buttons of a rating request."""

    def __init__(self, ticket_id: int, rating: int, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=str(rating),
                style=discord.ButtonStyle.secondary,
                custom_id=f"thoth:rate:{ticket_id}:{rating}",
                disabled=disabled,
            )
        )
        self.ticket_id, self.rating = ticket_id, rating

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> RateButton:
        return cls(int(match["id"]), int(match["rating"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).rate(interaction, self.ticket_id, self.rating)


DYNAMIC_ITEMS = (OpenButton, ClaimButton, CloseButton, EscalateButton, RateButton)


def ticket_buttons(ticket_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in (ClaimButton, CloseButton, EscalateButton):
        view.add_item(item(ticket_id))
    return view


def claim_button(ticket_id: int, claimed: bool) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ClaimButton(ticket_id, disabled=claimed, label="Claimed" if claimed else None))
    return view


def rating_buttons(ticket_id: int, *, disabled: bool = False) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for rating in range(RATING_MIN, RATING_MAX + 1):
        view.add_item(RateButton(ticket_id, rating, disabled=disabled))
    return view


def panel_buttons(types: list[tuple[str, str]]) -> discord.ui.View:
    """One button per ticket type (id, label), or a single "Open ticket" without types."""
    view = discord.ui.View(timeout=None)
    for type_id, label in types[:25] or [("", "Open ticket")]:
        view.add_item(OpenButton(type_id or None, label))
    return view


class OpenTicketModal(discord.ui.Modal, title="Open a ticket"):
    subject: discord.ui.TextInput[OpenTicketModal] = discord.ui.TextInput(
        label="Subject", max_length=200, custom_id="subject"
    )
    description: discord.ui.TextInput[OpenTicketModal] = discord.ui.TextInput(
        label="Describe what you need",
        custom_id="description",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=4000,
    )

    def __init__(self, type_id: str | None) -> None:
        super().__init__()
        self.type_id = type_id

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).open(
            interaction, self.subject.value, self.type_id, self.description.value
        )


class JsonModal(discord.ui.Modal):
    """A text box prefilled with a server's rules or settings, saved on submit."""

    def __init__(self, title: str, kind: str, current: str) -> None:
        super().__init__(title=title)
        self.kind = kind
        self.document: discord.ui.TextInput[JsonModal] = discord.ui.TextInput(
            label="JSON",
            custom_id="document",
            style=discord.TextStyle.paragraph,
            default=current,
            max_length=4000,
        )
        self.add_item(self.document)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).save_document(
            interaction, self.kind, self.document.value.encode()
        )


class AnswerModal(discord.ui.Modal, title="Save as answer"):
    triggers: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
        label="Trigger phrases, comma-separated", max_length=1000, custom_id="triggers"
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
            label="Answer",
            custom_id="text",
            style=discord.TextStyle.paragraph,
            default=text[:2000],
            max_length=2000,
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await flows_of(interaction).add_answer(interaction, self.triggers.value, self.text.value)
