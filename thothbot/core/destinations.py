"""Where an escalation goes: one value per kind of destination, and the reference an outbox row
keeps of it.

The bot's #ops channel and a notice to the server's admins there are the bot's own; a Discord
channel webhook and a signed http endpoint come from the settings (``ops_webhook`` and
``destinations``), and carry their URL and secret only while a delivery is being sent: the
outbox row keeps an ``OutboxRef``, stored as the JSON ``{"kind": ..., "ref": ...}``, and a
``DeliveryStatus``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from thothbot.core.masking import fingerprint


class DestinationKind(StrEnum):
    OPS = "ops"  # the bot's #ops channel
    OPS_NOTICE = "ops_notice"  # a notice for the server's admins in #ops, through the bot
    DISCORD_WEBHOOK = "discord_webhook"
    HTTP = "http"


class DeliveryStatus(StrEnum):
    """Where an outbox row stands (the deliveries table's ``status``)."""

    PENDING = "pending"
    SENT = "sent"
    SUMMARIZED = "summarized"  # folded into a summary post: another row's post stands for it
    FAILED = "failed"  # given up


class DeliveryOutcome(StrEnum):
    """What one try of a delivery came to, as the worker counts them."""

    SENT = "sent"
    SUMMARIZED = "summarized"
    RETRIED = "retried"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboxRef:
    """What an outbox row keeps of its destination: the kind, and for a URL a fingerprint of
    it (``masking.fingerprint``), never the URL or the secret."""

    kind: DestinationKind
    ref: str | None = None

    def to_json(self) -> str:
        """The stored form; also the key of a destination's lane and rate limit, so it is
        always written the same way."""
        document: dict[str, str] = {"kind": self.kind.value}
        if self.ref is not None:
            document["ref"] = self.ref
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OutboxRef:
        document: dict[str, Any] = json.loads(text)
        return cls(DestinationKind(document["kind"]), document.get("ref"))


@dataclass(frozen=True, slots=True)
class Ops:
    """The bot's #ops channel (with a Claim button)."""

    kind: ClassVar = DestinationKind.OPS

    @property
    def reference(self) -> OutboxRef:
        return OutboxRef(self.kind)


@dataclass(frozen=True, slots=True)
class OpsNotice:
    """A notice for the server's admins in #ops (a destination was disabled)."""

    kind: ClassVar = DestinationKind.OPS_NOTICE

    @property
    def reference(self) -> OutboxRef:
        return OutboxRef(self.kind)


@dataclass(frozen=True, slots=True)
class DiscordWebhook:
    """A Discord channel webhook: the server's ``ops_webhook`` or a fan-out destination."""

    kind: ClassVar = DestinationKind.DISCORD_WEBHOOK
    url: str

    @property
    def reference(self) -> OutboxRef:
        return OutboxRef(self.kind, fingerprint(self.kind, self.url))


@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    """An http endpoint, signed with Standard Webhooks (``secret``: ``whsec_`` and base64)."""

    kind: ClassVar = DestinationKind.HTTP
    url: str
    secret: str

    @property
    def reference(self) -> OutboxRef:
        return OutboxRef(self.kind, fingerprint(self.kind, self.url))


Addressed = DiscordWebhook | HttpEndpoint  # reached at a URL from the settings
Destination = Ops | OpsNotice | Addressed

BUILT_IN: dict[DestinationKind, Ops | OpsNotice] = {
    DestinationKind.OPS: Ops(),
    DestinationKind.OPS_NOTICE: OpsNotice(),
}
