"""The game layer end to end: a headless GameServer, NetworkedGame windows (dummy video), bots, loopback."""

from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Any

import pytest

from sprocket import Servo
from sprocket.game import Entity, GameBot, GameServer, HookError, PlayerJoined, PlayerLeft
from sprocket.netsim import LagProxy
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)

SPEED = 120.0


def pixels(surface: Any) -> bytes:
    """The surface's RGB bytes (tobytes on pygame >= 2.1.3 and pygame-ce; tostring is deprecated there)."""
    import pygame

    to_bytes = getattr(pygame.image, "tobytes", None) or pygame.image.tostring
    return to_bytes(surface, "RGB")


class Dot(Entity, type_name="netgame.Dot"):
    x: float = 100.0
    y: float = 100.0


def rule(state: Dot, inp: dict[str, float], dt: float) -> Dot:
    """The game rule, shared by server and clients."""
    state.x += inp.get("dx", 0.0) * SPEED * dt
    state.y += inp.get("dy", 0.0) * SPEED * dt
    return state


class Ball(Entity, type_name="netgame.Ball"):
    x: float = 0.0
    y: float = 50.0
    vx: float = 60.0


class DotServer(GameServer):
    rule = staticmethod(rule)

    def on_join(self, client: Any) -> None:
        self.control(client, self.world.spawn(Dot()))

    def on_leave(self, client: Any, reason: str) -> None:
        player = self.players.get(client)
        if player and player.entity in self.world:
            self.world.despawn(player.entity)

    def simulate(self, dt: float) -> None:
        for entity in self.world.values():
            if isinstance(entity, Ball):
                entity.x += entity.vx * dt


def start_server(**kw: Any) -> DotServer:
    servo = Servo("127.0.0.1", 0, ping_interval=0.2, timeout=5.0)
    return DotServer(servo, **kw).start()  # type: ignore[return-value]


def make_game(port: int, moves: int = 0, **kw: Any) -> Any:
    from sprocket.game import NetworkedGame

    class DotGame(NetworkedGame):
        size = (320, 240)
        fps = 0  # uncapped: the test decides the pace

        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.moves_left = moves
            self.seen: list[Any] = []

        def input(self) -> dict[str, float] | None:
            if self.moves_left > 0:
                self.moves_left -= 1
                return {"dx": 1.0, "dy": 0.5}
            return {"dx": 0.0, "dy": 0.0}

        def on_player_join(self, player: PlayerJoined) -> None:
            self.seen.append(player)

        def on_player_leave(self, player: PlayerLeft) -> None:
            self.seen.append(player)

        def draw(self, screen: Any) -> None:
            screen.fill((0, 0, 0))
            for entity in self.entities.values():
                screen.fill((255, 255, 255), (int(entity.x), int(entity.y), 4, 4))

    return DotGame("127.0.0.1", port, rule=rule, **kw)


def play_until(game: Any, predicate: Any, timeout: float = 10.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}")
        # Real frame times, as in a real game: the client sends one input per fixed step of real time,
        # which is all the server applies (it applies one input per client per tick).
        game.step()
        time.sleep(1 / 240)  # pace the frame loop like a real one; the predicate decides when we are done


def server_entity(server: DotServer, client_id: int) -> Dot:
    for player in list(server.players.values()):
        if player.client.id == client_id and player.entity is not None:
            return server.world[player.entity]  # type: ignore[return-value]
    raise AssertionError("no entity for that client")


@pytest.mark.parametrize("lag", [0.0, 0.1])
def test_prediction_matches_the_server_after_inputs_stop(lag: float) -> None:
    server = start_server()
    proxy = LagProxy("127.0.0.1", server.port, lag=lag).start()
    game = make_game(proxy.port)
    watcher = WatchBot("127.0.0.1", proxy.port, name="watcher").start()  # a second client, also lagged
    try:
        play_until(game, lambda: game.connected and game.my_entity is not None, message="own entity")
        game.moves_left = 45
        play_until(game, lambda: game.moves_left == 0, message="moves sent")
        me = game.my_entity
        # Prediction shows the move immediately, without waiting a round trip.
        assert me.x > 100.0 + SPEED * 0.5
        # Idle inputs keep flowing (as in a real game); wait until the server has applied every move.
        last_move = game.net.predictor.seq
        play_until(game, lambda: game.net.predictor.acked >= last_move + 3, message="the moves acknowledged")
        truth = server_entity(server, game.net.id)
        mine = game.net.predictor.state
        assert math.hypot(mine.x - truth.x, mine.y - truth.y) < 1e-6
        assert truth.x == pytest.approx(100.0 + 45 * SPEED / 60)
        # The other client sees the same end position once its interpolation catches up.
        me = game.me

        def watcher_agrees() -> bool:
            seen = watcher.net.entities().get(me)
            return seen is not None and math.hypot(seen.x - truth.x, seen.y - truth.y) < 1e-6

        wait_until(watcher_agrees, 10, "the second client to see where the first one ended")
    finally:
        watcher.stop()
        game.close()
        proxy.close()
        server.stop()


def test_remote_entities_move_smoothly_under_jitter() -> None:
    server = start_server()
    server.world.spawn(Ball(x=0.0, vx=60.0))
    proxy = LagProxy("127.0.0.1", server.port, lag=0.1, jitter=0.03, seed=7).start()
    game = make_game(proxy.port)
    positions: list[tuple[float, float]] = []
    try:
        play_until(game, lambda: game.connected and len(game.entities) >= 2, message="the ball")
        ball_id = next(i for i, e in game.entities.items() if isinstance(e, Ball))

        def watched() -> bool:
            positions.append((time.monotonic(), game.entities[ball_id].x))
            return positions[-1][1] >= positions[0][1] + 90.0

        # Watch the ball cover 90 px (1.5 s of its motion on the server's clock), however long that takes.
        play_until(game, watched, message="the ball to cover 90 px on screen")
        steps = [(b[1] - a[1], b[0] - a[0]) for a, b in itertools.pairwise(positions)]
        # Never backwards, and never a jump larger than the motion warrants for the time that passed
        # (with generous slack for a frame that took long).
        assert all(dx >= -1e-9 for dx, _ in steps)
        assert all(dx <= 60.0 * max(dt, 1 / 60) * 3 + 1.0 for dx, dt in steps)
    finally:
        game.close()
        proxy.close()
        server.stop()


class WatchBot(GameBot):
    """A second client that only watches (its own entity stays put)."""

    rule = staticmethod(rule)

    def decide(self, entities: dict[int, Entity]) -> None:
        return None


class ChaseBot(GameBot):
    rule = staticmethod(rule)

    def decide(self, entities: dict[int, Entity]) -> dict[str, float]:
        return {"dx": 1.0, "dy": 0.0}


def test_bots_join_play_and_leave_and_others_hear_of_it() -> None:
    server = start_server()
    game = make_game(server.port)
    bot = ChaseBot("127.0.0.1", server.port, name="robo").start()
    try:
        play_until(
            game, lambda: any(getattr(p, "name", None) == "robo" for p in game.seen), message="bot join"
        )
        wait_until(lambda: len(server.players) == 2, 5)
        bot_player = next(p for p in server.players.values() if p.client.name == "robo")
        wait_until(lambda: server.world[bot_player.entity].x > 130, 5, "the bot to move")
        bot.stop()
        play_until(game, lambda: any(isinstance(p, PlayerLeft) for p in game.seen), message="bot leave")
        wait_until(lambda: len(server.players) == 1, 5)
    finally:
        bot.stop()
        game.close()
        server.stop()


class RecordingServer(DotServer):
    """Records every step(now) the tick loop makes, with the counters as they were just before it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: list[tuple[float, int, int]] = []  # (now, ticks run before, ticks skipped before)

    def step(self, now: float | None = None) -> None:
        assert now is not None, "the loop passes its own clock reading to every tick"
        self.steps.append((now, self.stats.ticks, self.stats.skipped_ticks))
        super().step(now)


def test_tick_loop_runs_or_counts_every_slot_of_its_schedule() -> None:
    # Whatever the machine's speed, the loop must keep to its grid: tick slot k is due at start + k / rate
    # on the server's own clock, and by each clock reading every due slot has been run or counted as
    # skipped (skipping only when more than max_catch_up are due).  So each batch of ticks run at one
    # reading ``now`` pins ``start`` to an interval, and all those intervals must overlap.
    rate = 50.0
    server = RecordingServer(Servo("127.0.0.1", 0), tick_rate=rate).start()
    try:
        wait_until(lambda: len(server.steps) >= 60, 20, "60 ticks")
    finally:
        server.stop()
    steps = list(server.steps)
    batches: list[tuple[float, int]] = []  # (now, number of ticks run at that reading)
    for now, _, _ in steps:
        if batches and batches[-1][0] == now:
            batches[-1] = (now, batches[-1][1] + 1)
        else:
            batches.append((now, 1))
    assert all(b[0] < c[0] for b, c in itertools.pairwise(batches))  # the clock only moves forward
    assert all(1 <= count <= server.max_catch_up for _, count in batches)
    # Slots handed out (run + skipped) once batch i was done, read at the start of batch i + 1.
    firsts = [i for i, (now, _, _) in enumerate(steps) if i == 0 or steps[i - 1][0] != now]
    lo, hi = -math.inf, math.inf
    for b, i in enumerate(firsts[1:]):
        now = batches[b][0]
        handed_out = steps[i][1] + steps[i][2]
        # Slot handed_out - 1 was due by ``now`` and slot handed_out was not: bounds on ``start``.
        lo = max(lo, now - handed_out / rate)
        hi = min(hi, now - (handed_out - 1) / rate)
    assert lo <= hi + 1e-9, f"no start time fits every batch: {lo} > {hi}"
    assert server.stats.ticks == len(steps) and server.tick == len(steps)
    durations = sorted(server.stats.tick_times)
    assert server.stats.tick_ms(100) == durations[-1] * 1000
    assert 0.0 < server.stats.tick_ms(50) <= server.stats.tick_ms(99) <= server.stats.tick_ms(100)


def test_closing_the_window_closes_the_connection_cleanly() -> None:
    import pygame

    server = start_server()
    game = make_game(server.port)
    try:
        play_until(game, lambda: game.connected, message="connected")
        wait_until(lambda: len(server.players) == 1, 5)
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        game.run()
        assert not game.running and game.sprocket.error == "closed by you"
        wait_until(lambda: not server.players, 5, "the server to see the leave")
    finally:
        game.close()
        server.stop()


def test_overlay_toggles_with_f3_and_draws() -> None:
    import pygame

    server = start_server()
    game = make_game(server.port)
    try:
        play_until(game, lambda: game.connected, message="connected")
        before = pixels(game.screen)
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F3, mod=0, unicode="", scancode=0))
        game.step(dt=1 / 60)
        assert game.overlay.visible
        labels = [label for label, _ in game.overlay.lines(game.net, 60.0)]
        assert {"RTT", "jitter", "interp delay", "buffer depth", "prediction err"} <= set(labels)
        assert pixels(game.screen) != before
    finally:
        game.close()
        server.stop()


def test_misspelled_and_misshaped_hooks_are_named() -> None:
    from sprocket.game import NetworkedGame

    with pytest.raises(HookError, match=r"on_pakcet.*did you mean on_packet"):

        class Typo(NetworkedGame):
            def on_pakcet(self, packet: Any) -> None: ...

    with pytest.raises(HookError, match=r"update.*called as update\(self, dt\)"):

        class Shape(NetworkedGame):
            def update(self) -> None:  # type: ignore[override]
                ...

    with pytest.raises(HookError, match="on_jion"):

        class ServerTypo(GameServer):
            def on_jion(self, client: Any) -> None: ...


def test_game_server_runs_without_pygame() -> None:
    import subprocess
    import sys

    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name == 'pygame' or name.startswith('pygame.'):\n"
        "        raise ImportError('pygame is not installed')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from sprocket import Servo\n"
        "from sprocket.game import GameServer, Entity\n"
        "class S(GameServer):\n"
        "    pass\n"
        "S(Servo('127.0.0.1', 0)).run(duration=0.2)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_server_thread_in_the_host_process_stops_cleanly() -> None:
    server = start_server()
    assert any(t.name.startswith("sprocket-game") for t in threading.enumerate())
    server.stop()
    wait_until(lambda: not any(t.name.startswith("sprocket-game") for t in threading.enumerate()), 5)


def test_an_input_that_breaks_the_rule_costs_only_that_client_its_place() -> None:
    server = start_server()
    good = ChaseBot("127.0.0.1", server.port, name="good").start()
    from sprocket import Sprocket

    bad = Sprocket("127.0.0.1", server.port, name="bad").wait_connected()
    try:
        wait_until(lambda: len(server.players) == 2, 5, "both players")
        bad.send(_g="in", s=1, i={"dx": "not a number"})  # rule() does "not a number" * SPEED
        left: list[Any] = []
        wait_until(
            lambda: left.extend(bad.events()) or any(getattr(e, "code", "") == "kicked" for e in left), 5
        )
        good_player = next(p for p in server.players.values() if p.client.name == "good")
        x = server.world[good_player.entity].x
        wait_until(lambda: server.world[good_player.entity].x > x + 10, 5, "the good client to keep playing")
        assert server._thread is not None and server._thread.is_alive()
    finally:
        bad.close()
        good.stop()
        server.stop()


def test_predict_players_reaches_the_game_client_and_survives_a_reconnect() -> None:
    server = start_server()
    game = make_game(server.port)
    type(game).predict_players = True  # a class attribute, as a game would declare it
    try:
        play_until(game, lambda: game.connected, message="connected")
        game.reconnect()  # a fresh GameClient: the setting must carry over
        assert game.net.predict_players is True
        plain = make_game(server.port)
        try:
            assert plain.net.predict_players is False  # the default; each game class its own
        finally:
            plain.close()
    finally:
        game.close()
        server.stop()
