"""`thothbot run` that cannot start says why in one plain line and exits non-zero, in its own
process as an operator starts it: no traceback on the terminal."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from thothbot.sandbox import Sandbox


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(env: dict[str, str], cwd: Path, command: str = "run") -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("THOTH_", "LOG_"))}
    defaults = {
        "DISCORD_TOKEN": "a-token",
        "THOTH_DB_PATH": str(cwd / "thoth.db"),
        "THOTH_DISCORD_API_URL": f"http://127.0.0.1:{closed_port()}",
        "THOTH_INGRESS_PORT": str(closed_port()),
    }
    return subprocess.run(
        [sys.executable, "-m", "thothbot", command],
        env=base | defaults | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def the_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line that says why; nothing else from thothbot but log lines."""
    assert result.returncode not in (0, None), result
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    said = [line for line in result.stderr.splitlines() if line.startswith("thothbot: ")]
    assert len(said) == 1, output
    return said[0]


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def test_discord_unreachable(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    line = the_line(run({"THOTH_DISCORD_API_URL": api}, tmp_path))
    assert line.startswith(f"thothbot: cannot reach Discord at {api} (")
    assert "check the network" in line


async def test_refused_token(discord: Sandbox, tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": "not-the-bots-token",
        "THOTH_DISCORD_API_URL": discord.api_url,
        "THOTH_DISCORD_GATEWAY_URL": discord.gateway_url,
    }
    # The sandbox answers on this loop: the process is waited for on a thread meanwhile.
    result = await asyncio.to_thread(run, env, tmp_path)
    assert "Discord refused DISCORD_TOKEN" in the_line(result)
    # The control: Discord was reached and refused, not unreachable.
    assert discord.requests_to("GET", r"/users/@me$")


@pytest.mark.parametrize("command", ["run", "ingress"])
def test_busy_port(tmp_path: Path, port_in_use: int, command: str) -> None:
    line = the_line(run({"THOTH_INGRESS_PORT": str(port_in_use)}, tmp_path, command))
    assert line == (
        f"thothbot: cannot listen on 127.0.0.1:{port_in_use}: another program uses that port."
        " Stop it, or set THOTH_INGRESS_PORT to a free port."
    )


def test_unwritable_database_folder(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file, where the database's folder should be")
    line = the_line(run({"THOTH_DB_PATH": str(tmp_path / "data" / "thoth.db")}, tmp_path))
    assert "cannot create its folder" in line


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("THOTH_INGRESS_PORT", "abc", "THOTH_INGRESS_PORT must be a whole number"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be text or json"),
        ("THOTH_DISCORD_API_URL", "discord.com", "THOTH_DISCORD_API_URL must start with"),
        ("DISCORD_TOKEN", "", "DISCORD_TOKEN is not set"),
    ],
)
def test_bad_settings(tmp_path: Path, name: str, value: str, said: str) -> None:
    line = the_line(run({name: value}, tmp_path))
    assert said in line
    assert not (tmp_path / "thoth.db").exists()  # refused before anything was made
