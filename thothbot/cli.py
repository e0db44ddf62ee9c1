"""The ``thothbot`` command: validate rules, simulate scenarios, run the bot."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from dotenv import load_dotenv

from thothbot import __version__
from thothbot.config import Config
from thothbot.core.errors import InvalidInput, SettingsInvalid
from thothbot.core.rules import Severity, validate_and_normalize
from thothbot.simulate import PrettyPrinter, run_scenario
from thothbot.store import Store

EXIT_OK, EXIT_DROPPED, EXIT_REFUSED = 0, 1, 2

_SEVERITY_WORDS = {
    Severity.DROPPED_RULE: "dropped rule",
    Severity.DROPPED_ACTION: "dropped action",
    Severity.WARNING: "warning",
    Severity.REFUSED: "refused",
}


class CliError(Exception):
    """A problem to print as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def _read(path: str, stdin: TextIO) -> bytes:
    if path == "-":
        return stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}") from None


def problem_line(path: str, severity: Severity, message: str) -> str:
    where = f"{path}: " if path else ""
    return f"{_SEVERITY_WORDS[severity]}: {where}{message}"


def cmd_rules_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    result = validate_and_normalize(_read(args.file, sys.stdin))
    if args.json:
        problems = [
            {"path": p.path, "severity": p.severity.value, "message": p.message}
            for p in result.problems
        ]
        json.dump({"rules": result.rules, "problems": problems}, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        if not result.refused:
            json.dump(result.rules, out, indent=2, ensure_ascii=False)
            out.write("\n")
        for p in result.problems:
            err.write(problem_line(p.path, p.severity, p.message) + "\n")
    if result.refused:
        return EXIT_REFUSED
    return EXIT_DROPPED if result.dropped else EXIT_OK


def cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rules = _read(args.rules, sys.stdin)
    settings = _read(args.settings, sys.stdin) if args.settings else None
    scenario = _read(args.scenario, sys.stdin).decode("utf-8", errors="replace")
    if args.pretty:
        printer = PrettyPrinter(out)
        emit = printer.emit
    else:

        def emit(line: dict[str, Any]) -> None:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    try:
        report = asyncio.run(run_scenario(rules, settings, scenario, emit))
    except SettingsInvalid as error:
        for path, message in error.problems:
            err.write(f"settings: {path or '(top)'}: {message}\n")
        return EXIT_REFUSED
    for p in report.rule_problems:
        err.write("rules: " + problem_line(p.path, p.severity, p.message) + "\n")
    for path, message in report.settings_warnings:
        err.write(f"settings: warning: {path}: {message}\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    load_dotenv()
    config = Config.from_env(os.environ)

    async def prepare() -> None:
        store = await Store.open(config.db_path)
        await store.close()

    asyncio.run(prepare())
    err.write(
        f"The database is ready at {config.db_path}, but the Discord bot is not built yet:"
        " it arrives with the next release. Meanwhile, try `make demo` or `thothbot simulate`.\n"
    )
    return EXIT_DROPPED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thothbot", description="A self-hosted support desk that lives inside Discord."
    )
    parser.add_argument("--version", action="version", version=f"thothbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rules = commands.add_parser("rules", help="work with automation rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    validate = rules_commands.add_parser(
        "validate",
        help="validate and normalize a rules file",
        description="Print the normalized rules on stdout and one line per problem on stderr."
        " Exit 0: nothing dropped (warnings allowed); 1: a rule or action was dropped;"
        " 2: the input was refused as a whole.",
    )
    validate.add_argument("file", metavar="FILE", help="rules JSON file, or - for stdin")
    validate.add_argument(
        "--json", action="store_true", help="one JSON object with rules and problems"
    )
    validate.set_defaults(handler=cmd_rules_validate)

    simulate = commands.add_parser(
        "simulate",
        help="play a scenario through the rules, routing and SLA",
        description="Run a JSON Lines scenario on an in-memory desk and print one JSON object"
        " per effect, in order.",
    )
    simulate.add_argument("--rules", required=True, metavar="FILE", help="rules JSON file")
    simulate.add_argument("--settings", metavar="FILE", help="routing and SLA settings JSON file")
    simulate.add_argument(
        "--pretty", action="store_true", help="a table for people instead of JSON"
    )
    simulate.add_argument(
        "scenario", metavar="SCENARIO.jsonl", help="scenario file, or - for stdin"
    )
    simulate.set_defaults(handler=cmd_simulate)

    run = commands.add_parser("run", help="run the Discord bot (configured from the environment)")
    run.set_defaults(handler=cmd_run)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args, out, err)
    except CliError as error:
        err.write(f"thothbot: {error}\n")
        return error.code
    except InvalidInput as error:
        err.write(f"thothbot: {error}\n")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `thothbot simulate ... | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
