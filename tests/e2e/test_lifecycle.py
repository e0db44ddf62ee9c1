"""A ticket's whole life over the sandbox: panel, rules, #ops, claim, close, rating, restart."""

from __future__ import annotations

from tests.e2e.desk import Live, button, buttons, message_text


async def test_a_ticket_from_panel_to_negative_rating(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    panel_answer = await live.slash(w.admin, "panel")
    assert panel_answer.ephemeral
    panel = live.messages(w.help)[-1]
    assert set(buttons(panel)) == {"Billing", "Something else"}

    modal = await sandbox.click(w.help, panel["id"], button(panel, "Billing"), w.customer)
    assert (await modal.response())["type"] == 9  # the form opens
    opened = await (
        await sandbox.submit_modal(
            modal, {"subject": "Charged twice", "description": "Two charges on my card."}
        )
    ).done()
    assert opened.ephemeral
    assert "Your ticket is open" in opened.text()
    await live.settle()

    channel = live.channel_named("ticket-0001")
    assert channel is not None
    overwrites = {o["id"]: o for o in channel["permission_overwrites"]}
    assert int(overwrites[w.guild]["deny"]) & 1 << 10  # @everyone cannot see it
    assert int(overwrites[w.customer]["allow"]) & 1 << 10
    assert int(overwrites[w.staff_role]["allow"]) & 1 << 10
    first = live.messages(channel["id"])[0]
    assert "Ticket #1: Charged twice" in message_text(first)
    assert set(buttons(first)) == {"Claim", "Close", "Escalate"}
    assert "is now handling this ticket (assigned by round robin)" in live.texts(channel["id"])[1]

    await live.say(channel["id"], w.customer, "Can I get a REFUND please?")
    await sandbox.wait_for(lambda: live.messages(w.ops))
    post = live.messages(w.ops)[0]
    text = message_text(post)
    assert "Escalated: Charged twice" in text
    assert "Reason: Rule: Escalate refund requests" in text
    assert "Tags: billing, refund, escalated" in text
    assert f"<#{channel['id']}>" in text
    assert buttons(post) == {"Claim": False}

    outsider = await live.click(w.ops, post, "Claim", w.customer)
    assert outsider.ephemeral
    assert "Only staff" in outsider.text()
    # Riley and Sam click at the same moment: one claim wins, the other hears who has it.
    clicks = [
        await sandbox.click(w.ops, post["id"], "thoth:claim:1", person)
        for person in (w.riley, w.sam)
    ]
    riley_click, sam_click = [await click.done() for click in clicks]
    assert riley_click.ephemeral
    assert "You claimed" in riley_click.text()
    assert f"already claimed by <@{w.riley}>" in sam_click.text()
    await live.settle()
    post = live.messages(w.ops)[0]
    assert buttons(post) == {"Claimed": True}
    assert f"Claimed by: <@{w.riley}>" in message_text(post)
    riley = next(o for o in live.sandbox.channel(channel["id"])["permission_overwrites"]
                 if o["id"] == w.riley)  # fmt: skip
    assert int(riley["allow"]) & 1 << 10  # the claimer can see the channel

    await live.say(channel["id"], w.riley, "Refunded, sorry!")
    closing = await live.slash(
        w.riley, "ticket close", {"reason": "Refund issued"}, channel=channel["id"]
    )
    assert not closing.ephemeral
    assert "Closed by" in closing.text()
    await sandbox.wait_for(lambda: len(sandbox.dm_messages(w.customer)) >= 2)
    transcript = live.messages(w.log)[-1]
    names = [a["filename"] for a in transcript["attachments"]]
    assert names == ["ticket-0001.html", "ticket-0001.txt"]
    dm_transcript, ask = sandbox.dm_messages(w.customer)[-2:]
    assert [a["filename"] for a in dm_transcript["attachments"]] == names
    assert set(buttons(ask)) == {"1", "2", "3", "4", "5"}

    rated = await live.click(ask["channel_id"], ask, "1", w.customer)
    assert "you rated this ticket 1 out of 5" in rated.text()
    assert all(buttons(sandbox.dm_messages(w.customer)[-1]).values())  # disabled now
    await live.settle()
    log = await live.slash(w.admin, "automation log", {"limit": 1})
    assert "unhappy-customer (csat_negative): add_tag: applied" in log.text()

    await sandbox.wait_for(lambda: sandbox.channel(channel["id"]) is None)


async def test_the_transcript_holds_every_message_with_authors_and_attachments(
    live: Live,
) -> None:
    w = live.world
    channel = await live.open_ticket(subject="Printer on fire")
    await live.sandbox.send_message(
        channel, w.customer, "Photo attached", attachments=[("fire.png", b"\x89PNG")]
    )
    await live.say(channel, w.sam, "On my way <@everyone>")
    await live.slash(w.customer, "ticket close", channel=channel)
    await live.sandbox.wait_for(lambda: live.messages(w.log))
    attachment = live.messages(w.log)[-1]["attachments"][1]
    text = live.sandbox.world.files[attachment["id"]].data.decode()
    assert "Dana" in text
    assert "Photo attached" in text
    assert "attachment: fire.png" in text
    assert "Sam" in text
    assert "On my way" in text


async def test_old_buttons_keep_working_after_a_restart(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket()
    first = live.messages(channel)[0]
    escalate = await live.click(channel, first, "Escalate", w.sam)
    assert "Escalated" in escalate.text()
    await live.sandbox.wait_for(lambda: live.messages(w.ops))
    post = live.messages(w.ops)[0]

    await live.restart()

    claimed = await live.click(w.ops, post, "Claim", w.riley)
    assert "You claimed" in claimed.text()
    close = await live.click(channel, first, "Close", w.customer)
    assert "Closed by" in close.text()
    await live.sandbox.wait_for(lambda: live.sandbox.channel(channel) is None)


async def test_a_closed_channel_is_deleted_even_across_a_restart(live: Live) -> None:
    channel = await live.open_ticket()
    await live.slash(live.world.customer, "ticket close", channel=channel)
    await live.stop()  # before the close delay passes
    assert live.sandbox.channel(channel) is not None
    await live.start()
    await live.sandbox.wait_for(lambda: live.sandbox.channel(channel) is None)


async def test_the_rating_is_asked_in_the_channel_when_dms_are_closed(
    no_dms: Live,
) -> None:
    live = no_dms
    channel = await live.open_ticket()
    await live.slash(live.world.customer, "ticket close", channel=channel)
    await live.sandbox.wait_for(lambda: "how did we do" in live.texts(channel)[-1].lower())
    ask = live.messages(channel)[-1]
    rated = await live.click(channel, ask, "5", live.world.customer)
    assert "you rated this ticket 5 out of 5" in rated.text()
