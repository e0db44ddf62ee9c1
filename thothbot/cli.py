"""The ``thothbot`` command: validate rules, simulate scenarios, run the bot."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from thothbot import __version__
from thothbot.config import Config, StartupFailure, load_env_file
from thothbot.core.errors import InvalidInput, SettingsInvalid
from thothbot.core.rules import validate_and_normalize
from thothbot.core.settings import parse_settings
from thothbot.keys import (
    DEFAULT_OVERLAP_HOURS,
    cmd_keys_create,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_keys_rotate,
)
from thothbot.service.admin import Database, StoreUnavailable, announce
from thothbot.simulate import PrettyPrinter, run_scenario

EXIT_OK, EXIT_DROPPED, EXIT_REFUSED = 0, 1, 2


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


@contextlib.contextmanager
def _scenario(path: str, stdin: TextIO) -> Iterator[BinaryIO]:
    """The scenario as a file to read twice (checked, then played) a line at a time: stdin is
    copied to a temporary file first."""
    if path == "-":
        with tempfile.TemporaryFile() as copy:
            if hasattr(stdin, "buffer"):
                shutil.copyfileobj(stdin.buffer, copy)
            else:
                copy.write(stdin.read().encode())
            copy.seek(0)
            yield copy
        return
    with contextlib.ExitStack() as closing:
        try:
            file = closing.enter_context(Path(path).open("rb"))
        except OSError as error:
            raise CliError(f"cannot read {path}: {error.strerror or error}") from None
        yield file


def cmd_rules_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    labels = None
    if args.settings:  # for urgency conditions: the labels of that server's classifier
        labels = parse_settings(_read(args.settings, sys.stdin)).settings.classifier.labels
    result = validate_and_normalize(_read(args.file, sys.stdin), labels)
    if args.json:
        problems = [
            {"path": p.path, "severity": p.severity.value, "message": p.message}
            for p in result.problems
        ]
        json.dump(
            {"rules": result.document, "problems": problems}, out, indent=2, ensure_ascii=False
        )
        out.write("\n")
    else:
        if not result.refused:
            json.dump(result.document, out, indent=2, ensure_ascii=False)
            out.write("\n")
        for p in result.problems:
            err.write(p.line() + "\n")
    if result.refused:
        return EXIT_REFUSED
    return EXIT_DROPPED if result.dropped else EXIT_OK


def cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rules = _read(args.rules, sys.stdin)
    settings = _read(args.settings, sys.stdin) if args.settings else None
    if args.pretty:
        printer = PrettyPrinter(out)
        emit = printer.emit
    else:

        def emit(line: dict[str, Any]) -> None:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    try:
        with _scenario(args.scenario, sys.stdin) as scenario:
            report = asyncio.run(run_scenario(rules, settings, scenario, emit))
    except SettingsInvalid as error:
        for path, message in error.problems:
            err.write(f"settings: {path or '(top)'}: {message}\n")
        return EXIT_REFUSED
    for p in report.rule_problems:
        err.write("rules: " + p.line() + "\n")
    for path, message in report.settings_warnings:
        err.write(f"settings: warning: {path}: {message}\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from thothbot.bot.app import run  # noqa: PLC0415  (discord.py: only the bot needs it)

    load_env_file()
    config = Config.from_env(os.environ)
    config.configure_logging()
    try:
        asyncio.run(run(config, out))
    except (InvalidInput, StoreUnavailable, StartupFailure, KeyboardInterrupt):
        raise
    except Exception as error:
        # A bug or a fault nobody foresaw: one line on the terminal, the trace in the log.
        logging.getLogger(__name__).debug("thothbot run stopped", exc_info=True)
        raise CliError(
            f"stopped by an unexpected error ({type(error).__name__}): LOG_LEVEL=DEBUG logs"
            " where it happened",
            code=1,
        ) from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from thothbot.demo import main as play  # noqa: PLC0415  (the sandbox: only the demo needs it)

    play(out)
    return EXIT_OK


def cmd_classify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Imported here: the openai SDK takes over a second to import, and only this command needs it.
    from thothbot.core.classify import parse_event  # noqa: PLC0415
    from thothbot.llm import classify_once  # noqa: PLC0415

    raw = _read("-", sys.stdin)
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CliError("the event on stdin is not UTF-8 text") from None
    except (ValueError, RecursionError) as error:
        raise CliError(f"the event on stdin is not valid JSON: {error}") from None
    ticket, settings = parse_event(document)
    load_env_file()
    config = Config.from_env(os.environ)
    result = asyncio.run(classify_once(config, ticket, settings))
    if args.json:
        answer = {"label": result.label, "source": result.source.value, "reason": result.reason}
        json.dump(answer, out, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(f"{result.label} ({result.source.value}): {result.reason}\n")
    return EXIT_OK


def cmd_ingress(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from thothbot.ingress import serve  # noqa: PLC0415  (aiohttp: only this command needs it)

    load_env_file()
    config = Config.from_env(os.environ)
    config.configure_logging()
    asyncio.run(serve(config, out))
    return EXIT_OK


def _database(args: argparse.Namespace) -> Database:
    load_env_file()
    return Database.from_config(Config.from_env(os.environ))


def cmd_db_info(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    found = _database(args).info()
    if args.json:
        document = {
            "path": str(found.path),
            "schema": found.schema,
            "schema_known": found.known,
            "schema_current": found.schema == found.known,
            "sizes": found.sizes,
            "rows": found.rows,
        }
        out.write(json.dumps(document) + "\n")
        return EXIT_OK
    out.write(f"database  {found.path}\n")
    out.write(f"schema    {found.schema} of {found.known} ({found.schema_state})\n")
    for name, size in found.sizes.items():
        out.write(f"size      {name}: {_bytes(size)}\n")
    width = max((len(table) for table in found.rows), default=0)
    out.write("rows\n")
    for table, count in found.rows.items():
        out.write(f"  {table.ljust(width)}  {count}\n")
    return EXIT_OK


def _bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def cmd_db_backup(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    database = _database(args)
    size = database.backup(Path(args.file))
    out.write(
        f"Backed up {database.path.resolve()} to {Path(args.file).resolve()} ({_bytes(size)}).\n"
    )
    out.write(database.secret_key_note() + "\n")
    return EXIT_OK


def cmd_db_restore(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    database = _database(args)
    kept = database.restore(Path(args.file))
    out.write(f"Restored {Path(args.file).resolve()} into {database.path.resolve()}.\n")
    out.write(f"The database as it was before is kept in {kept}: delete it when sure.\n")
    out.write(
        "Secrets in the restored database open only with the secret key in use when the backup"
        " was taken (THOTH_SECRET_KEY or secret.key beside the database).\n"
    )
    return EXIT_OK


def _add_db_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="the database: what it holds, back it up, restore it")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    info = db_commands.add_parser(
        "info",
        help="where the database is, its schema version, sizes and rows",
        description="Show the database THOTH_DB_PATH points to (its absolute path), its schema"
        " version and whether this thothbot's is the same, the size of its files and the rows"
        " of each table. Changes nothing.",
    )
    info.add_argument("--json", action="store_true", help="one JSON object on stdout")
    info.set_defaults(handler=cmd_db_info)
    backup = db_commands.add_parser(
        "backup",
        help="copy the database to a new file, safely while the bot runs",
        description="Copy the database into FILE with SQLite's online backup API: safe while"
        " thothbot runs. FILE must not exist yet. The backup's secrets are sealed with the"
        " secret key (THOTH_SECRET_KEY or secret.key beside the database): keep that key too,"
        " apart from the backups.",
    )
    backup.add_argument("file", metavar="FILE", help="the backup file to create")
    backup.set_defaults(handler=cmd_db_backup)
    restore = db_commands.add_parser(
        "restore",
        help="put a backup back in place of the database (thothbot stopped)",
        description="Replace the database's content with the backup FILE. Refused while"
        " thothbot (or anything else) has the database open: stop it first. The database as"
        " it was is kept beside it as <name>.before-restore-<time>.",
    )
    restore.add_argument("file", metavar="FILE", help="a file made by `thothbot db backup`")
    restore.set_defaults(handler=cmd_db_restore)


def _lines(path: str, stdin: TextIO) -> Iterator[bytes]:
    """The lines of a file, or of stdin for -, as bytes without their "\\n" (the only line end).

    Read one at a time: the input never has to fit in memory.
    """
    if path == "-":
        stream = stdin.buffer if hasattr(stdin, "buffer") else io.BytesIO(stdin.read().encode())
        for line in stream:
            yield line.removesuffix(b"\n")
        return
    try:
        with Path(path).open("rb") as file:
            for line in file:
                yield line.removesuffix(b"\n")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}") from None


# U+0085, U+2028 and U+2029 end lines for str.splitlines() and some JSON Lines readers: escaped,
# each object stays on one line for them too (still the same JSON).
_JSON_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def cmd_redact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # phonenumbers' metadata takes a while to import, and only this command needs it.
    from thothbot.core.redact import Redactor  # noqa: PLC0415

    redactor = Redactor()
    source = "stdin" if args.file == "-" else args.file
    for number, raw in enumerate(_lines(args.file, sys.stdin), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            message = f"{source}: line {number} is not UTF-8 text (byte {error.start + 1})"
            raise CliError(message) from None
        result = redactor.redact(line)
        if args.json:
            entities = [
                {"type": entity.type.value, "start": entity.start, "end": entity.end}
                for entity in result.entities
            ]
            document = json.dumps(
                {"redacted": result.text, "entities": entities}, ensure_ascii=False
            )
            out.write(document.translate(_JSON_LINE_BREAKS) + "\n")
        else:
            out.write(result.text + "\n")
    return EXIT_OK


def _add_redact_command(commands: Any) -> None:
    redact = commands.add_parser(
        "redact",
        help="replace personal data and pasted secrets in text with placeholders",
        description="Read one text per line (only \\n ends a line) and print each with its"
        " e-mail addresses, phone numbers, payment cards, IBANs, IP addresses, US SSNs and"
        " secrets (tokens, API keys, passwords, private keys) replaced by [EMAIL], [PHONE],"
        " [CARD], [IBAN], [IP], [SSN] or [SECRET].",
    )
    redact.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="text file; stdin if - or left out"
    )
    redact.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per line: {"redacted": TEXT, "entities": [{"type", "start",'
        ' "end"}]}, the offsets counted in characters (code points) of the input line',
    )
    redact.set_defaults(handler=cmd_redact)


def _add_ingress_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="API keys and webhook secrets for the HTTP ingress")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = keys_commands.add_parser(
        "create",
        help="create an API key and webhook signing secret for a server",
        description="Print a new API key (shown only once) and its webhook signing secret.",
    )
    create.add_argument("--guild", required=True, metavar="ID", help="the Discord server's id")
    create.add_argument("--json", action="store_true", help="one JSON object on stdout")
    create.set_defaults(handler=cmd_keys_create)
    listing = keys_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--guild", metavar="ID", help="only this server's keys")
    listing.add_argument("--json", action="store_true", help="a JSON array on stdout")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = keys_commands.add_parser("revoke", help="revoke a key: its requests get 401")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, from `keys list`")
    revoke.set_defaults(handler=cmd_keys_revoke)
    rotate = keys_commands.add_parser(
        "rotate",
        help="issue a new webhook signing secret; the old one verifies for an overlap",
        description="Print a new webhook signing secret for the key (shown only once). The"
        " previous secret keeps verifying for --overlap hours, then stops; meanwhile a sender"
        " may sign with either. The API key itself does not change.",
    )
    rotate.add_argument("key_id", metavar="KEY_ID", help="the key's id, from `keys list`")
    rotate.add_argument(
        "--overlap",
        type=float,
        default=DEFAULT_OVERLAP_HOURS,
        metavar="HOURS",
        help=f"how long the previous secret keeps verifying (default {DEFAULT_OVERLAP_HOURS:g})",
    )
    rotate.add_argument("--json", action="store_true", help="one JSON object on stdout")
    rotate.set_defaults(handler=cmd_keys_rotate)

    ingress = commands.add_parser(
        "ingress",
        help="serve the HTTP ingress alone until Ctrl-C",
        description="Accept events on THOTH_INGRESS_HOST:THOTH_INGRESS_PORT (default"
        " 127.0.0.1:8080) and open tickets from them, without the Discord bot.",
    )
    ingress.set_defaults(handler=cmd_ingress)


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
        "--settings", metavar="FILE", help="settings JSON whose classifier labels rules may use"
    )
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

    classify = commands.add_parser(
        "classify",
        help="classify one ticket's urgency",
        description='Read one event JSON object on stdin ({"subject", "body",'
        ' "customer_tier": free|pro|enterprise, "channel": email|chat|form, optional'
        ' "classifier": {"labels", "instructions"}}) and print its urgency label, who decided'
        " it (llm, cache or heuristic) and why. The model comes from THOTH_LLM_BASE_URL,"
        " THOTH_LLM_API_KEY and THOTH_LLM_MODEL; without a model the keyword heuristic decides.",
    )
    classify.add_argument("--json", action="store_true", help="one JSON object on stdout")
    classify.set_defaults(handler=cmd_classify)

    run = commands.add_parser(
        "run",
        help="run the Discord bot (configured from the environment)",
        description="Run the bot with DISCORD_TOKEN; the HTTP ingress starts with it when any"
        " API key exists (thothbot keys create).",
    )
    run.set_defaults(handler=cmd_run)
    demo = commands.add_parser(
        "demo",
        help="watch the real bot work a ticket against a local Discord, no account needed",
        description="Start the local Discord sandbox with a sample server, run the bot against"
        " it and print a short story as the people in it see it. Needs no token or network.",
    )
    demo.set_defaults(handler=cmd_demo)
    _add_ingress_commands(commands)
    _add_redact_command(commands)
    _add_db_commands(commands)
    return parser


@contextlib.contextmanager
def _saying_which_database(args: argparse.Namespace, err: TextIO) -> Iterator[None]:
    """Commands that open the database say which file on stderr (``run`` and ``ingress`` log
    it through their own logging instead, in the format the operator chose)."""
    # The demo's database is a throwaway in a temporary folder: naming it would only distract.
    if args.handler in (cmd_run, cmd_ingress, cmd_demo):
        yield
        return
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("thothbot: %(message)s"))
    announce.addHandler(handler)
    announce.setLevel(logging.INFO)
    announce.propagate = False
    try:
        yield
    finally:
        announce.removeHandler(handler)
        announce.propagate = True
        announce.setLevel(logging.NOTSET)


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        with _saying_which_database(args, err):
            code: int = args.handler(args, out, err)
    except CliError as error:
        err.write(f"thothbot: {error}\n")
        return error.code
    except (InvalidInput, StoreUnavailable, StartupFailure) as error:
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
