"""Sprocket Hockey end to end: a headless server and bots over loopback, a rendered frame, the launchers."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

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
from sprocket.netsim import LagProxy
from tests.conftest import wait_until

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
