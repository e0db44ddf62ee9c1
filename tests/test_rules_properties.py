"""Properties of rule validation over random input: it never raises and its output is stable."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from thothbot.core.models import ActionType, Trigger
from thothbot.core.rules import (
    MAX_RULES,
    Severity,
    Validation,
    normalize_rules,
    validate_and_normalize,
)

KEY_ORDER = ["id", "enabled", "name", "trigger", "match", "ticketTypeId", "actions"]
FEW = settings(deadline=None, max_examples=50)

# Any JSON value, floats included (NaN too: normalize_rules must cope with what Python holds).
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Small wrong values for rule keys; their objects may hide "id" keys too.
wrong = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from(["id", "type", "tag"]) | st.text(max_size=4), inner)
    ),
    max_leaves=3,
)


def mostly(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``valid`` three times in four, else ``invalid``."""
    return st.integers(0, 3).flatmap(lambda roll: valid if roll else invalid)


def shuffled(rule: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``rule`` with its keys in any order."""
    return st.permutations(list(rule.items())).map(dict)


TRIGGERS = [t.value for t in Trigger]
good_ids = st.sampled_from(["a", "b", "A", "billing-escalate", "rule-00000000"]) | st.text(
    "abAB01_-", min_size=1, max_size=64
)
ids = mostly(good_ids | st.sampled_from(["", None]), st.text(max_size=70) | wrong)
enabled = mostly(st.booleans(), st.sampled_from([0, 1, None, "true"]))
names = mostly(st.text(max_size=85) | st.none(), wrong)
triggers = mostly(
    st.sampled_from(TRIGGERS), st.sampled_from(["TICKET_OPENED", " sla_breach"]) | wrong
)
matches = mostly(st.text(min_size=1, max_size=205), wrong)
type_ids = mostly(st.text(min_size=1, max_size=66) | st.none(), wrong)
tags = mostly(st.text(max_size=44), wrong)
actions = mostly(
    st.fixed_dictionaries(
        {"type": st.sampled_from([a.value for a in ActionType])},
        optional={"tag": tags, "note": wrong},
    ),
    st.fixed_dictionaries({}, optional={"type": st.text(max_size=12) | wrong, "tag": tags}) | wrong,
)
action_lists = mostly(st.lists(actions, min_size=1, max_size=3), wrong)
# Near-valid rules with the real keys, in any order: most keys valid, some not.
rule_like = st.fixed_dictionaries(
    {"trigger": triggers, "actions": action_lists},
    optional={
        "id": ids,
        "enabled": enabled,
        "name": names,
        "match": matches,
        "ticketTypeId": type_ids,
        "priority": wrong,
    },
).flatmap(shuffled)
# Valid rules, cheap enough to fill arrays past the limit of 25.
valid_rules = st.fixed_dictionaries(
    {"trigger": st.sampled_from(TRIGGERS), "match": st.sampled_from(["refund", " x "])},
    optional={"id": st.integers(0, 99).map(lambda n: f"r{n}"), "enabled": st.booleans()},
).map(lambda rule: {**rule, "actions": [{"type": "escalate"}]})
few_rules = st.lists(rule_like | wrong, max_size=6)
many_rules = st.tuples(st.lists(valid_rules, min_size=23, max_size=30), few_rules).flatmap(
    lambda parts: st.permutations(parts[0] + parts[1])
)
rule_arrays = few_rules | many_rules
anything = rule_arrays | json_values


def without_id(element: object) -> object:
    """``element`` without its ``id`` key, when it is an object."""
    if isinstance(element, dict):
        return {key: value for key, value in element.items() if key != "id"}
    return element


def id_strings(value: object) -> set[str]:
    """Every string held by an ``id`` key anywhere in ``value``."""
    if isinstance(value, list):
        return set().union(*map(id_strings, value))
    if isinstance(value, dict):
        own = {value["id"]} if isinstance(value.get("id"), str) else set()
        return own.union(*map(id_strings, value.values()))
    return set()


def has_non_finite(value: object) -> bool:
    """Whether ``value`` holds a NaN or an infinity, which JSON text cannot."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(map(has_non_finite, value))
    if isinstance(value, dict):
        return any(map(has_non_finite, value.values()))
    return False


def assert_well_formed(result: Validation) -> None:
    """The invariants every result keeps, refused or not."""
    assert len(result.document) <= MAX_RULES
    assert all(p.message.strip() and p.message.endswith(".") for p in result.problems)
    if result.refused:
        assert result.document == []
        assert [(p.path, p.severity) for p in result.problems] == [("", Severity.REFUSED)]
        return
    rule_ids = [rule["id"] for rule in result.document]
    assert len(set(rule_ids)) == len(rule_ids)
    for rule in result.document:
        assert list(rule) == [key for key in KEY_ORDER if key in rule]
        assert isinstance(rule["enabled"], bool)
        assert rule["actions"]


def assert_stable(result: Validation) -> None:
    """The output normalizes to itself, as a whole, rule by rule, and through JSON text."""
    assert normalize_rules(result.document) == Validation(result.rules, [])
    for rule, typed in zip(result.document, result.rules, strict=True):
        assert normalize_rules([rule]) == Validation([typed], [])
    exported = json.dumps(result.document, ensure_ascii=False)
    assert validate_and_normalize(exported) == Validation(result.rules, [])


# Generating rule arrays costs far more than checking them, so each test checks all it can.


@settings(deadline=None, max_examples=100)
@given(anything)
def test_normalize_rules_never_raises_and_is_stable(value: object) -> None:
    result = normalize_rules(value)
    assert_well_formed(result)
    assert_stable(result)
    assert normalize_rules(value) == result  # deterministic
    if has_non_finite(value):
        return
    # As JSON text (far below the size limit here) it gives the same result, escaped or not.
    text = json.dumps(value, ensure_ascii=False)
    for raw in (text, json.dumps(value), b"\xef\xbb\xbf" + text.encode()):
        assert validate_and_normalize(raw) == result
    # A lone surrogate anywhere refuses the whole input.
    assert validate_and_normalize(json.dumps([value, "\udc00"])).refused


@FEW
@given(rule_arrays)
def test_assigned_ids_avoid_every_id_in_the_input(value: list[Any]) -> None:
    # Without ids every kept rule gets an assigned one; dropped rules appended afterwards that
    # hold exactly those ids change no index and no rule's JSON, so each must be avoided.
    bare = [without_id(element) for element in value]
    first = [rule["id"] for rule in normalize_rules(bare).document]
    crowded = bare + [{"id": rule_id, "trigger": "nope", "actions": []} for rule_id in first]
    result = normalize_rules(crowded)
    assigned = [rule["id"] for rule in result.document]
    assert len(assigned) == len(first)
    assert not set(assigned) & id_strings(crowded)
    assert len(set(assigned)) == len(assigned)


@settings(deadline=None, max_examples=300)
@given(st.text() | st.text(st.characters(categories=["L", "N", "P", "Z", "Cs"])) | st.binary())
def test_validate_and_normalize_never_raises_on_text_or_bytes(raw: str | bytes) -> None:
    result = validate_and_normalize(raw)
    assert_well_formed(result)
    assert_stable(result)


@FEW
@given(
    st.lists(rule_like | valid_rules, max_size=30).map(json.dumps),
    st.integers(0, 30),
    st.binary(max_size=3),
)
def test_validate_and_normalize_never_raises_on_damaged_json(
    text: str, at: int, noise: bytes
) -> None:
    raw = text.encode()
    damaged = raw[:at] + noise + raw[at:]
    result = validate_and_normalize(damaged)
    assert_well_formed(result)
    assert_stable(result)
