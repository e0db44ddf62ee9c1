"""Finding a channel or a user by the id the desk keeps: from discord.py's cache, else asked
of Discord; None when it is gone or out of the bot's reach."""

from __future__ import annotations

import discord


async def text_channel(
    client: discord.Client, channel_id: str | None
) -> discord.TextChannel | None:
    if channel_id is None:
        return None
    channel = client.get_channel(int(channel_id))
    if channel is None:
        try:
            channel = await client.fetch_channel(int(channel_id))
        except (discord.NotFound, discord.Forbidden):
            return None
    return channel if isinstance(channel, discord.TextChannel) else None


async def user_by_id(client: discord.Client, user_id: str) -> discord.User | None:
    user = client.get_user(int(user_id))
    if user is None:
        try:
            user = await client.fetch_user(int(user_id))
        except discord.NotFound:
            return None
    return user
