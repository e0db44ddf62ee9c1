"""Admin and staff tools over the sandbox: rules and routing documents, dry runs, saved answers,
stats, /setup and the panel."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

import pytest

from tests.e2e.desk import Live, button, buttons, message_text
from thothbot.core.rules import validate_and_normalize
from thothbot.demo import RULES, SETTINGS
from thothbot.sandbox import Interaction
from thothbot.sandbox.world import DEFAULT_BOT, MANAGE_CHANNELS, MANAGE_ROLES

JSON = dict[str, Any]
REFUSAL = "You need the Manage Server permission for this."


def modal_inputs(interaction: Interaction) -> dict[str, str]:
    """The text inputs of the modal the bot opened, by custom id, with their prefilled values."""
    assert interaction.modal is not None, interaction.text()
    found: dict[str, str] = {}

    def visit(component: JSON) -> None:
        if component.get("type") == 4:
            found[component["custom_id"]] = component.get("value") or ""
        for inner in component.get("components") or []:
            visit(inner)
        if "component" in component:
            visit(component["component"])

    for top in interaction.modal.get("components") or []:
        visit(top)
    return found


def attached(live: Live, interaction: Interaction, filename: str) -> bytes:
    for message in [interaction.original, *interaction.followups]:
        for attachment in (message or {}).get("attachments") or []:
            if attachment["filename"] == filename:
                return live.sandbox.world.files[attachment["id"]].data
    raise LookupError(f"no {filename} attached to {interaction!r}: {interaction.text()}")


def reported(text: str) -> list[str]:
    """The problem lines of a report (the code block under its heading)."""
    if "```" not in text:
        return []
    return text.split("```\n", 1)[1].split("\n```", 1)[0].splitlines()


async def export(live: Live, kind: str = "automation") -> bytes:
    answer = await live.slash(live.world.admin, f"settings {kind}-export")
    assert answer.ephemeral
    return attached(live, answer, "rules.json" if kind == "automation" else "settings.json")


async def open_editor(live: Live, command: str = "settings automation") -> Interaction:
    interaction = await live.slash(live.world.admin, command)
    assert (await interaction.response())["type"] == 9, interaction.text()
    return interaction


async def paste(live: Live, text: str) -> Interaction:
    editor = await open_editor(live)
    return await (await live.sandbox.submit_modal(editor, {"document": text})).done()


# Automation rules


async def test_the_rules_editor_opens_prefilled_and_saves_an_edit(live: Live) -> None:
    editor = await open_editor(live)
    current = json.loads(modal_inputs(editor)["document"])
    assert current == validate_and_normalize(RULES.read_bytes()).document
    assert current == json.loads(await export(live))

    edited = [rule for rule in current if rule["id"] != "chargeback-watch"]
    saved = await (
        await live.sandbox.submit_modal(editor, {"document": json.dumps(edited, indent=2)})
    ).done()
    assert saved.ephemeral
    assert saved.text() == "Saved 8 rules."
    assert json.loads(await export(live)) == edited
    assert json.loads(modal_inputs(await open_editor(live))["document"]) == edited


async def test_a_pasted_document_reports_every_problem_as_the_cli_does(live: Live) -> None:
    raw = json.dumps([
        {"id": "greet", "name": "Greet", "trigger": "ticket_opened", "colour": "blue",
         "actions": [{"type": "add_tag", "tag": "new"}]},
        {"id": "broken", "name": "Broken", "trigger": "when_it_rains", "actions": []},
        {"id": "half", "name": "Half", "trigger": "ticket_opened",
         "actions": [{"type": "add_tag"}, {"type": "escalate"}]},
    ])  # fmt: skip
    expected = [p.line() for p in validate_and_normalize(raw).problems]
    assert len(expected) >= 3

    saved = await paste(live, raw)
    assert saved.text().startswith("Saved 2 rules.")
    assert reported(saved.text()) == expected
    assert [r["id"] for r in json.loads(await export(live))] == ["greet", "half"]


@pytest.mark.parametrize(
    "text", ["this is not json", '{"id": "outage"}', "[1, 2", '"rules"'], ids=str
)
async def test_a_refused_paste_keeps_the_rules(live: Live, text: str) -> None:
    before = await export(live)
    refused = await paste(live, text)
    expected = [p.line() for p in validate_and_normalize(text).problems]
    assert len(expected) == 1
    assert expected[0].startswith("refused: ")
    assert "Saved" not in refused.text()
    assert reported(refused.text()) == expected
    assert await export(live) == before


async def test_a_paste_without_one_valid_rule_keeps_the_rules(live: Live) -> None:
    before = await export(live)
    raw = '[{"id": "x", "trigger": "sometimes"}, 42]'
    kept = await paste(live, raw)
    assert kept.text().startswith("No valid rule was found, so the rules you had are kept.")
    assert reported(kept.text()) == [p.line() for p in validate_and_normalize(raw).problems]
    assert await export(live) == before


MANY_BAD = json.dumps([{"id": f"r{i}", "trigger": "nope", "actions": []} for i in range(30)])


async def test_a_report_too_long_for_a_message_is_attached_whole(live: Live) -> None:
    before = await export(live)
    answer = await live.upload(live.world.admin, "settings automation", "r.json", MANY_BAD.encode())
    (message,) = [m for m in [answer.original, *answer.followups] if m]
    assert len(message["content"]) <= 2000
    assert message["content"].endswith("... (the whole text is attached)")
    report = attached(live, answer, "report.txt").decode()
    assert report.startswith("No valid rule was found, so the rules you had are kept.")
    assert reported(report) == [p.line() for p in validate_and_normalize(MANY_BAD).problems]
    assert await export(live) == before


async def test_a_shortened_report_keeps_its_code_block_closed(live: Live) -> None:
    answer = await live.upload(live.world.admin, "settings automation", "r.json", MANY_BAD.encode())
    (message,) = [m for m in [answer.original, *answer.followups] if m]
    assert message["content"].count("```") % 2 == 0, message["content"][-200:]


async def test_rules_too_long_for_a_text_box_point_to_the_file_option(live: Live) -> None:
    rules = [
        {"id": f"long-{i:02d}", "name": f"Rule {i:02d} " + "n" * 70,
         "trigger": "message_contains", "match": f"phrase {i:02d} " + "m" * 180,
         "actions": [{"type": "add_tag", "tag": f"tag-{i}"}]}
        for i in range(25)
    ]  # fmt: skip
    upload = await live.upload(live.world.admin, "settings automation", "big.json",
                               json.dumps(rules).encode())  # fmt: skip
    assert upload.text() == "Saved 25 rules."
    assert len(json.dumps(rules, indent=2)) > 4000

    answer = await live.slash(live.world.admin, "settings automation")
    assert answer.modal is None
    assert answer.ephemeral
    assert "4,000" in answer.text()
    assert "attach it to this command" in answer.text()
    assert "Traceback" not in answer.text()


async def test_exported_rules_import_back_unchanged(live: Live) -> None:
    first = await live.slash(live.world.admin, "settings automation-export")
    assert first.ephemeral
    names = [a["filename"] for m in [first.original, *first.followups] if m
             for a in m.get("attachments") or []]  # fmt: skip
    assert names == ["rules.json"]
    data = attached(live, first, "rules.json")

    again = await live.upload(live.world.admin, "settings automation", "rules.json", data)
    assert again.text() == "Saved 9 rules."
    assert await export(live) == data


# Routing settings


async def test_routing_is_saved_from_a_file_and_exports_back(live: Live) -> None:
    document = {
        "types": {"sales": {"label": "Sales"}, "billing": {"label": "Billing"}},
        "capacity": 5,
        "sla": {"first_response_minutes": 15},
    }
    saved = await live.upload(
        live.world.admin, "settings routing", "settings.json", json.dumps(document).encode()
    )
    assert saved.ephemeral
    assert saved.text() == "Saved the settings."

    data = await export(live, "routing")
    assert json.loads(data) == document
    again = await live.upload(live.world.admin, "settings routing", "settings.json", data)
    assert again.text() == "Saved the settings."
    assert await export(live, "routing") == data


async def test_the_routing_editor_opens_prefilled_and_saves_an_edit(live: Live) -> None:
    editor = await open_editor(live, "settings routing")
    current = json.loads(modal_inputs(editor)["document"])
    assert current == json.loads(SETTINGS)
    current["csat_negative_max"] = 3
    saved = await (
        await live.sandbox.submit_modal(editor, {"document": json.dumps(current)})
    ).done()
    assert saved.text() == "Saved the settings."
    assert json.loads(await export(live, "routing")) == current


async def test_routing_secrets_show_masked_and_a_masked_paste_keeps_them(live: Live) -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwXy12"
    token = "T0k3n" * 13
    document = {
        "ops_webhook": f"https://discord.com/api/webhooks/42/{token}",
        "destinations": [{"kind": "http", "url": "https://pager.example.com/h", "secret": secret}],
    }
    saved = await live.upload(
        live.world.admin, "settings routing", "settings.json", json.dumps(document).encode()
    )
    assert saved.text() == "Saved the settings."

    data = await export(live, "routing")
    editor = await open_editor(live, "settings routing")
    shown = modal_inputs(editor)["document"]
    again = await (await live.sandbox.submit_modal(editor, {"document": shown})).done()

    for text in (data.decode(), shown):
        assert secret.removeprefix("whsec_") not in text
        assert token not in text
        assert f"whsec_…{secret[-4:]}" in text
        assert f"/webhooks/42/…{token[-4:]}" in text
    assert again.text() == "Saved the settings."
    assert live.bot is not None
    assert (await live.bot.desk.config(live.world.guild)).document == document


async def test_routing_with_a_schema_error_is_not_saved_and_names_the_path(live: Live) -> None:
    before = await export(live, "routing")
    refused = await live.upload(
        live.world.admin, "settings routing", "settings.json",
        b'{"capacity": 0, "sla": {"first_response_minutes": 10}}',
    )  # fmt: skip
    assert refused.text().startswith("Nothing was saved; your settings are kept.")
    assert any(line.startswith("capacity: ") for line in reported(refused.text()))
    assert await export(live, "routing") == before
    assert json.loads(before) == json.loads(SETTINGS)


@pytest.mark.parametrize("command", ["settings routing", "settings automation"])
async def test_an_attachment_over_256_kib_is_refused(live: Live, command: str) -> None:
    kind = command.split()[1]
    before = await export(live, kind)
    huge = b"[" + b" " * (256 * 1024) + b"]"
    refused = await live.upload(live.world.admin, command, "huge.json", huge)
    assert refused.ephemeral
    assert refused.text() == (
        f"huge.json is {len(huge):,} bytes; the limit is {256 * 1024:,}. Nothing was saved."
    )
    assert await export(live, kind) == before


# Who may configure


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("settings automation", {}),
        ("settings automation-export", {}),
        ("settings routing", {}),
        ("panel", {}),
        ("automation test", {"content": "my site is down for everyone"}),
        ("automation log", {}),
    ],
    ids=str,
)
async def test_a_customer_is_refused_admin_commands(
    live: Live, command: str, options: dict[str, str]
) -> None:
    messages = len(live.messages(live.world.help))
    answer = await live.slash(live.world.customer, command, options)
    assert answer.ephemeral
    assert answer.text() == REFUSAL
    assert answer.modal is None
    await live.settle()
    assert len(live.messages(live.world.help)) == messages


STAFF_ONLY = "Only staff can do that."


@pytest.mark.parametrize(
    ("command", "options", "refusal"),
    [
        ("settings automation", {}, REFUSAL),
        ("setup", {"staff_role": "ROLE", "ops_channel": "OPS"}, REFUSAL),
        ("panel", {}, REFUSAL),
        ("automation test", {"content": "anything"}, REFUSAL),
        ("stats", {}, STAFF_ONLY),
        ("answer add", {"triggers": "hi", "text": "hello"}, STAFF_ONLY),
    ],
    ids=str,
)
async def test_refusals_say_why_in_plain_words(
    live: Live, command: str, options: dict[str, str], refusal: str
) -> None:
    # The exact refusal, not the absence of "Traceback": a command that crashes answers with the
    # generic "Something went wrong" line, which has no traceback in it either.
    w = live.world
    placed = {"ROLE": w.staff_role, "OPS": w.ops}
    options = {name: placed.get(value, value) for name, value in options.items()}
    answer = await live.slash(w.customer, command, options)
    assert answer.ephemeral
    assert answer.text() == refusal


# Dry runs


def escalations(live: Live) -> int:
    with contextlib.closing(sqlite3.connect(live.db_path)) as db:
        (count,) = db.execute("SELECT count(*) FROM deliveries").fetchone()
    return int(count)


async def test_a_dry_run_lists_the_rules_that_would_fire_and_changes_nothing(live: Live) -> None:
    w = live.world
    log_before = (await live.slash(w.admin, "automation log")).text()
    channels = [c["id"] for c in live.sandbox.channels(w.guild)]

    dry = await live.slash(w.admin, "automation test", {"content": "my site is down for everyone"})
    assert dry.ephemeral
    text = dry.text()
    assert text.startswith("2 rule(s) would fire (nothing was changed):")
    outage, chained = reported(text)
    assert outage.startswith('outage (message_contains): add_tag: applied (added the tag "outage")')
    assert "; escalate: applied" in outage
    assert chained.startswith("mark-escalated (ticket_escalated): add_tag: applied")

    await live.settle()
    assert [c["id"] for c in live.sandbox.channels(w.guild)] == channels
    # An escalation is in the outbox once its unit of work commits, before anything is posted.
    assert escalations(live) == 0
    assert (await live.slash(w.admin, "automation log")).text() == log_before

    # The control: the same message in a ticket escalates, and the same checks see it.
    channel = await live.open_ticket()
    await live.say(channel, w.customer, "my site is down for everyone")
    assert escalations(live) == 1
    await live.sandbox.wait_for(lambda: live.messages(w.ops))


async def test_a_dry_run_that_fires_nothing_says_so(live: Live) -> None:
    dry = await live.slash(live.world.admin, "automation test", {"content": "hello, thanks!"})
    assert dry.text() == "No rule would fire."


# Saved answers


ANSWER = "Use the reset link on the sign-in page; it works for 24 hours."


async def add_answer(live: Live, triggers: str = "reset password, forgot password") -> Interaction:
    added = await live.slash(live.world.sam, "answer add", {"triggers": triggers, "text": ANSWER})
    assert added.ephemeral
    return added


async def test_a_saved_answer_replies_once_per_ticket(live: Live) -> None:
    w = live.world
    added = await add_answer(live)
    assert added.text().startswith("Saved answer 1:")
    channel = await live.open_ticket(subject="Locked out")
    await live.say(channel, w.sam, "Did you forget your password? Say 'forgot password'.")
    assert ANSWER not in live.texts(channel)

    await live.say(channel, w.customer, "I FORGOT PASSWORD again")
    assert live.texts(channel).count(ANSWER) == 1
    assert live.messages(channel)[-1]["author"]["id"] == live.sandbox.world.bot_id
    await live.say(channel, w.customer, "still cannot reset password, forgot password twice")
    assert live.texts(channel).count(ANSWER) == 1


async def test_saved_answers_are_listed_and_removed(live: Live) -> None:
    w = live.world
    await add_answer(live)
    listed = await live.slash(w.sam, "answer list")
    assert reported(listed.text()) == [f"1: reset password, forgot password -> {ANSWER}"]

    missing = await live.slash(w.sam, "answer remove", {"id": 99})
    assert missing.ephemeral
    assert missing.text() == "There is no saved answer 99; /answer list shows them."
    removed = await live.slash(w.sam, "answer remove", {"id": 1})
    assert removed.text() == "Removed answer 1."
    assert (await live.slash(w.sam, "answer list")).text() == "No saved answers."

    channel = await live.open_ticket()
    await live.say(channel, w.customer, "I forgot password")
    assert ANSWER not in live.texts(channel)


async def test_only_staff_add_answers(live: Live) -> None:
    w = live.world
    refused = await live.slash(w.customer, "answer add", {"triggers": "hi", "text": "Hello!"})
    assert refused.ephemeral
    assert refused.text() == "Only staff can do that."
    assert (await live.slash(w.sam, "answer list")).text() == "No saved answers."
    await add_answer(live)
    for command, options in [("answer remove", {"id": 1}), ("answer list", {})]:
        answer = await live.slash(w.customer, command, options)
        assert answer.text() == "Only staff can do that.", command
    assert "1: reset password" in (await live.slash(w.sam, "answer list")).text()


async def test_a_staff_message_is_saved_as_an_answer(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket(subject="Where is my parcel")
    reply = await live.say(channel, w.sam, "Track parcels at example.com/track with your number.")

    menu = await live.sandbox.message_command(w.guild, channel, w.sam, "Save as answer",
                                              reply["id"])  # fmt: skip
    assert (await menu.response())["type"] == 9
    assert modal_inputs(menu) == {"triggers": "", "text": reply["content"]}
    saved = await (
        await live.sandbox.submit_modal(menu, {"triggers": "track, parcel, where is"})
    ).done()
    assert saved.ephemeral
    assert saved.text().startswith("Saved answer 1:")
    listed = await live.slash(w.sam, "answer list")
    assert reported(listed.text()) == [f"1: track, parcel, where is -> {reply['content']}"]

    other = await live.open_ticket(subject="Lost")
    await live.say(other, w.customer, "Where is my PARCEL?")
    assert live.texts(other).count(reply["content"]) == 1


async def test_a_customer_cannot_save_a_message_as_an_answer(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket()
    mine = await live.say(channel, w.customer, "Please save me")
    menu = await live.sandbox.message_command(w.guild, channel, w.customer, "Save as answer",
                                              mine["id"])  # fmt: skip
    await menu.done()
    assert menu.modal is None
    assert menu.text() == "Only staff can do that."


async def test_only_a_staff_members_message_is_saved_as_an_answer(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket()
    theirs = await live.say(channel, w.customer, "My password is hunter2")
    menu = await live.sandbox.message_command(w.guild, channel, w.sam, "Save as answer",
                                              theirs["id"])  # fmt: skip
    await menu.done()
    assert menu.modal is None
    assert menu.text() == "Only a staff member's message can be saved as an answer."


async def test_a_message_without_text_cannot_be_saved_as_an_answer(live: Live) -> None:
    w = live.world
    channel = await live.open_ticket()
    photo = await live.sandbox.send_message(
        channel, w.sam, "", attachments=[("steps.png", b"\x89PNG")]
    )
    menu = await live.sandbox.message_command(w.guild, channel, w.sam, "Save as answer",
                                              photo["id"])  # fmt: skip
    await menu.done()
    assert menu.modal is None
    assert menu.ephemeral
    assert menu.text() == "That message has no text to save."


async def test_saved_answers_stop_while_a_ticket_is_escalated(live: Live) -> None:
    w = live.world
    await add_answer(live)
    channel = await live.open_ticket(subject="Account")
    escalated = await live.slash(w.sam, "ticket escalate", {"reason": "VIP"}, channel=channel)
    assert "Escalated" in escalated.text()
    await live.settle()

    await live.say(channel, w.customer, "I forgot password")
    assert ANSWER not in live.texts(channel)

    # The control: the same words in a ticket that is not escalated get the answer.
    other = await live.open_ticket(subject="Account again")
    await live.say(other, w.customer, "I forgot password")
    assert ANSWER in live.texts(other)


# Stats


async def rate(live: Live, channel: str, rating: str, closer: str) -> None:
    customer = live.world.customer
    asked = len(live.sandbox.dm_messages(customer))
    await live.slash(closer, "ticket close", channel=channel)
    await live.sandbox.wait_for(lambda: len(live.sandbox.dm_messages(customer)) >= asked + 2)
    ask = live.sandbox.dm_messages(customer)[-1]
    rated = await live.click(ask["channel_id"], ask, rating, customer)
    assert f"you rated this ticket {rating} out of 5" in rated.text()


async def test_stats_count_tickets_ratings_and_first_response(live: Live) -> None:
    w = live.world
    first = await live.open_ticket(subject="Charged twice")
    await live.say(first, w.customer, "Hello?")
    await live.say(first, w.sam, "Looking into it.")
    await rate(live, first, "5", w.sam)
    second = await live.open_ticket(subject="App crashes")
    await rate(live, second, "1", w.customer)
    await live.settle()

    stats = await live.slash(w.sam, "stats")
    assert stats.ephemeral
    (embed,) = stats.original["embeds"] if stats.original else stats.followups[0]["embeds"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Opened"] == "2"
    assert fields["Closed"] == "2"
    assert fields["Open now"] == "0"
    assert fields["CSAT"] == "50% of 2 ratings"
    assert fields["Median first response"] == "0 min"

    refused = await live.slash(w.customer, "stats")
    assert refused.ephemeral
    assert refused.text() == "Only staff can do that."


# Setup and panel


async def test_setup_without_a_category_creates_tickets(bare: Live) -> None:
    live, w = bare, bare.world
    answer = await live.slash(w.admin, "setup", {"staff_role": w.staff_role, "ops_channel": w.ops})
    assert answer.ephemeral
    assert answer.text() == (
        f"Staff role: <@&{w.staff_role}>. Escalations go to <#{w.ops}>;"
        " tickets open in **Tickets**."
    )
    (category,) = [c for c in live.sandbox.channels(w.guild) if c["type"] == 4]
    assert category["name"] == "Tickets"
    opened = live.sandbox.channel(await live.open_ticket())
    assert opened is not None
    assert opened["parent_id"] == category["id"]


async def test_setup_reports_the_permissions_it_is_missing(bare: Live) -> None:
    live, w = bare, bare.world
    live.sandbox.set_bot_permissions(w.guild, DEFAULT_BOT & ~MANAGE_ROLES)
    await live.settle()
    answer = await live.slash(
        w.admin, "setup",
        {"staff_role": w.staff_role, "ops_channel": w.ops, "log_channel": w.log},
    )  # fmt: skip
    category = live.channel_named("Tickets")
    assert category is not None
    assert answer.text().splitlines()[1:] == [
        f"I am missing in <#{place}>: Manage Roles." for place in (category["id"], w.ops, w.log)
    ]


async def test_a_missing_permission_leaves_no_channel_and_no_ticket(bare: Live) -> None:
    live, w = bare, bare.world
    await live.slash(w.admin, "setup", {"staff_role": w.staff_role, "ops_channel": w.ops})
    live.sandbox.set_bot_permissions(w.guild, DEFAULT_BOT & ~MANAGE_CHANNELS)
    channels = [c["id"] for c in live.sandbox.channels(w.guild)]

    for attempt in range(4):  # more than the 3 open tickets a customer may have
        answer = await live.slash(w.customer, "ticket open", {"subject": f"Help {attempt}"})
        assert answer.ephemeral
        assert "I am missing a Discord permission for that." in answer.text()
        assert "Traceback" not in answer.text()
    await live.settle()
    assert [c["id"] for c in live.sandbox.channels(w.guild)] == channels

    live.sandbox.set_bot_permissions(w.guild, DEFAULT_BOT)
    channel = await live.open_ticket(subject="Help 0")
    assert live.sandbox.channel(channel) is not None


async def test_a_refused_ticket_card_leaves_no_channel_and_no_ticket(live: Live) -> None:
    w = live.world
    live.sandbox.fail_next("POST", r"^/channels/\d+/messages$", status=403, code=50013)
    answer = await live.slash(w.customer, "ticket open", {"subject": "Card refused"})
    assert answer.ephemeral
    assert "I am missing a Discord permission for that." in answer.text()
    await live.settle()
    assert [c["name"] for c in live.sandbox.channels(w.guild) if c["type"] == 0] == [
        "help", "ops", "ticket-log"
    ]  # fmt: skip
    for subject in ("One", "Two", "Three"):  # the 3 open tickets a customer may have
        await live.open_ticket(subject=subject)


async def test_the_panel_goes_to_the_channel_named(live: Live) -> None:
    w = live.world
    answer = await live.slash(w.admin, "panel", {"channel": w.ops})
    assert answer.ephemeral
    assert answer.text() == f"The panel is in <#{w.ops}>."
    panel = live.messages(w.ops)[-1]
    assert "Need help?" in message_text(panel)
    assert set(buttons(panel)) == {"Billing", "Something else"}
    assert all("Need help?" not in text for text in live.texts(w.help))


async def test_a_panel_without_ticket_types_has_one_open_button(bare: Live) -> None:
    live, w = bare, bare.world
    await live.slash(w.admin, "setup", {"staff_role": w.staff_role, "ops_channel": w.ops})
    await live.slash(w.admin, "panel")
    panel = live.messages(w.help)[-1]
    assert buttons(panel) == {"Open ticket": False}

    form = await live.sandbox.click(w.help, panel["id"], button(panel, "Open ticket"), w.customer)
    assert (await form.response())["type"] == 9
    opened = await (await live.sandbox.submit_modal(form, {"subject": "Hi"})).done()
    assert "Your ticket is open" in opened.text()


async def test_a_database_that_cannot_take_a_change_is_said_plainly_and_nothing_changes(
    live: Live,
) -> None:
    w = live.world
    assert live.bot is not None
    store = live.bot.desk.store
    # Another process holds the write lock longer than the bot waits (100 ms here, not 5 s).
    await store.run(lambda tx: tx._conn.execute("PRAGMA busy_timeout = 100"))
    other = sqlite3.connect(live.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        answer = await live.slash(w.customer, "ticket open", {"subject": "Locked out"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert answer.text() == (
        "The database could not take that just now, and nothing was changed: please try again"
        " in a moment."
    )
    with contextlib.closing(sqlite3.connect(live.db_path)) as db:
        assert db.execute("SELECT count(*) FROM openings").fetchone() == (0,)
    # Positive control: once the lock is gone the same command opens the ticket.
    again = await live.slash(w.customer, "ticket open", {"subject": "Locked out"})
    assert "Your ticket is open" in again.text()
