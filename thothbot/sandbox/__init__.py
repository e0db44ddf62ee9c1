r"""A loopback Discord (REST v10 + gateway) for driving a real discord.py bot in tests and demos.

async with pointed_at(Sandbox()) as sandbox:          # thothbot.sandbox.testing
    guild = sandbox.add_guild("Acme")
    user = sandbox.add_user("dana")
    sandbox.add_member(guild, user)
    help_ = sandbox.add_channel(guild, "help")
    async with running(bot, sandbox):                  # bot: any discord.Client
        answer = await (await sandbox.slash(guild, help_, user, "ticket open")).done()
        assert "opened" in answer.text()

Crash points without hooks in the bot: ``hold = sandbox.hold_next("POST", r"^/guilds/\d+/channels$",
after=True)`` holds the next matching request (``after``: once Discord acted, holding only its
answer; ``where=`` a test of the recorded request); ``await hold.wait()`` returns it once held,
the test kills the bot, then ``hold.drop()`` (never acted on unless ``after``) or ``release()``.
"""

from .interactions import Interaction
from .routing import Hold, RecordedRequest
from .sandbox import Sandbox
from .world import SandboxError

__all__ = ["Hold", "Interaction", "RecordedRequest", "Sandbox", "SandboxError"]
