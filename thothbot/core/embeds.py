"""Discord embed limits, applied to plain data so that a send never fails on size.

``fit`` never rejects its input: it cuts every part to its own limit, folds fields beyond the
25th into one "+N more fields" line, and when the 6000-character total is still exceeded it
gives up description text first, then fields from the end. Input that is already within every
limit comes back unchanged. Lengths are counted in code points, as Python's ``len`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TITLE, DESCRIPTION, FIELDS, FIELD_NAME, FIELD_VALUE, FOOTER, TOTAL = (
    256, 4096, 25, 256, 1024, 2048, 6000,
)  # fmt: skip

ELLIPSIS = "\u2026"
# Discord refuses empty (or blank) field names and values.
PLACEHOLDER = "-"


@dataclass(frozen=True, slots=True)
class EmbedField:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True, slots=True)
class EmbedSpec:
    title: str
    description: str = ""
    fields: tuple[EmbedField, ...] = ()
    footer: str = ""
    url: str | None = None
    color: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Discord's JSON shape for an embed, without the parts that are empty."""
        data: dict[str, Any] = {
            "title": self.title,
            "fields": [{"name": f.name, "value": f.value, "inline": f.inline} for f in self.fields],
        }
        if self.description:
            data["description"] = self.description
        if self.footer:
            data["footer"] = {"text": self.footer}
        if self.url is not None:
            data["url"] = self.url
        if self.color is not None:
            data["color"] = self.color
        return data

    def total(self) -> int:
        """Characters counted against Discord's 6000 limit (this spec has no author)."""
        return len(self.title) + len(self.description) + len(self.footer) + _fields_len(self.fields)


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus an ellipsis, exactly
    ``limit`` long. Never longer than ``limit`` (a limit of 0 or less gives "")."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1] + ELLIPSIS


def flatten_value(value: Any) -> str:
    """A JSON payload value as field text: strings as they are, None as "-", the rest as
    compact JSON."""
    if value is None:
        return PLACEHOLDER
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def fit(
    title: str,
    fields: Sequence[tuple[str, str]] | Sequence[EmbedField],
    *,
    description: str = "",
    footer: str = "",
    url: str | None = None,
    color: int | None = None,
) -> EmbedSpec:
    """An embed within all of Discord's limits, built from anything."""
    title = cut(title, TITLE)
    footer = cut(footer, FOOTER)
    description = cut(description, DESCRIPTION)
    normalized = [_field(f) for f in fields]

    if len(normalized) > FIELDS:
        kept, omitted = normalized[: FIELDS - 1], normalized[FIELDS - 1 :]
    else:
        kept, omitted = normalized, []

    fixed = len(title) + len(footer)
    shown = _with_overflow(kept, omitted)
    # Fields take precedence over the description: drop fields only when even an empty
    # description would not make the total fit. Title and footer (at most 2304) plus the
    # overflow line (at most ~1040) always fit, so this ends.
    while kept and fixed + _fields_len(shown) > TOTAL:
        omitted.insert(0, kept.pop())
        shown = _with_overflow(kept, omitted)
    description = cut(description, TOTAL - fixed - _fields_len(shown))

    return EmbedSpec(
        title=title,
        description=description,
        fields=tuple(shown),
        footer=footer,
        url=url,
        color=color,
    )


def _field(field: tuple[str, str] | EmbedField) -> EmbedField:
    if isinstance(field, EmbedField):
        name, value, inline = field.name, field.value, field.inline
    else:
        name, value = field
        inline = False
    return EmbedField(_part(name, FIELD_NAME), _part(value, FIELD_VALUE), inline)


def _part(text: str, limit: int) -> str:
    return cut(text, limit) if text.strip() else PLACEHOLDER


def _with_overflow(kept: list[EmbedField], omitted: list[EmbedField]) -> list[EmbedField]:
    if not omitted:
        return list(kept)
    count = len(omitted)
    name = f"+{count} more field{'' if count == 1 else 's'}"
    value = _part(", ".join(f.name for f in omitted), FIELD_VALUE)
    return [*kept, EmbedField(name, value)]


def _fields_len(fields: Sequence[EmbedField]) -> int:
    return sum(len(f.name) + len(f.value) for f in fields)
