"""Ticket transcripts: plain text and HTML from plain values, user text kept inert."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from thothbot.bot.transcript import (
    TranscriptHeader,
    TranscriptMessage,
    render_html,
    render_text,
    transcript_files,
    transcript_parts,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
XSS = "<script>alert('x')</script>"


def header(**changes: object) -> TranscriptHeader:
    values: dict[str, object] = {
        "guild_name": "Acme Support",
        "channel_name": "ticket-0042",
        "ticket_number": 42,
        "subject": "Refund for order 1234",
        "customer_name": "Ada",
        "opened_at": T0,
        "closed_at": T0 + timedelta(hours=2, minutes=30),
        "closed_by": "Grace",
        "reason": "Refunded",
    }
    values.update(changes)
    return TranscriptHeader(**values)  # type: ignore[arg-type]


def msg(content: str = "", minutes: int = 4, **changes: object) -> TranscriptMessage:
    values: dict[str, object] = {
        "author_id": "1001",
        "author_name": "Ada",
        "at": T0 + timedelta(minutes=minutes),
        "content": content,
    }
    values.update(changes)
    return TranscriptMessage(**values)  # type: ignore[arg-type]


MESSAGES = [
    msg("Hi, I was charged twice.\nOrder 1234.", attachments=("receipt.png",)),
    msg(
        "Thanks, a human will be with you shortly.",
        minutes=5,
        author_id="9",
        author_name="Thoth",
        is_bot=True,
        embeds=("Ticket #42\nPriority: high",),
    ),
    msg("Refund issued.", minutes=70, author_id="2002", author_name="Grace"),
]


class Collector(HTMLParser):
    """Collects tags, attributes and text, so tests check what a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Collector:
    collector = Collector()
    collector.feed(page)
    collector.close()
    return collector


# -- plain text ------------------------------------------------------------------------------


def test_text_header_block() -> None:
    text = render_text(header(), MESSAGES)
    head = text.split("=" * 72)[0]
    assert "Transcript of #ticket-0042" in head
    assert "Server:    Acme Support" in head
    assert "Ticket:    #42: Refund for order 1234" in head
    assert "Customer:  Ada" in head
    assert "Opened:    2026-11-23 09:00 UTC" in head
    assert "Closed:    2026-11-23 11:30 UTC by Grace" in head
    assert "Reason:    Refunded" in head
    assert "Messages:  3" in head


def test_text_entries() -> None:
    text = render_text(header(), MESSAGES)
    body = text.split("=" * 72 + "\n")[1]
    assert body == (
        "[2026-11-23 09:04 UTC] Ada (1001): Hi, I was charged twice.\n"
        "    Order 1234.\n"
        "  attachment: receipt.png\n"
        "[2026-11-23 09:05 UTC] Thoth [bot] (9): Thanks, a human will be with you shortly.\n"
        "    > Ticket #42\n"
        "    > Priority: high\n"
        "[2026-11-23 10:10 UTC] Grace (2002): Refund issued.\n"
    )


def test_text_attachment_only_message_and_blank_lines() -> None:
    text = render_text(header(), [msg("", attachments=("a.txt", "b.txt")), msg("one\n\nthree")])
    assert "[2026-11-23 09:04 UTC] Ada (1001):\n  attachment: a.txt\n  attachment: b.txt\n" in text
    assert "Ada (1001): one\n\n    three\n" in text
    assert not any(line != line.rstrip() for line in text.splitlines())


def test_text_empty_and_missing_reason() -> None:
    text = render_text(header(reason=None), [])
    assert "Reason:    -" in text
    assert "Messages:  0" in text
    assert text.endswith("(no messages)\n")


def test_text_multiline_reason_hangs_under_its_label() -> None:
    text = render_text(header(reason="Duplicate\nof #41"), [])
    assert "Reason:    Duplicate\n           of #41\n" in text


def test_times_are_shown_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    text = render_text(header(), [msg("x", at=datetime(2026, 11, 23, 11, 4, tzinfo=plus_two))])
    assert "[2026-11-23 09:04 UTC]" in text
    page = render_html(header(), [msg("x", at=datetime(2026, 11, 23, 11, 4, tzinfo=plus_two))])
    assert '<time datetime="2026-11-23T09:04:00Z">2026-11-23 09:04 UTC</time>' in page


# -- HTML ------------------------------------------------------------------------------------


def test_html_is_self_contained() -> None:
    page = render_html(header(), MESSAGES)
    tags = parse(page).tags
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in tags
    assert not {"link", "img", "iframe", "object", "embed"} & set(tags)
    assert "style" in tags
    assert not re.search(r"(?i)\b(src|href)\s*=", page)
    assert "http://" not in page
    assert "https://" not in page
    assert '<meta charset="utf-8">' in page


def test_html_shows_header_and_messages() -> None:
    page = render_html(header(), MESSAGES)
    text = "".join(parse(page).text)
    for expected in (
        "Ticket #42: Refund for order 1234",
        "Acme Support",
        "Ada",
        "Grace",
        "Refunded",
        "3 messages",
        "2026-11-23 09:00 UTC",
        "2026-11-23 11:30 UTC",
        "Attachment: receipt.png",
        "Ticket #42\nPriority: high",
        "BOT",
    ):
        assert expected in text
    # Newlines survive, and the stylesheet shows them.
    assert '<div class="content">Hi, I was charged twice.\nOrder 1234.</div>' in page
    assert "white-space: pre-wrap" in page
    assert page.count('<article class="msg') == 3
    assert page.count('<article class="msg bot">') == 1


@pytest.mark.parametrize("field", ["author_name", "author_id", "content", "attachments", "embeds"])
def test_html_escapes_message_strings(field: str) -> None:
    value: object = (XSS,) if field in {"attachments", "embeds"} else XSS
    changes: dict[str, object] = {"content": "hello", field: value}
    page = render_html(header(), [msg(**changes)])  # type: ignore[arg-type]
    parsed = parse(page)
    assert "<script>" not in page
    assert "script" not in parsed.tags
    assert "&lt;script&gt;" in page
    assert XSS in "".join(parsed.text)  # shown to the reader as written


@pytest.mark.parametrize(
    "field", ["guild_name", "channel_name", "subject", "customer_name", "closed_by", "reason"]
)
def test_html_escapes_header_strings(field: str) -> None:
    page = render_html(header(**{field: XSS}), [])
    assert "<script>" not in page
    assert "script" not in parse(page).tags
    assert XSS in "".join(parse(page).text)


def test_html_quotes_cannot_break_out_of_markup() -> None:
    evil = '"><img src=x onerror=alert(1)>'
    page = render_html(header(subject=evil), [msg(evil, author_name=evil)])
    parsed = parse(page)
    assert "img" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs)


def test_html_empty_transcript() -> None:
    page = render_html(header(), [])
    text = "".join(parse(page).text)
    assert "No messages." in text
    assert "0 messages" in text
    assert "<article" not in page


def test_html_single_message_count_is_singular() -> None:
    assert "1 message<" in render_html(header(), [msg("hi")])


# -- files -----------------------------------------------------------------------------------


def test_transcript_files() -> None:
    files = transcript_files(header(), MESSAGES)
    assert [name for name, _ in files] == ["ticket-0042.html", "ticket-0042.txt"]
    html_bytes, text_bytes = files[0][1], files[1][1]
    assert html_bytes.decode("utf-8") == render_html(header(), MESSAGES)
    assert text_bytes.decode("utf-8") == render_text(header(), MESSAGES)


def test_transcript_files_are_utf8() -> None:
    files = transcript_files(header(), [msg("caf\u00e9 \u2603 \U0001f600")])
    for _, data in files:
        assert "caf\u00e9 \u2603 \U0001f600" in data.decode("utf-8")


@pytest.mark.parametrize(
    ("channel", "stem"),
    [("ticket-0042", "ticket-0042"), ("../../etc/passwd", "etc-passwd"), ("", "ticket-0042")],
)
def test_transcript_file_names_are_safe(channel: str, stem: str) -> None:
    names = [name for name, _ in transcript_files(header(channel_name=channel), [])]
    assert names == [f"{stem}.html", f"{stem}.txt"]


# -- bounded: parts within the upload limit -----------------------------------------------------


def many(count: int, size: int = 1900) -> list[TranscriptMessage]:
    return [
        msg(f"message {n} " + "x" * size, minutes=n, author_name="Ada" if n % 2 else "Grace")
        for n in range(1, count + 1)
    ]


def texts(parts: list[list[tuple[str, bytes]]]) -> list[str]:
    return [data.decode() for files in parts for name, data in files if name.endswith(".txt")]


def test_a_short_transcript_is_one_part_named_as_before() -> None:
    parts = transcript_parts(header(), MESSAGES, 10 * 1024 * 1024)
    assert parts == [transcript_files(header(), MESSAGES)]


def test_a_long_transcript_is_split_into_parts_within_the_limit() -> None:
    limit = 64 * 1024
    messages = many(60)
    parts = transcript_parts(header(), messages, limit)
    assert len(parts) > 1
    for files in parts:
        assert sum(len(data) for _, data in files) <= limit
    names = [[name for name, _ in files] for files in parts]
    assert names[1] == ["ticket-0042-part2.html", "ticket-0042-part2.txt"]
    found = [int(n) for text in texts(parts) for n in re.findall(r"\): message (\d+) ", text)]
    assert found == list(range(1, 61))  # every message once, in order
    assert f"part 2 of {len(parts)}" in texts(parts)[1]
    assert "Note:" not in "".join(texts(parts))


def test_a_transcript_too_long_for_every_part_is_cut_with_a_note() -> None:
    limit = 32 * 1024
    parts = transcript_parts(header(), many(200), limit, max_parts=3)
    assert len(parts) == 3
    for files in parts:
        assert sum(len(data) for _, data in files) <= limit
    last = texts(parts)[-1]
    kept = len(re.findall(r"\): message \d+ ", "".join(texts(parts))))
    assert 0 < kept < 200
    assert f"This transcript stops after message {kept}" in last
    html = next(data.decode() for name, data in parts[-1] if name.endswith(".html"))
    assert "This transcript stops after message" in html
    assert "stops after" not in texts(parts)[0]  # only the last part says it


def test_a_reader_that_stopped_early_is_noted() -> None:
    (files,) = transcript_parts(header(), MESSAGES, 10 * 1024 * 1024, cut=True)
    assert "This transcript stops after message 3" in files[1][1].decode()
