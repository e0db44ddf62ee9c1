"""The service layer: the one boundary between the adapters and the store.

Adapters (the bot, the ingress's HTTP handlers, the delivery worker's HTTP sends, the model
client, the command line) ask this layer for what they need, and it gathers from the store,
lets the core decide, saves, and hands back values. Only this package and the composition
root (``thothbot.application``) import ``thothbot.store``; ``tests/test_boundary.py`` holds
every other module to that.

- ``desk``: tickets, rules and settings: each public method one unit of work.
- ``channels``: what the bot keeps of its ticket channels (openings, closings, transcripts,
  #ops posts).
- ``outbox``: what the delivery worker reads and records.
- ``classifications``: the classifier's cache; ``retention``: pruning what is past its period.
- ``keys``: the ingress's API keys for ``thothbot keys``; ``health``: the health probe;
  ``admin``: ``thothbot db`` and the store's refusals the command line words.
- ``intake``: the ingress's keys, accepted events and their outcomes, through the group commit.

``thothbot.application.build_services`` wires them over one store.
"""

from thothbot.service.channels import Channels, TranscriptFiles
from thothbot.service.desk import (
    ApiTicket,
    CloseSteps,
    Desk,
    EffectSink,
    Escalation,
    GuildConfig,
    RecordingSink,
    RulesSaved,
    Unlabelled,
)
from thothbot.service.intake import Finish, Intake
from thothbot.store import StoreFault

__all__ = [
    "ApiTicket",
    "Channels",
    "CloseSteps",
    "Desk",
    "EffectSink",
    "Escalation",
    "Finish",
    "GuildConfig",
    "Intake",
    "RecordingSink",
    "RulesSaved",
    "StoreFault",
    "TranscriptFiles",
    "Unlabelled",
]
