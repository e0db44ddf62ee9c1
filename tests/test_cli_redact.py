"""``thothbot redact``: one text per line in, one redacted line (or JSON object) out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from thothbot.cli import main

ROOT = Path(__file__).resolve().parents[1]
LINES = [
    "Mail jane.doe@example.com or call +44 20 7946 0958, thanks",
    "nothing to hide here",
    "",
    "card 4111 1111 1111 1111, IP 203.0.113.7, SSN 078-05-1120",
]
REDACTED = [
    "Mail [EMAIL] or call [PHONE], thanks",
    "nothing to hide here",
    "",
    "card [CARD], IP [IP], SSN [SSN]",
]


def redact(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["redact", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, data: str | bytes) -> str:
    path = tmp_path / "tickets.txt"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", newline="")
    return str(path)


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.split("\n")[:-1]]


def test_each_line_is_redacted(tmp_path: Path) -> None:
    code, out, err = redact(write(tmp_path, "\n".join(LINES) + "\n"))
    assert (code, err) == (0, "")
    assert out == "\n".join(REDACTED) + "\n"


def test_the_last_line_needs_no_newline(tmp_path: Path) -> None:
    code, out, _err = redact(write(tmp_path, "call 020 7946 0958\nmail jane@example.com"))
    assert code == 0
    assert out == "call [PHONE]\nmail [EMAIL]\n"


def test_empty_input_prints_nothing(tmp_path: Path) -> None:
    assert redact(write(tmp_path, "")) == (0, "", "")


def test_json_gives_offsets_into_the_input_line(tmp_path: Path) -> None:
    code, out, err = redact("--json", write(tmp_path, "\n".join(LINES) + "\n"))
    assert (code, err) == (0, "")
    documents = json_lines(out)
    assert [d["redacted"] for d in documents] == REDACTED
    found = [
        [(e["type"], line[e["start"] : e["end"]]) for e in d["entities"]]
        for line, d in zip(LINES, documents, strict=True)
    ]
    assert found == [
        [("EMAIL", "jane.doe@example.com"), ("PHONE", "+44 20 7946 0958")],
        [],
        [],
        [("CARD", "4111 1111 1111 1111"), ("IP", "203.0.113.7"), ("SSN", "078-05-1120")],
    ]
    assert set(documents[0]) == {"redacted", "entities"}
    assert set(documents[0]["entities"][0]) == {"type", "start", "end"}


def test_offsets_count_code_points_not_bytes(tmp_path: Path) -> None:
    line = "Grüße 😀 an jörg@example.de"
    _code, out, _err = redact("--json", write(tmp_path, line + "\n"))
    [document] = json_lines(out)
    [entity] = document["entities"]
    # UTF-8 bytes would say 16, UTF-16 code units 12.
    assert (entity["start"], entity["end"]) == (11, 26)
    assert line[entity["start"] : entity["end"]] == "jörg@example.de"
    assert document["redacted"] == "Grüße 😀 an [EMAIL]"


def test_only_newline_ends_a_line(tmp_path: Path) -> None:
    # U+2028, U+0085 and a carriage return belong to the text, as in JSON-ish ticket bodies.
    text = "mail jane@example.com\u2028call 020 7946 0958\x85ok\r\nsecond"
    code, out, _err = redact(write(tmp_path, text))
    assert code == 0
    assert out == "mail [EMAIL]\u2028call [PHONE]\x85ok\r\nsecond\n"

    _code, out, _err = redact("--json", write(tmp_path, text))
    assert out.count("\n") == 2
    assert len(out.splitlines()) == 2  # the line breaks inside are escaped in the JSON
    first, second = json_lines(out)
    assert first["redacted"] == "mail [EMAIL]\u2028call [PHONE]\x85ok\r"
    assert [e["type"] for e in first["entities"]] == ["EMAIL", "PHONE"]
    assert second == {"redacted": "second", "entities": []}


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"ip 10.0.0.1\nmail a.b@example.org\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert redact("-") == (0, "ip [IP]\nmail [EMAIL]\n", "")


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    code, out, err = redact(str(missing))
    assert (code, out) == (2, "")
    assert err == f"thothbot: cannot read {missing}: No such file or directory\n"


def test_directory_is_one_line_error(tmp_path: Path) -> None:
    code, out, err = redact(str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"thothbot: cannot read {tmp_path}: ")
    assert err.count("\n") == 1


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"fine line\nbad \xff byte\nnever read\n")
    code, out, err = redact(path)
    assert code == 2
    assert out == "fine line\n"  # lines before the bad one were already printed
    assert err == f"thothbot: {path}: line 2 is not UTF-8 text (byte 5)\n"


def test_python_m_thothbot_redacts_stdin() -> None:
    lines = "\n".join(LINES) + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "thothbot", "redact"],
        input=lines.encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode() == "\n".join(REDACTED) + "\n"
