"""``thothbot simulate``: scenarios played through the real desk, told as effect stories.

Most tests build rules, settings and a scenario from Python lists, run ``thothbot.cli.main``
in-process and compare the effects as short sentences (see ``story``), which also checks that
every effect line has exactly the keys of its kind.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from thothbot.cli import main
from thothbot.simulate import read_scenario

DAY = "2026-11-23"  # a Monday
SATURDAY = "2026-11-28"
NEXT_MONDAY = "2026-11-30"
STAFF: dict[str, Any] = {"staff": ["S1", "S2", "S3"]}


# Scenario lines.


def at(hhmm: str, day: str = DAY, offset: str = "+01:00") -> str:
    return f"{day}T{hhmm}:00{offset}"


def open_(ticket: str, when: str, user: str = "U1", subject: str = "Help", **extra: Any) -> dict:
    return {"at": when, "kind": "open", "ticket": ticket, "user": user, "subject": subject} | extra


def message(ticket: str, when: str, user: str, content: str) -> dict:
    return {"at": when, "kind": "message", "ticket": ticket, "user": user, "content": content}


def escalate(ticket: str, when: str, user: str, reason: str | None = None) -> dict:
    line = {"at": when, "kind": "escalate", "ticket": ticket, "user": user}
    return line if reason is None else line | {"reason": reason}


def close(ticket: str, when: str, user: str) -> dict:
    return {"at": when, "kind": "close", "ticket": ticket, "user": user}


def rate(ticket: str, when: str, user: str, rating: int) -> dict:
    return {"at": when, "kind": "rate", "ticket": ticket, "user": user, "rating": rating}


def duty(user: str, when: str, on: bool) -> dict:
    return {"at": when, "kind": "duty", "user": user, "on": on}


def tick(when: str) -> dict:
    return {"at": when, "kind": "tick"}


# Rules.


def rule(rule_id: str | None, trigger: str, *actions: dict, **fields: Any) -> dict:
    body = {"trigger": trigger, "actions": list(actions)} | fields
    return body if rule_id is None else {"id": rule_id} | body


def tag(name: str) -> dict:
    return {"type": "add_tag", "tag": name}


ESCALATE = {"type": "escalate"}
ASSIGN = {"type": "assign_round_robin"}


# Running and reading.

_KEYS = {
    "rule_fired": {"rule", "trigger"},
    "tag_added": {"tag", "rule"},
    "escalated": {"reason", "rule"},
    "assigned": {"assignee", "rule"},
    "assignment_queued": {"rule"},
    "sla_breached": {"target"},
}


def sentence(effect: dict[str, Any]) -> str:
    """One effect line in words; fails when the line has missing or extra keys."""
    kind = effect["kind"]
    when = effect["at"].removeprefix(f"{DAY}T").removesuffix(":00+01:00")
    if kind == "rejected":
        assert set(effect) - {"ticket"} == {"at", "kind", "line", "message"}, effect
        assert isinstance(effect["message"], str)
        assert effect["message"]
        return f"{when} {effect.get('ticket', '-')} rejected line {effect['line']}"
    assert set(effect) == {"at", "kind", "ticket"} | _KEYS[kind], effect
    head = f"{when} {effect['ticket']}"
    match kind:
        case "rule_fired":
            return f"{head} {effect['rule']} fired on {effect['trigger']}"
        case "tag_added":
            return f"{head} tagged {effect['tag']} by {effect['rule']}"
        case "escalated":
            return f"{head} escalated by {effect['rule'] or '-'}: {effect['reason']}"
        case "assigned":
            return f"{head} assigned {effect['assignee']} by {effect['rule'] or '-'}"
        case "assignment_queued":
            return f"{head} queued by {effect['rule']}"
    return f"{head} breached {effect['target']}"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]

    @property
    def story(self) -> list[str]:
        return [sentence(line) for line in self.lines]


def _write(path: Path, content: Any) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return str(path)


def jsonl(lines: list[dict]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def simulate(
    tmp_path: Path,
    rules: Any,
    scenario: list[dict] | str,
    settings: Any = STAFF,
    *,
    pretty: bool = False,
) -> Run:
    """Write the inputs to ``tmp_path``, run ``thothbot simulate`` in-process."""
    argv = ["simulate", "--rules", _write(tmp_path / "rules.json", rules)]
    if settings is not None:
        argv += ["--settings", _write(tmp_path / "settings.json", settings)]
    if pretty:
        argv.append("--pretty")
    text = scenario if isinstance(scenario, str) else jsonl(scenario)
    argv.append(_write(tmp_path / "scenario.jsonl", text))
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def ok(run: Run) -> list[str]:
    """The story of a run that must succeed without complaints."""
    assert (run.code, run.err) == (0, ""), run.err
    return run.story


# Output format and timing.


def test_every_effect_kind_prints_one_exact_json_object(tmp_path: Path) -> None:
    rules = [
        rule("open", "ticket_opened", tag("new"), ASSIGN, ESCALATE, name="On open"),
        rule("queue", "message_contains", ASSIGN, match="queue me"),
    ]
    scenario = [
        open_("T1", at("09:00")),
        duty("S1", at("09:01"), on=False),
        open_("T2", at("09:02")),
        message("T2", at("09:03"), "U1", "please queue me"),
        tick(at("09:32")),
    ]
    settings = {"staff": ["S1"], "sla": {"first_response_minutes": 30}}
    run = simulate(tmp_path, rules, scenario, settings)
    assert run.code == 0
    ticket_opened = "ticket_opened"
    t1, t2 = "2026-11-23T09:00:00+01:00", "2026-11-23T09:02:00+01:00"
    assert run.lines == [
        {"at": t1, "kind": "rule_fired", "ticket": "T1", "rule": "open", "trigger": ticket_opened},
        {"at": t1, "kind": "tag_added", "ticket": "T1", "tag": "new", "rule": "open"},
        {"at": t1, "kind": "assigned", "ticket": "T1", "assignee": "S1", "rule": "open"},
        {"at": t1, "kind": "escalated", "ticket": "T1", "reason": "Automation: On open",
         "rule": "open"},
        {"at": t2, "kind": "rule_fired", "ticket": "T2", "rule": "open", "trigger": ticket_opened},
        {"at": t2, "kind": "tag_added", "ticket": "T2", "tag": "new", "rule": "open"},
        {"at": t2, "kind": "assignment_queued", "ticket": "T2", "rule": "open"},
        {"at": t2, "kind": "escalated", "ticket": "T2", "reason": "Automation: On open",
         "rule": "open"},
        {"at": "2026-11-23T09:03:00+01:00", "kind": "rule_fired", "ticket": "T2", "rule": "queue",
         "trigger": "message_contains"},
        {"at": "2026-11-23T09:30:00+01:00", "kind": "sla_breached", "ticket": "T1",
         "target": "first_response"},
        {"at": "2026-11-23T09:32:00+01:00", "kind": "sla_breached", "ticket": "T2",
         "target": "first_response"},
    ]  # fmt: skip


def test_times_are_shown_in_the_offset_of_the_first_line(tmp_path: Path) -> None:
    rules = [rule("r", "ticket_opened", tag("seen"))]
    scenario = [
        open_("T1", "2026-11-23T08:00:00Z"),
        open_("T2", "2026-11-23T10:30:00+02:00"),  # 08:30 UTC
        tick("2026-11-23T03:45:00-05:00"),  # 08:45 UTC
    ]
    settings = STAFF | {"sla": {"first_response_minutes": 40}}
    run = simulate(tmp_path, rules, scenario, settings)
    assert run.code == 0
    assert [(line["at"], line["ticket"], line["kind"]) for line in run.lines] == [
        ("2026-11-23T08:00:00+00:00", "T1", "rule_fired"),
        ("2026-11-23T08:00:00+00:00", "T1", "tag_added"),
        ("2026-11-23T08:30:00+00:00", "T2", "rule_fired"),
        ("2026-11-23T08:30:00+00:00", "T2", "tag_added"),
        ("2026-11-23T08:40:00+00:00", "T1", "sla_breached"),
    ]


def test_rejected_lines_are_shown_in_the_offset_of_the_first_line(tmp_path: Path) -> None:
    scenario = [
        open_("T1", "2026-11-23T08:00:00Z"),
        rate("T1", "2026-11-23T10:30:00+02:00", "U1", 1),
    ]
    run = simulate(tmp_path, [], scenario)
    assert run.code == 0
    assert [(line["at"], line["kind"]) for line in run.lines] == [
        ("2026-11-23T08:30:00+00:00", "rejected")
    ]


def test_deadlines_between_two_lines_are_processed_at_their_own_time_before_the_later_line(
    tmp_path: Path,
) -> None:
    rules = [
        rule("late", "sla_breach", tag("late")),
        rule("thanks", "message_contains", tag("thanked"), match="thanks"),
    ]
    scenario = [
        open_("T1", at("09:00")),
        open_("T2", at("09:10"), user="U2"),
        message("T1", at("10:00"), "S1", "thanks for waiting"),
    ]
    settings = STAFF | {"sla": {"first_response_minutes": 30}}
    assert ok(simulate(tmp_path, rules, scenario, settings)) == [
        "09:30 T1 breached first_response",
        "09:30 T1 late fired on sla_breach",
        "09:30 T1 tagged late by late",
        "09:40 T2 breached first_response",
        "09:40 T2 late fired on sla_breach",
        "09:40 T2 tagged late by late",
        "10:00 T1 thanks fired on message_contains",
        "10:00 T1 tagged thanked by thanks",
    ]


def test_a_deadline_equal_to_a_lines_time_is_processed_after_that_line(tmp_path: Path) -> None:
    rules = [rule("hello", "ticket_opened", tag("hello")), rule("late", "sla_breach", tag("late"))]
    scenario = [open_("T1", at("09:00")), open_("T2", at("09:30"), user="U2")]
    settings = STAFF | {"sla": {"first_response_minutes": 30}}
    assert ok(simulate(tmp_path, rules, scenario, settings)) == [
        "09:00 T1 hello fired on ticket_opened",
        "09:00 T1 tagged hello by hello",
        "09:30 T2 hello fired on ticket_opened",
        "09:30 T2 tagged hello by hello",
        "09:30 T1 breached first_response",
        "09:30 T1 late fired on sla_breach",
        "09:30 T1 tagged late by late",
    ]


def test_a_staff_reply_exactly_at_the_deadline_meets_it(tmp_path: Path) -> None:
    settings = STAFF | {"sla": {"first_response_minutes": 30, "resolution_minutes": 60}}
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:30"), "S1", "On it"),
        close("T1", at("10:00"), "S1"),
        open_("T2", at("10:00"), user="U2"),
        message("T2", at("10:30"), "U2", "Anyone?"),  # the customer does not count
    ]
    assert ok(simulate(tmp_path, [], scenario, settings)) == ["10:30 T2 breached first_response"]


def test_deadlines_are_processed_up_to_the_last_lines_time_and_not_beyond(tmp_path: Path) -> None:
    settings = STAFF | {"sla": {"first_response_minutes": 30, "resolution_minutes": 60}}
    assert ok(simulate(tmp_path, [], [open_("T1", at("09:00")), tick(at("09:29"))], settings)) == []
    assert ok(simulate(tmp_path, [], [open_("T1", at("09:00")), tick(at("10:00"))], settings)) == [
        "09:30 T1 breached first_response",
        "10:00 T1 breached resolution",
    ]
    assert ok(simulate(tmp_path, [], [open_("T1", at("09:00"))], settings)) == []


def test_many_deadlines_in_one_gap_come_out_in_deadline_order(tmp_path: Path) -> None:
    settings = STAFF | {"sla": {"first_response_minutes": 30}}
    count = 150  # more than one batch of due clocks
    scenario = [open_(f"T{i}", at(f"{9 + i // 60:02d}:{i % 60:02d}")) for i in range(count)]
    story = ok(simulate(tmp_path, [], [*scenario, tick(at("12:00"))], settings))
    assert story == [
        f"{9 + (i + 30) // 60:02d}:{(i + 30) % 60:02d} T{i} breached first_response"
        for i in range(count)
    ]


def test_closing_a_ticket_stops_its_clocks(tmp_path: Path) -> None:
    settings = STAFF | {"sla": {"first_response_minutes": 30, "resolution_minutes": 60}}
    scenario = [open_("T1", at("09:00")), close("T1", at("09:10"), "U1"), tick(at("12:00"))]
    assert ok(simulate(tmp_path, [], scenario, settings)) == []


# Lines the domain refuses.


def test_refused_lines_print_rejected_with_their_physical_line_number_and_go_on(
    tmp_path: Path,
) -> None:
    rules = [rule("hi", "message_contains", tag("hi"), match="hi")]
    scenario = (
        "\n"
        + jsonl([open_("T1", at("09:00")), rate("T1", at("09:01"), "U1", 5)])
        + "   \n"
        + jsonl(
            [
                close("T1", at("09:02"), "U1"),
                message("T1", at("09:03"), "U1", "hi again"),
                rate("T1", at("09:04"), "U1", 5),
                rate("T1", at("09:05"), "U1", 4),
                message("T9", at("09:06"), "U1", "hi"),
                open_("T2", at("09:07")),
                message("T2", at("09:08"), "U1", "hi"),
            ]
        )
    )
    run = simulate(tmp_path, rules, scenario)
    assert ok(run) == [
        "09:01 T1 rejected line 3",  # rating an open ticket
        "09:03 T1 rejected line 6",  # a message on a closed ticket
        "09:05 T1 rejected line 8",  # rating twice
        "09:06 T9 rejected line 9",  # an unknown ticket
        "09:08 T2 hi fired on message_contains",
        "09:08 T2 tagged hi by hi",
    ]


@pytest.mark.parametrize(
    "line",
    [
        open_("T1", at("09:01"), user="U2"),  # opened twice
        open_("T2", at("09:01"), subject="   "),  # no subject
        escalate("T1", at("09:01"), "U1"),  # not staff
        close("T1", at("09:01"), "U2"),  # neither staff nor the customer
        rate("T1", at("09:01"), "U1", 3),  # still open
        duty("U1", at("09:01"), on=False),  # not staff
    ],
    ids=[
        "open-twice",
        "blank-subject",
        "escalate-not-staff",
        "close-stranger",
        "rate-open",
        "duty",
    ],
)
def test_other_refused_lines_are_rejected_too(tmp_path: Path, line: dict) -> None:
    run = simulate(tmp_path, [], [open_("T1", at("09:00")), line, tick(at("09:02"))])
    assert run.code == 0
    assert [(x["kind"], x["line"]) for x in run.lines] == [("rejected", 2)]


# Malformed scenarios.

_GOOD = json.dumps(open_("T1", at("09:00")))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("{not json", "JSON"),
        ("[1, 2]", "object"),
        (json.dumps({"at": at("09:05"), "kind": "reopen", "ticket": "T1"}), "reopen"),
        (json.dumps({"at": at("09:05"), "ticket": "T1"}), "kind"),
        (json.dumps({"at": at("09:05"), "kind": "close", "ticket": "T1"}), "user"),
        (json.dumps({"kind": "tick"}), "at"),
        (json.dumps(tick(at("09:05")) | {"ticket": "T1"}), "ticket"),
        (json.dumps(rate("T1", at("09:05"), "U1", 2) | {"stars": 2}), "stars"),
        (json.dumps(rate("T1", at("09:05"), "U1", 2) | {"rating": "2"}), "rating"),
        (json.dumps(duty("S1", at("09:05"), on=True) | {"on": "yes"}), "on"),
        (json.dumps(tick(f"{DAY}T09:05:00")), "offset"),
        (json.dumps(tick("yesterday")), "yesterday"),
        (json.dumps(tick(at("08:59"))), "back"),
    ],
    ids=[
        "not-json",
        "not-object",
        "unknown-kind",
        "no-kind",
        "missing-field",
        "missing-at",
        "unknown-field",
        "unknown-field-rate",
        "wrong-type",
        "wrong-type-bool",
        "no-offset",
        "not-a-time",
        "time-goes-back",
    ],
)
def test_a_malformed_line_stops_everything_before_anything_runs(
    tmp_path: Path, bad: str, words: str
) -> None:
    rules = [rule("r", "ticket_opened", tag("x"))]
    scenario = (
        f"{_GOOD}\n\n{json.dumps(tick(at('09:01')))}\n{bad}\n{json.dumps(tick(at('10:00')))}\n"
    )
    run = simulate(tmp_path, rules, scenario)
    assert run.code == 2
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert "line 4" in run.err
    assert re.search(rf"\b{re.escape(words)}\b", run.err, re.IGNORECASE), run.err
    assert "Traceback" not in run.err


def test_a_scenario_on_stdin_is_checked_whole_then_played(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipe reads once only, and the scenario is read twice: checked, then played.
    rules = _write(tmp_path / "rules.json", [rule("r", "ticket_opened", tag("x"))])

    def from_stdin(scenario: str) -> Run:
        reading, writing = os.pipe()
        os.write(writing, scenario.encode())
        os.close(writing)
        out, err = io.StringIO(), io.StringIO()
        with open(reading, "rb") as pipe:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(pipe))
            code = main(["simulate", "--rules", rules, "-"], out=out, err=err)
        return Run(code, out.getvalue(), err.getvalue())

    played = from_stdin(f"{_GOOD}\n{json.dumps(tick(at('09:01')))}\n")
    assert ok(played) == ["09:00 T1 r fired on ticket_opened", "09:00 T1 tagged x by r"]
    refused = from_stdin(f"{_GOOD}\n{{oops\n")
    assert (refused.code, refused.out) == (2, "")
    assert "line 2" in refused.err


def test_a_scenario_is_read_a_line_at_a_time() -> None:
    # A long scenario costs the memory of one line: nothing past the line asked for is read.
    def source() -> Iterator[bytes]:
        yield (json.dumps(tick(at("09:00"))) + "\n").encode()
        yield b"\n"
        raise AssertionError("read past the line asked for")

    lines = read_scenario(source())
    number, line = next(lines)
    assert (number, line.kind, line.at.isoformat()) == (1, "tick", at("09:00"))


def test_an_offset_change_that_is_not_going_back_is_fine(tmp_path: Path) -> None:
    # 10:00+02:00 is 09:00+01:00: the same instant, so time does not go back.
    scenario = [open_("T1", at("09:00")), tick("2026-11-23T10:00:00+02:00")]
    assert ok(simulate(tmp_path, [], scenario)) == []


@pytest.mark.parametrize("separator", ["\u2028", "\u0085"], ids=["U+2028", "U+0085"])
def test_a_json_line_with_a_unicode_line_separator_in_a_string_is_one_line(
    tmp_path: Path, separator: str
) -> None:
    rules = [rule("hi", "message_contains", tag("hi"), match="hi")]
    scenario = jsonl(
        [
            open_("T1", at("09:00")),
            message("T1", at("09:01"), "U1", f"first{separator}hi"),
            rate("T1", at("09:02"), "U1", 5),
        ]
    )
    assert separator in scenario  # written raw, as JSON allows
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:01 T1 hi fired on message_contains",
        "09:01 T1 tagged hi by hi",
        "09:02 T1 rejected line 3",
    ]


# Rules, settings and files the simulation refuses.


@pytest.mark.parametrize("rules", ["{not json", '{"id": "r"}', "", "null"])
def test_refused_rules_stop_with_a_clear_message(tmp_path: Path, rules: str) -> None:
    run = simulate(tmp_path, rules, [open_("T1", at("09:00"))])
    assert run.code == 2
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert "rules" in run.err.casefold()
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"staff": ["S1"], "capacity": 0}, "capacity"),
        ({"csat_negative_max": 9}, "csat_negative_max"),
        ({"staff": "S1"}, "staff"),
        ({"sla": {"first_response_minutes": -5}}, "first_response_minutes"),
        ({"sla": {"business_hours": {"timezone": "Mars/Olympus", "weekly": {}}}}, "Mars"),
        ("{not json", "JSON"),
        ("[]", "object"),
    ],
)
def test_invalid_settings_stop_with_a_clear_message(
    tmp_path: Path, settings: Any, where: str
) -> None:
    run = simulate(
        tmp_path, [rule("r", "ticket_opened", tag("x"))], [open_("T1", at("09:00"))], settings
    )
    assert run.code == 2
    assert run.out == ""
    assert where in run.err
    assert "Traceback" not in run.err


def test_unknown_settings_keys_are_a_warning_and_the_simulation_runs(tmp_path: Path) -> None:
    settings = STAFF | {"colour": "blue"}
    run = simulate(
        tmp_path, [rule("r", "ticket_opened", tag("x"))], [open_("T1", at("09:00"))], settings
    )
    assert run.code == 0
    assert run.story == ["09:00 T1 r fired on ticket_opened", "09:00 T1 tagged x by r"]
    assert "colour" in run.err


def test_dropped_rules_are_reported_and_the_kept_rules_run(tmp_path: Path) -> None:
    rules = [
        rule("bad", "ticket_reopened", tag("never")),
        rule("half", "ticket_opened", tag("kept"), {"type": "teleport"}),
        rule("good", "ticket_opened", tag("also")),
    ]
    run = simulate(tmp_path, rules, [open_("T1", at("09:00"))])
    assert run.code == 0
    assert run.story == [
        "09:00 T1 half fired on ticket_opened",
        "09:00 T1 tagged kept by half",
        "09:00 T1 good fired on ticket_opened",
        "09:00 T1 tagged also by good",
    ]
    problems = run.err.splitlines()
    assert len(problems) == 2
    assert "[0].trigger" in problems[0]
    assert "[1].actions[1]" in problems[1]


def test_rules_that_are_all_dropped_leave_a_simulation_without_rules(tmp_path: Path) -> None:
    run = simulate(
        tmp_path, [rule("bad", "ticket_reopened", tag("never"))], [open_("T1", at("09:00"))]
    )
    assert run.code == 0
    assert run.out == ""
    assert "[0].trigger" in run.err


@pytest.mark.parametrize("which", ["rules", "settings", "scenario"])
def test_a_missing_input_file_is_one_clear_line(tmp_path: Path, which: str) -> None:
    files = {
        "rules": _write(tmp_path / "rules.json", []),
        "settings": _write(tmp_path / "settings.json", STAFF),
        "scenario": _write(tmp_path / "scenario.jsonl", jsonl([open_("T1", at("09:00"))])),
    }
    files[which] = str(tmp_path / "missing" / f"{which}.json")
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "simulate",
        "--rules",
        files["rules"],
        "--settings",
        files["settings"],
        files["scenario"],
    ]
    code = main(argv, out=out, err=err)
    assert code == 2
    assert out.getvalue() == ""
    assert len(err.getvalue().splitlines()) == 1
    assert files[which] in err.getvalue()


def test_without_settings_nobody_is_staff_and_there_is_no_sla(tmp_path: Path) -> None:
    scenario = [open_("T1", at("09:00")), escalate("T1", at("09:01"), "S1"), tick(at("23:00"))]
    run = simulate(tmp_path, [], scenario, settings=None)
    assert ok(run) == ["09:01 T1 rejected line 2"]


# Rules semantics: which rules fire, and in which order.


def test_every_matching_enabled_rule_fires_in_array_order(tmp_path: Path) -> None:
    rules = [
        rule("c", "ticket_opened", tag("c")),
        rule("off", "ticket_opened", tag("off"), enabled=False),
        rule("a", "ticket_opened", tag("a"), tag("a2")),
        rule("other", "message_contains", tag("other"), match="Help"),
        rule("b", "ticket_opened", tag("b")),
    ]
    assert ok(simulate(tmp_path, rules, [open_("T1", at("09:00"))])) == [
        "09:00 T1 c fired on ticket_opened",
        "09:00 T1 tagged c by c",
        "09:00 T1 a fired on ticket_opened",
        "09:00 T1 tagged a by a",
        "09:00 T1 tagged a2 by a",
        "09:00 T1 b fired on ticket_opened",
        "09:00 T1 tagged b by b",
    ]


def test_disabled_rules_never_fire(tmp_path: Path) -> None:
    rules = [
        rule(trigger, trigger, tag(trigger), ESCALATE, enabled=False, match="x")
        if trigger == "message_contains"
        else rule(trigger, trigger, tag(trigger), ESCALATE, enabled=False)
        for trigger in (
            "ticket_opened",
            "ticket_escalated",
            "message_contains",
            "csat_negative",
            "sla_breach",
        )
    ]
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "U1", "x"),
        escalate("T1", at("09:02"), "S1"),
        tick(at("10:00")),
        close("T1", at("10:01"), "S1"),
        rate("T1", at("10:02"), "U1", 1),
    ]
    settings = STAFF | {"sla": {"first_response_minutes": 30}}
    assert ok(simulate(tmp_path, rules, scenario, settings)) == [
        "09:02 T1 escalated by -: Escalated by staff",
        "09:30 T1 breached first_response",
    ]


def test_ticket_type_scoping(tmp_path: Path) -> None:
    rules = [
        rule("billing", "ticket_opened", tag("billing"), ticketTypeId="billing"),
        rule("any", "ticket_opened", tag("any")),
        rule("refund", "message_contains", tag("refund"), match="refund", ticketTypeId="billing"),
    ]
    scenario = [
        open_("T1", at("09:00"), type="billing"),
        open_("T2", at("09:01"), type="tech"),
        open_("T3", at("09:02")),
        message("T1", at("09:03"), "U1", "refund please"),
        message("T2", at("09:04"), "U1", "refund please"),
        message("T3", at("09:05"), "U1", "refund please"),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:00 T1 billing fired on ticket_opened",
        "09:00 T1 tagged billing by billing",
        "09:00 T1 any fired on ticket_opened",
        "09:00 T1 tagged any by any",
        "09:01 T2 any fired on ticket_opened",
        "09:01 T2 tagged any by any",
        "09:02 T3 any fired on ticket_opened",
        "09:02 T3 tagged any by any",
        "09:03 T1 refund fired on message_contains",
        "09:03 T1 tagged refund by refund",
    ]


@pytest.mark.parametrize(
    ("match", "content"),
    [
        ("Straße", "I live in HAUPTSTRASSE 5"),
        ("STRASSE", "Meine straße"),
        ("Refund", "please REFUND me"),
        ("ΣΊΣΥΦΟΣ", "σίσυφος"),
    ],
)
def test_message_contains_is_a_casefold_substring(tmp_path: Path, match: str, content: str) -> None:
    rules = [rule("m", "message_contains", tag("m"), match=match)]
    scenario = [open_("T1", at("09:00")), message("T1", at("09:01"), "U1", content)]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:01 T1 m fired on message_contains",
        "09:01 T1 tagged m by m",
    ]


def test_message_contains_needs_the_whole_match_in_one_message(tmp_path: Path) -> None:
    rules = [rule("m", "message_contains", tag("m"), match="down for everyone")]
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "U1", "down for"),
        message("T1", at("09:02"), "U1", "everyone"),
        message("T1", at("09:03"), "U1", "down  for everyone"),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == []


def test_message_contains_fires_for_customer_and_staff_messages(tmp_path: Path) -> None:
    rules = [rule("m", "message_contains", tag("m"), match="refund")]
    settings = {"staff": ["S1"], "types": {"billing": {"staff": ["S9"]}}}
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "S1", "refund started"),
        open_("T2", at("09:02")),
        message("T2", at("09:03"), "U1", "refund?"),
        open_("T3", at("09:04")),
        message("T3", at("09:05"), "S9", "refund done"),
        open_("T4", at("09:06")),
        message("T4", at("09:07"), "U7", "a stranger asks for a refund"),
    ]
    assert [s for s in ok(simulate(tmp_path, rules, scenario, settings)) if "fired" in s] == [
        "09:01 T1 m fired on message_contains",
        "09:03 T2 m fired on message_contains",
        "09:05 T3 m fired on message_contains",
        "09:07 T4 m fired on message_contains",
    ]


def test_message_contains_never_fires_on_closed_tickets(tmp_path: Path) -> None:
    rules = [rule("m", "message_contains", tag("m"), match="refund")]
    scenario = [
        open_("T1", at("09:00")),
        close("T1", at("09:01"), "S1"),
        message("T1", at("09:02"), "U1", "refund"),
        message("T1", at("09:03"), "S1", "refund"),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:02 T1 rejected line 3",
        "09:03 T1 rejected line 4",
    ]


def test_the_opening_subject_and_body_are_not_a_message(tmp_path: Path) -> None:
    rules = [rule("m", "message_contains", tag("m"), match="refund")]
    scenario = [open_("T1", at("09:00"), subject="Refund", body="refund refund")]
    assert ok(simulate(tmp_path, rules, scenario)) == []


def test_add_tag_is_a_no_op_when_the_tag_exists_in_any_case(tmp_path: Path) -> None:
    rules = [
        rule("a", "ticket_opened", tag("VIP"), tag("vip")),
        rule("b", "message_contains", tag("Vip"), tag("new"), match="hello"),
    ]
    scenario = [open_("T1", at("09:00")), message("T1", at("09:01"), "U1", "hello")]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:00 T1 a fired on ticket_opened",
        "09:00 T1 tagged VIP by a",
        "09:01 T1 b fired on message_contains",
        "09:01 T1 tagged new by b",
    ]


def test_escalate_reason_names_the_rule_or_its_id(tmp_path: Path) -> None:
    rules = [
        rule("named", "message_contains", ESCALATE, match="one", name="  Angry customer  "),
        rule("plain", "message_contains", ESCALATE, match="two"),
        rule("blank", "message_contains", ESCALATE, match="three", name="   "),
    ]
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "U1", "one"),
        open_("T2", at("09:02")),
        message("T2", at("09:03"), "U1", "two"),
        open_("T3", at("09:04")),
        message("T3", at("09:05"), "U1", "three"),
    ]
    assert [s for s in ok(simulate(tmp_path, rules, scenario)) if "escalated" in s] == [
        "09:01 T1 escalated by named: Automation: Angry customer",
        "09:03 T2 escalated by plain: Automation: plain",
        "09:05 T3 escalated by blank: Automation: blank",
    ]


def test_escalate_reason_uses_the_assigned_id_of_a_rule_without_one(tmp_path: Path) -> None:
    rules = [rule(None, "ticket_opened", ESCALATE)]
    run = simulate(tmp_path, rules, [open_("T1", at("09:00"))])
    fired, escalated = run.lines
    assert fired["rule"].startswith("rule-")
    assert escalated["rule"] == fired["rule"]
    assert escalated["reason"] == f"Automation: {fired['rule']}"


def test_ticket_escalated_rules_run_after_all_rules_of_the_current_event(tmp_path: Path) -> None:
    rules = [
        rule("esc-1", "ticket_escalated", tag("escalated")),
        rule("escalate", "ticket_opened", ESCALATE, tag("first")),
        rule("esc-2", "ticket_escalated", tag("again")),
        rule("after", "ticket_opened", tag("second"), ESCALATE),
    ]
    assert ok(simulate(tmp_path, rules, [open_("T1", at("09:00"))])) == [
        "09:00 T1 escalate fired on ticket_opened",
        "09:00 T1 escalated by escalate: Automation: escalate",
        "09:00 T1 tagged first by escalate",
        "09:00 T1 after fired on ticket_opened",
        "09:00 T1 tagged second by after",  # its escalate is a no-op
        "09:00 T1 esc-1 fired on ticket_escalated",
        "09:00 T1 tagged escalated by esc-1",
        "09:00 T1 esc-2 fired on ticket_escalated",
        "09:00 T1 tagged again by esc-2",
    ]


def test_escalating_an_escalated_ticket_is_a_no_op(tmp_path: Path) -> None:
    rules = [
        rule("esc", "message_contains", ESCALATE, match="help"),
        rule("on-esc", "ticket_escalated", tag("escalated")),
    ]
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "U1", "help"),
        message("T1", at("09:02"), "U1", "help!"),
        open_("T2", at("09:03")),
        escalate("T2", at("09:04"), "S1", "VIP"),
        message("T2", at("09:05"), "U1", "help"),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:01 T1 esc fired on message_contains",
        "09:01 T1 escalated by esc: Automation: esc",
        "09:01 T1 on-esc fired on ticket_escalated",
        "09:01 T1 tagged escalated by on-esc",
        "09:02 T1 esc fired on message_contains",
        "09:04 T2 escalated by -: VIP",
        "09:04 T2 on-esc fired on ticket_escalated",
        "09:04 T2 tagged escalated by on-esc",
        "09:05 T2 esc fired on message_contains",
    ]


def test_each_rule_fires_at_most_once_per_event_cascade_and_again_on_the_next_event(
    tmp_path: Path,
) -> None:
    rules = [
        rule("refund", "message_contains", tag("refund"), match="refund"),
        rule("loop", "ticket_escalated", ESCALATE, tag("looped")),
    ]
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "U1", "refund, REFUND, refund!"),
        escalate("T1", at("09:02"), "S1"),
        message("T1", at("09:03"), "S1", "refund done"),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:01 T1 refund fired on message_contains",
        "09:01 T1 tagged refund by refund",
        "09:02 T1 escalated by -: Escalated by staff",
        "09:02 T1 loop fired on ticket_escalated",
        "09:02 T1 tagged looped by loop",
        "09:03 T1 refund fired on message_contains",
    ]


def test_manual_escalation_prints_escalated_without_a_rule_then_runs_rules(tmp_path: Path) -> None:
    rules = [rule("on-esc", "ticket_escalated", tag("escalated"), ticketTypeId="billing")]
    scenario = [
        open_("T1", at("09:00"), type="billing"),
        escalate("T1", at("09:01"), "S1", "  Big customer "),
        open_("T2", at("09:02")),
        escalate("T2", at("09:03"), "S2"),
        escalate("T2", at("09:04"), "S2", "again"),
    ]
    run = simulate(tmp_path, rules, scenario)
    assert ok(run) == [
        "09:01 T1 escalated by -: Big customer",
        "09:01 T1 on-esc fired on ticket_escalated",
        "09:01 T1 tagged escalated by on-esc",
        "09:03 T2 escalated by -: Escalated by staff",
        "09:04 T2 rejected line 5",
    ]
    assert run.lines[0]["rule"] is None


# csat_negative


@pytest.mark.parametrize(
    ("settings", "fires_for"),
    [
        (STAFF, [1, 2]),
        (STAFF | {"csat_negative_max": 3}, [1, 2, 3]),
        (STAFF | {"csat_negative_max": 1}, [1]),
    ],
    ids=["default-2", "max-3", "max-1"],
)
def test_csat_negative_fires_at_or_below_the_maximum(
    tmp_path: Path, settings: dict, fires_for: list[int]
) -> None:
    rules = [rule("unhappy", "csat_negative", tag("follow-up"))]
    scenario = []
    for rating in range(1, 6):
        ticket = f"T{rating}"
        scenario += [
            open_(ticket, at(f"09:0{rating}")),
            close(ticket, at(f"09:0{rating}"), "S1"),
            rate(ticket, at(f"09:0{rating}"), "U1", rating),
        ]
    run = simulate(tmp_path, rules, scenario, settings)
    assert ok(run) == [
        line
        for rating in fires_for
        for line in (
            f"09:0{rating} T{rating} unhappy fired on csat_negative",
            f"09:0{rating} T{rating} tagged follow-up by unhappy",
        )
    ]


def test_csat_negative_does_not_reopen_the_ticket(tmp_path: Path) -> None:
    rules = [
        rule("unhappy", "csat_negative", tag("follow-up"), ESCALATE, name="Unhappy"),
        rule("m", "message_contains", tag("m"), match="why"),
    ]
    scenario = [
        open_("T1", at("09:00")),
        close("T1", at("09:01"), "S1"),
        rate("T1", at("09:02"), "U1", 1),
        message("T1", at("09:03"), "U1", "why?"),
        close("T1", at("09:04"), "S1"),
        rate("T1", at("09:05"), "U1", 1),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:02 T1 unhappy fired on csat_negative",
        "09:02 T1 tagged follow-up by unhappy",
        "09:02 T1 escalated by unhappy: Automation: Unhappy",
        "09:03 T1 rejected line 4",
        "09:04 T1 rejected line 5",
        "09:05 T1 rejected line 6",
    ]


# SLA


def test_sla_breach_fires_once_per_ticket_per_target(tmp_path: Path) -> None:
    rules = [rule("late", "sla_breach", tag("late"), ESCALATE)]
    settings = STAFF | {"sla": {"first_response_minutes": 30, "resolution_minutes": 60}}
    scenario = [
        open_("T1", at("09:00")),
        tick(at("11:00")),
        message("T1", at("11:30"), "S1", "Sorry!"),
        tick(at("23:00")),
    ]
    assert ok(simulate(tmp_path, rules, scenario, settings)) == [
        "09:30 T1 breached first_response",
        "09:30 T1 late fired on sla_breach",
        "09:30 T1 tagged late by late",
        "09:30 T1 escalated by late: Automation: late",
        "10:00 T1 breached resolution",
        "10:00 T1 late fired on sla_breach",
    ]


def test_a_ticket_opened_on_saturday_counts_from_mondays_opening(tmp_path: Path) -> None:
    rules = [rule("late", "sla_breach", tag("late"))]
    hours = {
        "timezone": "Europe/Berlin",
        "weekly": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    }
    settings = STAFF | {"sla": {"first_response_minutes": 30, "business_hours": hours}}
    scenario = [
        open_("T1", at("10:00", day=SATURDAY)),
        tick(at("09:29", day=NEXT_MONDAY)),
        tick(at("09:30", day=NEXT_MONDAY)),
    ]
    run = simulate(tmp_path, rules, scenario, settings)
    assert ok(run) == [
        "2026-11-30T09:30 T1 breached first_response",
        "2026-11-30T09:30 T1 late fired on sla_breach",
        "2026-11-30T09:30 T1 tagged late by late",
    ]


def test_business_hours_skip_holidays_and_nights(tmp_path: Path) -> None:
    hours = {
        "timezone": "Europe/Berlin",
        "weekly": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-11-24"],
    }
    settings = STAFF | {"sla": {"first_response_minutes": 120, "business_hours": hours}}
    scenario = [open_("T1", at("16:00")), tick(at("23:00", day="2026-11-30"))]
    # 60 minutes on Monday, Tuesday is a holiday, 60 more on Wednesday.
    assert ok(simulate(tmp_path, [], scenario, settings)) == [
        "2026-11-25T10:00 T1 breached first_response"
    ]


def test_a_types_sla_keys_override_the_servers_same_keys(tmp_path: Path) -> None:
    settings = {
        "staff": ["S1"],
        "types": {
            "vip": {"sla": {"first_response_minutes": 10}},
            "relaxed": {"sla": {"resolution_minutes": 240}},
            "untimed": {"sla": {"first_response_minutes": None}},
        },
        "sla": {"first_response_minutes": 30, "resolution_minutes": 60},
    }
    scenario = [
        open_("V", at("09:00"), type="vip"),
        open_("R", at("09:00"), type="relaxed"),
        open_("U", at("09:00"), type="untimed"),
        open_("N", at("09:00")),
        open_("O", at("09:00"), type="not-in-settings"),
        tick(at("18:00")),
    ]
    assert ok(simulate(tmp_path, [], scenario, settings)) == [
        "09:10 V breached first_response",
        "09:30 R breached first_response",
        "09:30 N breached first_response",
        "09:30 O breached first_response",
        "10:00 V breached resolution",
        "10:00 U breached resolution",
        "10:00 N breached resolution",
        "10:00 O breached resolution",
        "13:00 R breached resolution",
    ]


def test_a_type_without_own_hours_keeps_the_servers_business_hours(tmp_path: Path) -> None:
    hours = {"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]}}
    settings = {
        "staff": ["S1"],
        "types": {"vip": {"sla": {"first_response_minutes": 15}}},
        "sla": {"first_response_minutes": 30, "business_hours": hours},
    }
    scenario = [open_("T1", at("16:50"), type="vip"), tick(at("09:10", day=NEXT_MONDAY))]
    assert ok(simulate(tmp_path, [], scenario, settings)) == [
        "2026-11-30T09:05 T1 breached first_response"
    ]


def test_staff_of_any_pool_count_as_staff_for_the_first_response(tmp_path: Path) -> None:
    settings = {
        "staff": ["S1"],
        "types": {"billing": {"staff": ["S9"]}},
        "sla": {"first_response_minutes": 30},
    }
    scenario = [
        open_("T1", at("09:00")),
        open_("T2", at("09:00"), user="U2"),
        open_("T3", at("09:00"), user="S1", type="billing"),
        message("T1", at("09:10"), "S9", "Billing staff here"),
        message("T2", at("09:10"), "U9", "Another customer"),
        message("T3", at("09:10"), "S1", "My own ticket"),
        tick(at("10:00")),
    ]
    assert ok(simulate(tmp_path, [], scenario, settings)) == [
        "09:30 T2 breached first_response",
        "09:30 T3 breached first_response",
    ]


# Round robin and the assignment queue.

ASSIGN_ON_OPEN = rule("rr", "ticket_opened", ASSIGN)


def _opens(count: int, start: int = 0, **extra: Any) -> list[dict]:
    return [open_(f"T{i}", at(f"09:{i + start:02d}"), **extra) for i in range(1, count + 1)]


def assignments(story: list[str]) -> list[str]:
    return [s for s in story if "assigned" in s or "queued" in s]


def test_round_robin_walks_the_pool_in_order(tmp_path: Path) -> None:
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], _opens(5)))) == [
        "09:01 T1 assigned S1 by rr",
        "09:02 T2 assigned S2 by rr",
        "09:03 T3 assigned S3 by rr",
        "09:04 T4 assigned S1 by rr",
        "09:05 T5 assigned S2 by rr",
    ]


def test_round_robin_continues_after_the_last_assignee(tmp_path: Path) -> None:
    scenario = [
        open_("T1", at("09:01")),
        open_("T2", at("09:02")),
        duty("S2", at("09:10"), on=False),  # the pointer stays on S2
        open_("T3", at("09:11")),
        open_("T4", at("09:12")),
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario))) == [
        "09:01 T1 assigned S1 by rr",
        "09:02 T2 assigned S2 by rr",
        "09:11 T3 assigned S3 by rr",
        "09:12 T4 assigned S1 by rr",
    ]


def test_round_robin_skips_off_duty_agents(tmp_path: Path) -> None:
    scenario = [
        duty("S1", at("09:00"), on=False),
        *_opens(3),
        duty("S1", at("09:05"), on=True),
        duty("S3", at("09:05"), on=False),
        open_("T4", at("09:06")),
        open_("T5", at("09:07")),
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario))) == [
        "09:01 T1 assigned S2 by rr",
        "09:02 T2 assigned S3 by rr",
        "09:03 T3 assigned S2 by rr",
        "09:06 T4 assigned S1 by rr",
        "09:07 T5 assigned S2 by rr",
    ]


def test_round_robin_skips_agents_at_capacity(tmp_path: Path) -> None:
    settings = {"staff": ["S1", "S2"], "capacity": 2}
    scenario = [
        open_("T1", at("09:01")),
        open_("T2", at("09:02")),
        open_("T3", at("09:03")),
        close("T2", at("09:04"), "S2"),  # S2 holds nothing, S1 holds 2
        open_("T4", at("09:05")),
        open_("T5", at("09:06")),
        open_("T6", at("09:07")),
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario, settings))) == [
        "09:01 T1 assigned S1 by rr",
        "09:02 T2 assigned S2 by rr",
        "09:03 T3 assigned S1 by rr",
        "09:05 T4 assigned S2 by rr",
        "09:06 T5 assigned S2 by rr",
        "09:07 T6 queued by rr",
    ]


def test_a_type_with_its_own_staff_has_its_own_pool_and_pointer(tmp_path: Path) -> None:
    settings = {"staff": ["S1", "S2"], "types": {"billing": {"staff": ["S3", "S2"]}}}
    scenario = [
        open_("B1", at("09:01"), type="billing"),
        open_("N1", at("09:02")),
        open_("B2", at("09:03"), type="billing"),
        open_("N2", at("09:04"), type="tech"),
        open_("B3", at("09:05"), type="billing"),
        open_("N3", at("09:06")),
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario, settings))) == [
        "09:01 B1 assigned S3 by rr",
        "09:02 N1 assigned S1 by rr",
        "09:03 B2 assigned S2 by rr",
        "09:04 N2 assigned S2 by rr",
        "09:05 B3 assigned S3 by rr",
        "09:06 N3 assigned S1 by rr",
    ]


def test_queued_tickets_are_assigned_oldest_first_when_someone_comes_on_duty(
    tmp_path: Path,
) -> None:
    settings = {"staff": ["S1", "S2"], "capacity": 2}
    scenario = [
        duty("S1", at("09:00"), on=False),
        duty("S2", at("09:00"), on=False),
        *_opens(3),
        duty("S2", at("09:10"), on=True),
        duty("S1", at("09:20"), on=True),
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario, settings))) == [
        "09:01 T1 queued by rr",
        "09:02 T2 queued by rr",
        "09:03 T3 queued by rr",
        "09:10 T1 assigned S2 by rr",
        "09:10 T2 assigned S2 by rr",
        "09:20 T3 assigned S1 by rr",
    ]


def test_closing_a_ticket_frees_capacity_for_the_oldest_queued_ticket(tmp_path: Path) -> None:
    settings = {"staff": ["S1"], "capacity": 1}
    scenario = [
        open_("T1", at("09:01")),
        open_("T2", at("09:02")),
        open_("T3", at("09:03")),
        open_("T4", at("09:04")),
        close("T2", at("09:10"), "U1"),  # a queued ticket leaves the queue, frees nothing
        close("T1", at("09:20"), "S1"),  # S1 is free again
        close("T3", at("09:30"), "U1"),
        close("T4", at("09:40"), "S1"),
        tick(at("09:50")),
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario, settings))) == [
        "09:01 T1 assigned S1 by rr",
        "09:02 T2 queued by rr",
        "09:03 T3 queued by rr",
        "09:04 T4 queued by rr",
        "09:20 T3 assigned S1 by rr",
        "09:30 T4 assigned S1 by rr",
    ]


def test_the_queue_skips_tickets_whose_pool_has_nobody_free(tmp_path: Path) -> None:
    settings = {"staff": ["S1", "S2"], "types": {"billing": {"staff": ["S3", "S2"]}}, "capacity": 1}
    scenario = [
        duty("S1", at("09:00"), on=False),
        duty("S2", at("09:00"), on=False),
        duty("S3", at("09:00"), on=False),
        open_("B1", at("09:01"), type="billing"),
        open_("N1", at("09:02")),
        open_("B2", at("09:03"), type="billing"),
        duty("S1", at("09:10"), on=True),  # only the server pool has someone now
        duty("S2", at("09:20"), on=True),  # S2 takes one billing ticket and is full
        duty("S3", at("09:30"), on=True),
        close("B1", at("09:40"), "S2"),  # the queue is empty by now
    ]
    assert assignments(ok(simulate(tmp_path, [ASSIGN_ON_OPEN], scenario, settings))) == [
        "09:01 B1 queued by rr",
        "09:02 N1 queued by rr",
        "09:03 B2 queued by rr",
        "09:10 N1 assigned S1 by rr",
        "09:20 B1 assigned S2 by rr",
        "09:30 B2 assigned S3 by rr",
    ]


def test_a_ticket_queued_by_one_rule_is_assigned_later_with_that_rule(tmp_path: Path) -> None:
    rules = [
        rule("first", "message_contains", ASSIGN, match="help"),
        rule("second", "message_contains", ASSIGN, tag("waiting"), match="help"),
        rule("third", "ticket_escalated", ASSIGN),
    ]
    scenario = [
        duty("S1", at("09:00"), on=False),
        open_("T1", at("09:01")),
        message("T1", at("09:02"), "U1", "help"),
        escalate("T1", at("09:03"), "S1"),
        duty("S1", at("09:04"), on=True),
    ]
    assert ok(simulate(tmp_path, rules, scenario, {"staff": ["S1"]})) == [
        "09:02 T1 first fired on message_contains",
        "09:02 T1 queued by first",
        "09:02 T1 second fired on message_contains",
        "09:02 T1 tagged waiting by second",
        "09:03 T1 escalated by -: Escalated by staff",
        "09:03 T1 third fired on ticket_escalated",
        "09:04 T1 assigned S1 by first",
    ]


def test_assign_round_robin_leaves_an_assigned_ticket_alone(tmp_path: Path) -> None:
    rules = [
        ASSIGN_ON_OPEN,
        rule("again", "ticket_opened", ASSIGN),
        rule("more", "message_contains", ASSIGN, match="hello"),
    ]
    scenario = [
        open_("T1", at("09:00")),
        message("T1", at("09:01"), "U1", "hello"),
        open_("T2", at("09:02")),
    ]
    assert ok(simulate(tmp_path, rules, scenario)) == [
        "09:00 T1 rr fired on ticket_opened",
        "09:00 T1 assigned S1 by rr",
        "09:00 T1 again fired on ticket_opened",
        "09:01 T1 more fired on message_contains",
        "09:02 T2 rr fired on ticket_opened",
        "09:02 T2 assigned S2 by rr",
        "09:02 T2 again fired on ticket_opened",
    ]


def test_an_empty_pool_queues(tmp_path: Path) -> None:
    run = simulate(tmp_path, [ASSIGN_ON_OPEN], _opens(1), settings={"staff": []})
    assert ok(run) == ["09:01 T1 rr fired on ticket_opened", "09:01 T1 queued by rr"]


# The shipped example and --pretty.

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_example_plays_through(tmp_path: Path) -> None:
    run = simulate(
        tmp_path,
        (ROOT / "rules.example.json").read_text(encoding="utf-8"),
        (ROOT / "examples" / "scenario.jsonl").read_text(encoding="utf-8"),
        (ROOT / "examples" / "settings.json").read_text(encoding="utf-8"),
    )
    story = ok(run)
    assert story  # every line has exactly the keys of its kind
    times = [line["at"] for line in run.lines]
    assert times == sorted(times)
    assert all(t.endswith("+01:00") for t in times)


def test_pretty_prints_a_table_with_a_header_one_line_per_effect_and_rejections_in_words(
    tmp_path: Path,
) -> None:
    rules = [rule("rr", "ticket_opened", tag("new"), ASSIGN)]
    scenario = [
        duty("S1", at("09:00"), on=False),
        open_("T1", at("09:01")),
        rate("T1", at("09:02"), "U1", 4),
        duty("S1", at("09:03"), on=True),
        escalate("T1", at("09:04"), "S1", "Big customer"),
        tick(at("10:00")),
    ]
    settings = {"staff": ["S1"], "sla": {"first_response_minutes": 30}}
    plain = simulate(tmp_path, rules, scenario, settings)
    pretty = simulate(tmp_path, rules, scenario, settings, pretty=True)
    assert (pretty.code, pretty.err) == (0, "")
    header, *rows = pretty.out.splitlines()
    assert all(word in header.upper() for word in ("TIME", "TICKET"))
    assert len(rows) == len(plain.lines) == 7
    for row, line in zip(rows, plain.lines, strict=True):
        assert line["at"] in row
        assert line["ticket"] in row
        assert not row.lstrip().startswith("{")
    rejected = rows[3]
    assert "line 3" in rejected
    assert plain.lines[3]["message"] in rejected
    assert "Big customer" in rows[5]
    assert "S1" in rows[4]


def test_an_open_line_may_carry_the_urgency_the_classifier_would_give(tmp_path: Path) -> None:
    rules = [rule("page", "ticket_opened", tag("paged"), urgency=["critical"])]
    scenario = [
        open_("T1", at("09:00"), urgency="critical"),
        open_("T2", at("09:01"), urgency="low"),
        open_("T3", at("09:02")),
        open_("T4", at("09:03"), urgency="urgentish"),
    ]
    story = ok(simulate(tmp_path, rules, scenario))
    assert story[:2] == ["09:00 T1 page fired on ticket_opened", "09:00 T1 tagged paged by page"]
    assert story[2].startswith("09:03 T4 rejected line 4")
    assert len(story) == 3


def test_urgency_rules_use_the_labels_of_the_settings_classifier(tmp_path: Path) -> None:
    settings = STAFF | {"classifier": {"labels": ["p3", "p2", "p1"]}}
    rules = [rule("page", "ticket_opened", tag("paged"), urgency="p1")]
    scenario = [open_("T1", at("09:00"), urgency="p1"), open_("T2", at("09:01"), urgency="p2")]
    assert ok(simulate(tmp_path, rules, scenario, settings)) == [
        "09:00 T1 page fired on ticket_opened",
        "09:00 T1 tagged paged by page",
    ]
