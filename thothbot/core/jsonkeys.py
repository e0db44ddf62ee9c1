"""JSON as people paste it: a key given twice in one object is found, with where it is.

``json.loads`` keeps the last value of a repeated key and says nothing, so a rule with two
``match`` keys silently matches only the second. ``loads`` reads the same way (the last value
is used) and also returns each repeated key with the location of its object, so the caller can
warn in its own path style.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

Location = tuple[int | str, ...]  # keys and indexes from the document's root to an object


def loads(text: str | bytes, **options: Any) -> tuple[Any, list[tuple[Location, str]]]:
    """The JSON value of ``text`` (``json.loads`` with ``options``) and its repeated keys, in
    document order: (where the object is, the key)."""
    repeated: dict[int, list[str]] = {}
    # Objects with a repeated key are kept alive until the walk, so that no other object can
    # take the id of one that a later duplicate discarded.
    keep: list[dict[str, Any]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(items)  # the last value of a key wins, as in json.loads
        if len(built) != len(items):
            repeated[id(built)] = [k for k, n in Counter(k for k, _ in items).items() if n > 1]
            keep.append(built)
        return built

    value = json.loads(text, object_pairs_hook=pairs, **options)
    if not repeated:
        return value, []
    return value, _locate(value, repeated)


def _locate(value: Any, repeated: dict[int, list[str]]) -> list[tuple[Location, str]]:
    found: list[tuple[Location, str]] = []
    stack: list[tuple[Any, Location]] = [(value, ())]
    while stack:
        node, where = stack.pop()
        children: list[tuple[Any, Location]]
        if isinstance(node, dict):
            found.extend((where, key) for key in repeated.get(id(node), ()))
            children = [(child, (*where, key)) for key, child in node.items()]
        elif isinstance(node, list):
            children = [(child, (*where, index)) for index, child in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))  # document order
    return found


def message(key: str) -> str:
    """The warning for a repeated key."""
    return f"Duplicate key {json.dumps(key, ensure_ascii=False)}: the last value is used."
