"""Text people wrote, as the bot repeats it: masked links broken open, bidi controls dropped,
everything else as it was (core/text.py, and where it is applied: the #ops post, the summary,
the ticket card)."""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import support
from thothbot.bot import render
from thothbot.core.answers import SavedAnswer
from thothbot.core.delivery import ops_post, summary
from thothbot.core.settings import GuildSettings
from thothbot.core.text import BIDI_CONTROLS, neutralize

EVIL = "https://evil.example/login"
MASKED = f"[click here]({EVIL})"
# "txt.exe" shown as "exe.txt": a right-to-left override reverses what follows it.
OVERRIDE = "invoice_\u202etxt.exe"


def test_a_masked_link_shows_its_address() -> None:
    shown = neutralize(f"Pay now: {MASKED}!")
    assert shown == f"Pay now: [click here] ({EVIL})!"
    assert EVIL in shown
    assert "](" not in shown
    # With angle brackets or a title, and several on one line.
    both = neutralize(f'[a](<{EVIL}>) and [b]({EVIL} "Your bank")')
    assert "](" not in both
    assert both.count(EVIL) == 2


@pytest.mark.parametrize("control", sorted(BIDI_CONTROLS))
def test_every_bidi_control_is_dropped(control: str) -> None:
    assert neutralize(f"a{control}b") == "ab"


def test_a_control_hidden_in_a_masked_link_does_not_leave_a_link_behind() -> None:
    assert neutralize(f"[x]\u2066({EVIL})") == f"[x] ({EVIL})"
    assert neutralize(OVERRIDE) == "invoice_txt.exe"


@pytest.mark.parametrize(
    "text",
    [
        "**Urgent**: the _checkout_ fails, see `cart[0]` and <https://status.example>",
        "> quoted\n- a list\n```py\nprint('hi')\n```",
        "Thanks! 🙏🏽 👨‍👩‍👧 ✅",  # ZWJ sequences are not bidi controls
        "مرحبا، لا أستطيع الدفع",  # Arabic
        "שלום, התשלום נכשל",  # Hebrew
        "Commande n° 4412 — ça ne marche pas",
        "a [bracket] and (a parenthesis)",
    ],
)
def test_ordinary_text_markdown_emoji_and_rtl_scripts_are_unchanged(text: str) -> None:
    assert neutralize(text) == text


@given(st.text())
def test_no_control_or_link_join_survives_and_twice_is_once(text: str) -> None:
    shown = neutralize(text)
    assert not BIDI_CONTROLS & set(shown)
    assert "](" not in shown
    assert neutralize(shown) == shown
    # Only the controls go and a space comes between "]" and "(": nothing else changes.
    kept = "".join(c for c in text if c not in BIDI_CONTROLS)
    assert shown == kept.replace("](", "] (")


# Ticket #7, whose subject and body carry the hostile text.
ticket = functools.partial(
    support.ticket,
    id=1,
    number=7,
    customer_id="111",
    subject=f"Refund {MASKED}",
    body=f"Open {OVERRIDE} or {MASKED}",
)


def assert_neutral(rendered: str) -> None:
    assert EVIL in rendered
    assert "](" not in rendered
    assert not BIDI_CONTROLS & set(rendered)


def test_the_ops_post_shows_every_link_and_no_bidi_control() -> None:
    payload = {"note": f"see {MASKED}", "nested": {"who": "\u202eevil"}, "body": "\u2067x"}
    post = ops_post(ticket(), GuildSettings(), f"Rule {MASKED}", payload=payload)
    rendered = json.dumps(post.body(), ensure_ascii=False)
    assert_neutral(rendered)
    assert post.embed.title == f"Escalated: Refund [click here] ({EVIL})"
    # A Discord ticket's own body, when no event payload stands in for it.
    plain = ops_post(ticket(), GuildSettings(), "r")
    assert plain.embed.description == f"Open invoice_txt.exe or [click here] ({EVIL})"


def test_a_template_field_shows_the_link_too() -> None:
    settings = GuildSettings.model_validate({"embed": {"fields": {"Note": "$event.note"}}})
    post = ops_post(ticket(), settings, "r", payload={"note": MASKED})
    assert_neutral(json.dumps(post.body(), ensure_ascii=False))


def test_the_summary_of_a_burst_shows_the_links() -> None:
    spec = summary([ticket(), ticket(id=2, number=8, subject=f"\u202e{MASKED}")])
    assert_neutral(json.dumps(spec.to_dict(), ensure_ascii=False))


def test_the_ticket_card_and_info_show_the_links() -> None:
    card = render.ticket_card(ticket(), None).to_dict()
    assert_neutral(json.dumps(card, ensure_ascii=False))
    assert card["title"] == f"Ticket #7: Refund [click here] ({EVIL})"
    info = render.info(ticket(subject=OVERRIDE), None, []).to_dict()
    assert info["title"] == "Ticket #7: invoice_txt.exe"


def test_the_answer_list_shows_links_and_no_bidi_control() -> None:
    answers = [SavedAnswer(3, ("refund",), f"See \u202e{MASKED}")]
    assert render.answer_lines(answers) == [f"3: refund -> See [click here] ({EVIL})"]
