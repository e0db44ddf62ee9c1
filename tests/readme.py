"""The README's examples, as blocks a test can run or check.

A fenced block may be preceded by a marker comment that says what it is:

    <!-- example: skip needs a real Discord token -->   not run; the test lists it with the reason
    <!-- example: rules -->      a rules document: must validate with no problem
    <!-- example: settings -->   a settings document: must parse with no problem or warning
    <!-- example: scenario -->   simulate lines: must play through `thothbot simulate` (exit 0)
    <!-- example: event -->      an ingress event: must pass the event schema
    <!-- example: output -->     lines the CLI prints: each must be JSON

Unmarked ``sh`` blocks run, in README order, in one shell (variables carry over as they would in
a person's terminal) in a scratch copy of the checkout; every command must succeed. ``console``
blocks run each ``$ command`` in that same shell and compare what it prints with the lines below
it: ``...`` alone on a line stands for any lines, and inside a line for any text. Unmarked
``json`` blocks must parse (as one document or one per line).

Run as a script (`python -m tests.readme README.md WORKDIR`), it plays the shell blocks and
writes what each printed to WORKDIR/results.json: the test runs it in a network namespace of
its own where it can, so the examples' fixed port 8080 never meets another server.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*example:\s*(\w+)\s*(.*?)\s*-->\s*$")
SHELL_KINDS = {"sh", "console"}
BLOCK_SECONDS = 90.0


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    kind: str  # the marker's kind, or "" when unmarked
    note: str  # the marker's text after the kind (a skip's reason)
    text: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


def blocks(readme: str) -> list[Block]:
    found: list[Block] = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        kind, note = "", ""
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (marker := MARKER.match(lines[j])):
            kind, note = marker.group(1), marker.group(2)
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        found.append(Block(i + 1, opening.group(1), kind, note, "\n".join(lines[i + 1 : end])))
        i = end + 1
    return found


@dataclass(frozen=True)
class Step:
    """One thing the shell runs: a whole ``sh`` block, or one ``$ command`` of a console block."""

    block: int
    command: str
    expected: str | None  # console output to compare, None for sh blocks


def steps(block: Block) -> list[Step]:
    if block.lang == "sh":
        return [Step(block.line, block.text, None)]
    found: list[Step] = []
    command: list[str] = []
    output: list[str] = []

    def flush() -> None:
        if command:
            found.append(Step(block.line, "\n".join(command), "\n".join(output)))

    continuing = False
    for line in block.text.splitlines():
        if continuing:
            command.append(line)
        elif line.startswith("$ "):
            flush()
            command, output = [line[2:]], []
        else:
            output.append(line)
        continuing = bool(command) and not output and line.endswith("\\")
    flush()
    return found


def matches(expected: str, actual: str) -> bool:
    """Whether printed text fits the expected lines, ``...`` standing for anything."""
    pattern = []
    for line in expected.splitlines():
        if line.strip() == "...":
            pattern.append(r"(?:.*\n)*?")
        else:
            pattern.append(".*?".join(re.escape(part) for part in line.split("...")) + r"\n")
    text = actual if actual.endswith("\n") or not actual else actual + "\n"
    return re.fullmatch("".join(pattern), text) is not None


# Running the shell steps (in the child process)

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """Bring up `lo`, which a fresh network namespace has down (no `ip` command needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


@dataclass
class Result:
    block: int
    command: str
    expected: str | None
    output: str
    status: int


def play(readme: Path, workdir: Path) -> list[Result]:
    shell_steps = [
        step
        for block in blocks(readme.read_text("utf-8"))
        if block.lang in SHELL_KINDS and block.kind != "skip"
        for step in steps(block)
    ]
    shell = subprocess.Popen(
        ["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, cwd=workdir, text=True
    )
    assert shell.stdin is not None
    shell.stdin.write("set -o pipefail\n")
    results: list[Result] = []
    for n, step in enumerate(shell_steps):
        script, out, status = (workdir / f".step{n}.{name}" for name in ("sh", "out", "rc"))
        # An sh block fails on its first failing command (the ERR trap), as `set -e` would,
        # without ending the shell; a console command's status is its own.
        body = step.command
        if step.expected is None:
            body = f"trap 'trap - ERR; return 97' ERR\n{body}\ntrap - ERR"
        script.write_text(body + "\n", "utf-8")
        # `$?` carries over to the next command, as it does in a terminal.
        shell.stdin.write(
            f"source {script.name} >{out.name} 2>&1 </dev/null; "
            f"rc=$?; echo $rc >{status}; (exit $rc)\n"
        )
        shell.stdin.flush()
        deadline = time.monotonic() + BLOCK_SECONDS
        while not (status.exists() and status.read_text().endswith("\n")):
            if time.monotonic() > deadline or shell.poll() is not None:
                break
            time.sleep(0.05)
        code = int(status.read_text()) if status.exists() and status.read_text().strip() else -1
        output = out.read_text("utf-8", errors="replace") if out.exists() else ""
        results.append(Result(step.block, step.command, step.expected, output, code))
        if code == -1:
            break  # a hung or dead shell: the later steps would only repeat the failure
    shell.stdin.close()
    return results


def main() -> None:
    readme, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "--netns":
        _loopback_up()
    os.setpgrp()  # the examples' background servers die with this group
    try:
        results = play(readme, workdir)
        (workdir / "results.json").write_text(json.dumps([asdict(r) for r in results]))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)


if __name__ == "__main__":
    main()
