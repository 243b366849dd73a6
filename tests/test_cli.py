"""The ``sprocket`` command from a clone: subcommands, their help, lazy imports, the demo found in place."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]


def sprocket(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    return subprocess.run(
        [sys.executable, "-m", "sprocket", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_help_lists_every_subcommand_and_each_has_its_own_help() -> None:
    listing = sprocket("--help")
    assert listing.returncode == 0, listing.stderr
    for command in ("play", "serve", "session", "netsim"):
        assert re.search(rf"^\s+{command}\s+\S", listing.stdout, re.M), listing.stdout
        own = sprocket(command, "--help")
        assert own.returncode == 0, own.stderr
        assert f"usage: python -m sprocket {command}" in own.stdout


def test_play_keeps_the_demo_options_and_session_defaults_to_the_demo() -> None:
    play = sprocket("play", "--help").stdout
    for option in (
        "--host",
        "--join",
        "--server",
        "--bot",
        "--lag",
        "--jitter",
        "--port",
        "--name",
        "--frames",
    ):
        assert option in play
    assert re.search(r"default:\s+(sprocket\.)?demos\.hockey", sprocket("session", "--help").stdout)


def test_an_unknown_command_is_a_usage_error() -> None:
    result = sprocket("fly")
    assert result.returncode == 2
    assert "invalid choice: 'fly'" in result.stderr


def test_help_imports_neither_pygame_nor_the_game_layer() -> None:
    code = (
        "import sys\n"
        "from sprocket.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m == 'pygame' or m.startswith('sprocket.game')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_serve_runs_a_server_class_named_on_the_command_line() -> None:
    result = sprocket(
        "serve", "demos.hockey:HockeyServer", "--host", "127.0.0.1", "--port", "0", "--duration", "0.3"
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"HockeyServer listening on 127\.0\.0\.1:\d+", result.stdout)


def test_play_runs_the_demo_headless_and_its_window_connects() -> None:
    result = sprocket("play", "--frames", "90", "-v")
    assert result.returncode == 0, result.stderr
    assert re.search(r"(?<!dis)connected to 127\.0\.0\.1:\d+", result.stderr), result.stderr


def test_play_without_pygame_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['pygame'] = None  # as if pygame were not installed\n"
        "from sprocket.cli import main\n"
        "sys.exit(main(['play', '--frames', '1']))"
    )
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "sprocket play: needs pygame" in result.stderr and "sprocket[game]" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "sprocket.demos.hockey:HockeyServer", "--port", "99999"),
        ("session", "--port", "70000"),
        ("play", "--host", "--port", "-1"),
        ("play", "--join", "127.0.0.1:abc"),
        ("play", "--join", "127.0.0.1:70000"),
    ],
)
def test_a_bad_port_is_a_usage_error_not_a_traceback(args: tuple[str, ...]) -> None:
    result = sprocket(*args)
    assert result.returncode == 2, result.stderr
    assert "a port is a whole number from 0 to 65535" in result.stderr and "Traceback" not in result.stderr


def test_serve_finds_a_module_in_the_current_folder_with_the_installed_command(tmp_path: Path) -> None:
    # The console script (unlike python -m) does not put the current folder on the import path by itself.
    (tmp_path / "myserver.py").write_text(
        "from sprocket.game import GameServer\nclass MyServer(GameServer):\n    pass\n"
    )
    command = Path(sys.executable).parent / "sprocket"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    run = [str(command), "serve", "myserver:MyServer", "--port", "0", "--duration", "0.2"]
    ok = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0 and "MyServer listening on" in ok.stdout, ok.stderr
    typo = subprocess.run(
        [*run[:2], "myserver:MyServr"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert typo.returncode == 1 and "has no 'MyServr'" in typo.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("play", "--lag", "-100"), "argument --lag: give a number of milliseconds, 0 or more"),
        (("session", "--jitter", "-5"), "argument --jitter: give a number of milliseconds, 0 or more"),
        (("session", "--windows", "-1"), "argument --windows: give a whole number, 0 or more"),
        (("session", "--windows", "0"), "nothing to start"),
        (("session", "--duration", "soon"), "argument --duration: give a number of seconds"),
        (
            ("serve", "demos.hockey:HockeyServer", "--grace", "-1"),
            "argument --grace: give a number of seconds",
        ),
    ],
)
def test_bad_numbers_are_usage_errors_in_the_users_units(args: tuple[str, ...], says: str) -> None:
    result = sprocket(*args)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr


def test_the_session_without_a_display_says_so_and_starts_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    run = [sys.executable, "-m", "sprocket", "session", "--windows", "1"]
    result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no display found" in result.stderr and "session: server on" not in result.stdout


def test_the_game_layer_keeps_pygame_quiet_when_imported_before_pygame() -> None:
    # The README's client imports sprocket.game's NetworkedGame; pygame's banner must not reach stdout.
    code = "from sprocket.game import NetworkedGame\nimport pygame\nprint('done')"
    env = {k: v for k, v in os.environ.items() if k != "PYGAME_HIDE_SUPPORT_PROMPT"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
