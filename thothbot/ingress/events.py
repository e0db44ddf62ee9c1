"""The events the ingress takes, by name, and the paths that name their fields in errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from thothbot.core.classify import Channel, Tier


class SupportTicketCreated(BaseModel):
    """``support.ticket.created``: a ticket opened in another system. Unknown fields are kept."""

    model_config = ConfigDict(extra="allow")

    ticket_id: str = Field(min_length=1, max_length=255)
    subject: str
    body: str
    customer_tier: Tier
    channel: Channel


EVENTS: dict[str, type[BaseModel]] = {"support.ticket.created": SupportTicketCreated}


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path
