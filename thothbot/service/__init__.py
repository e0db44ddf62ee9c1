"""The service layer: the one boundary between the adapters and the store.

Adapters (the bot, the ingress's HTTP handlers, the delivery worker's HTTP sends, the model
client, the command line) ask this layer for what they need, and it gathers from the store,
lets the core decide, saves, and hands back values. Only this package and the composition
root (``thothbot.application``) import ``thothbot.store``; ``tests/test_boundary.py`` holds
every other module to that.

- ``desk``: tickets, rules and settings: each public method one unit of work.
- ``intake``: the ingress's keys, accepted events and their outcomes, through the group commit.
"""

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

__all__ = [
    "ApiTicket",
    "CloseSteps",
    "Desk",
    "EffectSink",
    "Escalation",
    "Finish",
    "GuildConfig",
    "Intake",
    "RecordingSink",
    "RulesSaved",
    "Unlabelled",
]
