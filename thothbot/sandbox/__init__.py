"""A loopback Discord (REST v10 + gateway) for driving a real discord.py bot in tests and demos."""

from .interactions import Interaction
from .routing import RecordedRequest
from .sandbox import Sandbox
from .world import SandboxError

__all__ = ["Interaction", "RecordedRequest", "Sandbox", "SandboxError"]
