"""Every example in the README runs verbatim (see tests/readme.py for how blocks are marked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.readme import Block, blocks, matches, steps
from thothbot.core.rules import validate_and_normalize
from thothbot.core.settings import parse_settings
from thothbot.ingress import SupportTicketCreated

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ALL = blocks(README.read_text("utf-8"))
KINDS = {"", "skip", "rules", "settings", "scenario", "event", "output"}
# What a person's checkout holds after `make test`; the scratch copy links to it.
LEFT_OUT = {".git", "data", ".env", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def test_every_block_is_runnable_or_says_why_not() -> None:
    assert ALL, "the README has no examples"
    for block in ALL:
        assert block.kind in KINDS, f"{block.name}: unknown example kind {block.kind!r}"
        assert block.kind != "skip" or block.note, f"{block.name}: a skip must say why"
        assert block.lang in {"sh", "console", "json", "text", ""}, (
            f"{block.name}: say what a {block.lang!r} block is, or make it sh, console or json"
        )
        if block.lang in {"sh", "console"} and block.kind not in {"", "skip"}:
            pytest.fail(f"{block.name}: a shell block is run, or skipped with a reason")


def _netns() -> bool:
    """Whether this machine lets us make a network namespace of our own (root, unshare)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[dict[str, Any]]]:
    """Run every shell example once, in order, in a scratch copy of the checkout."""
    work = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in LEFT_OUT | {".venv", "pyproject.toml"}:
            (work / entry.name).symlink_to(entry)
    # `make` reinstalls when pyproject.toml is newer than the install; `make test` has just
    # installed this very file, so the copy is as old as can be.
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    os.utime(work / "pyproject.toml", (0, 0))
    (work / ".venv").symlink_to(Path(sys.prefix))
    home = work / ".home"
    home.mkdir()
    env = {
        "PATH": os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        # What a terminal shows: stdout and stderr in the order they were written.
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "tests.readme", str(README), str(work)]
    if _netns():
        command = ["unshare", "-n", *command, "--netns"]
    subprocess.run(command, cwd=ROOT, env=env | {"PYTHONPATH": str(ROOT)}, timeout=900, check=False)
    results = json.loads((work / "results.json").read_text())
    by_block: dict[int, list[dict[str, Any]]] = {}
    for result in results:
        by_block.setdefault(result["block"], []).append(result)
    return by_block


def _id(block: Block) -> str:
    return f"{block.name}-{block.lang or 'text'}{'-' + block.kind if block.kind else ''}"


@pytest.mark.parametrize("block", ALL, ids=_id)
def test_example(block: Block, played: dict[int, list[dict[str, Any]]], tmp_path: Path) -> None:
    if block.kind == "skip":
        pytest.skip(f"{block.name}: {block.note}")
    if block.lang in {"sh", "console"}:
        ran = played.get(block.line, [])
        assert len(ran) == len(steps(block)), f"{block.name} did not run (an earlier one hung?)"
        for result in ran:
            shown = f"$ {result['command']}\n{result['output']}"
            if result["expected"] is None:
                assert result["status"] == 0, f"{block.name} failed:\n{shown}"
            else:
                assert matches(result["expected"], result["output"]), (
                    f"{block.name} printed something else:\n{shown}"
                )
        return
    if block.lang == "json":
        _check_json(block, tmp_path)


def _documents(block: Block) -> list[Any]:
    try:
        return [json.loads(block.text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in block.text.splitlines() if line.strip()]


def _check_json(block: Block, tmp_path: Path) -> None:
    documents = _documents(block)
    match block.kind:
        case "rules":
            (document,) = documents
            rules = document if isinstance(document, list) else [document]
            result = validate_and_normalize(json.dumps(rules).encode())
            assert not result.problems, [p.line() for p in result.problems]
        case "settings":
            (document,) = documents
            parsed = parse_settings(json.dumps(document).encode())
            assert not parsed.warnings, parsed.warnings
        case "event":
            for document in documents:
                SupportTicketCreated.model_validate(document)
        case "scenario":
            scenario = tmp_path / "scenario.jsonl"
            scenario.write_text(block.text + "\n", "utf-8")
            played = subprocess.run(
                [sys.executable, "-m", "thothbot", "simulate", "--rules",
                 str(ROOT / "rules.example.json"), "--settings",
                 str(ROOT / "examples" / "settings.json"), str(scenario)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert played.returncode == 0, played.stderr
            assert '"rejected"' not in played.stdout, played.stdout
        case _:
            pass  # plain JSON: parsing it was the check


# The checks themselves can fail


def test_ellipsis_stands_for_any_lines_or_text_and_nothing_else() -> None:
    assert matches("a\n...\nz", "a\nb\nc\nz\n")
    assert matches("id: ...!", "id: evt_12!\n")
    assert not matches("a\nz", "a\nb\nz\n")
    assert not matches("401", "422\n")


def test_a_failing_command_in_a_shell_block_fails_its_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "```sh\nexport GREETING=hi\nfalse\necho not reached\n```\n\n"
        "```console\n$ echo $GREETING\nhi\n```\n",
        "utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "tests.readme", str(readme), str(tmp_path)],
        cwd=ROOT, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}, check=True,
    )  # fmt: skip
    failed, carried = json.loads((tmp_path / "results.json").read_text())
    assert failed["status"] != 0
    assert "not reached" not in failed["output"]
    assert carried["output"] == "hi\n"  # variables carry over from one block to the next
