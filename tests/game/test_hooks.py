"""Hooks: a near-miss of a hook's name is an error naming both, helpers are not, the opt-out works, and a
window and a bot hear the same events through the same hooks (one dispatcher)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sprocket import Packet, Servo
from sprocket.game import GameBot, GameServer, HookError, PlayerJoined, PlayerLeft, not_a_hook
from sprocket.game.hooks import resembles
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def _base(name: str) -> type:
    if name == "NetworkedGame":
        from sprocket.game import NetworkedGame

        return NetworkedGame  # type: ignore[no-any-return]
    return {"GameServer": GameServer, "GameBot": GameBot}[name]


def define(base: str, methods: dict[str, Any]) -> type:
    """Define a subclass of ``base`` with ``methods``, as a class statement would."""
    return type("Mine", (_base(base),), methods)


def method(*params: str) -> Any:
    """A plain method taking (self, *params)."""
    namespace: dict[str, Any] = {}
    exec(f"def f(self, {', '.join(params)}): pass", namespace)
    return namespace["f"]


# -- near misses ------------------------------------------------------------------------------------------

NEAR_MISSES = [
    # base, the method as written, the hook it resembles
    ("NetworkedGame", "updte", "update"),  # a letter left out
    ("NetworkedGame", "udpate", "update"),  # two letters swapped
    ("NetworkedGame", "updste", "update"),  # a neighbouring key
    ("NetworkedGame", "Update", "update"),  # capitals
    ("NetworkedGame", "draww", "draw"),  # a letter too many
    ("NetworkedGame", "inputs", "input"),  # plural
    ("NetworkedGame", "imput", "input"),
    ("NetworkedGame", "onevent", "on_event"),  # the underscore left out
    ("NetworkedGame", "on_pakcet", "on_packet"),
    ("NetworkedGame", "on_player_joins", "on_player_join"),
    ("GameServer", "simulat", "simulate"),
    ("GameServer", "simualte", "simulate"),
    ("GameServer", "on_jion", "on_join"),
    ("GameServer", "onleave", "on_leave"),
    ("GameServer", "on_inputs", "on_input"),
    ("GameBot", "decid", "decide"),
    ("GameBot", "decides", "decide"),
    ("GameBot", "on_packets", "on_packet"),
    ("GameBot", "on_conect", "on_connect"),
]


@pytest.mark.parametrize(
    ("base", "written", "hook"), NEAR_MISSES, ids=[f"{b}.{w}" for b, w, _ in NEAR_MISSES]
)
def test_a_near_miss_of_a_hook_is_an_error_naming_both(base: str, written: str, hook: str) -> None:
    with pytest.raises(HookError) as info:
        define(base, {written: method("dt")})
    message = str(info.value)
    assert f"Mine.{written} " in message
    assert f"did you mean {hook}(self" in message
    assert "not_a_hook" in message  # says how to opt out


@pytest.mark.parametrize(
    ("base", "names"),
    [
        ("NetworkedGame", ["update_score", "draw_hud", "draw_x", "input_state", "find", "drag", "play"]),
        ("GameServer", ["simulate_ball", "update", "spawn_puck", "reset"]),
        ("GameBot", ["decide_target", "aim", "chase"]),
    ],
)
def test_helpers_named_after_a_hook_and_other_methods_are_fine(base: str, names: list[str]) -> None:
    cls = define(base, {name: method() for name in names})
    assert all(name in vars(cls) for name in names)


def test_only_methods_are_looked_at() -> None:
    # Properties, nested classes, constants and private names are not hooks and never resemble one.
    cls = define(
        "NetworkedGame",
        {
            "draws": property(lambda self: 0),
            "Input": type("Input", (), {}),
            "updates": 3,
            "_updte": method(),
        },
    )
    assert cls.updates == 3  # type: ignore[attr-defined]


def test_an_unknown_on_method_is_an_error_with_the_hooks_listed() -> None:
    with pytest.raises(HookError) as info:
        define("GameServer", {"on_goal_scored": method("side")})
    message = str(info.value)
    assert "Mine.on_goal_scored is not a hook GameServer calls" in message
    assert "on_join" in message and "not_a_hook" in message


@pytest.mark.parametrize(
    ("base", "written", "replacement"),
    [
        ("NetworkedGame", "on_join", "on_player_join"),
        ("NetworkedGame", "on_leave", "on_player_leave"),
        ("GameBot", "on_join", "on_player_join"),
        ("GameBot", "on_message", "on_disconnect"),
    ],
)
def test_a_renamed_client_hook_says_what_replaced_it(base: str, written: str, replacement: str) -> None:
    with pytest.raises(
        HookError, match=rf"Mine\.{written}: {base} no longer calls {written}; use .*{replacement}"
    ):
        define(base, {written: method("player")})


def test_wrong_parameters_are_still_an_error() -> None:
    with pytest.raises(HookError, match=r"Mine\.update\(self\) has the wrong parameters.*update\(self, dt\)"):
        define("NetworkedGame", {"update": method()})
    with pytest.raises(HookError, match=r"simulate\(self, dt\)"):
        define("GameServer", {"simulate": method("dt", "extra")})
    with pytest.raises(HookError, match=r"decide\(self, entities\)"):
        define("GameBot", {"decide": method()})
    with pytest.raises(HookError, match="must be a plain method"):
        define("GameBot", {"on_connect": staticmethod(lambda: None)})
    define("GameBot", {"on_player_join": method("player", "extra=None")})  # extra optional ones are fine


# -- the opt-out ------------------------------------------------------------------------------------------


def test_not_a_hook_declares_a_method_of_your_own() -> None:
    class Reader(GameBot):
        @not_a_hook
        def decode(self, text: str) -> str:  # one key away from decide
            return text.upper()

        @not_a_hook
        @staticmethod
        def decider() -> str:
            return "me"

        @not_a_hook
        def on_goal(self, side: int) -> None:  # an on_* method of your own
            pass

    assert Reader.decider() == "me"

    class Subclass(Reader):
        def decode(self, text: str) -> str:  # an override keeps the declaration
            return text

    assert Subclass.decode is not Reader.decode
    with pytest.raises(HookError, match="decode"):

        class Undeclared(GameBot):
            def decode(self, text: str) -> str:
                return text


def test_not_a_hook_cannot_silence_a_real_hook() -> None:
    with pytest.raises(HookError, match=r"Mine\.simulate is a hook GameServer calls; @not_a_hook cannot"):
        define("GameServer", {"simulate": not_a_hook(method("dt"))})


def test_resembles_is_one_slip_of_the_keyboard() -> None:
    assert resembles("updte", "update") and resembles("updates", "update") and resembles("udpate", "update")
    assert resembles("imput", "input")  # n and m are neighbours
    assert not resembles("drag", "draw")  # g is nowhere near w: another word
    assert not resembles("raw", "draw")  # the first letter is kept by a slip
    assert not resembles("update", "update")
    assert not resembles("update_score", "update") and not resembles("updatescore", "update")
    assert not resembles("uptake", "update")  # two changes


# -- one dispatcher for a window and a bot ----------------------------------------------------------------


class GreetServer(GameServer):
    def on_join(self, client: Any) -> None:
        self.broadcast(greet=client.name)


def recorder(base: type) -> type:
    """A subclass of ``base`` recording every client-side hook call, in order."""

    class Recorder(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.calls: list[tuple[str, Any]] = []
            self.lock = threading.Lock()
            super().__init__(*args, **kwargs)

        def record(self, hook: str, arg: Any) -> None:
            with self.lock:
                self.calls.append((hook, arg))

        def seen(self, hook: str) -> list[Any]:
            with self.lock:
                return [arg for name, arg in self.calls if name == hook]

        def on_connect(self) -> None:
            self.record("on_connect", None)

        def on_disconnect(self, reason: str) -> None:
            self.record("on_disconnect", reason)

        def on_packet(self, packet: Packet) -> None:
            self.record("on_packet", packet)

        def on_player_join(self, player: PlayerJoined) -> None:
            self.record("on_player_join", player)

        def on_player_leave(self, player: PlayerLeft) -> None:
            self.record("on_player_leave", player)

    return Recorder


def test_a_window_and_a_bot_hear_the_same_events_through_the_same_hooks() -> None:
    from sprocket.game import NetworkedGame

    server = GreetServer(Servo("127.0.0.1", 0, ping_interval=0.2, timeout=5.0)).start()
    game = recorder(NetworkedGame)("127.0.0.1", server.port, name="window", size=(64, 48), fps=0)
    bot = recorder(GameBot)("127.0.0.1", server.port, name="bot").start()

    def step_until(predicate: Any, message: str) -> None:
        def stepped() -> bool:
            game.step(dt=1 / 60)
            return bool(predicate())

        wait_until(stepped, 10, message)

    try:
        step_until(lambda: game.net.id is not None and bot.net.id is not None, "both in the game")
        ids = {game.net.id, bot.net.id}
        for listener in (game, bot):
            step_until(lambda listener=listener: {p.id for p in listener.seen("on_player_join")} == ids,
                       "each to hear of both players")  # fmt: skip
            step_until(lambda listener=listener: len(listener.seen("on_packet")) >= 1, "a greeting")
            assert listener.seen("on_connect") == [None]
            assert all(type(p) is PlayerJoined for p in listener.seen("on_player_join"))
            assert all(
                type(p) is Packet and p["greet"] in ("window", "bot") for p in listener.seen("on_packet")
            )
            names = {p.id: p.name for p in listener.seen("on_player_join")}
            assert names == {game.net.id: "window", bot.net.id: "bot"}
        bot.stop()
        step_until(lambda: game.seen("on_player_leave"), "the window to hear the bot leave")
        (left,) = game.seen("on_player_leave")
        assert type(left) is PlayerLeft and left.id == bot.net.id and left.name == "bot" and left.reason
        server.stop()
        step_until(lambda: game.seen("on_disconnect"), "the window to hear the server go")
        assert isinstance(game.seen("on_disconnect")[0], str) and game.seen("on_disconnect")[0]
    finally:
        bot.stop()
        game.close()
        server.stop()


def test_run_with_frames_closes_the_connection_and_the_window() -> None:
    import pygame

    from sprocket.game import NetworkedGame

    server = GreetServer(Servo("127.0.0.1", 0, ping_interval=0.2, timeout=5.0)).start()
    game = NetworkedGame("127.0.0.1", server.port, size=(64, 48), fps=0)
    try:
        game.sprocket.wait_connected()
        wait_until(lambda: server.players, 5, "the server to see the window")
        game.run(frames=3)
        assert game.frame == 3
        assert game.sprocket.error == "closed by you" and not pygame.display.get_init()
        wait_until(lambda: not server.players, 5, "the server to see the leave")
    finally:
        game.close()
        server.stop()
