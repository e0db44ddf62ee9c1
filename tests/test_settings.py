"""Routing and SLA settings: validation in plain words, type overrides, round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from thothbot.core.errors import SettingsInvalid
from thothbot.core.models import SlaTarget
from thothbot.core.routing import SERVER_POOL
from thothbot.core.settings import GuildSettings, parse_settings

BERLIN_HOURS = {
    "timezone": "Europe/Berlin",
    "weekly": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
}


def parse(document: Any) -> GuildSettings:
    return parse_settings(json.dumps(document)).settings


def problems(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(SettingsInvalid) as caught:
        parse_settings(json.dumps(document) if not isinstance(document, str) else document)
    return caught.value.problems


def test_defaults() -> None:
    settings = parse({})
    assert settings.staff == []
    assert settings.capacity is None
    assert settings.csat_negative_max == 2
    assert settings.sla_policy(None).deadlines(datetime(2026, 1, 1, tzinfo=UTC)) == {}


def test_example_settings_file_is_valid() -> None:
    with open("examples/settings.json", encoding="utf-8") as f:
        settings = parse_settings(f.read()).settings
    assert settings.is_staff("S3")
    assert not settings.is_staff("U1")


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"staff": "S1"}, "staff", "must be a list"),
        ({"staff": [1234]}, "staff[0]", "must be a string"),
        ({"capacity": 0}, "capacity", "greater than 0"),
        ({"csat_negative_max": 5}, "csat_negative_max", "less than or equal to 4"),
        ({"sla": {"first_response_minutes": "30"}}, "sla.first_response_minutes", "whole number"),
        ({"sla": {"business_hours": {**BERLIN_HOURS, "timezone": "Mars/Olympus"}}},
         "sla.business_hours", "Unknown time zone"),
        ({"types": {"billing": {"sla": {"business_hours": {"weekly": {}}}}}},
         "types.billing.sla.business_hours.timezone", "is required"),
    ],
)  # fmt: skip
def test_problems_name_the_place_and_say_what_is_wrong(
    document: Any, path: str, words: str
) -> None:
    found = problems(document)
    assert any(p == path and words in message for p, message in found), found


@pytest.mark.parametrize(
    ("raw", "words"),
    [("[1, 2]", "must be a JSON object"), ("{oops", "not valid JSON"), (b"\xff{}", "UTF-8")],
)
def test_unreadable_documents_are_refused(raw: str | bytes, words: str) -> None:
    with pytest.raises(SettingsInvalid, match=words):
        parse_settings(raw)


def test_oversized_documents_are_refused() -> None:
    with pytest.raises(SettingsInvalid, match="limit is 256 KiB"):
        parse_settings(json.dumps({"staff": ["x" * 60] * 5000}))


def test_unknown_keys_are_ignored_with_a_warning() -> None:
    result = parse_settings(json.dumps({"staff": ["S1"], "colour": "red", "sla": {"foo": 1}}))
    assert result.settings.staff == ["S1"]
    assert sorted(result.warnings) == [
        ("colour", 'Unknown key "colour" was ignored.'),
        ("sla.foo", 'Unknown key "foo" was ignored.'),
    ]


def test_a_types_sla_keys_replace_the_servers_same_keys_only() -> None:
    settings = parse(
        {
            "sla": {"first_response_minutes": 30, "resolution_minutes": 480},
            "types": {
                "vip": {"sla": {"first_response_minutes": 5}},
                "slow": {"sla": {"resolution_minutes": None}},
                "office": {"sla": {"business_hours": BERLIN_HOURS}},
            },
        }
    )
    created = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # a Saturday
    plain = settings.sla_policy(None).deadlines(created)
    assert plain[SlaTarget.FIRST_RESPONSE] == datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    vip = settings.sla_policy("vip").deadlines(created)
    assert vip[SlaTarget.FIRST_RESPONSE] == datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    assert vip[SlaTarget.RESOLUTION] == plain[SlaTarget.RESOLUTION]
    assert SlaTarget.RESOLUTION not in settings.sla_policy("slow").deadlines(created)
    office = settings.sla_policy("office").deadlines(created)
    # Opened on Saturday: the clock starts Monday 09:00 Berlin (08:00 UTC).
    assert office[SlaTarget.FIRST_RESPONSE] == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    assert settings.sla_policy("unknown-type") == settings.sla_policy(None)


def test_pools_come_from_the_type_when_it_has_staff() -> None:
    settings = parse({"staff": ["S1"], "types": {"billing": {"staff": ["B1"]}, "tech": {}}})
    assert settings.pool("billing") == ("billing", ["B1"])
    assert settings.pool("tech") == (SERVER_POOL, ["S1"])
    assert settings.pool(None) == (SERVER_POOL, ["S1"])
    assert settings.is_staff("B1")
    assert settings.is_staff("S1")


def test_export_reimports_unchanged() -> None:
    document = {
        "staff": ["S1", "S2"],
        "types": {
            "billing": {"label": "Billing", "staff": ["S3"], "sla": {"resolution_minutes": 60}}
        },
        "capacity": 3,
        "sla": {"first_response_minutes": 30, "business_hours": BERLIN_HOURS},
    }
    exported = parse(document).to_document()
    assert exported == document
    assert parse(exported).to_document() == exported


def test_a_key_given_twice_is_a_warning_with_its_path_and_the_last_value_is_used() -> None:
    raw = '{"staff": ["S1"], "staff": ["S2"], "sla": {"first_response_minutes": 5,'
    raw += ' "first_response_minutes": 30}}'
    result = parse_settings(raw)
    assert result.settings.staff == ["S2"]
    assert result.settings.sla.first_response_minutes == 30
    assert result.warnings == [
        ("staff", 'Duplicate key "staff": the last value is used.'),
        ("sla.first_response_minutes", 'Duplicate key "first_response_minutes": the last'
         " value is used."),
    ]  # fmt: skip
    # Without a repeated key, no such warning.
    assert parse_settings('{"staff": ["S1"]}').warnings == []
