"""A ticket too long for one upload: its transcript goes out in parts within Discord's limit,
cut with a note past the last part, and the DM and the rating request still go out."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.desk import Live
from thothbot.bot.transcript import MAX_PARTS

LIMIT = 64 * 1024  # the sandbox's upload limit here, told to the bot in every interaction


def files_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return list(message["attachments"])


async def test_a_huge_ticket_is_sent_in_parts_cut_with_a_note(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    sandbox.attachment_size_limit = LIMIT
    channel = await live.open_ticket(subject="Long story")
    for n in range(200):
        await sandbox.send_message(channel, w.customer, f"line {n} " + "x" * 1900)
    await live.settle()
    await live.slash(w.customer, "ticket close", channel=channel)
    await sandbox.wait_for(lambda: sandbox.channel(channel) is None, timeout=30)

    posts = [m for m in live.messages(w.log) if m["content"].startswith("Transcript of ticket")]
    assert len(posts) == MAX_PARTS
    assert [m["content"] for m in posts] == [
        f"Transcript of ticket #1 (Long story) (part {n} of {MAX_PARTS})"
        for n in range(1, MAX_PARTS + 1)
    ]
    sizes = [sum(int(f["size"]) for f in files_of(m)) for m in posts]
    assert all(size <= LIMIT for size in sizes)
    assert sum(sizes) > LIMIT  # one message could not have carried it
    last_text = sandbox.world.files[str(files_of(posts[-1])[1]["id"])].data.decode()
    cut = re.search(r"stops after message (\d+)", last_text)
    assert cut is not None
    assert 0 < int(cut[1]) < 201  # the card and the 200 lines: cut before the end

    dms = sandbox.dm_messages(w.customer)
    transcripts = [m for m in dms if m["content"].startswith("Your ticket #1 (Long story)")]
    asks = [m for m in dms if "How did we do?" in m["content"]]
    assert (len(transcripts), len(asks)) == (MAX_PARTS, 1)
    assert dms[-1] is asks[0]  # the rating request comes after the transcript
    refused = [r for r in sandbox.requests if r.status == 413]
    assert refused == []  # nothing went over the limit
