"""The game layer's error tree: every bad argument is a SprocketError naming the argument, and no raise
site in sprocket/game names a built-in exception class."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sprocket.game
from sprocket import Servo, Sprocket, SprocketError
from sprocket.errors import InvalidArgument
from sprocket.game import (
    Entity,
    EntityError,
    FixedStep,
    GameBot,
    GameClient,
    GameServer,
    InterpolationBuffer,
    NetStats,
    Predictor,
    Snapshot,
    SnapshotError,
    SnapshotHistory,
    TickSchedule,
    World,
    angle,
    blend,
    decode_snapshot,
    encode_snapshot,
    entity_type,
    extrapolate,
)
from sprocket.game.entity import field_kinds

pytestmark = pytest.mark.timeout(60)

GAME_DIR = Path(sprocket.game.__file__).parent


class Pos(Entity, type_name="test_game_errors.Pos"):
    x: float = 0.0


class Other(Entity, type_name="test_game_errors.Other"):
    x: float = 0.0


def define_entity(body: str) -> Callable[[], Any]:
    def define() -> Any:
        exec(f"class Bad(Entity, type_name='test_game_errors.Bad'):\n    {body}\n", {"Entity": Entity}, {})

    return define


def local_server(**kw: Any) -> GameServer:
    # The checks come before the Servo is made; if they did not, it would bind only on loopback, port 0.
    return GameServer(host="127.0.0.1", port=0, **kw)


NAN, INF = math.nan, math.inf
SNAP = Snapshot(1, 0.0, {})
TYPE, VALUE = TypeError, ValueError  # which built-in the error must also be, for `except` compatibility

# (id, the call, a word the message must contain, the built-in it must also be)
PURE_CASES: list[tuple[str, Callable[[], Any], str, type]] = [
    # clock
    ("FixedStep(rate=nan)", lambda: FixedStep(NAN), "rate", VALUE),
    ("FixedStep(rate=0)", lambda: FixedStep(0), "rate", VALUE),
    ("FixedStep(rate=inf)", lambda: FixedStep(INF), "rate", VALUE),
    ("FixedStep(rate='x')", lambda: FixedStep("x"), "rate", TYPE),
    ("FixedStep(max_steps=0)", lambda: FixedStep(60, max_steps=0), "max_steps", VALUE),
    ("FixedStep(max_steps=1.5)", lambda: FixedStep(60, max_steps=1.5), "max_steps", TYPE),
    ("FixedStep.advance(-1)", lambda: FixedStep(60).advance(-1.0), "elapsed", VALUE),
    ("FixedStep.advance(nan)", lambda: FixedStep(60).advance(NAN), "elapsed", VALUE),
    ("TickSchedule(start=nan)", lambda: TickSchedule(60, NAN), "start", VALUE),
    ("TickSchedule(rate=-1)", lambda: TickSchedule(-1, 0.0), "rate", VALUE),
    ("TickSchedule(max_catch_up=0)", lambda: TickSchedule(60, 0.0, max_catch_up=0), "max_catch_up", VALUE),
    ("TickSchedule.due(inf)", lambda: TickSchedule(60, 0.0).due(INF), "now", VALUE),
    ("TickSchedule.time_until('x')", lambda: TickSchedule(60, 0.0).time_until("x"), "now", TYPE),
    # interpolation
    ("InterpolationBuffer(delay=-1)", lambda: InterpolationBuffer(delay=-1.0), "delay", VALUE),
    ("InterpolationBuffer(delay=nan)", lambda: InterpolationBuffer(delay=NAN), "delay", VALUE),
    ("InterpolationBuffer(delay=inf)", lambda: InterpolationBuffer(delay=INF), "delay", VALUE),
    ("InterpolationBuffer(delay='x')", lambda: InterpolationBuffer(delay="x"), "delay", TYPE),
    (
        "InterpolationBuffer(min>max)",
        lambda: InterpolationBuffer(min_delay=0.4, max_delay=0.2),
        "min_delay",
        VALUE,
    ),
    (
        "InterpolationBuffer(max_extrapolation=-1)",
        lambda: InterpolationBuffer(max_extrapolation=-1),
        "max_extrapolation",
        VALUE,
    ),
    ("InterpolationBuffer(capacity=1)", lambda: InterpolationBuffer(capacity=1), "capacity", VALUE),
    ("InterpolationBuffer(capacity=2.0)", lambda: InterpolationBuffer(capacity=2.0), "capacity", TYPE),
    ("InterpolationBuffer.push(dict)", lambda: InterpolationBuffer().push({}, 0.0), "snapshot", TYPE),
    (
        "InterpolationBuffer.push(time=nan)",
        lambda: InterpolationBuffer().push(SNAP, NAN),
        "arrival_time",
        VALUE,
    ),
    ("InterpolationBuffer.sample(inf)", lambda: InterpolationBuffer().sample(INF), "server_now", VALUE),
    # prediction
    ("Predictor(step='x')", lambda: Predictor("x", Pos(), 0.1), "step", TYPE),
    ("Predictor(dt=0)", lambda: Predictor(lambda s, i, dt: s, Pos(), 0.0), "dt", VALUE),
    ("Predictor(dt=nan)", lambda: Predictor(lambda s, i, dt: s, Pos(), NAN), "dt", VALUE),
    ("Predictor(dt=inf)", lambda: Predictor(lambda s, i, dt: s, Pos(), INF), "dt", VALUE),
    (
        "Predictor(max_pending=0)",
        lambda: Predictor(lambda s, i, dt: s, Pos(), 0.1, max_pending=0),
        "max_pending",
        VALUE,
    ),
    (
        "Predictor(smoothing=-1)",
        lambda: Predictor(lambda s, i, dt: s, Pos(), 0.1, smoothing=-1.0),
        "smoothing",
        VALUE,
    ),
    (
        "Predictor(snap_distance=0)",
        lambda: Predictor(lambda s, i, dt: s, Pos(), 0.1, snap_distance=0.0),
        "snap_distance",
        VALUE,
    ),
    (
        "Predictor.reconcile(seq='1')",
        lambda: Predictor(lambda s, i, dt: s, Pos(), 0.1).reconcile(Pos(), "1"),
        "last_applied_seq",
        TYPE,
    ),
    (
        "Predictor.reconcile(seq=5)",
        lambda: Predictor(lambda s, i, dt: s, Pos(), 0.1).reconcile(Pos(), 5),
        "last_applied_seq",
        VALUE,
    ),
    (
        "Predictor.advance_display(-1)",
        lambda: Predictor(lambda s, i, dt: s, Pos(), 0.1).advance_display(-1.0),
        "dt",
        VALUE,
    ),
    (
        "Predictor rule returns None",
        lambda: Predictor(lambda s, i, dt: None, Pos(), 0.1).apply({}),
        "returned None",
        TYPE,
    ),
    # entities
    ("Entity type_name=''", lambda: type("Bad", (Entity,), {}, type_name=""), "type_name", TYPE),
    ("Entity field without default", define_entity("x: float"), "needs a default", TYPE),
    ("Entity default after none", define_entity("x: float = 0.0\n    y: float"), "needs a default", TYPE),
    ("Entity reserved field", define_entity("copy: int = 0"), "copy", TYPE),
    ("Entity mutable default", define_entity("items: list = []"), "items", VALUE),
    ("Entity.from_fields(list)", lambda: Pos.from_fields([("x", 1.0)]), "fields", TYPE),
    ("Entity.from_fields(unknown)", lambda: Pos.from_fields({"z": 1.0}), "'z'", VALUE),
    ("angle(period=0)", lambda: angle(period=0), "period", VALUE),
    ("angle(default='0')", lambda: angle("0"), "default", TYPE),
    ("field_kinds(int)", lambda: field_kinds(int), "cls", TYPE),
    ("entity_type('nope')", lambda: entity_type("nope"), "nope", VALUE),
    ("blend(different types)", lambda: blend(Pos(), Other(), 0.5), "a and b", VALUE),
    ("blend(t=nan)", lambda: blend(Pos(), Pos(x=1.0), NAN), "t", VALUE),
    ("extrapolate(t=inf)", lambda: extrapolate(Pos(), Pos(x=1.0), INF), "t", VALUE),
    ("extrapolate(different types)", lambda: extrapolate(Pos(), Other(), 2.0), "a and b", VALUE),
    # snapshots
    ("World.spawn(dict)", lambda: World().spawn({"x": 1}), "entity", TYPE),
    ("World.spawn(id='1')", lambda: World().spawn(Pos(), id="1"), "id", TYPE),
    ("World.spawn(id in use)", lambda: [w := World(), w.spawn(Pos(), 1), w.spawn(Pos(), 1)], "id 1", VALUE),
    ("World.despawn(missing)", lambda: World().despawn(7), "7", VALUE),
    ("World[missing]", lambda: World()[7], "7", VALUE),
    ("World.snapshot(tick='1')", lambda: World().snapshot("1", 0.0), "tick", TYPE),
    ("World.snapshot(time=nan)", lambda: World().snapshot(1, NAN), "time", VALUE),
    ("encode_snapshot(new=dict)", lambda: encode_snapshot({}, None), "new", TYPE),
    ("encode_snapshot(base=dict)", lambda: encode_snapshot(SNAP, {}), "base", TYPE),
    ("decode_snapshot(list)", lambda: decode_snapshot([], None), "snapshot", VALUE),
    ("SnapshotHistory(capacity=0)", lambda: SnapshotHistory(0), "capacity", VALUE),
    ("SnapshotHistory(capacity='8')", lambda: SnapshotHistory("8"), "capacity", TYPE),
    ("SnapshotHistory.add(dict)", lambda: SnapshotHistory().add({}), "snapshot", TYPE),
    ("NetStats(window=0)", lambda: NetStats(window=0.0), "window", VALUE),
    # the server, checked before it binds a port
    ("GameServer(tick_rate=0)", lambda: local_server(tick_rate=0), "tick_rate", VALUE),
    ("GameServer(tick_rate=-1)", lambda: local_server(tick_rate=-1), "tick_rate", VALUE),
    ("GameServer(tick_rate=nan)", lambda: local_server(tick_rate=NAN), "tick_rate", VALUE),
    ("GameServer(tick_rate=inf)", lambda: local_server(tick_rate=INF), "tick_rate", VALUE),
    ("GameServer(tick_rate='x')", lambda: local_server(tick_rate="x"), "tick_rate", TYPE),
    ("GameServer(snapshot_rate=0)", lambda: local_server(snapshot_rate=0), "snapshot_rate", VALUE),
    ("GameServer(snapshot_rate=nan)", lambda: local_server(snapshot_rate=NAN), "snapshot_rate", VALUE),
    ("GameServer(rule=3)", lambda: local_server(rule=3), "rule", TYPE),
    ("GameServer(servo='x')", lambda: GameServer("x"), "servo", TYPE),
    (
        "GameServer.max_inputs_per_tick=0",
        lambda: type("S", (GameServer,), {"max_inputs_per_tick": 0})(host="127.0.0.1", port=0),
        "max_inputs_per_tick",
        VALUE,
    ),
    (
        "GameServer.max_catch_up=2.5",
        lambda: type("S", (GameServer,), {"max_catch_up": 2.5})(host="127.0.0.1", port=0),
        "max_catch_up",
        TYPE,
    ),
    ("GameServer(input_schema=...)", lambda: local_server(input_schema={"x": "fast"}), "input_schema", TYPE),
    (
        "GameServer(input_schema=(2, 1))",
        lambda: local_server(input_schema={"x": (2, 1)}),
        "input_schema",
        VALUE,
    ),
    (
        "GameServer.max_bad_inputs=0",
        lambda: type("S", (GameServer,), {"max_bad_inputs": 0})(host="127.0.0.1", port=0),
        "max_bad_inputs",
        VALUE,
    ),
    (
        "GameServer.input_catch_up=-1",
        lambda: type("S", (GameServer,), {"input_catch_up": -1})(host="127.0.0.1", port=0),
        "input_catch_up",
        VALUE,
    ),
    (
        "GameServer.max_input_depth=0",
        lambda: type("S", (GameServer,), {"max_input_depth": 0})(host="127.0.0.1", port=0),
        "max_input_depth",
        VALUE,
    ),
    # clients, checked before they connect
    ("GameBot(rule=3)", lambda: GameBot("127.0.0.1", 9, rule=3), "rule", TYPE),
    ("GameBot(sprocket='x')", lambda: GameBot(sprocket="x"), "sprocket", TYPE),
    ("GameClient(sprocket='x')", lambda: GameClient("x"), "sprocket", TYPE),
]


def _network_cases() -> Iterator[tuple[str, Callable[[Any], Any], str, type]]:
    """Cases that need something connected: each call gets a dict of live objects."""
    yield "GameServer.run(duration=-1)", lambda o: o["server"].run(duration=-1.0), "duration", VALUE
    yield "GameServer.run(duration=nan)", lambda o: o["server"].run(duration=NAN), "duration", VALUE
    yield "GameServer.step(now=nan)", lambda o: o["server"].step(NAN), "now", VALUE
    yield "GameServer.control(entity_id='1')", lambda o: o["server"].control(None, "1"), "entity_id", TYPE
    yield "GameServer.control(stranger)", lambda o: o["server"].control(object(), 1), "client", VALUE
    yield "GameClient(rule=3)", lambda o: GameClient(o["sprocket"], rule=3), "rule", TYPE
    yield "GameClient(clock=3)", lambda o: GameClient(o["sprocket"], clock=3), "clock", TYPE
    yield (
        "GameClient(interpolation_delay=-1)",
        lambda o: GameClient(o["sprocket"], interpolation_delay=-1.0),
        "interpolation_delay",
        VALUE,
    )
    yield (
        "GameClient(max_entities=0)",
        lambda o: GameClient(o["sprocket"], max_entities=0),
        "max_entities",
        VALUE,
    )
    yield (
        "GameClient(max_snapshot_bytes='1')",
        lambda o: GameClient(o["sprocket"], max_snapshot_bytes="1"),
        "max_snapshot_bytes",
        TYPE,
    )
    yield "GameClient.advance(nan)", lambda o: GameClient(o["sprocket"]).advance(NAN), "dt", VALUE
    yield "GameBot.run(duration=inf)", lambda o: GameBot(sprocket=o["sprocket"]).run(INF), "duration", VALUE
    yield (
        "GameBot.start(duration=-1)",
        lambda o: GameBot(sprocket=o["sprocket"]).start(-1.0),
        "duration",
        VALUE,
    )
    yield "GameBot.tick(dt=-1)", lambda o: GameBot(sprocket=o["sprocket"]).tick(-1.0), "dt", VALUE


def _window_cases() -> Iterator[tuple[str, Callable[[Any], Any], str, type]]:
    def game(**kw: Any) -> Callable[[Any], Any]:
        from sprocket.game import NetworkedGame

        return lambda o: NetworkedGame(sprocket=o["sprocket"], **kw)

    yield "NetworkedGame(size=(0, 10))", game(size=(0, 10)), "size", VALUE
    yield "NetworkedGame(size='big')", game(size="big"), "size", TYPE
    yield "NetworkedGame(size=(10.5, 10))", game(size=(10.5, 10)), "size", TYPE
    yield "NetworkedGame(fps=-1)", game(fps=-1), "fps", VALUE
    yield "NetworkedGame(fps='x')", game(fps="x"), "fps", TYPE
    yield "NetworkedGame(title=3)", game(title=3), "title", TYPE
    yield "NetworkedGame(rule=3)", game(rule=3), "rule", TYPE
    yield (
        "NetworkedGame(interpolation_delay=nan)",
        game(interpolation_delay=NAN),
        "interpolation_delay",
        VALUE,
    )
    yield "NetworkedGame(sprocket='x')", lambda o: game()({"sprocket": "x"}), "sprocket", TYPE

    def made(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(o: dict[str, Any]) -> Any:
            from sprocket.game import NetworkedGame

            window = NetworkedGame(sprocket=o["sprocket"], size=(32, 24), fps=0)
            o["close"].append(window.close)
            return call(window)

        return run

    yield "NetworkedGame.step(dt=-1)", made(lambda g: g.step(dt=-1.0)), "dt", VALUE
    yield "NetworkedGame.step(dt=inf)", made(lambda g: g.step(dt=INF)), "dt", VALUE
    yield "NetworkedGame.run(frames=-1)", made(lambda g: g.run(frames=-1)), "frames", VALUE
    yield "NetworkedGame.run(frames=2.5)", made(lambda g: g.run(frames=2.5)), "frames", TYPE


def check(call: Callable[[], Any], word: str, builtin: type) -> None:
    with pytest.raises(SprocketError) as info:
        call()
    error = info.value
    assert word in str(error), f"{type(error).__name__}: {error}"
    assert isinstance(error, builtin), f"{type(error).__name__} is not a {builtin.__name__}"
    if isinstance(error, (TypeError, ValueError)) and not isinstance(error, (SnapshotError, EntityError)):
        assert isinstance(error, InvalidArgument), f"{type(error).__name__} is not an InvalidArgument"


@pytest.mark.parametrize(
    ("call", "word", "builtin"), [c[1:] for c in PURE_CASES], ids=[c[0] for c in PURE_CASES]
)
def test_bad_arguments_to_the_pure_parts_and_constructors(
    call: Callable[[], Any], word: str, builtin: type
) -> None:
    check(call, word, builtin)


NETWORK_CASES = list(_network_cases()) + list(_window_cases())


@pytest.mark.parametrize(
    ("call", "word", "builtin"), [c[1:] for c in NETWORK_CASES], ids=[c[0] for c in NETWORK_CASES]
)
def test_bad_arguments_to_the_connected_parts(call: Callable[[Any], Any], word: str, builtin: type) -> None:
    servo = Servo("127.0.0.1", 0)
    server = GameServer(servo)
    connection = Sprocket("127.0.0.1", servo.port, name="tester")
    live: dict[str, Any] = {"server": server, "sprocket": connection, "close": []}
    try:
        check(lambda: call(live), word, builtin)
    finally:
        for close in live["close"]:
            close()
        connection.close()
        server.close()
