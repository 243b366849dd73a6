"""The install a new user gets: build the wheel, install it into a fresh virtualenv, play the demo headless.

Nothing from this checkout is importable in that virtualenv (the commands run outside the clone), so
this proves the wheel carries the demo and its assets, installs nothing under a generic top-level name,
and brings the ``sprocket`` command and the pytest plugin.  Needs the package index (as CI has).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "benchmarks"
)
COMMANDS = ("play", "serve", "session", "netsim")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(the wheel, the fresh venv's bin directory, a working directory outside the clone)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=SKIP)  # a clean tree: no stale build/ from earlier builds
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", tmp / "dist",
        source, cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("sprocket-*.whl")
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    bin_dir = tmp / "venv" / "bin"
    pip = [bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(*pip, f"{wheel}[game,test]", cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    yield wheel, bin_dir, work


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "VIRTUAL_ENV")}
    env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    return env


def test_the_wheel_carries_every_module_the_demo_and_its_assets_under_sprocket(
    installed: tuple[Path, Path, Path],
) -> None:
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.startswith("sprocket-")}
    assert tops == {"sprocket"}, f"the wheel installs top-level names besides sprocket: {sorted(tops)}"
    expected = {f"sprocket/{p.relative_to(ROOT / 'sprocket')}" for p in (ROOT / "sprocket").rglob("*.py")}
    expected |= {f"sprocket/demos/{p.relative_to(ROOT / 'demos')}" for p in (ROOT / "demos").rglob("*.py")}
    for folder in ("images", "sounds"):
        expected |= {f"sprocket/assets/{folder}/{p.name}" for p in (ROOT / "assets" / folder).iterdir()}
    expected.add("sprocket/py.typed")
    missing = sorted(n for n in expected if "__pycache__" not in n and n not in names)
    assert not missing, f"the wheel lacks {missing} (a package missing from [tool.setuptools] packages?)"


def test_nothing_is_installed_under_a_generic_top_level_name(installed: tuple[Path, Path, Path]) -> None:
    _, bin_dir, work = installed
    out = run(bin_dir / "python", "-c", "import importlib.util as u; "
              "print([n for n in ('demos', 'assets') if u.find_spec(n)])", cwd=work)  # fmt: skip
    assert out.strip() == "[]"
    (site,) = (bin_dir.parent / "lib").glob("python3*/site-packages")
    assert not {"demos", "assets"} & {p.name for p in site.iterdir()}


def test_the_sprocket_command_lists_and_explains_its_subcommands(installed: tuple[Path, Path, Path]) -> None:
    _, bin_dir, work = installed
    env = clean_env()
    for top in ([bin_dir / "sprocket"], [bin_dir / "python", "-m", "sprocket"]):
        listing = run(*top, "--help", cwd=work, env=env)
        for command in COMMANDS:
            assert re.search(rf"^\s+{command}\s+\S", listing, re.M), f"{command} missing from:\n{listing}"
    for command in COMMANDS:
        text = run(bin_dir / "sprocket", command, "--help", cwd=work, env=env)
        assert f"usage: sprocket {command}" in text


def test_sprocket_play_runs_the_demo_headless_from_the_installed_wheel(
    installed: tuple[Path, Path, Path],
) -> None:
    _, bin_dir, work = installed
    err = run(bin_dir / "sprocket", "play", "--frames", "120", "-v", cwd=work, env=clean_env(), timeout=120)
    assert "Traceback" not in err
    assert re.search(r"(?<!dis)connected to 127\.0\.0\.1:\d+", err), err  # the window joined its server


def test_the_installed_plugin_runs_a_users_test_against_the_installed_demo(
    installed: tuple[Path, Path, Path],
) -> None:
    _, bin_dir, work = installed
    (work / "test_users_game.py").write_text(
        "from sprocket.demos.hockey import HockeyBot, HockeyServer\n\n\n"
        "def test_both_bots_get_a_mallet(game_server, game_bots, wait_until):\n"
        "    server = game_server(HockeyServer)\n"
        "    bots = game_bots(server, HockeyBot, count=2)\n"
        "    wait_until(lambda: all(bot.me is not None for bot in bots), 10, 'a mallet for each bot')\n"
    )
    out = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_users_game.py",
              cwd=work, env=clean_env(), timeout=120)  # fmt: skip
    assert re.search(r"\b1 passed\b", out), out
