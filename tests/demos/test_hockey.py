"""Sprocket Hockey end to end: a headless server and bots over loopback, a rendered frame, the launchers."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from demos.hockey.__main__ import default_name, parse, window_position
from demos.hockey.bot import HockeyBot
from demos.hockey.rules import (
    CENTER_X,
    CENTER_Y,
    LEFT_SIDE,
    RIGHT_SIDE,
    Mallet,
    Match,
    Puck,
    advance_puck,
    move,
)
from demos.hockey.server import HockeyServer
from sprocket import Servo
from sprocket.game.session import tile
from sprocket.netsim import LagProxy
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "demos.hockey"]

pytestmark = pytest.mark.timeout(120)


def bot_match(bot: HockeyBot) -> Match | None:
    latest = bot.net.latest
    if latest is None:
        return None
    return next((e for e in latest.entities.values() if isinstance(e, Match)), None)


def play(lag: float = 0.0, jitter: float = 0.0) -> None:
    server = HockeyServer(Servo("127.0.0.1", 0, timeout=5.0)).start()
    proxy = LagProxy("127.0.0.1", server.port, lag=lag, jitter=jitter, seed=3).start()
    # A sharp bot against one that only stands in its goal, so that points come within seconds.
    bots = [
        HockeyBot("127.0.0.1", proxy.port, name=f"bot{i}", skill=s).start() for i, s in enumerate((1.0, 0.0))
    ]
    try:
        wait_until(lambda: server.match.phase == "play", 20, "the bots to start a match")
        start = (server.puck.x, server.puck.y)
        wait_until(lambda: (server.puck.x, server.puck.y) != start, 10, "the puck to move")
        wait_until(lambda: server.match.left + server.match.right >= 1, 90, "a goal")
        # Both clients agree with the server about the score and who plays where.
        for bot in bots:
            wait_until(
                lambda b=bot: (
                    (m := bot_match(b)) is not None
                    and (m.left, m.right) == (server.match.left, server.match.right)
                ),
                10,
                "the client to see the server's score",
            )
            mine = b_mallet(bot)
            assert mine is not None and mine.side in (LEFT_SIDE, RIGHT_SIDE)
        assert {server.match.left_name, server.match.right_name} == {"bot0", "bot1"}
    finally:
        for bot in bots:
            bot.stop()
        proxy.close()
        server.stop()


def b_mallet(bot: HockeyBot) -> Mallet | None:
    latest = bot.net.latest
    if latest is None or bot.me is None:
        return None
    entity = latest.entities.get(bot.me)
    return entity if isinstance(entity, Mallet) else None


def test_two_bots_play_a_point_over_loopback() -> None:
    play()


def test_two_bots_play_a_point_under_lag_and_jitter() -> None:
    play(lag=0.12, jitter=0.03)


def test_a_player_leaving_pauses_the_match_and_a_new_one_resumes_it() -> None:
    server = HockeyServer(Servo("127.0.0.1", 0)).start()
    a = HockeyBot("127.0.0.1", server.port, name="a").start()
    b = HockeyBot("127.0.0.1", server.port, name="b").start()
    try:
        wait_until(lambda: server.match.phase in ("countdown", "play"), 20, "a match")
        b.stop()
        wait_until(lambda: server.match.phase == "paused", 10, "the pause")
        c = HockeyBot("127.0.0.1", server.port, name="c").start()
        wait_until(lambda: server.match.phase in ("countdown", "play"), 10, "the match to resume")
        c.stop()
    finally:
        a.stop()
        b.stop()
        server.stop()


def test_the_rule_keeps_mallets_on_their_half_and_ignores_junk_input() -> None:
    left = Mallet(x=100.0, y=CENTER_Y, side=LEFT_SIDE)
    for _ in range(200):
        left = move(left, {"x": 1.0, "y": 0.0}, 1 / 60)
    assert left.x <= CENTER_X - 32
    before = (left.x, left.y)
    for junk in (None, "x", {"x": float("nan")}, {"x": "fast"}, {"x": 1e300, "y": True}, [1, 2]):
        left = move(left, junk, 1 / 60)
    assert left.x <= CENTER_X - 32 and left.y == before[1]


def test_the_puck_bounces_and_scores() -> None:
    puck = Puck(x=CENTER_X, y=CENTER_Y, vx=-900.0, vy=0.0)
    events: list[tuple[str, float, float]] = []
    for _ in range(120):
        events += advance_puck(puck, [], 1 / 60)
        if any(e[0] == "goal" for e in events):
            break
    assert ("goal", RIGHT_SIDE, 0.0) in events
    puck = Puck(x=CENTER_X, y=100.0, vx=0.0, vy=-600.0)
    events = []
    for _ in range(30):
        events += advance_puck(puck, [], 1 / 60)
    assert any(e[0] == "wall" for e in events) and puck.vy > 0


def test_one_rendered_frame_shows_the_players_and_the_puck_where_the_state_says() -> None:
    from demos.hockey.game import HockeyGame

    server = HockeyServer(Servo("127.0.0.1", 0)).start()
    game = HockeyGame("127.0.0.1", server.port, name="tester")
    bot = HockeyBot("127.0.0.1", server.port, name="robo").start()
    try:
        deadline_frames = 600
        while deadline_frames and not (len(game.entities) >= 4 and game.my_entity is not None):
            game.step(dt=1 / 60)
            deadline_frames -= 1
        assert deadline_frames, "the game never showed both mallets, the puck and the match"
        game.sprocket.send(ready=True)  # as pressing SPACE does; the bot is always ready
        while deadline_frames and game.find(Match).phase not in ("countdown", "play"):
            game.step(dt=1 / 60)
            deadline_frames -= 1
        assert deadline_frames, "the match never started"
        game.step(dt=1 / 60)
        screen = game.screen
        colours = {screen.get_at((x, y))[:3] for x in range(0, 960, 37) for y in range(0, 640, 29)}
        assert len(colours) > 50  # not blank

        def glow_at(x: float, y: float, channel: int) -> int:
            return max(
                screen.get_at((int(x) + dx, int(y) + dy))[channel]
                for dx in (-30, 0, 30)
                for dy in (-30, 0, 30)
            )

        for entity in game.entities.values():
            if isinstance(entity, Mallet):
                # Blue mallets have a strong blue rim, red ones a strong red rim.
                channel = 2 if entity.side == LEFT_SIDE else 0
                assert glow_at(entity.x, entity.y, channel) > 180
            elif isinstance(entity, Puck):
                ring = [screen.get_at((int(entity.x) + dx, int(entity.y) + dy)) for dx in range(-18, 19, 3)
                        for dy in range(-18, 19, 3)]  # fmt: skip
                assert any(c.r > 200 and 120 < c.g < 230 and c.b < 150 for c in ring)  # amber
    finally:
        bot.stop()
        game.close()
        server.stop()


def test_the_demo_command_runs_headless_and_exits() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demos.hockey", "--frames", "120", "--verbose"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # --verbose logs the network events: the window joined, then the bot, over the real network.
    assert "client 1 joined" in result.stderr and "client 2 joined" in result.stderr, result.stderr


def test_the_local_session_starts_server_window_and_bot() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sprocket.game.session", "demos.hockey", "--windows", "1", "--bots", "1",
         "--lag", "60", "--jitter", "10", "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "session: server on 127.0.0.1" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_headless_server_command(tmp_path: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sprocket.game.serve", "demos.hockey:HockeyServer", "--port", "0",
         "--host", "127.0.0.1", "--duration", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "HockeyServer listening" in result.stdout


# -- the demo as a new user meets it: no display, bad arguments, nothing to join, a dying server -------------


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_display_is_a_clear_error_within_two_seconds() -> None:
    gone = ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", "SDL_AUDIODRIVER")
    env = {k: v for k, v in os.environ.items() if k not in gone}
    start = time.monotonic()
    result = subprocess.run(DEMO, cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - start
    assert result.returncode == 1, result.stderr
    # One line, the one that says what to do: no SDL or ALSA noise, no traceback, nothing on stdout.
    assert result.stderr == "./play: no display found: set DISPLAY, or use --server / --bot to run headless\n"
    assert result.stdout == ""
    assert elapsed < 2.0, f"took {elapsed:.2f} s"  # the promise: within 2 s, not after a wait


def test_without_a_sound_card_the_demo_plays_silently_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sprocket.game.app import sound_available

    monkeypatch.delenv("SDL_AUDIODRIVER", raising=False)
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    run = [*DEMO, "--frames", "20", "-v"]
    result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ALSA" not in result.stderr and "Traceback" not in result.stderr
    if not sound_available():  # this machine has no sound card: the fallback is said once
        assert result.stderr.count("no sound device found: playing without sound") == 1, result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--join", "127.0.0.1:abc"], "argument --join: a port is a whole number from 0 to 65535, not 'abc'"),
        (
            ["--join", "127.0.0.1:70000"],
            "argument --join: a port is a whole number from 0 to 65535, not '70000'",
        ),
        (["--port", "99999"], "argument --port: a port is a whole number from 0 to 65535, not '99999'"),
        (
            ["--lag", "-100"],
            "argument --lag: give a number of milliseconds, 0 or more (e.g. 150), not '-100'",
        ),
        (["--jitter", "lots"], "argument --jitter: give a number of milliseconds"),
        (["--frames", "-1"], "argument --frames: give a whole number, 0 or more, not '-1'"),
        (["--bot"], "--bot plays in a game: give --join HOST"),
        (["--bot", "--server"], "--bot and --server do not go together"),
    ],
)
def test_bad_arguments_are_usage_errors_in_the_users_units(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(args)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_a_negative_lag_on_the_command_line_is_a_usage_error_not_a_traceback() -> None:
    result = subprocess.run([*DEMO, "--lag", "-100"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "milliseconds" in result.stderr and "Traceback" not in result.stderr


def test_default_names_differ_for_host_and_guest_and_their_windows_open_apart() -> None:
    from sprocket.game.app import desktop_size

    assert default_name(parse([])) == "You"
    assert default_name(parse(["--host"])) == "Host"
    assert default_name(parse(["--join", "h"])) == "Guest"
    assert default_name(parse(["--bot", "--join", "h"])) == "Robo"
    assert default_name(parse(["--join", "h", "--name", "Ann"])) == "Ann"
    host = window_position(parse(["--host"]), (960, 640))
    guest = window_position(parse(["--join", "h"]), (960, 640))
    assert host is not None and guest is not None and host != guest
    width, _ = desktop_size()
    for x, _y in (host, guest):
        assert x >= 0 and x + 960 <= max(width, 960)
    assert window_position(parse([]), (960, 640)) is None  # the window manager's choice


def test_joining_where_nothing_listens_says_could_not_connect_not_connection_lost() -> None:
    from demos.hockey.game import HockeyGame

    port = closed_port()
    game = HockeyGame("127.0.0.1", port, name="tester", where=f"127.0.0.1:{port}")
    try:
        frames = 600
        while frames and game.failure is None:
            game.step(dt=1 / 60)
            frames -= 1
        assert game.failure is not None, "the refused connection was never noticed"
        assert game.failure.startswith(f"could not connect to 127.0.0.1:{port}: Connection refused")
        assert not game.was_connected
        assert game.hint(None) == "R: reconnect    Esc: quit"
    finally:
        game.close()


def test_a_bot_that_cannot_connect_says_so_and_exits_1() -> None:
    port = closed_port()
    result = subprocess.run([*DEMO, "--bot", "--join", f"127.0.0.1:{port}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert f"could not connect to 127.0.0.1:{port}: Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


class Lines:
    """A child process's stdout, read line by line in a thread (so a test can wait on a line)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._stream = process.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def test_a_bot_whose_server_dies_says_it_is_reconnecting_then_why_it_stopped_and_exits_1() -> None:
    port = closed_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sprocket.game.serve", "demos.hockey:HockeyServer", "--host", "127.0.0.1",
         "--port", str(port), "--grace", "1"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    bot = None
    try:
        said = Lines(server)
        wait_until(lambda: said.has("listening"), 30, "the server to listen")
        bot = subprocess.Popen([*DEMO, "--bot", "--join", f"127.0.0.1:{port}"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        out = Lines(bot)
        wait_until(lambda: out.has(f"Robo joined the game at 127.0.0.1:{port}"), 30, "the bot to join")
        server.kill()  # dies without a goodbye: the bot's Sprocket tries to get the session back
        wait_until(lambda: bot.poll() is not None, 60, "the bot to give up")
        assert bot.returncode == 1
        assert out.has(f"lost the connection to 127.0.0.1:{port}") and out.has("reconnecting for up to 1 s")
        assert bot.stderr is not None
        err = bot.stderr.read()
        assert "the bot stopped:" in err and "could not reconnect" in err, err
        assert "Traceback" not in err
    finally:
        for process in (bot, server):
            if process is not None and process.poll() is None:
                process.kill()
            if process is not None:
                process.wait(10)


# -- the session command: windows that fit the screen, seats in order --------------------------------------


def test_session_windows_fit_the_screen_side_by_side_without_overlapping() -> None:
    for screen in ((1280, 800), (1920, 1080), (1024, 768), (3840, 2160)):
        for count in (1, 2, 3):
            places = sorted(tile(i, count, screen, (960, 640)) for i in range(count))
            for (x, y), (w, h) in places:
                assert x >= 0 and y >= 0 and x + w <= screen[0] and y + h <= screen[1], (screen, count)
                assert abs(w / h - 960 / 640) < 0.01  # the game's shape is kept
                assert w <= 960  # never scaled up
            for ((x1, _), (w1, _)), ((x2, _), _) in itertools.pairwise(places):
                assert x1 + w1 <= x2, (screen, count)  # side by side, no overlap
    assert tile(0, 1, (1920, 1080), (960, 640))[1] == (960, 640)  # fits: shown as drawn
    assert tile(1, 2, (1280, 800), (960, 640))[1][0] >= 600  # two on a 1280 screen: still readable


def test_the_session_seats_player_1_first_and_bots_after_the_windows(tmp_path: Path) -> None:
    seats = tmp_path / "seats"
    env = dict(os.environ, SPROCKET_TEST_SEATS=str(seats))
    result = subprocess.run(
        [sys.executable, "-m", "sprocket.game.session", "tests.demos.session_game", "--windows", "2",
         "--bots", "1", "--duration", "0.5"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # Player 1 is the left window and the left (blue) side, shown first in the score bar; the bot watches.
    assert seats.read_text().splitlines() == [f"{LEFT_SIDE} Player 1", f"{RIGHT_SIDE} Player 2", "None Bot 1"]


# -- on screen: hints that fit, text over the puck and mallets ----------------------------------------------


def test_a_joining_window_does_not_tell_others_how_to_join_and_hints_hide_during_play() -> None:
    from demos.hockey.game import HockeyGame

    server = HockeyServer(Servo("127.0.0.1", 0)).start()
    game = HockeyGame("127.0.0.1", server.port, name="guest")  # as --join makes it: no join hint given
    bot = HockeyBot("127.0.0.1", server.port, name="robo").start()
    try:
        assert "--join" not in game.join_hint
        frames = 900
        while frames and not (
            game.find(Match) is not None and game.my_entity is not None and bot.me is not None
        ):
            game.step(dt=1 / 60)
            frames -= 1
        assert frames, "the game never started"
        assert "SPACE: ready" in (game.hint(game.find(Match)) or "")  # the lobby: SPACE does something
        game.sprocket.send(ready=True)
        while frames and game.find(Match).phase != "play":
            game.step(dt=1 / 60)
            frames -= 1
        assert frames, "the match never started"
        assert game.hint(game.find(Match)) is None  # during play the rink is the player's
    finally:
        bot.stop()
        game.close()
        server.stop()


def test_the_key_hint_says_space_only_where_it_does_something() -> None:
    from demos.hockey.game import HockeyGame

    game = HockeyGame("127.0.0.1", closed_port(), name="tester")  # never stepped: shown what it is given
    try:
        game.entities = {2: Mallet(side=LEFT_SIDE)}
        game.net.me = 2
        for phase, ready, space in [("lobby", False, True), ("lobby", True, False), ("over", False, True),
                                    ("over", True, False)]:  # fmt: skip
            hint = game.hint(Match(phase=phase, left_ready=ready)) or ""
            assert ("SPACE" in hint) is space, (phase, ready, hint)
        for phase in ("countdown", "play", "goal", "away", "paused"):
            assert game.hint(Match(phase=phase)) is None, phase  # in a match the rink is the player's
        game.net.me = None  # a spectator
        assert "SPACE" not in (game.hint(Match(phase="lobby")) or "")
    finally:
        game.close()


def render(game: Any, phase: str, banner: Any, area: tuple[float, float, int, int],
           mallet: tuple[float, float], puck: tuple[float, float]) -> list[tuple[int, ...]]:  # fmt: skip
    """Draw a frame of ``phase`` with the mallet and puck given; the pixels of ``area`` (left, top, w, h)."""
    left, top, width, height = area
    match = Match(phase=phase, left_name="A", right_name="B")
    game.entities = {
        1: match,
        2: Mallet(x=mallet[0], y=mallet[1], side=LEFT_SIDE),
        3: Puck(x=puck[0], y=puck[1]),
    }
    game.banner = banner
    game.draw(game.screen)
    return [tuple(game.screen.get_at((int(left) + x, int(top) + y)))[:3]
            for y in range(height) for x in range(width)]  # fmt: skip


def test_text_is_drawn_over_the_mallets_and_the_puck() -> None:
    from demos.hockey.game import BLUE, DIM, HockeyGame
    from demos.hockey.rules import HUD, WIDTH

    game = HockeyGame("127.0.0.1", closed_port(), name="tester")  # never stepped: draws what it is given
    cx, cy = WIDTH / 2, HUD + (640 - HUD) / 2
    try:
        cases = [  # a screen, the colour of its text, the text's area, where to put a mallet and the puck
            ("lobby", None, DIM, (cx - 250, cy + 65, 160, 30), (cx - 170, cy + 80), (cx - 200, cy + 80)),
            ("goal", ("GOAL!", BLUE, 1.0), BLUE, (cx - 140, cy - 45, 280, 90), (cx - 60, cy), (cx + 20, cy)),
        ]
        for phase, banner, colour, area, mallet, puck in cases:
            apart = render(game, phase, banner, area, (-300, -300), (-300, -300))
            under = render(game, phase, banner, area, mallet, puck)
            text = [i for i, pixel in enumerate(apart) if pixel == colour]
            assert len(text) > 30, f"no {phase} text found where expected"
            covered = [i for i in text if under[i] != apart[i]]
            assert not covered, (
                f"{len(covered)} of the {phase} text's pixels are covered by a mallet or the puck"
            )
    finally:
        game.close()


def test_kill_ends_a_session_and_everything_it_started() -> None:
    # `kill` (SIGTERM) on the session used to do nothing once a window had made SDL take the signal over.
    session = subprocess.Popen(
        [sys.executable, "-m", "sprocket.game.session", "demos.hockey", "--windows", "1", "--bots", "1",
         "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert session.stdout is not None
        line = ""
        while not line.startswith("session: server on"):  # once the server, the window and the bot are up
            line = session.stdout.readline()
            assert line, "the session ended before it started"
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        session.send_signal(signal.SIGTERM)
        assert session.wait(30) == 0
    finally:
        session.kill()
        session.wait()
    with socket.socket() as probe:  # its server went with it
        assert probe.connect_ex(("127.0.0.1", port)) != 0
