"""sprocket's pytest plugin as a user meets it: small test files run in a fresh pytest process.

The child process gets the fixtures only through the ``pytest11`` entry point of the installed sprocket
(no ``-p`` option, no conftest), so these tests prove the wiring as well as the fixtures.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

HEADER = """
import os
import sys
import threading

import pytest

from sprocket.game import GameBot, GameServer
from sprocket.testing import LagProxy, WaitTimeout, step_until


def sprocket_threads():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("sprocket"))
"""


def run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=HEADER + body)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=100)


def test_fixtures_come_from_the_entry_point_and_bots_join_a_server(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_two_bots_join(game_server, game_bots, wait_until):
    server = game_server(GameServer, tick_rate=30)
    assert server.port > 0
    bots = game_bots(server, count=2)
    assert [bot.net.ready for bot in bots] == [True, True]
    assert wait_until(lambda: len(server.players) == 2, 5, "the server to see both bots") is True
    assert sorted(p.client.name for p in server.players.values()) == ["bot 1", "bot 2"]
    assert "pygame" not in sys.modules, "the plugin imported pygame without a pygame fixture"


def test_nothing_is_left_running_by_the_previous_test():
    assert sprocket_threads() == []
""",
    )
    result.assert_outcomes(passed=2)


def test_a_bot_plays_through_the_lag_proxy(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_through_a_bad_network(game_server, lag_proxy, game_bots, wait_until):
    server = game_server(GameServer)
    proxy = lag_proxy(server, lag=0.08, jitter=0.02)
    assert isinstance(proxy, LagProxy) and proxy.lag == 0.08
    (bot,) = game_bots(proxy, names=["laggy"])
    (conn,) = proxy.connections
    wait_until(lambda: conn.bytes_down > 0 and conn.bytes_up > 0, 5, "traffic both ways")
    assert [p.client.name for p in server.players.values()] == ["laggy"]
""",
    )
    result.assert_outcomes(passed=1)


def test_a_networked_game_steps_under_the_dummy_drivers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the fixture choosing SDL's dummy drivers, pygame would look for a real display and fail.
    for name in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    result = run(
        pytester,
        """
def test_a_window_joins(game_server, networked_game, game_bots):
    server = game_server(GameServer)
    assert "pygame" not in sys.modules
    from sprocket.game import NetworkedGame

    game = networked_game(NetworkedGame, server, name="window", size=(200, 120))
    assert os.environ["SDL_VIDEODRIVER"] == "dummy" and os.environ["SDL_AUDIODRIVER"] == "dummy"
    assert game.connected
    game_bots(server)
    frame = game.frame
    step_until(game, lambda: len(server.players) == 2, 5, "the bot to join")
    step_until(game, lambda: game.frame >= frame + 3, 5, "three more frames")
""",
    )
    result.assert_outcomes(passed=1)


def test_a_timed_out_wait_fails_the_test_and_names_what_it_waited_for(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_waits_in_vain(wait_until):
    wait_until(lambda: False, 0.05, "the moon to turn blue")


def test_the_error_is_a_wait_timeout(wait_until):
    with pytest.raises(WaitTimeout):
        wait_until(lambda: 0, 0.01, "zero")
""",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*WaitTimeout: timed out after 0.05 s waiting for the moon to turn blue*"])


def test_a_server_left_open_by_the_test_is_reported_as_a_leak(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
from sprocket import Servo
from sprocket.testing import Harness

leaked = []


@pytest.fixture
def sprocket_harness():  # the plugin's own fixture, overridden to wait 0.5 s instead of 5 s
    harness = Harness(thread_exit_timeout=0.5)
    yield harness
    harness.close()


def test_forgets_to_close(game_server, game_bots):
    server = game_server(GameServer)
    game_bots(server)
    leaked.append(Servo("127.0.0.1", 0))


def test_cleanup():
    leaked[0].close()
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*LeakedThreads: 1 sprocket thread(s) still running 0.5 s after*sprocket-servo-*"]
    )


def test_everything_stops_even_when_the_test_fails(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_fails_midway(game_server, game_bots, lag_proxy):
    server = game_server(GameServer)
    game_bots(lag_proxy(server, lag=0.01), count=2)
    assert False, "a failing assertion"


def test_nothing_is_left_running():
    assert sprocket_threads() == []
""",
    )
    result.assert_outcomes(passed=1, failed=1)


def test_p_no_sprocket_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_uses_a_fixture(game_server):
    pass
""",
        "-p",
        "no:sprocket",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'game_server' not found*"])
