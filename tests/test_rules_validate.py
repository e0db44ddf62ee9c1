"""Example-based tests of automation rule validation: one test per clause of the contract."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from thothbot.core.models import ActionType, Trigger
from thothbot.core.rules import (
    MAX_INPUT_BYTES,
    MAX_RULES,
    Problem,
    Severity,
    Validation,
    normalize_rules,
    validate_and_normalize,
)

DROPPED_RULE = Severity.DROPPED_RULE
DROPPED_ACTION = Severity.DROPPED_ACTION
WARNING = Severity.WARNING
REFUSED = Severity.REFUSED

OMIT = object()  # passed to ``rule`` to leave a key out
ASSIGNED_ID = re.compile(r"rule-[0-9a-f]{8}")

# The example from the product page (Settings → Automation), verbatim.
PRODUCT_PAGE_EXAMPLE = """[
  {
    "id": "billing-escalate",
    "enabled": true,
    "name": "Escalate billing keywords",
    "trigger": "message_contains",
    "match": "refund",
    "ticketTypeId": "billing",
    "actions": [
      { "type": "add_tag", "tag": "refund" },
      { "type": "escalate" }
    ]
  },
  {
    "id": "assign-on-open",
    "enabled": true,
    "name": "Assign new tickets",
    "trigger": "ticket_opened",
    "actions": [{ "type": "assign_round_robin" }]
  }
]"""


def rule(**keys: object) -> dict[str, Any]:
    """A valid rule with ``keys`` set, or removed when given ``OMIT``."""
    base: dict[str, Any] = {
        "id": "r1",
        "trigger": "ticket_opened",
        "actions": [{"type": "escalate"}],
    }
    base.update(keys)
    return {key: value for key, value in base.items() if value is not OMIT}


def assert_sentence(problem: Problem) -> None:
    """One plain sentence that does not repeat its path."""
    message = problem.message
    assert message == message.strip()
    assert "\n" not in message
    assert message[0].isupper() or message[0] == '"', message
    assert message.endswith("."), message
    assert re.search(r"[.!?] [A-Z]", message) is None, f"more than one sentence: {message}"
    if problem.path:
        assert problem.path not in message


def found(result: Validation) -> list[tuple[str, Severity]]:
    """The (path, severity) of every problem, after checking that each message is a sentence."""
    for problem in result.problems:
        assert_sentence(problem)
    return [(p.path, p.severity) for p in result.problems]


def only(result: Validation) -> Problem:
    """The single problem of ``result``."""
    assert len(result.problems) == 1, result.problems
    assert_sentence(result.problems[0])
    return result.problems[0]


def assert_refused(result: Validation) -> str:
    """``result`` refuses the input with one problem; returns its message."""
    problem = only(result)
    assert (problem.path, problem.severity) == ("", REFUSED)
    assert result.document == []
    assert result.refused
    return problem.message


def expected_id(index: int, element: object, attempt: int = 0) -> str:
    """The documented id recipe: sha256 over index, canonical JSON and attempt counter."""
    canonical = json.dumps(element, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    seed = f"{index}\0{canonical}\0{attempt}".encode()
    return "rule-" + hashlib.sha256(seed).hexdigest()[:8]


# Refusing the input as a whole.


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ('{"id": "a"}', "a JSON object"),
        ('"rules"', "a JSON string"),
        ("25", "a JSON number"),
        ("true", "a JSON boolean"),
        ("null", "JSON null"),
    ],
)
def test_input_that_is_not_an_array_is_refused(raw: str, kind: str) -> None:
    message = assert_refused(validate_and_normalize(raw))
    assert message == (
        f"The rules must be a JSON array of rule objects ([{{...}}, ...]), but this is {kind}."
    )


def test_invalid_json_is_refused_with_line_and_column() -> None:
    raw = '[\n  {"a": 1}\n    {"b": 2}\n]'
    message = assert_refused(validate_and_normalize(raw))
    assert message == "The rules are not valid JSON: line 3, column 5: Expecting ',' delimiter."


@pytest.mark.parametrize("raw", ["", "   \n\t", "\ufeff", b"", b"\xef\xbb\xbf  "])
def test_empty_input_is_refused(raw: str | bytes) -> None:
    assert "empty" in assert_refused(validate_and_normalize(raw))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    raw = f'[{{"id": "a", "trigger": "ticket_opened", "priority": {constant}}}]'
    message = assert_refused(validate_and_normalize(raw))
    assert message.startswith("The rules are not valid JSON")


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff[]",
        b'[{"name": "caf\xe9"}]',  # Latin-1
        "[]".encode("utf-16"),
        b'["\xed\xa0\x80"]',  # a surrogate encoded as if it were a character (CESU-8)
    ],
)
def test_bytes_that_are_not_utf8_are_refused(raw: bytes) -> None:
    assert "UTF-8" in assert_refused(validate_and_normalize(raw))


@pytest.mark.parametrize(
    "raw",
    [
        r'["\ud800"]',
        r'[{"id": "a", "name": "ok \udfff", "trigger": "ticket_opened"}]',
        r'[{"\uDBFF": 1}]',  # in a key, upper-case escape
        r'["\ude00\ud83d"]',  # a pair in the wrong order is two lone surrogates
    ],
)
def test_lone_surrogate_escapes_are_refused(raw: str) -> None:
    assert "surrogate" in assert_refused(validate_and_normalize(raw))
    assert "surrogate" in assert_refused(validate_and_normalize(raw.encode()))


def test_lone_surrogates_in_text_are_refused() -> None:
    assert "surrogate" in assert_refused(validate_and_normalize('["\ud800"]'))


def test_lone_surrogates_in_parsed_values_are_refused() -> None:
    assert "surrogate" in assert_refused(normalize_rules([rule(name="\ud800")]))


def test_escaped_surrogate_pairs_are_fine() -> None:
    raw = r'[{"id": "a", "name": "\ud83c\udfab Tickets", "trigger": "ticket_opened",'
    raw += r' "actions": [{"type": "escalate"}]}]'
    result = validate_and_normalize(raw)
    assert result.problems == []
    assert result.document[0]["name"] == "🎫 Tickets"


def test_absurdly_deep_nesting_is_refused() -> None:
    depth = 100_000
    message = assert_refused(validate_and_normalize("[" * depth + "]" * depth))
    assert "nested too deeply" in message


def test_absurdly_deep_parsed_values_do_not_raise() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    result = normalize_rules([deep, rule(id=OMIT, extra=deep)])
    assert found(result) == [("[0]", DROPPED_RULE), ("[1].extra", WARNING)]
    assert ASSIGNED_ID.fullmatch(result.document[0]["id"])


def test_numbers_with_too_many_digits_are_refused() -> None:
    assert "too many digits" in assert_refused(validate_and_normalize("[" + "9" * 5000 + "]"))


@pytest.mark.parametrize(
    "value",
    [(rule(),), [rule(), {1, 2}], [{**rule(), 1: "one"}], [rule(actions=[(1, 2)])]],
)
def test_parsed_values_that_are_not_json_are_refused(value: object) -> None:
    assert_refused(normalize_rules(value))


def test_input_of_exactly_the_size_limit_is_accepted() -> None:
    raw = "[" + " " * (MAX_INPUT_BYTES - 2) + "]"
    assert validate_and_normalize(raw) == Validation([], [])
    assert validate_and_normalize(raw.encode()) == Validation([], [])


def test_input_one_byte_over_the_size_limit_is_refused() -> None:
    raw = "[" + " " * (MAX_INPUT_BYTES - 1) + "]"
    expected = "The rules are 257 KiB; the limit is 256 KiB."
    assert assert_refused(validate_and_normalize(raw)) == expected
    assert assert_refused(validate_and_normalize(raw.encode())) == expected


def test_input_size_is_measured_in_utf8_bytes() -> None:
    room = MAX_INPUT_BYTES - len('[{"name":""}]')
    name = "é" * (room // 2) + "a" * (room % 2)  # 2 bytes per character, nearly
    at_limit, over_limit = (f'[{{"name":"{text}"}}]' for text in (name, name + "a"))
    assert len(at_limit.encode()) == MAX_INPUT_BYTES > len(at_limit)
    assert len(over_limit.encode()) == MAX_INPUT_BYTES + 1
    assert not validate_and_normalize(at_limit).refused
    assert "limit is 256 KiB" in assert_refused(validate_and_normalize(over_limit))


def test_size_limit_message() -> None:
    message = assert_refused(validate_and_normalize(b" " * (300 * 1024)))
    assert message == "The rules are 300 KiB; the limit is 256 KiB."


def test_a_bom_is_accepted_and_stripped() -> None:
    expected = validate_and_normalize(PRODUCT_PAGE_EXAMPLE)
    assert validate_and_normalize("\ufeff" + PRODUCT_PAGE_EXAMPLE) == expected
    assert validate_and_normalize(b"\xef\xbb\xbf" + PRODUCT_PAGE_EXAMPLE.encode()) == expected


def test_bytes_input_is_read_as_utf8() -> None:
    raw = json.dumps([rule(name="Café ☕")], ensure_ascii=False)
    assert validate_and_normalize(raw.encode()) == validate_and_normalize(raw)
    assert validate_and_normalize(raw.encode()).document[0]["name"] == "Café ☕"


def test_input_that_is_not_text_is_refused() -> None:
    assert_refused(validate_and_normalize(None))  # type: ignore[arg-type]


# The product page's example and the normalized form.


def test_product_page_example_is_accepted_unchanged() -> None:
    result = validate_and_normalize(PRODUCT_PAGE_EXAMPLE)
    assert result.problems == []
    assert result.document == json.loads(PRODUCT_PAGE_EXAMPLE)
    assert not result.dropped
    assert not result.refused


def test_normalized_key_order() -> None:
    messy = {
        "actions": [{"tag": "refund", "type": "add_tag"}],
        "ticketTypeId": "billing",
        "match": "refund",
        "trigger": "message_contains",
        "name": "Refunds",
        "enabled": False,
        "id": "r1",
    }
    (normalized,) = normalize_rules([messy]).document
    assert list(normalized) == [
        "id",
        "enabled",
        "name",
        "trigger",
        "match",
        "ticketTypeId",
        "actions",
    ]
    assert list(normalized["actions"][0]) == ["type", "tag"]


def test_absent_optional_keys_are_omitted_and_enabled_is_always_present() -> None:
    (normalized,) = normalize_rules([rule(id="a")]).document
    assert normalized == {
        "id": "a",
        "enabled": True,
        "trigger": "ticket_opened",
        "actions": [{"type": "escalate"}],
    }


def test_normalizing_normalized_rules_changes_nothing() -> None:
    messy = [
        rule(id=OMIT, name="  Spaces  ", priority=1),
        rule(
            id="b", trigger="message_contains", match=" refund ", actions=[5, {"type": "escalate"}]
        ),
        rule(id="c", trigger="sla_breach", match="ignored", enabled=False),
        "not a rule",
    ]
    first = normalize_rules(messy)
    assert first.problems
    again = normalize_rules(first.document)
    assert again == Validation(first.rules, [])
    assert validate_and_normalize(json.dumps(first.document)) == Validation(first.rules, [])


# Elements.


@pytest.mark.parametrize("element", [1, 1.5, "rule", None, True, [], [rule()]])
def test_element_that_is_not_an_object_is_dropped(element: object) -> None:
    result = normalize_rules([rule(id="a"), element, rule(id="b")])
    assert found(result) == [("[1]", DROPPED_RULE)]
    assert [r["id"] for r in result.document] == ["a", "b"]


@pytest.mark.parametrize(
    ("key", "keeps"),
    [
        ("id", True),
        ("name", True),
        ("ticketTypeId", True),
        ("enabled", False),
        ("trigger", False),
        ("actions", False),
    ],
)
def test_null_is_missing_only_for_id_name_and_ticket_type(key: str, keeps: bool) -> None:
    result = normalize_rules([rule(**{key: None})])
    if keeps:
        assert result.problems == []
        if key == "id":
            assert ASSIGNED_ID.fullmatch(result.document[0]["id"])
        else:
            assert key not in result.document[0]
    else:
        assert found(result) == [(f"[0].{key}", DROPPED_RULE)]
        assert "null" in result.problems[0].message


def test_null_match_on_message_contains_is_a_wrong_type() -> None:
    result = normalize_rules([rule(trigger="message_contains", match=None)])
    assert found(result) == [("[0].match", DROPPED_RULE)]
    assert "null" in result.problems[0].message


# id


@pytest.mark.parametrize("rule_id", ["a", "billing-escalate", "A_b-9", "x" * 64, "rule-00000000"])
def test_valid_ids_are_kept_verbatim(rule_id: str) -> None:
    result = normalize_rules([rule(id=rule_id)])
    assert result.problems == []
    assert result.document[0]["id"] == rule_id


@pytest.mark.parametrize("missing", [OMIT, None, ""])
def test_missing_null_or_empty_id_is_assigned(missing: object) -> None:
    element = rule(id=missing)
    result = normalize_rules([element])
    assert result.problems == []
    assert ASSIGNED_ID.fullmatch(result.document[0]["id"])
    assert result.document[0]["id"] == expected_id(0, element)


@pytest.mark.parametrize(
    ("rule_id", "says"),
    [
        (7, "must be a string, but it is a number"),
        (True, "must be a string, but it is a boolean"),
        (["a"], "must be a string, but it is an array"),
        ({"a": 1}, "must be a string, but it is an object"),
        ("has space", "may only contain"),
        (" padded", "may only contain"),
        ("dot.ted", "may only contain"),
        ("ünï", "may only contain"),
        ("line\n", "may only contain"),
        ("x" * 65, '"id" is 65 characters; the limit is 64'),
    ],
)
def test_invalid_id_drops_the_rule(rule_id: object, says: str) -> None:
    result = normalize_rules([rule(id=rule_id)])
    assert found(result) == [("[0].id", DROPPED_RULE)]
    assert says in result.problems[0].message
    assert result.document == []


def test_id_used_by_an_earlier_kept_rule_drops_the_rule() -> None:
    result = normalize_rules([rule(id="a", name="first"), rule(id="a", name="second")])
    assert found(result) == [("[1].id", DROPPED_RULE)]
    assert result.problems[0].message == (
        '"id" is "a", which an earlier rule already uses, so the rule was dropped.'
    )
    assert [r["name"] for r in result.document] == ["first"]


def test_id_of_an_earlier_dropped_rule_is_free() -> None:
    result = normalize_rules([rule(id="a", trigger="nope"), rule(id="a", name="kept")])
    assert found(result) == [("[0].trigger", DROPPED_RULE)]
    assert result.document[0]["name"] == "kept"


def test_ids_are_case_sensitive() -> None:
    result = normalize_rules([rule(id="abc"), rule(id="ABC")])
    assert result.problems == []
    assert [r["id"] for r in result.document] == ["abc", "ABC"]


def test_assigned_ids_are_deterministic() -> None:
    elements = [rule(id=OMIT), rule(id=OMIT), rule(id=OMIT, name="other")]
    first = normalize_rules(elements)
    assert normalize_rules(elements) == first
    ids = [r["id"] for r in first.document]
    assert ids == [expected_id(i, element) for i, element in enumerate(elements)]
    assert len(set(ids)) == 3  # identical rules still differ by index
    assert ids[0] == "rule-9c653140"  # pinned: a change here changes every saved server


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param(lambda taken: rule(id=taken, trigger="nope"), id="dropped-rule"),
        pytest.param(lambda taken: rule(id=taken, name="holder"), id="later-kept-rule"),
        pytest.param(
            lambda taken: rule(id="x", actions=[{"type": "escalate", "id": taken}]), id="nested"
        ),
    ],
)
def test_assigned_id_avoids_every_id_in_the_input(holder: Any) -> None:
    element = rule(id=OMIT)
    taken = expected_id(0, element)
    result = normalize_rules([element, holder(taken)])
    assigned = result.document[0]["id"]
    assert assigned == expected_id(0, element, attempt=1)
    assert assigned != taken
    assert len({r["id"] for r in result.document}) == len(result.document)


# enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_enabled_booleans_are_kept_and_disabled_rules_stay(enabled: bool) -> None:
    result = normalize_rules([rule(enabled=enabled)])
    assert result.problems == []
    assert result.document[0]["enabled"] is enabled


def test_enabled_defaults_to_true() -> None:
    assert normalize_rules([rule()]).document[0]["enabled"] is True


@pytest.mark.parametrize("enabled", [1, 0, "true", None, [], 1.0])
def test_enabled_that_is_not_a_boolean_drops_the_rule(enabled: object) -> None:
    result = normalize_rules([rule(enabled=enabled)])
    assert found(result) == [("[0].enabled", DROPPED_RULE)]
    assert "true or false" in result.problems[0].message
    assert result.document == []


# name


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("  Escalate billing  ", "Escalate billing"),
        ("\tTabs\n", "Tabs"),
        ("🎫" * 80, "🎫" * 80),  # 80 code points, 320 UTF-8 bytes
        ("e\u0301" * 40, "e\u0301" * 40),  # 80 code points, 40 visible letters
        ("  " + "x" * 80 + "  ", "x" * 80),  # length counts after trimming
    ],
)
def test_name_is_trimmed_and_measured_in_code_points(name: str, stored: str) -> None:
    result = normalize_rules([rule(name=name)])
    assert result.problems == []
    assert result.document[0]["name"] == stored


@pytest.mark.parametrize("name", [OMIT, None, "", "   ", "\u3000"])
def test_blank_name_is_omitted(name: object) -> None:
    result = normalize_rules([rule(name=name)])
    assert result.problems == []
    assert "name" not in result.document[0]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("x" * 81, '"name" is 81 characters; the limit is 80'),
        ("🎫" * 81, '"name" is 81 characters; the limit is 80'),
        (42, '"name" must be a string, but it is a number'),
        (["a"], '"name" must be a string, but it is an array'),
    ],
)
def test_name_too_long_or_not_a_string_drops_the_rule(name: object, says: str) -> None:
    result = normalize_rules([rule(name=name)])
    assert found(result) == [("[0].name", DROPPED_RULE)]
    assert result.problems[0].message == f"{says}, so the rule was dropped."


# trigger


@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_trigger_is_accepted(trigger: Trigger) -> None:
    match = "refund" if trigger is Trigger.MESSAGE_CONTAINS else OMIT
    result = normalize_rules([rule(trigger=trigger.value, match=match)])
    assert result.problems == []
    assert result.document[0]["trigger"] == trigger.value
    assert type(result.document[0]["trigger"]) is str


@pytest.mark.parametrize("trigger", [OMIT, None, "TICKET_OPENED", " ticket_opened", "opened", 3])
def test_unknown_or_missing_trigger_drops_the_rule(trigger: object) -> None:
    result = normalize_rules([rule(trigger=trigger)])
    assert found(result) == [("[0].trigger", DROPPED_RULE)]
    message = result.problems[0].message
    assert all(t.value in message for t in Trigger)


# match


@pytest.mark.parametrize(
    ("match", "stored"),
    [
        ("refund", "refund"),
        ("  refund  ", "refund"),
        ("x" * 200, "x" * 200),
        ("é" * 200, "é" * 200),
    ],
)
def test_match_is_trimmed_for_message_contains(match: str, stored: str) -> None:
    result = normalize_rules([rule(trigger="message_contains", match=match)])
    assert result.problems == []
    assert result.document[0]["match"] == stored


@pytest.mark.parametrize(
    ("match", "message"),
    [
        (OMIT, '"match" is required for a message_contains rule, so the rule was dropped.'),
        (None, '"match" must be a string, but it is null, so the rule was dropped.'),
        ("", None),
        ("   ", None),
        ("x" * 201, '"match" is 201 characters; the limit is 200, so the rule was dropped.'),
        (5, '"match" must be a string, but it is a number, so the rule was dropped.'),
    ],
)
def test_bad_match_on_message_contains_drops_the_rule(match: object, message: str | None) -> None:
    result = normalize_rules([rule(trigger="message_contains", match=match)])
    assert found(result) == [("[0].match", DROPPED_RULE)]
    assert message is None or result.problems[0].message == message
    assert result.document == []


@pytest.mark.parametrize("trigger", [t for t in Trigger if t is not Trigger.MESSAGE_CONTAINS])
@pytest.mark.parametrize("match", ["refund", None, 5, ""])
def test_match_on_other_triggers_is_removed_with_a_warning(trigger: Trigger, match: object) -> None:
    result = normalize_rules([rule(trigger=trigger.value, match=match)])
    assert found(result) == [("[0].match", WARNING)]
    assert "match" not in result.document[0]
    assert not result.dropped


# ticketTypeId


@pytest.mark.parametrize("type_id", ["billing", " billing ", "x" * 64, "🎫", " "])
def test_ticket_type_id_is_kept_untrimmed(type_id: str) -> None:
    result = normalize_rules([rule(ticketTypeId=type_id)])
    assert result.problems == []
    assert result.document[0]["ticketTypeId"] == type_id


@pytest.mark.parametrize("type_id", [OMIT, None])
def test_missing_ticket_type_id_is_omitted(type_id: object) -> None:
    result = normalize_rules([rule(ticketTypeId=type_id)])
    assert result.problems == []
    assert "ticketTypeId" not in result.document[0]


@pytest.mark.parametrize("type_id", ["", "x" * 65, 7, ["billing"], False])
def test_bad_ticket_type_id_drops_the_rule(type_id: object) -> None:
    result = normalize_rules([rule(ticketTypeId=type_id)])
    assert found(result) == [("[0].ticketTypeId", DROPPED_RULE)]
    assert result.document == []


# actions


def test_actions_are_normalized() -> None:
    actions = [
        {"tag": "  refund  ", "type": "add_tag"},
        {"type": "escalate"},
        {"type": "assign_round_robin"},
        {"type": "add_tag", "tag": "x" * 40},
    ]
    result = normalize_rules([rule(actions=actions)])
    assert result.problems == []
    assert result.document[0]["actions"] == [
        {"type": "add_tag", "tag": "refund"},
        {"type": "escalate"},
        {"type": "assign_round_robin"},
        {"type": "add_tag", "tag": "x" * 40},
    ]
    assert list(result.document[0]["actions"][0]) == ["type", "tag"]


@pytest.mark.parametrize(
    ("actions", "says"),
    [
        (OMIT, "required"),
        (None, "must be an array, but it is null"),
        ([], "empty"),
        ({"type": "escalate"}, "must be an array, but it is an object"),
        ("escalate", "must be an array, but it is a string"),
    ],
)
def test_missing_or_empty_actions_drop_the_rule(actions: object, says: str) -> None:
    result = normalize_rules([rule(actions=actions)])
    assert found(result) == [("[0].actions", DROPPED_RULE)]
    assert says in result.problems[0].message


@pytest.mark.parametrize(
    ("action", "path"),
    [
        (5, "[0].actions[1]"),
        ("escalate", "[0].actions[1]"),
        ({}, "[0].actions[1]"),
        ({"type": None}, "[0].actions[1]"),
        ({"type": "close_ticket"}, "[0].actions[1]"),
        ({"type": "Escalate"}, "[0].actions[1]"),
        ({"type": "add_tag"}, "[0].actions[1].tag"),
        ({"type": "add_tag", "tag": None}, "[0].actions[1].tag"),
        ({"type": "add_tag", "tag": 5}, "[0].actions[1].tag"),
        ({"type": "add_tag", "tag": "   "}, "[0].actions[1].tag"),
        ({"type": "add_tag", "tag": "x" * 41}, "[0].actions[1].tag"),
    ],
)
def test_invalid_action_is_dropped_and_the_rule_kept(action: object, path: str) -> None:
    result = normalize_rules([rule(actions=[{"type": "escalate"}, action])])
    assert found(result) == [(path, DROPPED_ACTION)]
    assert result.problems[0].message.endswith("was dropped.")
    assert result.document[0]["actions"] == [{"type": "escalate"}]
    assert result.dropped


def test_tag_length_message() -> None:
    result = normalize_rules([rule(actions=[{"type": "add_tag", "tag": "t" * 52}, "x"])])
    assert result.problems[0].message == (
        '"tag" is 52 characters; the limit is 40, so the action was dropped.'
    )


def test_rule_with_no_valid_action_left_is_dropped() -> None:
    result = normalize_rules([rule(actions=[5, {"type": "nope"}, {"type": "add_tag"}])])
    assert found(result) == [
        ("[0].actions[0]", DROPPED_ACTION),
        ("[0].actions[1]", DROPPED_ACTION),
        ("[0].actions[2].tag", DROPPED_ACTION),
        ("[0].actions", DROPPED_RULE),
    ]
    assert result.document == []


def test_action_types_come_from_the_models() -> None:
    actions = [
        {"type": t.value, "tag": "t"} if t is ActionType.ADD_TAG else {"type": t.value}
        for t in ActionType
    ]
    result = normalize_rules([rule(actions=actions)])
    assert result.problems == []
    assert [a["type"] for a in result.document[0]["actions"]] == [t.value for t in ActionType]


# Unknown keys.


def test_unknown_rule_keys_are_removed_with_a_warning() -> None:
    element = rule(priority=1, **{"my key": 2, "Name": "x", "": 3})
    result = normalize_rules([element])
    assert found(result) == [
        ("[0].priority", WARNING),
        ('[0]["my key"]', WARNING),
        ("[0].Name", WARNING),
        ('[0][""]', WARNING),
    ]
    assert result.problems[0].message == 'Unknown key "priority" was ignored.'
    assert 'did you mean "name"' in result.problems[2].message
    assert result.document == [
        {"id": "r1", "enabled": True, "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}
    ]
    assert not result.dropped


def test_unknown_action_keys_are_removed_with_a_warning() -> None:
    actions = [
        {"type": "escalate", "tag": "vip"},
        {"type": "add_tag", "tag": "vip", "colour": "red", "2nd": True},
    ]
    result = normalize_rules([rule(actions=actions)])
    assert found(result) == [
        ("[0].actions[0].tag", WARNING),
        ("[0].actions[1].colour", WARNING),
        ('[0].actions[1]["2nd"]', WARNING),
    ]
    assert result.document[0]["actions"] == [
        {"type": "escalate"},
        {"type": "add_tag", "tag": "vip"},
    ]


# The limit of 25 rules.


def test_exactly_the_limit_is_kept() -> None:
    result = normalize_rules([rule(id=f"r{i}") for i in range(MAX_RULES)])
    assert result.problems == []
    assert len(result.document) == MAX_RULES


def test_rules_after_the_25th_kept_one_are_dropped() -> None:
    elements: list[object] = []
    for i in range(36):
        elements.append(rule(id=f"r{i}"))
        if i % 5 == 0:
            elements.append(rule(id=f"bad{i}", trigger="nope"))  # dropped, does not count
    result = normalize_rules(elements)
    assert [r["id"] for r in result.document] == [f"r{i}" for i in range(MAX_RULES)]
    over_limit = [p for p in result.problems if p.path.count(".") == 0]
    own_problems = [p for p in result.problems if p.path.endswith(".trigger")]
    assert len(over_limit) == 36 - MAX_RULES
    assert len(own_problems) == 8  # invalid rules after the limit report their own problem
    for problem in over_limit:
        assert problem.severity is DROPPED_RULE
        assert "25" in problem.message
        assert_sentence(problem)
    first_over = elements.index(rule(id=f"r{MAX_RULES}"))
    assert over_limit[0].path == f"[{first_over}]"


# Several problems.


def test_every_problem_of_a_rule_is_reported_in_key_order() -> None:
    element = {
        "zz": 1,
        "actions": [1, {"type": "add_tag", "tag": "  "}, {"type": "escalate", "tag": "x"}],
        "ticketTypeId": "",
        "match": "",
        "trigger": "nope",
        "name": 5,
        "enabled": 1,
        "id": "x y",
        "aa": 2,
    }
    result = normalize_rules([element])
    assert found(result) == [
        ("[0].id", DROPPED_RULE),
        ("[0].enabled", DROPPED_RULE),
        ("[0].name", DROPPED_RULE),
        ("[0].trigger", DROPPED_RULE),
        ("[0].match", DROPPED_RULE),
        ("[0].ticketTypeId", DROPPED_RULE),
        ("[0].actions[0]", DROPPED_ACTION),
        ("[0].actions[1].tag", DROPPED_ACTION),
        ("[0].actions[2].tag", WARNING),
        ("[0].zz", WARNING),
        ("[0].aa", WARNING),
    ]
    assert result.document == []


def test_problems_are_listed_in_rule_order() -> None:
    elements = [
        rule(id="a", extra=1),
        "x",
        rule(id="c", trigger="nope", enabled="yes"),
        rule(id="d"),
        rule(id="e", actions=[{"type": "add_tag"}, {"type": "escalate"}]),
    ]
    result = normalize_rules(elements)
    assert found(result) == [
        ("[0].extra", WARNING),
        ("[1]", DROPPED_RULE),
        ("[2].enabled", DROPPED_RULE),
        ("[2].trigger", DROPPED_RULE),
        ("[4].actions[0].tag", DROPPED_ACTION),
    ]
    assert [r["id"] for r in result.document] == ["a", "d", "e"]


# The result.


def test_refused_and_dropped_flags() -> None:
    assert not normalize_rules([rule(extra=1)]).dropped
    assert normalize_rules([rule(actions=[5, {"type": "escalate"}])]).dropped
    assert normalize_rules([rule(trigger="nope")]).dropped
    assert not normalize_rules([rule(trigger="nope")]).refused
    assert validate_and_normalize("{").refused
    assert not validate_and_normalize("{").dropped


# Keys given twice


def test_a_key_given_twice_is_a_warning_with_its_path_and_the_last_value_is_used() -> None:
    raw = """[
      {"id": "a", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
      {"id": "b", "trigger": "message_contains", "match": "refund", "match": "chargeback",
       "actions": [{"type": "add_tag", "tag": "x", "tag": "billing"}]}
    ]"""
    result = validate_and_normalize(raw)
    assert found(result) == [("[1].match", WARNING), ("[1].actions[0].tag", WARNING)]
    assert result.problems[0].line() == (
        'warning: [1].match: Duplicate key "match": the last value is used.'
    )
    assert result.document[1]["match"] == "chargeback"
    assert result.document[1]["actions"] == [{"type": "add_tag", "tag": "billing"}]
    assert not result.dropped


def test_duplicate_warnings_keep_rule_order_among_the_other_problems() -> None:
    raw = json.dumps([rule(id="a", bogus=1), rule(id="b")])
    raw = raw.replace('"id": "b"', '"id": "b", "id": "c"', 1)
    result = validate_and_normalize(raw)
    assert [p.path for p in result.problems] == ["[0].bogus", "[1].id"]
    assert result.document[1]["id"] == "c"


def test_odd_keys_given_twice_are_named_as_other_paths_are() -> None:
    raw = '[{"id": "a", "my key": 1, "my key": 2, "trigger": "ticket_opened", "actions": []}]'
    result = validate_and_normalize(raw)
    duplicate = [p for p in result.problems if p.message.startswith("Duplicate")]
    assert [(p.path, p.severity) for p in duplicate] == [('[0]["my key"]', WARNING)]


def test_a_document_without_duplicates_has_no_such_warning() -> None:
    result = validate_and_normalize(json.dumps([rule(match="x", trigger="message_contains")]))
    assert result.problems == []


def test_refused_rules_are_not_also_warned_about_duplicates() -> None:
    assert "JSON array" in assert_refused(validate_and_normalize('{"a": 1, "a": 2}'))
