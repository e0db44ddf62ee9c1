"""thothbot installed as a package, away from this checkout: the wheel carries what the commands
read (the demo's rules), ``.env`` is read from the current folder with the environment winning,
and the image's pinned dependencies (requirements.lock) satisfy pyproject.toml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
STORY_END = "That was the real bot, over HTTP and a websocket, against a local Discord."


def _clean_environment(**extra: str) -> dict[str, str]:
    """The environment without our settings or anything that would import the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("THOTH_", "DISCORD_", "PYTHON", "LOG_"))
    }
    return {**env, **extra}


def _run(
    argv: Sequence[str | Path], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with thothbot's wheel installed in it; its ``bin`` folder.

    The wheel is built from a copy of what the Dockerfile copies (not in the checkout). Offline
    and fast: the venv borrows this test venv's dependencies through a .pth line, and the wheel
    goes in with --no-deps. A path listed in a .pth does not run the .pth files inside it, so
    the editable install of the checkout there stays out of the way.
    """
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "thothbot", source / "thothbot", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = base / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    built = _run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", wheels, source], base, os.environ.copy()
    )
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("thothbot-*.whl")

    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], base, os.environ.copy())
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, {}
    ).stdout.strip()
    Path(purelib, "borrowed-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    done = _run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
        base,
        os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    return venv / "bin"


def test_the_installed_package_is_the_wheel_not_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    where = _run(
        [installed / "python", "-c", "import thothbot; print(thothbot.__file__)"],
        tmp_path,
        _clean_environment(),
    )
    assert where.returncode == 0, where.stderr
    module = Path(where.stdout.strip())
    assert module.is_relative_to(installed.parent)
    assert not module.is_relative_to(ROOT)


def test_the_demo_plays_from_the_installed_package_in_another_folder(
    installed: Path, tmp_path: Path
) -> None:
    demo = _run([installed / "thothbot", "demo"], tmp_path, _clean_environment())
    assert (demo.returncode, demo.stderr) == (0, "")
    assert "== Dana rates the ticket 1: the negative-CSAT rule fires" in demo.stdout
    assert demo.stdout.rstrip().endswith(STORY_END)
    assert list(tmp_path.iterdir()) == []  # the demo's database was temporary, not here


def test_rules_validate_runs_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    shutil.copy(ROOT / "rules.example.json", rules)
    ok = _run(
        [installed / "thothbot", "rules", "validate", "rules.json"], tmp_path, _clean_environment()
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.strip().startswith("[")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "x", "trigger": "no_such_trigger", "actions": []}]', encoding="utf-8")
    refused = _run(
        [installed / "thothbot", "rules", "validate", "bad.json"], tmp_path, _clean_environment()
    )
    assert refused.returncode in {1, 2}
    assert refused.stderr
    assert "Traceback" not in refused.stderr


def test_env_in_the_current_folder_is_read_and_the_environment_wins(
    installed: Path, tmp_path: Path
) -> None:
    from_file, from_environment = tmp_path / "from-dotenv.db", tmp_path / "from-environment.db"
    here = tmp_path / "desk"
    here.mkdir()
    (here / ".env").write_text(f"# the operator's settings\nTHOTH_DB_PATH={from_file}\n")
    thothbot = installed / "thothbot"

    created = _run(
        [thothbot, "keys", "create", "--guild", "7", "--json"], here, _clean_environment()
    )
    assert created.returncode == 0, created.stderr
    assert from_file.exists()
    listed = _run([thothbot, "keys", "list", "--json"], here, _clean_environment())
    assert [k["key_id"] for k in json.loads(listed.stdout)] == [
        json.loads(created.stdout)["key_id"]
    ]

    environment = _clean_environment(THOTH_DB_PATH=str(from_environment))
    overridden = _run([thothbot, "keys", "list", "--json"], here, environment)
    assert overridden.returncode == 0, overridden.stderr
    assert json.loads(overridden.stdout) == []
    assert from_environment.exists()

    # Only the current folder's .env: from elsewhere the default database is used, here in
    # that folder's ./data, and the .env's keys are not seen.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    away = _run([thothbot, "keys", "list", "--json"], elsewhere, _clean_environment())
    assert (away.returncode, json.loads(away.stdout)) == (0, [])
    assert (elsewhere / "data" / "thothbot.db").exists()


def test_an_unreadable_env_is_one_plain_line(installed: Path, tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"THOTH_DB_PATH=\xff\xfe.db\n")
    run = _run([installed / "thothbot", "keys", "list"], tmp_path, _clean_environment())
    assert run.returncode == 2
    assert run.stderr == "thothbot: cannot read .env in the current folder: it is not UTF-8 text\n"


def test_the_packaged_example_rules_are_the_top_level_ones() -> None:
    packaged = ROOT / "thothbot" / "examples" / "rules.example.json"
    assert packaged.read_bytes() == (ROOT / "rules.example.json").read_bytes()


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned with ==: {line}"
            pins[canonicalize_name(name)] = version
    assert len(pins) > len(project["dependencies"])  # theirs too, not only ours
    for dependency in map(Requirement, project["dependencies"]):
        name = canonicalize_name(dependency.name)
        assert name in pins, f"{dependency.name} is not in requirements.lock: run make lock"
        assert dependency.specifier.contains(pins[name]), (
            f"requirements.lock pins {dependency.name}=={pins[name]}, outside {dependency}:"
            " run make lock"
        )


def _verify_unit(unit: str, folder: Path) -> subprocess.CompletedProcess[str]:
    path = folder / "thothbot.service"
    # Pointed at this venv's thothbot: systemd checks that the program exists.
    path.write_text(
        unit.replace("/opt/thothbot/bin/thothbot", str(Path(sys.executable).with_name("thothbot")))
    )
    return _run(["systemd-analyze", "verify", path], folder, os.environ.copy())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_is_one_systemd_accepts_whole(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "thothbot.service").read_text(encoding="utf-8")
    checked = _verify_unit(unit, tmp_path)
    assert (checked.returncode, checked.stderr) == (0, "")
    # A misspelt setting would only be ignored, with a note: the check sees it.
    typo = _verify_unit(unit.replace("ProtectHome=yes", "ProtectHom=yes"), tmp_path)
    assert "Unknown key" in typo.stderr
