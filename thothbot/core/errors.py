"""Every error thothbot raises on purpose, in one tree; messages are written for people.

ThothError
├── DomainError            a request the domain refuses (closing a closed ticket, ...)
│   ├── TicketNotFound
│   └── InvalidTransition
└── InvalidInput           input refused as a whole (rules, settings, a scenario line)
    ├── RulesRefused
    └── SettingsInvalid
"""

from __future__ import annotations


class ThothError(Exception):
    """Root of thothbot's own errors; ``str(error)`` is safe to show to a user."""


class DomainError(ThothError):
    """The domain refuses the request; nothing was changed."""


class TicketNotFound(DomainError):
    """No ticket with that id or name exists."""


class InvalidTransition(DomainError):
    """The ticket is not in a state that allows this (rating an open ticket, ...)."""


class InvalidInput(ThothError):
    """Input refused as a whole; nothing was saved."""


class RulesRefused(InvalidInput):
    """A rules document that cannot be read as a JSON array of rules."""


class SettingsInvalid(InvalidInput):
    """A settings document with problems; ``problems`` holds ``(path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"{path or '(top)'}: {message}" for path, message in problems)
        super().__init__(f"The settings were not saved: {lines}")
