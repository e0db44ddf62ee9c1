"""Discord embed limits: ``fit`` accepts anything and returns an embed Discord will take."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thothbot.core.embeds import (
    DESCRIPTION,
    FIELD_NAME,
    FIELD_VALUE,
    FIELDS,
    FOOTER,
    TITLE,
    TOTAL,
    EmbedField,
    EmbedSpec,
    cut,
    fit,
    flatten_value,
)

ELLIPSIS = "\u2026"


def assert_within_limits(spec: EmbedSpec) -> None:
    assert len(spec.title) <= TITLE
    assert len(spec.description) <= DESCRIPTION
    assert len(spec.footer) <= FOOTER
    assert len(spec.fields) <= FIELDS
    for field in spec.fields:
        assert 0 < len(field.name) <= FIELD_NAME
        assert 0 < len(field.value) <= FIELD_VALUE
        assert field.name.strip()
        assert field.value.strip()
    total = (
        len(spec.title)
        + len(spec.description)
        + len(spec.footer)
        + sum(len(f.name) + len(f.value) for f in spec.fields)
    )
    assert total == spec.total()
    assert total <= TOTAL


# -- cut -------------------------------------------------------------------------------------


def test_cut_leaves_short_text_alone() -> None:
    assert cut("hello", 5) == "hello"
    assert cut("", 5) == ""


def test_cut_adds_an_ellipsis_and_is_exactly_the_limit() -> None:
    assert cut("hello world", 5) == "hell" + ELLIPSIS
    assert cut("ab", 1) == ELLIPSIS
    assert cut("ab", 0) == ""
    assert cut("ab", -3) == ""


@given(st.text(max_size=300), st.integers(min_value=-5, max_value=300))
def test_cut_never_exceeds_the_limit(text: str, limit: int) -> None:
    result = cut(text, limit)
    assert len(result) <= max(limit, 0)
    if len(text) <= limit:
        assert result == text
    else:
        assert len(result) == max(limit, 0)
        assert text.startswith(result.removesuffix(ELLIPSIS))


# -- to_dict ---------------------------------------------------------------------------------


def test_to_dict_full() -> None:
    spec = EmbedSpec(
        title="Ticket #42",
        description="Charged twice",
        fields=(EmbedField("Status", "open", inline=True), EmbedField("Owner", "Grace")),
        footer="thothbot",
        url="https://example.com/t/42",
        color=0x5865F2,
    )
    assert spec.to_dict() == {
        "title": "Ticket #42",
        "description": "Charged twice",
        "fields": [
            {"name": "Status", "value": "open", "inline": True},
            {"name": "Owner", "value": "Grace", "inline": False},
        ],
        "footer": {"text": "thothbot"},
        "url": "https://example.com/t/42",
        "color": 0x5865F2,
    }


def test_to_dict_omits_empty_parts() -> None:
    assert EmbedSpec(title="Hi").to_dict() == {"title": "Hi", "fields": []}
    assert EmbedSpec(title="Hi", color=0).to_dict() == {"title": "Hi", "fields": [], "color": 0}


# -- fit -------------------------------------------------------------------------------------


def test_fit_keeps_what_fits() -> None:
    spec = fit(
        "Ticket #42",
        [("Status", "open"), ("Owner", "Grace")],
        description="d",
        footer="f",
        url="https://example.com",
        color=1,
    )
    assert spec == EmbedSpec(
        "Ticket #42",
        "d",
        (EmbedField("Status", "open"), EmbedField("Owner", "Grace")),
        "f",
        "https://example.com",
        1,
    )


def test_fit_accepts_embed_fields_and_keeps_inline() -> None:
    fields = [EmbedField("a", "1", inline=True), EmbedField("b", "2")]
    assert fit("t", fields).fields == tuple(fields)


def test_fit_cuts_each_part_to_its_limit() -> None:
    spec = fit(
        "t" * 300,
        [("n" * 300, "v" * 2000)],
        description="d" * 5000,
        footer="f" * 3000,
    )
    assert spec.title == "t" * (TITLE - 1) + ELLIPSIS
    assert spec.fields[0].name == "n" * (FIELD_NAME - 1) + ELLIPSIS
    assert spec.fields[0].value == "v" * (FIELD_VALUE - 1) + ELLIPSIS
    assert spec.footer == "f" * (FOOTER - 1) + ELLIPSIS
    # 256 + 1280 + 2048 leaves 2416 for the description.
    assert spec.description == "d" * 2415 + ELLIPSIS
    assert_within_limits(spec)


@pytest.mark.parametrize("blank", ["", " ", "\n\t"])
def test_fit_replaces_blank_names_and_values(blank: str) -> None:
    assert fit("t", [(blank, blank)]).fields == (EmbedField("-", "-"),)


def test_fit_folds_fields_beyond_25() -> None:
    fields = [(f"f{i}", str(i)) for i in range(30)]
    spec = fit("t", fields)
    assert len(spec.fields) == FIELDS
    assert spec.fields[:24] == tuple(EmbedField(n, v) for n, v in fields[:24])
    assert spec.fields[-1] == EmbedField("+6 more fields", "f24, f25, f26, f27, f28, f29")


def test_fit_keeps_exactly_25_fields() -> None:
    fields = [(f"f{i}", str(i)) for i in range(25)]
    assert len(fit("t", fields).fields) == 25
    assert fit("t", fields).fields[-1] == EmbedField("f24", "24")


def test_fit_overflow_line_names_one_field() -> None:
    spec = fit("t", [("big", "x" * 1000)] * 5 + [("last", "x" * 1000)], description="")
    assert spec.fields[-1] == EmbedField("+1 more field", "last")
    assert_within_limits(spec)


def test_fit_overflow_value_is_cut() -> None:
    fields = [("n" * 200, "v")] * 40
    spec = fit("t", fields)
    assert len(spec.fields[-1].value) <= FIELD_VALUE
    assert spec.fields[-1].value.endswith(ELLIPSIS)
    assert_within_limits(spec)


def test_fit_shortens_description_before_dropping_fields() -> None:
    fields = [(f"f{i}", "x" * 1000) for i in range(5)]  # 5010
    spec = fit("t", fields, description="d" * 4000)
    assert spec.fields == tuple(EmbedField(n, v) for n, v in fields)
    assert spec.description == "d" * (TOTAL - 1 - 5010 - 1) + ELLIPSIS
    assert spec.total() == TOTAL


def test_fit_drops_fields_from_the_end_when_the_description_is_not_enough() -> None:
    fields = [(f"f{i}", "x" * 1000) for i in range(8)]  # 8 * 1002
    spec = fit("t" * 256, fields, description="d" * 100, footer="f" * 2048)
    names = [f.name for f in spec.fields]
    assert names[:-1] == ["f0", "f1", "f2"]
    assert spec.fields[-1] == EmbedField("+5 more fields", "f3, f4, f5, f6, f7")
    assert_within_limits(spec)


def test_fit_counts_dropped_fields_with_folded_ones() -> None:
    fields = [(f"f{i}", "x" * 1000) for i in range(30)]
    spec = fit("t", fields)
    kept = len(spec.fields) - 1
    assert spec.fields[-1].name == f"+{30 - kept} more fields"
    assert spec.fields[-1].value == ", ".join(f"f{i}" for i in range(kept, 30))
    assert_within_limits(spec)


# -- properties ------------------------------------------------------------------------------

long_text = st.text(max_size=5000)
field_lists = st.lists(
    st.tuples(long_text, long_text) | st.builds(EmbedField, long_text, long_text, st.booleans()),
    max_size=60,
)


@settings(deadline=None, max_examples=150)
@given(
    title=long_text,
    fields=field_lists,
    description=long_text,
    footer=long_text,
    color=st.none() | st.integers(min_value=0, max_value=0xFFFFFF),
)
def test_fit_always_within_limits(
    title: str,
    fields: list[tuple[str, str] | EmbedField],
    description: str,
    footer: str,
    color: int | None,
) -> None:
    spec = fit(title, fields, description=description, footer=footer, color=color)  # type: ignore[arg-type]
    assert_within_limits(spec)
    assert spec.color == color


short_text = st.text(min_size=1, max_size=200).filter(str.strip)


@settings(deadline=None, max_examples=150)
@given(
    title=st.text(max_size=TITLE),
    fields=st.lists(st.builds(EmbedField, short_text, short_text, st.booleans()), max_size=25),
    description=st.text(max_size=DESCRIPTION),
    footer=st.text(max_size=FOOTER),
)
def test_fit_is_identity_when_nothing_needs_cutting(
    title: str, fields: list[EmbedField], description: str, footer: str
) -> None:
    expected = EmbedSpec(title, description, tuple(fields), footer, "https://example.com", 7)
    if expected.total() > TOTAL:
        return
    spec = fit(title, fields, description=description, footer=footer, url=expected.url, color=7)
    assert spec == expected


# -- flatten_value ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (None, "-"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (1.5, "1.5"),
        ([1, "a", None], '[1,"a",null]'),
        ({"k": "caf\u00e9", "n": [1, 2]}, '{"k":"caf\u00e9","n":[1,2]}'),
        ({}, "{}"),
    ],
)
def test_flatten_value(value: Any, expected: str) -> None:
    assert flatten_value(value) == expected
