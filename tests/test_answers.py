"""Saved answers: which trigger phrases and texts are accepted, which answer a message gets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import ticket
from thothbot.core.answers import (
    MAX_TEXT,
    MAX_TRIGGER,
    MAX_TRIGGERS,
    SavedAnswer,
    answer_for,
    check_text,
    matching_answers,
    parse_triggers,
)
from thothbot.core.errors import DomainError
from thothbot.core.models import AuthorKind

REFUND = SavedAnswer(1, ("refund",), "Refunds take 5 days.")
PASSWORD = SavedAnswer(2, ("password", "log in"), "Use the reset link.")
STREET = SavedAnswer(3, ("straße",), "We ship to every street.")


nothing_sent: tuple[int, ...] = ()


# parse_triggers


def test_triggers_are_split_on_commas_and_stripped() -> None:
    assert parse_triggers(" refund ,money back,  charged twice ") == (
        "refund",
        "money back",
        "charged twice",
    )


def test_empty_pieces_and_duplicates_are_dropped_keeping_the_first_order() -> None:
    assert parse_triggers("refund,, ,money,refund, money ,") == ("refund", "money")


@pytest.mark.parametrize("raw", ["", "   ", ",", " , ,, "])
def test_no_phrase_at_all_is_refused_in_plain_words(raw: str) -> None:
    with pytest.raises(DomainError) as caught:
        parse_triggers(raw)
    assert str(caught.value) == (
        "An answer needs at least one trigger phrase (separate them with commas)."
    )


def test_at_most_ten_distinct_phrases() -> None:
    ten = [f"phrase {i}" for i in range(MAX_TRIGGERS)]
    assert len(parse_triggers(",".join(ten))) == MAX_TRIGGERS
    # Duplicates do not count against the limit.
    assert len(parse_triggers(",".join([*ten, "phrase 0"]))) == MAX_TRIGGERS
    with pytest.raises(DomainError, match="at most 10 trigger phrases"):
        parse_triggers(",".join([*ten, "phrase 10"]))


def test_a_phrase_longer_than_100_characters_is_refused() -> None:
    assert parse_triggers("a" * MAX_TRIGGER) == ("a" * MAX_TRIGGER,)
    with pytest.raises(DomainError, match="is 101 characters; the limit is 100"):
        parse_triggers("ok, " + "b" * (MAX_TRIGGER + 1))


@settings(deadline=None, max_examples=100)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=","), max_size=12)))
def test_parsed_triggers_are_stripped_distinct_and_non_empty(pieces: list[str]) -> None:
    # Matching ignores case, so phrases that differ only in case are one phrase.
    kept = {p.strip().casefold() for p in pieces if p.strip()}
    try:
        parsed = parse_triggers(",".join(pieces))
    except DomainError:
        assert not kept or len(kept) > MAX_TRIGGERS
        return
    assert parsed
    assert len({p.casefold() for p in parsed}) == len(parsed)
    assert all(p == p.strip() and p for p in parsed)
    assert {p.casefold() for p in parsed} == kept


def test_phrases_that_differ_only_in_case_are_one() -> None:
    assert parse_triggers("Refund, refund ,REFUND, billing") == ("Refund", "billing")


# check_text


def test_answer_text_is_stripped() -> None:
    assert check_text("  Refunds take 5 days.\n") == "Refunds take 5 days."


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_empty_answer_text_is_refused(text: str) -> None:
    with pytest.raises(DomainError, match="needs some text"):
        check_text(text)


def test_answer_text_fits_one_discord_message() -> None:
    assert check_text("x" * MAX_TEXT) == "x" * MAX_TEXT
    assert check_text(" " + "x" * MAX_TEXT + " ") == "x" * MAX_TEXT
    with pytest.raises(DomainError, match="at most 2000 characters \\(it is 2001\\)"):
        check_text("x" * (MAX_TEXT + 1))


# answer_for


def test_a_customer_message_containing_a_trigger_gets_its_answer() -> None:
    found = answer_for(
        ticket(), AuthorKind.CUSTOMER, "I want a REFUND now", [REFUND, PASSWORD], nothing_sent
    )
    assert found == REFUND


def test_any_of_an_answers_phrases_matches_as_a_substring() -> None:
    found = answer_for(ticket(), AuthorKind.CUSTOMER, "I cannot LOG IN!", [PASSWORD], nothing_sent)
    assert found == PASSWORD
    refunds = answer_for(ticket(), AuthorKind.CUSTOMER, "refunds?", [REFUND], nothing_sent)
    assert refunds == REFUND


@pytest.mark.parametrize("content", ["Which STRASSE?", "die Straße", "DIE STRASSE"])
def test_matching_folds_non_ascii_case(content: str) -> None:
    assert answer_for(ticket(), AuthorKind.CUSTOMER, content, [STREET], nothing_sent) == STREET


def test_an_uppercase_non_ascii_trigger_matches_the_lowercase_message() -> None:
    upper = SavedAnswer(9, ("STRASSE",), "Street!")
    found = answer_for(ticket(), AuthorKind.CUSTOMER, "in der straße", [upper], nothing_sent)
    assert found == upper


@pytest.mark.parametrize("kind", [AuthorKind.STAFF, AuthorKind.BOT])
def test_only_customer_messages_get_answers(kind: AuthorKind) -> None:
    assert answer_for(ticket(), kind, "refund please", [REFUND], nothing_sent) is None


def test_no_answer_while_bot_replies_are_paused() -> None:
    paused = ticket(replies_paused=True)
    assert answer_for(paused, AuthorKind.CUSTOMER, "refund", [REFUND], nothing_sent) is None


def test_no_answer_without_saved_answers() -> None:
    assert answer_for(ticket(), AuthorKind.CUSTOMER, "refund", [], nothing_sent) is None


def test_nothing_matches_so_the_shell_need_not_read_what_was_sent() -> None:
    assert matching_answers(ticket(), AuthorKind.CUSTOMER, "hello there", [REFUND, PASSWORD]) == []
    # Positive control: a matching message lists its answers, in order.
    both = "refund my password"
    assert matching_answers(ticket(), AuthorKind.CUSTOMER, both, [REFUND, PASSWORD]) == [
        REFUND,
        PASSWORD,
    ]


def test_answers_the_ticket_already_had_are_skipped() -> None:
    both = "refund, and my password is lost"
    found = answer_for(ticket(), AuthorKind.CUSTOMER, both, [REFUND, PASSWORD], [1])
    assert found == PASSWORD
    assert answer_for(ticket(), AuthorKind.CUSTOMER, both, [REFUND, PASSWORD], [1, 2]) is (None)


def test_the_first_matching_answer_in_order_wins() -> None:
    also_refund = SavedAnswer(7, ("money back", "refund"), "Another text.")
    content = "refund or money back"
    assert answer_for(
        ticket(), AuthorKind.CUSTOMER, content, [REFUND, also_refund], nothing_sent
    ) == (REFUND)
    assert answer_for(
        ticket(), AuthorKind.CUSTOMER, content, [also_refund, REFUND], nothing_sent
    ) == (also_refund)
