"""The ``thothbot`` command: ``rules validate`` in-process, and the real entry points once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import Run, thothbot

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_RULES = ROOT / "rules.example.json"
SEVERITIES = {"dropped_rule", "dropped_action", "warning"}
SEVERITY_WORDS = {
    "dropped_rule": "dropped rule",
    "dropped_action": "dropped action",
    "warning": "warning",
    "refused": "refused",
}


def validate(tmp_path: Path, rules: Any, *flags: str) -> Run:
    """``thothbot rules validate`` on rules given as Python data, text or bytes."""
    path = tmp_path / "rules.json"
    if isinstance(rules, bytes):
        path.write_bytes(rules)
    elif isinstance(rules, str):
        path.write_text(rules, encoding="utf-8")
    else:
        path.write_text(json.dumps(rules, ensure_ascii=False), encoding="utf-8")
    return thothbot("rules", "validate", *flags, str(path))


def tag_rule(rule_id: str, tag: str = "x", **fields: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "trigger": "ticket_opened",
        "actions": [{"type": "add_tag", "tag": tag}],
    } | fields


CLEAN = [
    tag_rule("tag", "billing", name="Tag billing", ticketTypeId="billing"),
    {
        "id": "refund",
        "trigger": "message_contains",
        "match": "refund",
        "actions": [{"type": "add_tag", "tag": "refund"}, {"type": "escalate"}],
    },
]

# Only warnings: nothing is dropped.
WARNINGS_ONLY = [
    tag_rule("a", colour="blue"),
    tag_rule("b", match="ignored on ticket_opened"),
    {"id": "c", "trigger": "csat_negative", "actions": [{"type": "escalate", "tag": "x"}]},
]

# The contract's example paths: "[3].match" and friends.
MESSY = [
    tag_rule("keep", "  spaced  ", name="  Keep me  ", Enabled=True),
    {"id": "bad trigger", "trigger": "ticket_reopened", "actions": [{"type": "escalate"}]},
    {
        "trigger": "message_contains",
        "match": "  refund ",
        "actions": [{"type": "add_tag", "tag": ""}, {"type": "teleport"}, {"type": "escalate"}],
    },
    {
        "id": "no-match",
        "trigger": "message_contains",
        "match": "   ",
        "actions": [{"type": "escalate"}],
    },
    "not a rule",
    tag_rule("keep", "duplicate id"),
    {
        "id": "off",
        "enabled": False,
        "trigger": "sla_breach",
        "actions": [{"type": "assign_round_robin"}],
    },
]


# rules validate: output and exit codes.


def test_the_example_rules_validate_clean_and_are_already_normalized(tmp_path: Path) -> None:
    run = thothbot("rules", "validate", str(EXAMPLE_RULES))
    assert (run.code, run.err) == (0, "")
    assert run.json == json.loads(EXAMPLE_RULES.read_text(encoding="utf-8"))
    assert run.out == json.dumps(run.json, indent=2, ensure_ascii=False) + "\n"


def test_output_is_the_normalized_rules_with_a_two_space_indent(tmp_path: Path) -> None:
    rules = [tag_rule("straße", "Grüße")]
    rules[0]["id"] = "strasse"
    run = validate(tmp_path, rules)
    assert (run.code, run.err) == (0, "")
    normalized = [
        {
            "id": "strasse",
            "enabled": True,
            "trigger": "ticket_opened",
            "actions": [{"type": "add_tag", "tag": "Grüße"}],
        }
    ]
    assert run.out == json.dumps(normalized, indent=2, ensure_ascii=False) + "\n"


def test_normalization_trims_fills_in_and_drops(tmp_path: Path) -> None:
    run = validate(tmp_path, MESSY, "--json")
    rules = run.json["rules"]
    assert rules[0] == {
        "id": "keep",
        "enabled": True,
        "name": "Keep me",
        "trigger": "ticket_opened",
        "actions": [{"type": "add_tag", "tag": "spaced"}],
    }
    assert rules[1]["id"].startswith("rule-")
    assert rules[1] | {"id": "?"} == {
        "id": "?",
        "enabled": True,
        "trigger": "message_contains",
        "match": "refund",
        "actions": [{"type": "escalate"}],
    }
    assert rules[2] == {
        "id": "off",
        "enabled": False,
        "trigger": "sla_breach",
        "actions": [{"type": "assign_round_robin"}],
    }
    assert len(rules) == 3


@pytest.mark.parametrize(
    "rules",
    [CLEAN, WARNINGS_ONLY, MESSY, [], json.loads(EXAMPLE_RULES.read_text(encoding="utf-8"))],
    ids=["clean", "warnings", "messy", "empty", "example"],
)
def test_validating_the_output_again_is_a_no_op(tmp_path: Path, rules: Any) -> None:
    first = validate(tmp_path, rules)
    assert first.code in (0, 1)
    again = validate(tmp_path, first.out)
    assert (again.code, again.err) == (0, "")
    assert again.out == first.out
    as_json = validate(tmp_path, first.out, "--json")
    assert as_json.json == {"rules": first.json, "problems": []}


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        (CLEAN, 0),
        ([], 0),
        (WARNINGS_ONLY, 0),
        ([tag_rule("a"), {"id": "b", "trigger": "nope", "actions": [{"type": "escalate"}]}], 1),
        ([tag_rule("a"), "not an object"], 1),
        (
            [
                {
                    "id": "a",
                    "trigger": "ticket_opened",
                    "actions": [{"type": "nope"}, {"type": "escalate"}],
                }
            ],
            1,
        ),
        (
            [
                {
                    "id": "a",
                    "trigger": "ticket_opened",
                    "actions": [{"type": "add_tag"}, {"type": "escalate"}],
                }
            ],
            1,
        ),
        ([tag_rule(f"r{i}") for i in range(26)], 1),
        (MESSY, 1),
        ('{"id": "a"}', 2),
        ("[1, 2", 2),
        ("", 2),
        ("  \n", 2),
        ("[NaN]", 2),
        (b"[\xff]", 2),
        ("null", 2),
    ],
    ids=[
        "clean",
        "empty-array",
        "warnings-only",
        "dropped-rule",
        "dropped-non-object",
        "dropped-action",
        "dropped-tagless-action",
        "too-many-rules",
        "messy",
        "object",
        "not-json",
        "empty",
        "blank",
        "nan",
        "not-utf8",
        "null",
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_exit_codes(tmp_path: Path, rules: Any, code: int, as_json: bool) -> None:
    run = validate(tmp_path, rules, *(["--json"] if as_json else []))
    assert run.code == code
    if as_json:
        assert run.err == ""
        severities = {p["severity"] for p in run.json["problems"]}
        if code == 2:
            assert severities == {"refused"}
        elif code == 1:
            assert severities & {"dropped_rule", "dropped_action"}
        else:
            assert severities <= {"warning"}


def test_text_mode_prints_one_line_per_problem_on_stderr(tmp_path: Path) -> None:
    text = validate(tmp_path, MESSY)
    report = validate(tmp_path, MESSY, "--json").json
    assert text.code == 1
    assert json.loads(text.out) == report["rules"]
    lines = text.err.splitlines()
    assert len(lines) == len(report["problems"]) >= 6
    for line, problem in zip(lines, report["problems"], strict=True):
        assert problem["path"] in line
        assert problem["message"] in line
        assert SEVERITY_WORDS[problem["severity"]] in line


def test_warnings_go_to_stderr_and_exit_0(tmp_path: Path) -> None:
    run = validate(tmp_path, WARNINGS_ONLY)
    assert run.code == 0
    lines = run.err.splitlines()
    assert len(lines) == 3
    assert all("warning" in line for line in lines)
    assert "[0].colour" in lines[0]
    assert "[1].match" in lines[1]
    assert "[2].actions[0].tag" in lines[2]


def test_json_mode_prints_one_object_with_rules_and_problems(tmp_path: Path) -> None:
    run = validate(tmp_path, MESSY, "--json")
    assert (run.code, run.err) == (1, "")
    report = run.json
    assert set(report) == {"rules", "problems"}
    for problem in report["problems"]:
        assert set(problem) == {"path", "severity", "message"}
        assert problem["severity"] in SEVERITIES
        assert isinstance(problem["message"], str)
        assert problem["message"]
    where = {(p["path"], p["severity"]) for p in report["problems"]}
    assert {
        ("[0].Enabled", "warning"),
        ("[1].id", "dropped_rule"),
        ("[1].trigger", "dropped_rule"),
        ("[2].actions[0].tag", "dropped_action"),
        ("[2].actions[1]", "dropped_action"),
        ("[3].match", "dropped_rule"),
        ("[4]", "dropped_rule"),
        ("[5].id", "dropped_rule"),
    } <= where
    assert {p["path"] for p in report["problems"]} <= {path for path, _ in where}
    assert not any(p["path"].startswith("[6]") for p in report["problems"])
    # Problems come in rule order.
    indexes = [int(p["path"][1 : p["path"].index("]")]) for p in report["problems"]]
    assert indexes == sorted(indexes)


@pytest.mark.parametrize("rules", ["{not json", '{"rules": []}', ""])
def test_json_mode_for_input_refused_as_a_whole(tmp_path: Path, rules: str) -> None:
    run = validate(tmp_path, rules, "--json")
    assert run.code == 2
    report = run.json
    assert report == {
        "rules": [],
        "problems": [
            {"path": "", "severity": "refused", "message": report["problems"][0]["message"]}
        ],
    }
    assert isinstance(report["problems"][0]["message"], str)
    assert report["problems"][0]["message"]


def test_text_mode_for_input_refused_as_a_whole(tmp_path: Path) -> None:
    run = validate(tmp_path, '{"id": "a"}')
    assert run.code == 2
    assert len(run.err.splitlines()) == 1
    assert "refused" in run.err


@pytest.mark.parametrize("flags", [(), ("--json",)], ids=["text", "json"])
def test_a_missing_file_is_one_clear_line(tmp_path: Path, flags: tuple[str, ...]) -> None:
    missing = str(tmp_path / "nowhere" / "rules.json")
    run = thothbot("rules", "validate", *flags, missing)
    assert run.code == 2
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert missing in run.err


def test_a_directory_is_not_a_rules_file(tmp_path: Path) -> None:
    run = thothbot("rules", "validate", str(tmp_path))
    assert run.code == 2
    assert len(run.err.splitlines()) == 1


# The real entry points.


def _process(argv: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


def test_python_m_thothbot_validates_stdin() -> None:
    rules = json.dumps([tag_rule("a"), tag_rule("b", "  y ", colour="red")])
    done = _process([sys.executable, "-m", "thothbot", "rules", "validate", "-"], rules)
    assert done.returncode == 0
    assert json.loads(done.stdout) == [
        {
            "id": "a",
            "enabled": True,
            "trigger": "ticket_opened",
            "actions": [{"type": "add_tag", "tag": "x"}],
        },
        {
            "id": "b",
            "enabled": True,
            "trigger": "ticket_opened",
            "actions": [{"type": "add_tag", "tag": "y"}],
        },
    ]
    assert len(done.stderr.splitlines()) == 1
    assert "[1].colour" in done.stderr

    refused = _process([sys.executable, "-m", "thothbot", "rules", "validate", "--json", "-"], "[")
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["problems"][0]["severity"] == "refused"

    dropped = _process([sys.executable, "-m", "thothbot", "rules", "validate", "-"], "[1]")
    assert (dropped.returncode, json.loads(dropped.stdout)) == (1, [])


def test_the_console_script_runs_and_fails_cleanly(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("thothbot")
    assert script.exists()
    done = _process(
        [
            str(script),
            "simulate",
            "--rules",
            "rules.example.json",
            "--settings",
            "examples/settings.json",
            "examples/scenario.jsonl",
        ]
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines
    assert {"at", "kind"} <= set(lines[0])

    missing = _process([str(script), "rules", "validate", str(tmp_path / "missing.json")])
    assert (missing.returncode, missing.stdout) == (2, "")
    assert len(missing.stderr.splitlines()) == 1
    assert "Traceback" not in missing.stderr

    scenario = tmp_path / "bad.jsonl"
    scenario.write_text(
        '{"at": "2026-11-23T09:00:00+01:00", "kind": "tick"}\n{oops\n', encoding="utf-8"
    )
    bad = _process([str(script), "simulate", "--rules", "rules.example.json", str(scenario)])
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "line 2" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_run_without_a_token_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    run = thothbot("run")
    assert run.code == 2
    assert run.err.startswith("thothbot: DISCORD_TOKEN is not set")
    assert len(run.err.splitlines()) == 1


@pytest.mark.parametrize("damage", ["not a database", "a folder where the file goes"])
def test_a_database_that_cannot_be_opened_is_one_plain_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    path = tmp_path / "thoth.db"
    if damage == "not a database":
        path.write_bytes(b"this is not SQLite at all, just some bytes" * 10)
    else:
        path.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THOTH_DB_PATH", str(path))
    monkeypatch.setenv("DISCORD_TOKEN", "not-used: the database fails first")
    for argv in (["run"], ["keys", "list"]):
        run = thothbot(*argv)
        assert run.code == 2
        assert run.err.startswith(f"thothbot: cannot open the database at {path}: ")
        assert len(run.err.splitlines()) == 1


def test_validate_checks_urgency_labels_against_the_settings_given(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            [{"trigger": "ticket_opened", "urgency": "p1", "actions": [{"type": "escalate"}]}]
        )
    )
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"classifier": {"labels": ["p3", "p2", "p1"]}}))

    with_default_labels = thothbot("rules", "validate", str(rules))
    assert with_default_labels.code == 1
    assert "[0].urgency" in with_default_labels.err

    with_server_labels = thothbot("rules", "validate", "--settings", str(settings), str(rules))
    assert (with_server_labels.code, with_server_labels.err) == (0, "")
    assert with_server_labels.json[0]["urgency"] == ["p1"]
