"""Escalations on their way out, as plain values: settings of the destinations, which ones an
escalation matches, ``$event`` references, the #ops post within Discord's limits, and the
per-destination limiter that folds a burst into one summary."""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import support
from tests.support import T0
from thothbot.core.delivery import (
    SUMMARY_LINES,
    WEBHOOK_LIMIT,
    Facts,
    destinations,
    facts,
    has_marker,
    matches,
    new_event_id,
    ops_post,
    plan,
    resolve,
    summary,
    target,
    target_label,
    webhook_event,
)
from thothbot.core.destinations import DiscordWebhook, HttpEndpoint, Ops
from thothbot.core.embeds import (
    DESCRIPTION,
    FIELD_NAME,
    FIELD_VALUE,
    FIELDS,
    TITLE,
    TOTAL,
    cut,
)
from thothbot.core.errors import SettingsInvalid
from thothbot.core.masking import reference
from thothbot.core.models import Ticket
from thothbot.core.settings import (
    Destination,
    EmbedTemplate,
    GuildSettings,
    OpsMentions,
    When,
    parse_settings,
    signing_secret,
)

G = "guild-1"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64
HOOK = "https://discord.com/api/webhooks/1/abc"
ENDPOINT = "https://example.test/hooks/thoth"
EMAIL, PHONE, CARD = "ann.lee@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"
NO_PINGS = {"parse": [], "roles": [], "users": []}


def ticket(number: int = 1, **changes: Any) -> Ticket:
    """Ticket ``number`` of guild G, about a broken checkout."""
    about = {"guild_id": G, "customer_id": "111", "subject": f"Checkout broken {number}"}
    return support.ticket(number, **(about | changes))


def api_ticket(number: int = 1, **changes: Any) -> Ticket:
    return ticket(number, customer_id="api:key1", source="api", ref=f"T-{number}", **changes)


def guild(**document: Any) -> GuildSettings:
    return parse_settings(json.dumps(document)).settings


def problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SettingsInvalid) as caught:
        parse_settings(json.dumps(document))
    return caught.value.problems


def http(url: str = ENDPOINT, **when: list[str]) -> dict[str, Any]:
    return {"kind": "http", "url": url, "secret": SECRET, "when": when}


def hook(url: str = HOOK, **when: list[str]) -> dict[str, Any]:
    return {"kind": "discord_webhook", "url": url, "when": when}


# -- settings ---------------------------------------------------------------------------------


def test_the_new_keys_default_to_the_bots_ops_channel_and_no_pings() -> None:
    settings = GuildSettings()
    assert settings.ops_webhook is None
    assert settings.destinations == []
    assert settings.embed is None
    assert settings.ops_mentions == OpsMentions()


def test_valid_destinations_templates_and_mentions_are_taken_and_reexport_unchanged() -> None:
    document = {
        "ops_webhook": HOOK,
        "destinations": [hook(urgency=["critical"]), http(tier=["enterprise"], channel=["email"])],
        "embed": {"title": "$event.subject", "fields": {"Plan": "$event.plan"}},
        "ops_mentions": {"roles": ["123"], "users": ["456"]},
    }
    settings = guild(**document)
    assert settings.destinations[0] == Destination(
        kind="discord_webhook", url=HOOK, when=When(urgency=["critical"])
    )
    assert settings.destinations[1].secret == SECRET
    assert settings.embed == EmbedTemplate(title="$event.subject", fields={"Plan": "$event.plan"})
    assert parse_settings(json.dumps(settings.to_document())).settings == settings


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"destinations": [{"kind": "http", "url": ENDPOINT}]},
         "destinations[0]", "needs a secret"),
        ({"destinations": [{**http(), "secret": "hunter2"}]}, "destinations[0].secret", "whsec_"),
        ({"destinations": [{**hook(), "secret": SECRET}]}, "destinations[0]", "takes no secret"),
        ({"destinations": [hook("ftp://example.test/x")]}, "destinations[0].url", ""),
        ({"destinations": [hook("https://exa mple.test/x")]}, "destinations[0].url", ""),
        ({"destinations": [hook("discord.com/api/webhooks/1/abc")]}, "destinations[0].url", ""),
        ({"destinations": [hook("https://")]}, "destinations[0].url", ""),
        ({"destinations": [{"kind": "sms", "url": ENDPOINT}]}, "destinations[0].kind", ""),
        ({"ops_webhook": "not a url"}, "ops_webhook", ""),
        ({"destinations": [hook(f"{HOOK}/{i}") for i in range(11)]}, "destinations", "10"),
        ({"embed": {"fields": {f"f{i}": "$event.x" for i in range(26)}}},
         "embed.fields", "at most 25"),
        ({"embed": {"title": ""}}, "embed.title", ""),
        ({"embed": {"fields": {"Plan": "x" * 1025}}}, "embed.fields.Plan", ""),
        ({"ops_mentions": {"roles": ["@everyone"]}}, "ops_mentions.roles[0]", ""),
        ({"ops_mentions": {"users": ["12a"]}}, "ops_mentions.users[0]", ""),
        ({"destinations": [{**hook(), "when": {"urgency": "critical"}}]},
         "destinations[0].when.urgency", "list"),
    ],
)  # fmt: skip
def test_bad_destination_settings_are_refused_naming_the_place(
    document: dict[str, Any], path: str, words: str
) -> None:
    found = problems(document)
    assert any(p == path and words in message for p, message in found), found


def test_ten_destinations_and_25_template_fields_are_the_limits_not_refused() -> None:
    settings = guild(
        destinations=[hook(f"{HOOK}/{i}") for i in range(10)],
        embed={"fields": {f"f{i}": "$event.x" for i in range(25)}},
    )
    assert len(settings.destinations) == 10
    assert settings.embed is not None
    assert len(settings.embed.fields) == 25


KEY_24 = bytes(range(24))


@pytest.mark.parametrize(
    "pasted",
    [
        "whsec_" + base64.b64encode(KEY_24).decode(),  # as thothbot and Svix print them
        base64.b64encode(KEY_24).decode(),  # without the prefix
        "whsec_" + base64.b64encode(bytes(range(25))).decode().rstrip("="),  # unpadded
        base64.b64encode(bytes(range(64))).decode().rstrip("="),  # 64 bytes, bare, unpadded
    ],
)
def test_secrets_are_taken_in_every_form_the_official_library_takes(pasted: str) -> None:
    [destination] = guild(destinations=[{**http(), "secret": pasted}]).destinations
    assert destination.secret is not None
    key = signing_secret(pasted)
    assert key is not None
    # Stored in one spelling, the same key: whsec_ and padded base64.
    assert destination.secret == "whsec_" + base64.b64encode(key).decode()
    assert signing_secret(destination.secret) == key


@pytest.mark.parametrize(
    ("pasted", "size"),
    [
        ("whsec_" + base64.b64encode(bytes(16)).decode(), 16),
        ("whsec_" + base64.b64encode(bytes(23)).decode(), 23),
        (base64.b64encode(bytes(65)).decode(), 65),
    ],
)
def test_secrets_outside_24_to_64_bytes_are_refused_saying_so(pasted: str, size: int) -> None:
    assert len(signing_secret(pasted) or b"") == size
    [(path, message)] = problems({"destinations": [{**http(), "secret": pasted}]})
    assert path == "destinations[0].secret"
    assert "must be 24 to 64 bytes in base64" in message
    assert '"whsec_"' in message


def test_a_16_byte_secret_saved_before_the_rule_still_loads() -> None:
    """Stored settings load without the save-time checks, so an upgrade breaks no server."""
    old = "whsec_" + base64.b64encode(bytes(16)).decode()
    stored = GuildSettings.model_validate({"destinations": [{**http(), "secret": old}]})
    assert stored.destinations[0].secret == old


@pytest.mark.parametrize("junk", ["whsec_not base64!", "whsec_", "whsec_A", "whsec_abc$def"])
def test_text_that_is_not_base64_is_refused(junk: str) -> None:
    assert signing_secret(junk) is None or len(signing_secret(junk) or b"") < 24
    found = problems({"destinations": [{**http(), "secret": junk}]})
    assert found[0][0] == "destinations[0].secret"


def test_a_secret_that_cannot_be_decoded_is_refused() -> None:
    found = problems({"destinations": [{**http(), "secret": "whsec_" + "A" * 17}]})
    assert any(path.startswith("destinations[0]") for path, _ in found), found


# -- facts, matches, destinations -------------------------------------------------------------


def test_facts_come_from_the_ticket_and_its_events_payload() -> None:
    payload = {"customer_tier": "enterprise", "channel": "email"}
    known = facts(api_ticket(urgency="critical", type_id="billing"), payload)
    assert known == Facts(urgency="critical", tier="enterprise", channel="email", type="billing")
    # A Discord ticket: no tier, its channel is "discord" once it has one.
    assert facts(ticket(channel_id="555"), {}) == Facts(None, None, "discord", None)
    assert facts(ticket(), {}) == Facts(None, None, None, None)
    # Values of the wrong kind are not known.
    assert facts(api_ticket(), {"customer_tier": 3, "channel": ["email"]}).tier is None


@pytest.mark.parametrize(
    ("when", "known", "expected"),
    [
        (When(), Facts(None, None, None, None), True),
        (When(urgency=["critical"]), Facts("critical", None, None, None), True),
        (When(urgency=["critical", "high"]), Facts("high", None, None, None), True),
        (When(urgency=["critical"]), Facts("low", None, None, None), False),
        # A value not known yet does not match a listed condition.
        (When(urgency=["critical"]), Facts(None, "enterprise", "email", "billing"), False),
        (When(tier=["enterprise"]), Facts("low", "enterprise", None, None), True),
        (When(tier=["enterprise"]), Facts("low", "free", None, None), False),
        (When(tier=["enterprise"]), Facts("low", None, None, None), False),
        (When(channel=["email", "chat"]), Facts(None, None, "chat", None), True),
        (When(channel=["email"]), Facts(None, None, "discord", None), False),
        (When(type=["billing"]), Facts(None, None, None, "billing"), True),
        (When(type=["billing"]), Facts(None, None, None, None), False),
        # Every listed key must match.
        (When(urgency=["critical"], tier=["enterprise"]),
         Facts("critical", "enterprise", None, None), True),
        (When(urgency=["critical"], tier=["enterprise"]), Facts("critical", "pro", None, None),
         False),
    ],
)  # fmt: skip
def test_matches_needs_every_listed_condition(when: When, known: Facts, expected: bool) -> None:
    destination = Destination(kind="discord_webhook", url=HOOK, when=when)
    assert matches(destination, known) is expected


def test_ops_comes_first_then_each_matching_destination_in_order() -> None:
    settings = guild(
        destinations=[
            http(f"{ENDPOINT}/critical", urgency=["critical"]),
            hook(f"{HOOK}/all"),
            hook(f"{HOOK}/enterprise", tier=["enterprise"]),
        ]
    )
    found = destinations(settings, Facts("critical", None, "discord", None))
    assert found == [
        Ops(),
        HttpEndpoint(f"{ENDPOINT}/critical", SECRET),
        DiscordWebhook(f"{HOOK}/all"),
    ]
    assert destinations(settings, Facts("low", "enterprise", None, None)) == [
        Ops(),
        DiscordWebhook(f"{HOOK}/all"),
        DiscordWebhook(f"{HOOK}/enterprise"),
    ]


def test_ops_webhook_replaces_the_bots_ops_channel() -> None:
    found = destinations(guild(ops_webhook=HOOK), Facts(None, None, None, None))
    assert found == [DiscordWebhook(HOOK)]
    assert destinations(GuildSettings(), Facts(None, None, None, None)) == [Ops()]


# -- resolve -----------------------------------------------------------------------------------

EVENT = {
    "subject": "Card declined",
    "customer": {"name": "Ann", "plan": {"tier": "pro"}},
    "order_id": 42,
    "amount": 12.5,
    "paid": False,
    "items": ["a", "b"],
    "meta": {"x": 1, "y": [2, 3]},
    "empty": None,
    "name-with_dash": "ok",
    "unicode": "Grüße",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$event.subject", "Card declined"),
        ("Customer $event.customer.name on $event.customer.plan.tier!",
         "Customer Ann on pro!"),
        ("$event.missing", "-"),
        ("$event.customer.missing", "-"),
        ("$event.customer.name.first", "-"),  # into a string
        ("$event.items.0", "-"),  # lists are not indexed
        ("$event.empty", "-"),
        ("#$event.order_id", "#42"),
        ("$event.amount", "12.5"),
        ("$event.paid", "false"),
        ("$event.items", '["a","b"]'),
        ("$event.meta", '{"x":1,"y":[2,3]}'),
        ("$event.customer.plan", '{"tier":"pro"}'),
        ("$event.name-with_dash", "ok"),
        ("$event.unicode", "Grüße"),
        ("Order $event.order_id.", "Order 42."),  # a trailing dot is text
        ("No references here", "No references here"),
        ("$event alone, $events.x and $ event.x", "$event alone, $events.x and $ event.x"),
        ("", ""),
    ],
)  # fmt: skip
def test_resolve_replaces_event_references(template: str, expected: str) -> None:
    assert resolve(template, EVENT) == expected


def test_resolve_does_not_resolve_references_inside_values() -> None:
    assert resolve("$event.a", {"a": "$event.b", "b": "secret"}) == "$event.b"


@given(st.text(alphabet=string.printable.replace("$", ""), max_size=200))
def test_text_without_references_is_unchanged(text: str) -> None:
    assert resolve(text, EVENT) == text


# -- ops_post ----------------------------------------------------------------------------------


def fields_of(post: Any) -> dict[str, str]:
    return {f["name"]: f["value"] for f in post.embed.to_dict()["fields"]}


def test_the_default_post_shows_the_subject_the_ticket_and_the_payload() -> None:
    payload = {"ticket_id": "T-1", "subject": "x", "body": "Every card fails", "plan": "pro",
               "order": {"id": 7}}  # fmt: skip
    post = ops_post(
        api_ticket(urgency="critical", tags=["billing"]), GuildSettings(), "Rule: page",
        event_name="support.ticket.created", payload=payload,
    )  # fmt: skip
    embed = post.embed.to_dict()
    assert embed["title"] == "Escalated: Checkout broken 1"
    assert embed["description"] == "Every card fails"
    assert [f["name"] for f in embed["fields"]] == [
        "Ticket", "Reason", "Urgency", "Tags", "ticket_id", "plan", "order",
    ]  # fmt: skip
    assert fields_of(post) == {
        "Ticket": "#1 (api)",
        "Reason": "Rule: page",
        "Urgency": "critical",
        "Tags": "billing",
        "ticket_id": "T-1",
        "plan": "pro",
        "order": '{"id":7}',
    }
    assert post.body() == {
        "content": "",
        "embeds": [embed],
        "allowed_mentions": NO_PINGS,
    }


def test_a_discord_post_names_the_customer_type_link_assignee_and_claimer() -> None:
    post = ops_post(
        ticket(body="It fails", assignee_id="222", channel_id="555"),
        GuildSettings(),
        "Escalated by staff",
        type_label="Billing",
        link="<#555>",
        claimed_by="333",
    )
    assert fields_of(post) == {
        "Ticket": "<#555>",
        "Customer": "<@111>",
        "Type": "Billing",
        "Reason": "Escalated by staff",
        "Urgency": "not known yet",
        "Tags": "-",
        "Assignee": "<@222>",
        "Claimed by": "<@333>",
    }
    assert post.embed.description == "It fails"
    assert post.embed.color != ops_post(ticket(), GuildSettings(), "r").embed.color


def test_personal_data_in_subject_body_and_payload_is_redacted() -> None:
    payload = {
        "contact": f"write to {EMAIL}",
        "nested": {"phone": f"call {PHONE}", "cards": [f"card {CARD}"]},
        "body": f"my card is {CARD}, call {PHONE}",
    }
    post = ops_post(
        api_ticket(subject=f"Refund for {EMAIL}", body=f"ignored {EMAIL}"),
        GuildSettings(),
        "Rule: page",
        payload=payload,
    )
    text = json.dumps(post.body(), ensure_ascii=False)
    for secret in (EMAIL, PHONE, CARD, "4111"):
        assert secret not in text
    embed = post.embed.to_dict()
    assert embed["title"] == "Escalated: Refund for [EMAIL]"
    assert embed["description"] == "my card is [CARD], call [PHONE]"
    assert fields_of(post)["contact"] == "write to [EMAIL]"
    assert fields_of(post)["nested"] == '{"phone":"call [PHONE]","cards":["card [CARD]"]}'


def test_a_discord_tickets_body_is_redacted_too() -> None:
    post = ops_post(ticket(body=f"mail me at {EMAIL}"), GuildSettings(), "r")
    assert post.embed.description == "mail me at [EMAIL]"


def test_template_values_are_redacted_too() -> None:
    settings = guild(embed={"title": "From $event.contact", "fields": {"Who": "$event.contact"}})
    post = ops_post(api_ticket(), settings, "r", payload={"contact": EMAIL})
    assert post.embed.title == "Escalated: From [EMAIL]"
    assert fields_of(post)["Who"] == "[EMAIL]"


def test_numbers_in_the_payload_are_redacted_as_their_text_would_be() -> None:
    # A bare number is a card when Luhn says so; digits without "+" are not taken for a phone,
    # in a JSON number as in text (order numbers look the same).
    payload = {"card": 4111111111111111, "order": 14155552671}
    text = json.dumps(ops_post(api_ticket(), GuildSettings(), "r", payload=payload).body())
    assert "4111111111111111" not in text
    assert "[CARD]" in text
    assert "14155552671" in text


def test_the_template_sets_the_title_and_replaces_the_payload_fields() -> None:
    settings = guild(
        embed={
            "title": "$event.customer.name: $event.subject",
            "fields": {"Plan": "$event.customer.plan", "Order": "#$event.order_id",
                       "Missing": "$event.nope"},
        }
    )  # fmt: skip
    payload = {"subject": "Card declined", "customer": {"name": "Ann", "plan": "pro"},
               "order_id": 42}  # fmt: skip
    post = ops_post(api_ticket(), settings, "Rule: page", payload=payload)
    assert post.embed.title == "Escalated: Ann: Card declined"
    assert fields_of(post) == {
        "Ticket": "#1 (api)",
        "Reason": "Rule: page",
        "Urgency": "not known yet",
        "Tags": "-",
        "Plan": "pro",
        "Order": "#42",
        "Missing": "-",
    }


def test_a_template_without_a_title_keeps_the_subject_and_without_fields_the_payload() -> None:
    titled = ops_post(
        api_ticket(), guild(embed={"title": "T $event.plan"}), "r", payload={"plan": "pro"}
    )
    assert titled.embed.title == "Escalated: T pro"
    assert fields_of(titled)["plan"] == "pro"
    fielded = ops_post(
        api_ticket(), guild(embed={"fields": {"P": "$event.plan"}}), "r", payload={"plan": "pro"}
    )
    assert fielded.embed.title == "Escalated: Checkout broken 1"
    assert "plan" not in fields_of(fielded)
    # Without a subject in the payload, $event.subject is the ticket's (redacted).
    subject = ops_post(api_ticket(subject=f"To {EMAIL}"), guild(embed={"title": "$event.subject"}),
                       "r")  # fmt: skip
    assert subject.embed.title == "Escalated: To [EMAIL]"


def test_mentions_are_off_by_default() -> None:
    post = ops_post(ticket(subject="@everyone help <@&999>"), GuildSettings(), "r")
    assert post.content == ""
    assert post.allowed_mentions == NO_PINGS
    assert post.body()["allowed_mentions"] == NO_PINGS


def test_only_the_listed_roles_and_users_are_pinged() -> None:
    settings = guild(ops_mentions={"roles": ["123", "124"], "users": ["456"]})
    post = ops_post(ticket(subject="@everyone"), settings, "r")
    assert post.content == "<@&123> <@&124> <@456>"
    assert post.allowed_mentions == {"parse": [], "roles": ["123", "124"], "users": ["456"]}


# Huge payloads: every Discord limit holds, and what did not fit is named.

_KEY = st.text(alphabet=string.ascii_letters + string.digits + "_-. ", min_size=1, max_size=300)
_LONG = st.builds(lambda c, n: c * n, st.sampled_from(["a", "b c ", "xyz-"]), st.integers(0, 2500))
_VALUE = st.one_of(
    _LONG,
    st.text(max_size=80),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=40), max_size=5),
    st.dictionaries(st.text(max_size=10), _LONG, max_size=3),
)
_PAYLOAD = st.integers(min_value=0, max_value=60).flatmap(
    lambda n: st.dictionaries(
        _KEY.filter(lambda k: k.strip() != "" and k not in ("subject", "body")),
        _VALUE,
        min_size=n,
        max_size=n,
    )
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=_PAYLOAD,
    subject=st.one_of(st.text(min_size=1, max_size=50), _LONG.filter(bool)),
    body=_LONG,
    source=st.sampled_from(["api", "discord"]),
)
def test_any_payload_fits_every_discord_limit(
    payload: dict[str, Any], subject: str, body: str, source: str
) -> None:
    subject = subject if subject.strip() else "x"
    the_ticket = ticket(subject=subject, source=source, body=body)
    post = ops_post(the_ticket, GuildSettings(), "Rule: page", payload=payload)
    embed = post.embed.to_dict()

    assert len(embed["title"]) <= TITLE
    assert len(embed.get("description", "")) <= DESCRIPTION
    assert len(embed["fields"]) <= FIELDS
    for field in embed["fields"]:
        assert 0 < len(field["name"]) <= FIELD_NAME
        assert 0 < len(field["value"]) <= FIELD_VALUE
        assert field["name"].strip()
        assert field["value"].strip()
    total = (
        len(embed["title"])
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= TOTAL

    fixed = ["Ticket", "Reason", "Urgency", "Tags"]
    if source == "discord":
        fixed[1:1] = ["Customer", "Type"]
    wanted = [cut(name, FIELD_NAME) for name in [*fixed, *payload]]
    names = [f["name"] for f in embed["fields"]]
    if names == wanted:
        return
    # Something was left out: the last field says how many, and names them.
    shown = len(names) - 1
    assert names[:shown] == wanted[:shown]
    left_out = wanted[shown:]
    assert names[-1] == f"+{len(left_out)} more field{'' if len(left_out) == 1 else 's'}"
    assert embed["fields"][-1]["value"] == cut(", ".join(left_out), FIELD_VALUE)


def test_sixty_payload_keys_fold_into_24_fields_and_a_more_line() -> None:
    payload = {f"key{i:02}": "v" * 2000 for i in range(60)}
    embed = ops_post(api_ticket(), GuildSettings(), "r", payload=payload).embed.to_dict()
    assert len(embed["fields"]) <= FIELDS
    last = embed["fields"][-1]
    assert last["name"].startswith("+")
    assert last["name"].endswith("more fields")
    count = int(last["name"][1:].split()[0])
    assert count == 4 + 60 - (len(embed["fields"]) - 1)
    assert "key59" in last["value"]
    assert all(len(f["value"]) <= FIELD_VALUE for f in embed["fields"])
    assert post_total(embed) <= TOTAL


def post_total(embed: dict[str, Any]) -> int:
    return (
        len(embed["title"])
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )


# -- webhook_event -----------------------------------------------------------------------------


def test_the_http_body_is_a_standard_webhooks_event_with_the_subject_redacted() -> None:
    body = webhook_event(
        api_ticket(7, subject=f"Refund {EMAIL}", urgency="critical", tags=["vip"],
                   type_id="billing"),
        "Rule: page",
        T0,
    )  # fmt: skip
    assert body == {
        "type": "ticket.escalated",
        "timestamp": T0.isoformat(),
        "data": {
            "ticket": 7,
            "guild_id": G,
            "source": "api",
            "ref": "T-7",
            "subject": "Refund [EMAIL]",
            "urgency": "critical",
            "type": "billing",
            "tags": ["vip"],
            "reason": "Rule: page",
        },
    }


# -- plan --------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def posts(count: int, *, start: datetime | None = None, every: float = 1.0) -> list[datetime]:
    first = start or NOW - timedelta(seconds=50)
    return [first + timedelta(seconds=i * every) for i in range(count)]


def test_the_limit_is_30_a_minute() -> None:
    assert WEBHOOK_LIMIT == 30


@pytest.mark.parametrize("sent", [0, 1, 15, WEBHOOK_LIMIT - 2])
@pytest.mark.parametrize("waiting", [1, 2, 45])
def test_under_the_limit_each_post_is_sent(sent: int, waiting: int) -> None:
    assert plan(posts(sent), waiting, NOW) == ("send", None)


def test_with_one_slot_left_a_single_post_is_sent() -> None:
    assert plan(posts(WEBHOOK_LIMIT - 1), 1, NOW) == ("send", None)


@pytest.mark.parametrize("waiting", [2, 3, 16, 100])
def test_with_one_slot_left_several_waiting_become_one_summary(waiting: int) -> None:
    assert plan(posts(WEBHOOK_LIMIT - 1), waiting, NOW) == ("summary", None)


@pytest.mark.parametrize("waiting", [1, 5])
def test_at_the_limit_wait_until_the_oldest_post_is_a_minute_old(waiting: int) -> None:
    sent = posts(WEBHOOK_LIMIT, start=NOW - timedelta(seconds=45))
    step, until = plan(list(reversed(sent)), waiting, NOW)  # order does not matter
    assert step == "wait"
    assert until == NOW + timedelta(seconds=15)  # the oldest, a minute later


def test_above_the_limit_wait_until_the_window_holds_one_slot_again() -> None:
    sent = posts(WEBHOOK_LIMIT + 2, start=NOW - timedelta(seconds=40))
    step, until = plan(sent, 3, NOW)
    assert step == "wait"
    # Three must leave the window before 29 remain: the third oldest a minute on.
    assert until == sent[2] + timedelta(minutes=1)
    assert plan(sent, 3, until) == ("summary", None)


def test_posts_a_minute_old_or_older_do_not_count() -> None:
    old = posts(WEBHOOK_LIMIT, start=NOW - timedelta(minutes=5))
    assert plan(old, 10, NOW) == ("send", None)
    # Exactly a minute ago: out of the window.
    at_edge = [NOW - timedelta(minutes=1)] * WEBHOOK_LIMIT
    assert plan(at_edge, 10, NOW) == ("send", None)
    just_inside = [NOW - timedelta(seconds=59.999)] * WEBHOOK_LIMIT
    assert plan(just_inside, 10, NOW)[0] == "wait"


def test_a_custom_limit() -> None:
    assert plan(posts(3), 2, NOW, limit=5) == ("send", None)
    assert plan(posts(4), 2, NOW, limit=5) == ("summary", None)
    assert plan(posts(5), 2, NOW, limit=5)[0] == "wait"


@given(
    ages=st.lists(st.floats(min_value=0, max_value=120), max_size=40),
    waiting=st.integers(min_value=1, max_value=60),
)
def test_the_plan_never_goes_over_the_limit(ages: list[float], waiting: int) -> None:
    sent = [NOW - timedelta(seconds=a) for a in ages]
    recent = [t for t in sent if NOW - t < timedelta(minutes=1)]
    step, until = plan(sent, waiting, NOW)
    if step in ("send", "summary"):
        assert len(recent) + 1 <= WEBHOOK_LIMIT
        assert until is None
    else:
        assert until is not None
        assert until > NOW
        in_window_then = [t for t in sent if until - t < timedelta(minutes=1)]
        assert len(in_window_then) < WEBHOOK_LIMIT
    if step == "summary":
        assert waiting > 1
        assert len(recent) == WEBHOOK_LIMIT - 1


# -- summary -----------------------------------------------------------------------------------


def test_a_summary_counts_and_names_a_shared_urgency() -> None:
    spec = summary([ticket(n, urgency="critical") for n in range(30, 46)])
    assert spec.title == "16 more critical tickets escalated in the last minute"
    lines = spec.description.splitlines()
    assert len(lines) == 16
    assert lines[0] == "#30 Checkout broken 30 (critical)"
    assert lines[-1] == "#45 Checkout broken 45 (critical)"
    assert spec.fields == ()


def test_a_summary_of_mixed_or_unknown_urgencies_says_tickets() -> None:
    mixed = summary([ticket(1, urgency="critical"), ticket(2, urgency="high")])
    assert mixed.title == "2 more tickets escalated in the last minute"
    assert mixed.description.splitlines() == [
        "#1 Checkout broken 1 (critical)",
        "#2 Checkout broken 2 (high)",
    ]
    unknown = summary([ticket(1), ticket(2)])
    assert unknown.title == "2 more tickets escalated in the last minute"
    assert unknown.description.splitlines()[0] == "#1 Checkout broken 1"
    partly = summary([ticket(1, urgency="critical"), ticket(2)])
    assert partly.title == "2 more tickets escalated in the last minute"


def test_a_summary_lists_at_most_20_tickets_and_counts_the_rest() -> None:
    spec = summary([ticket(n, urgency="high") for n in range(1, 46)])
    assert spec.title == "45 more high tickets escalated in the last minute"
    lines = spec.description.splitlines()
    assert len(lines) == SUMMARY_LINES + 1
    assert lines[SUMMARY_LINES - 1].startswith("#20 ")
    assert lines[-1] == "... and 25 more"


def test_a_summary_redacts_and_cuts_subjects() -> None:
    spec = summary([ticket(1, subject=f"Refund for {EMAIL} " + "x" * 200)])
    line = spec.description
    assert EMAIL not in line
    assert line.startswith("#1 Refund for [EMAIL] ")
    assert len(line) == len("#1 ") + 80


# -- exactly once: ids and markers ------------------------------------------------------------


def test_event_ids_are_msg_and_a_ulid_that_sorts_by_time() -> None:
    first = new_event_id(T0, bytes(10))
    later = new_event_id(T0 + timedelta(milliseconds=1), bytes(10))
    other = new_event_id(T0, b"\x01" * 10)
    assert first.startswith("msg_")
    assert len(first) == 4 + 26
    assert set(first[4:]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert first < later
    assert first != other
    assert first[4:14] == other[4:14]  # the time part


def test_a_marked_post_and_summary_carry_the_marker_in_the_footer() -> None:
    marker = new_event_id(T0, bytes(10))
    post = ops_post(ticket(), GuildSettings(), "Rule: page", marker=marker)
    assert post.embed.footer == f"ref {marker}"
    assert post.body()["embeds"][0]["footer"] == {"text": f"ref {marker}"}
    assert has_marker(post.embed.footer, marker)
    assert not has_marker(post.embed.footer, marker[:-1])
    assert not has_marker(None, marker)
    assert summary([ticket(1), ticket(2)], marker).footer == f"ref {marker}"
    assert ops_post(ticket(), GuildSettings(), "Rule: page").embed.footer == ""


def test_a_marked_post_still_fits_discords_limits() -> None:
    huge = {f"key{i}": "x" * 2000 for i in range(60)}
    post = ops_post(api_ticket(), GuildSettings(), "r" * 2000, payload=huge,
                    marker=new_event_id(T0, bytes(10)))  # fmt: skip
    assert post.embed.total() <= TOTAL
    assert post.embed.footer.startswith("ref msg_")


def test_a_disabled_destination_is_named_by_its_host_never_its_token() -> None:
    hook_url = "https://discord.com/api/webhooks/123/s3cret-token"
    assert target_label(DiscordWebhook(hook_url)) == ("the Discord webhook at discord.com")
    assert target_label(HttpEndpoint("https://user:pw@hooks.example:8443/x", SECRET)) == (
        "the http destination at hooks.example:8443"
    )
    hook = DiscordWebhook(hook_url)
    assert target(hook) != target(DiscordWebhook(hook_url + "x"))
    assert "s3cret" not in target(hook)
    # One fingerprint: the one the destination's outbox rows carry.
    assert target(hook) == reference({"kind": "discord_webhook", "url": hook_url})["ref"]
    assert hook.reference.to_json() == json.dumps(
        reference({"kind": "discord_webhook", "url": hook_url}), sort_keys=True
    )
