"""Working tickets over the sandbox: commands, limits, races, SLA, urgency, Discord failing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.e2e.desk import Live, buttons, message_text
from thothbot.bot.app import run
from thothbot.config import Config, StartupFailure
from thothbot.ingress import start_ingress
from thothbot.keys import new_key
from thothbot.sandbox import Sandbox
from thothbot.service import Intake


async def test_staff_escalate_tag_assign_and_read_a_ticket(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket(subject="Cannot log in", type="general")

    refused = await live.slash(w.customer, "ticket escalate", channel=channel)
    assert refused.ephemeral
    assert "Only staff can escalate" in refused.text()
    escalated = await live.slash(
        w.sam, "ticket escalate", {"reason": "VIP customer"}, channel=channel
    )
    assert "ops channel has it" in escalated.text()
    await live.sandbox.wait_for(lambda: live.messages(w.ops))
    assert "Reason: VIP customer" in message_text(live.messages(w.ops)[0])
    again = await live.slash(w.sam, "ticket escalate", channel=channel)
    assert "already escalated" in again.text()

    assert (
        "Tags: escalated, vip."
        in (await live.slash(w.sam, "ticket tag add", {"tag": "vip"}, channel=channel)).text()
    )
    assert (
        "already has the tag"
        in (await live.slash(w.sam, "ticket tag add", {"tag": "VIP"}, channel=channel)).text()
    )
    assert (
        "Tags: escalated."
        in (await live.slash(w.sam, "ticket tag remove", {"tag": "vip"}, channel=channel)).text()
    )
    assert (
        "has no tag"
        in (await live.slash(w.sam, "ticket tag remove", {"tag": "vip"}, channel=channel)).text()
    )

    assigned = await live.slash(w.sam, "ticket assign", {"member": w.riley}, channel=channel)
    assert f"Assigned to <@{w.riley}>" in assigned.text()
    not_staff = await live.slash(w.sam, "ticket assign", {"member": w.customer}, channel=channel)
    assert "only be assigned to staff" in not_staff.text()

    info = (await live.slash(w.customer, "ticket info", channel=channel)).text()
    for line in (
        "Status\nopen",
        "Type\nSomething else",
        f"Assignee\n<@{w.riley}>",
        "Escalated\nVIP customer",
        "SLA first response\npending, due <t:",
    ):
        assert line in info


async def test_commands_outside_a_ticket_say_where_they_work(live: Live) -> None:
    answer = await live.slash(live.world.sam, "ticket close")
    assert answer.ephemeral
    assert "This is not a ticket channel" in answer.text()


async def test_a_customer_has_at_most_three_open_tickets(live: Live) -> None:
    for n in range(3):
        await live.open_ticket(subject=f"Question {n}")
    fourth = await live.slash(live.world.customer, "ticket open", {"subject": "Question 4"})
    assert "already have 3 open tickets (#1, #2, #3)" in fourth.text()
    assert live.channel_named("ticket-0004") is None


async def test_a_double_click_opens_one_ticket(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    clicks = [
        await sandbox.slash(w.guild, w.help, w.customer, "ticket open", {"subject": "Help"})
        for _ in range(2)
    ]
    answers = [(await click.done()).text() for click in clicks]
    assert sum("Your ticket is open" in a for a in answers) == 1
    assert sum("about this just now" in a for a in answers) == 1
    await live.settle()
    tickets = [c for c in sandbox.channels(w.guild) if c["name"].startswith("ticket-0")]
    assert len(tickets) == 1


async def test_a_full_category_overflows_into_a_new_one(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    (category,) = [c for c in sandbox.channels(w.guild) if c["type"] == 4]
    for n in range(50):
        sandbox.add_channel(w.guild, f"old-{n}", parent_id=category["id"])
    channel = await live.open_ticket()
    parent = sandbox.channel(sandbox.channel(channel)["parent_id"])
    assert parent["name"] == "Tickets 2"
    assert parent["id"] != category["id"]
    # The next ticket goes to the new category too, and the setup remembers it after a restart.
    await live.restart()
    second = await live.open_ticket(user=w.sam, subject="Another")
    assert sandbox.channel(second)["parent_id"] == parent["id"]


async def test_the_sla_checker_fires_a_breach_from_the_stored_deadline(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket(subject="Slow", type="general")
    await live.restart()  # the deadline lives in the database, not in the process
    live.clock.offset = timedelta(minutes=31)
    assert live.bot is not None
    live.bot.sla.wake.set()  # the clock jumped: look at the stored deadlines again
    await live.sandbox.wait_for(
        lambda: any("SLA breach" in t for t in live.texts(w.ops)), timeout=5
    )
    await live.sandbox.wait_for(lambda: any("Escalated: Slow" in t for t in live.texts(w.ops)))
    # The breach is told in the ticket's channel after #ops; the escalation may come first.
    await live.sandbox.wait_for(lambda: any("SLA breach" in t for t in live.texts(channel)))
    assert "Rule: SLA missed" in next(t for t in live.texts(w.ops) if "Escalated" in t)


async def test_urgency_is_classified_and_urgency_rules_run(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket(
        subject="Production is down", description="Outage: every customer gets errors, urgent!"
    )
    await live.sandbox.wait_for(lambda: live.messages(w.ops))
    post = message_text(live.messages(w.ops)[0])
    assert "Rule: Page on-call for critical tickets" in post
    assert "Urgency: critical" in post
    info = await live.slash(w.sam, "ticket info", channel=channel)
    assert "Urgency\ncritical" in info.text()


async def test_nothing_a_user_writes_can_ping(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    channel = await live.open_ticket(subject=f"@everyone <@&{w.staff_role}> <@{w.sam}> refund")
    await live.say(channel, w.customer, "down for everyone @everyone")
    await sandbox.wait_for(lambda: live.messages(w.ops))
    await live.slash(w.sam, "ticket close", {"reason": "@everyone done"}, channel=channel)
    await sandbox.wait_for(lambda: live.messages(w.log))
    sent = [
        r.json
        for r in sandbox.requests
        if r.method in ("POST", "PATCH") and r.path.endswith("/messages") and r.json
    ]
    assert sent
    for body in sent:
        allowed = body.get("allowed_mentions")
        assert allowed is not None, body
        assert allowed.get("parse") == [], body  # no @everyone, no roles, no users by text
        assert {str(u) for u in allowed.get("users", [])} <= {w.customer, w.sam, w.riley}


async def test_a_customers_masked_links_and_bidi_controls_are_shown_neutralized(
    live: Live,
) -> None:
    w = live.world
    evil = "https://evil.example/login"
    channel = await live.open_ticket(
        subject=f"[Verify your account]({evil})",
        description=f"Open invoice_\u202etxt.exe or [the portal]({evil})",
    )
    escalated = await live.slash(w.sam, "ticket escalate", {"reason": "phishy"}, channel=channel)
    assert "ops channel has it" in escalated.text()
    await live.sandbox.wait_for(lambda: live.messages(w.ops))
    card = message_text(live.messages(channel)[0])
    post = message_text(live.messages(w.ops)[0])
    for shown in (card, post):
        assert f"[Verify your account] ({evil})" in shown, shown
        assert f"invoice_txt.exe or [the portal] ({evil})" in shown, shown
        assert "](" not in shown
        assert "\u202e" not in shown


async def test_a_429_storm_is_ridden_out(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    # discord.py tries a request 5 times: every call here is refused up to 4 times in a row.
    sandbox.fail_next("POST", r"/channels/\d+/messages$", status=429, count=4, retry_after=0.02)
    sandbox.fail_next("POST", r"/guilds/\d+/channels$", status=429, count=2, retry_after=0.02)
    sandbox.fail_next("PUT", r"/channels/\d+/permissions/", status=429, count=2, retry_after=0.02)
    sandbox.fail_next("POST", r"/webhooks/", status=502, count=1)
    channel = await live.open_ticket(type="billing")
    await live.say(channel, w.customer, "refund please")
    await sandbox.wait_for(lambda: live.messages(w.ops))
    statuses = [r.status for r in sandbox.requests]
    assert statuses.count(429) == 8
    assert statuses.count(502) == 1
    assert "Ticket #1" in message_text(live.messages(channel)[0])


async def test_a_missing_permission_is_named_in_plain_words(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    sandbox.fail_next("POST", r"/guilds/\d+/channels$", status=403, code=50013)
    answer = await live.slash(w.customer, "ticket open", {"subject": "Help"})
    assert "missing a Discord permission" in answer.text()
    assert "Manage Channels" in answer.text()
    assert (
        "Your ticket is open"
        in (await live.slash(w.customer, "ticket open", {"subject": "Help"})).text()
    )


async def test_staff_roles_come_from_discord_roles(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    newcomer = sandbox.add_user("Noor")
    sandbox.add_member(w.guild, newcomer)
    channel = await live.open_ticket()
    assert "Only staff" in (await live.slash(newcomer, "duty", {"state": "on"})).text()
    sandbox.set_member_roles(w.guild, newcomer, [w.staff_role])
    await live.settle()  # the member update has reached the bot
    assert "You are on duty" in (await live.slash(newcomer, "duty", {"state": "on"})).text()
    claimed = await live.slash(newcomer, "ticket claim", channel=channel)
    assert "You claimed" in claimed.text()


async def test_a_ticket_type_with_its_own_staff_role(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    billing_team = sandbox.add_role(w.guild, "Billing team")
    noor = sandbox.add_user("Noor")
    sandbox.add_member(w.guild, noor, [billing_team])
    settings = {"types": {"billing": {"label": "Billing", "staff_role": billing_team}}}
    saved = await live.upload(
        w.admin, "settings routing", "settings.json", json.dumps(settings).encode()
    )
    assert "Saved the settings" in saved.text()
    assert "You are on duty" in (await live.slash(noor, "duty", {"state": "on"})).text()

    channel = await live.open_ticket(type="billing")
    overwrites = {o["id"] for o in sandbox.channel(channel)["permission_overwrites"]}
    assert {billing_team, w.staff_role} <= overwrites
    await sandbox.wait_for(lambda: len(live.messages(channel)) >= 2)
    assert f"<@{noor}> is now handling this ticket" in live.texts(channel)[1]


async def test_a_ticket_from_the_ingress_is_escalated_to_ops(live: Live) -> None:
    assert live.bot is not None
    desk = live.bot.desk
    key = new_key(live.world.guild, datetime.now(UTC))
    await desk.store.run(lambda tx: tx.insert_api_key(key.row))
    config = Config(ingress_host="127.0.0.1", ingress_port=0)
    runner = await start_ingress(desk, Intake(desk.store, desk.changes), config)
    try:
        host, port = runner.addresses[0][:2]
        event = {
            "ticket_id": "ZD-981",
            "subject": "Checkout is down for everyone",
            "body": "Outage: nobody can pay, critical",
            "customer_tier": "enterprise",
            "channel": "email",
        }
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"http://{host}:{port}/v1/events/support.ticket.created",
                json=event,
                headers={"Authorization": f"Bearer {key.api_key}"},
            )
            assert response.status == 202, await response.text()
            await live.sandbox.wait_for(lambda: live.messages(live.world.ops))
            post = live.messages(live.world.ops)[0]
            assert "Escalated: Checkout is down for everyone" in message_text(post)
            assert "customer_tier: enterprise" in message_text(post)  # the event's own fields
            assert buttons(post) == {"Claim": False}
            sent = 'thothbot_deliveries{status="sent"} 1'
            for _ in range(100):  # the post is recorded as sent just after Discord took it
                async with http.get(f"http://{host}:{port}/metrics") as metrics:
                    text = await metrics.text()
                if sent in text:
                    break
                await asyncio.sleep(0.02)
            assert sent in text
    finally:
        await runner.cleanup()


async def test_a_refused_token_is_one_plain_line(discord: Sandbox, tmp_path: Any) -> None:
    config = Config.from_env(
        {
            "DISCORD_TOKEN": "not-the-token",
            "THOTH_DB_PATH": str(tmp_path / "thoth.db"),
            "THOTH_DISCORD_API_URL": discord.api_url,
            "THOTH_DISCORD_GATEWAY_URL": discord.gateway_url,
            "THOTH_INGRESS_PORT": "0",  # the health server always listens: any free port
        }
    )
    with pytest.raises(StartupFailure, match="Discord refused DISCORD_TOKEN"):
        await asyncio.wait_for(run(config, _Out()), timeout=10)


class _Out:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
