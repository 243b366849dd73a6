"""World prediction (rollback) and teleport marks, in memory: exact values, no clock but the one passed in.

A little world: a Paddle (controlled, moved by the rule with the player's input) and a Ball (declared
``predicted=True``; its ``simulate`` moves it and bounces it off paddles).  The "server" below runs ticks
exactly as GameServer does (the rule on the controlled entity, then ``simulate_predicted``'s order), so
the client's re-simulation can be checked against it bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from sprocket.game import Entity, World, decode_snapshot, encode_snapshot, snap
from sprocket.game.interpolation import InterpolationBuffer
from sprocket.game.rollback import CORRECTION_HALF_LIFE, SETTLED, SNAP_DISTANCE, WorldPredictor
from sprocket.game.snapshot import Snapshot, SnapshotError, UnknownEntityError

pytestmark = pytest.mark.timeout(60)

DT = 1 / 60


class Paddle(Entity, type_name="test_rollback.Paddle"):
    x: float = 0.0
    y: float = 0.0
    vx: float = snap(0.0)


def push(paddle: Paddle, keys: Any, dt: float) -> Paddle:
    """The game rule: the paddle moves along x at 240 px/s times the input."""
    paddle.vx = float(keys.get("x", 0.0)) * 240.0
    paddle.x += paddle.vx * dt
    return paddle


class Ball(Entity, type_name="test_rollback.Ball", predicted=True):
    x: float = 100.0
    y: float = 0.0
    vx: float = -90.0

    def simulate(self, world: Mapping[int, Entity], dt: float) -> str | None:
        self.x += self.vx * dt
        for other in world.values():
            if isinstance(other, Paddle) and abs(other.x - self.x) < 10.0 and self.vx < other.vx + 1.0:
                self.vx = abs(self.vx) * 0.9 + max(0.0, other.vx)  # bounced, and pushed if it moved
                self.x = other.x + 10.0
                return "hit"
        return None


class Wall(Entity, type_name="test_rollback.Wall"):  # not predicted: held where the snapshot has it
    x: float = 500.0


def server_tick(world: World, me: int, keys: Any) -> None:
    """One GameServer tick: the rule on the controlled entity (on a copy, assigned back), then every
    predicted entity's simulate in id order (GameServer.simulate_predicted)."""
    new = push(world[me].copy(), keys, DT)  # type: ignore[arg-type]
    for name, value in new.to_fields().items():
        setattr(world[me], name, value)
    for eid in sorted(eid for eid, e in world.items() if type(e).predicted):
        world[eid].simulate(world, DT)  # type: ignore[attr-defined]


def inputs(n: int) -> list[dict[str, float]]:
    # Right for a while, then left: the paddle meets the ball on the way.
    return [{"x": 1.0 if i % 40 < 25 else -1.0} for i in range(n)]


def make_world() -> tuple[World, int, int, int]:
    world = World()
    me = world.spawn(Paddle(x=0.0))
    ball = world.spawn(Ball(x=100.0, vx=-90.0))
    wall = world.spawn(Wall())
    return world, me, ball, wall


def test_rewind_and_resimulate_reproduce_the_server_exactly() -> None:
    world, me, ball, wall = make_world()
    keys = inputs(90)
    client = WorldPredictor(DT, rule=push)
    snapshots: dict[int, Snapshot] = {}
    truth: dict[int, tuple[float, float]] = {}
    for tick, k in enumerate(keys, start=1):
        server_tick(world, me, k)
        snapshots[tick] = world.snapshot(tick, tick * DT)
        b = world[ball]
        truth[tick] = (b.x, b.vx)  # type: ignore[attr-defined]
    hits = sum(1 for t in range(2, 91) if truth[t][1] > 0 >= truth[t - 1][1])
    assert hits >= 1, "the paddle should meet the ball in this script"

    # The client sent every input at once; the server's snapshot of tick 20 has applied 20 of them
    # (ack 20): the client rewinds there and re-simulates the other 70, up to its present, tick 90.
    for seq, k in enumerate(keys, start=1):
        client.step(seq, k)
    assert client.tick is None and client.display() == {}  # nothing known before a snapshot
    assert client.rewind(snapshots[20], 20, me) == 70
    assert client.tick == 90
    shown = client.display()
    assert set(shown) == {ball}  # only the type that opted in; the paddle and the wall are not in it
    assert (shown[ball].x, shown[ball].vx) == truth[90]  # bit for bit
    assert client.world[wall] is snapshots[20].entities[wall]  # not predicted: held, not copied
    assert client.correction == 0.0 and client.last_correction == 0.0  # nothing was on screen yet

    # Later snapshots agree with what was predicted: no correction, whatever the tick.
    for tick in (35, 60, 90):
        assert client.rewind(snapshots[tick], tick, me) == 90 - tick
        assert client.tick == 90 and client.last_correction == 0.0 and client.correction == 0.0
        assert (client.display()[ball].x, client.display()[ball].vx) == truth[90]
    # A stale snapshot (an older ack) replays from the ack already seen.
    assert client.rewind(snapshots[90], 3, me) == 0


def test_each_input_sent_advances_the_predicted_world_one_tick() -> None:
    world, me, ball, _ = make_world()
    keys = inputs(50)
    client = WorldPredictor(DT, rule=push)
    expected = {}
    for tick, k in enumerate(keys, start=1):
        server_tick(world, me, k)
        expected[tick] = world[ball].x  # type: ignore[attr-defined]
        if tick == 10:
            first = world.snapshot(10, 10 * DT)
    for seq, k in enumerate(keys[:10], start=1):
        client.step(seq, k)
    client.rewind(first, 10, me)
    for seq, k in enumerate(keys[10:], start=11):
        client.step(seq, k)
        assert client.tick == seq and client.display()[ball].x == expected[seq]
    assert client.pending == 40


def held_ball(x: float) -> Snapshot:
    return Snapshot(1, 0.0, {7: Ball(x=x, vx=0.0)})


def test_a_misprediction_is_corrected_by_an_offset_that_halves_every_half_life() -> None:
    client = WorldPredictor(DT)
    client.rewind(held_ball(50.0), 0)
    assert client.display()[7].x == 50.0
    # The server says the ball is 10 px further on: what is drawn does not move at once ...
    client.rewind(held_ball(60.0), 0)
    assert client.last_correction == 10.0 and client.correction == 10.0
    assert client.offset(7) == (-10.0, 0.0)
    assert client.display()[7].x == 50.0 and client.world[7].x == 60.0
    # ... and the offset halves every CORRECTION_HALF_LIFE (1/30 s: two frames at 60 fps).
    h = CORRECTION_HALF_LIFE
    client.advance_display(h)
    assert client.display()[7].x == 55.0
    client.advance_display(h)
    assert client.display()[7].x == 57.5
    client.advance_display(h / 2)
    assert client.display()[7].x == pytest.approx(60.0 - 2.5 / math.sqrt(2), abs=1e-12)
    # Under SETTLED px it is dropped: the drawn state is exactly the predicted one.
    client.advance_display(h * math.log2(10.0 / SETTLED))
    assert client.offset(7) == () and client.correction == 0.0 and client.display()[7].x == 60.0
    assert client.smoothed == 1 and client.snaps == 0


def test_a_correction_starts_from_what_is_drawn_so_nothing_jumps() -> None:
    client = WorldPredictor(DT)
    client.rewind(held_ball(50.0), 0)
    client.rewind(held_ball(60.0), 0)  # drawn at 50, offset -10
    client.advance_display(CORRECTION_HALF_LIFE)  # drawn at 55
    client.rewind(held_ball(40.0), 0)  # the server changes its mind: still drawn at 55
    assert client.display()[7].x == 55.0 and client.offset(7) == (15.0, 0.0)
    assert client.last_correction == 15.0


def test_a_big_correction_snaps() -> None:
    client = WorldPredictor(DT)
    client.rewind(held_ball(50.0), 0)
    client.rewind(held_ball(50.0 + SNAP_DISTANCE + 1.0), 0)
    assert client.display()[7].x == 151.0 and client.correction == 0.0
    assert client.last_correction == SNAP_DISTANCE + 1.0 and client.snaps == 1
    client.rewind(held_ball(50.0 + SNAP_DISTANCE), 0)  # the threshold itself still glides
    assert client.display()[7].x == 151.0 and client.offset(7) == (1.0, 0.0)


def test_a_teleport_is_never_smoothed() -> None:
    client = WorldPredictor(DT)
    client.rewind(held_ball(50.0), 0)
    jumped = Snapshot(2, 0.1, {7: Ball(x=60.0, vx=0.0)}, frozenset({7}))
    client.rewind(jumped, 0)
    assert client.display()[7].x == 60.0 and client.correction == 0.0 and client.snaps == 1
    # The same distance without the mark glides, as above.
    client.rewind(held_ball(70.0), 0)
    assert client.display()[7].x == 60.0 and client.correction == 10.0


def test_only_types_that_opt_in_are_predicted() -> None:
    class Plain(Entity, type_name="test_rollback.Plain"):
        x: float = 0.0

    class Base(Entity, type_name="test_rollback.Base", predicted=True):
        x: float = 0.0

        def simulate(self, world: Mapping[int, Entity], dt: float) -> None:
            self.x += 1.0

    class Child(Base, type_name="test_rollback.Child"):  # inherits predicted=True
        pass

    class Off(Base, type_name="test_rollback.Off", predicted=False):
        pass

    assert (Plain.predicted, Base.predicted, Child.predicted, Off.predicted) == (False, True, True, False)
    client = WorldPredictor(DT)
    client.step(1, None)
    client.step(2, None)
    client.rewind(Snapshot(5, 0.0, {1: Plain(), 2: Base(), 3: Child(), 4: Off()}), 0)
    shown = client.display()
    assert set(shown) == {2, 3} and shown[2].x == shown[3].x == 2.0
    assert client.world[1].x == client.world[4].x == 0.0


def test_a_predicted_type_must_say_how_it_moves() -> None:
    from sprocket.game._checks import InvalidType

    with pytest.raises(InvalidType, match=r"predicted=True but has no simulate\(self, world, dt\)"):

        class Lost(Entity, type_name="test_rollback.Lost", predicted=True):
            x: float = 0.0

    with pytest.raises(InvalidType, match=r"predicted of .* must be a bool"):

        class Odd(Entity, type_name="test_rollback.Odd", predicted="yes"):  # type: ignore[arg-type]
            x: float = 0.0


def test_bad_arguments_are_named() -> None:
    from sprocket.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="dt"):
        WorldPredictor(0.0)
    with pytest.raises(InvalidArgument, match="half_life"):
        WorldPredictor(DT, half_life=-1.0)
    with pytest.raises(InvalidArgument, match="snap_distance"):
        WorldPredictor(DT, snap_distance=0.0)
    with pytest.raises(TypeError, match="snapshot"):
        WorldPredictor(DT).rewind({}, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="acked"):
        WorldPredictor(DT).rewind(held_ball(1.0), 1.5)  # type: ignore[arg-type]


# -- teleport marks: the World, the wire, the interpolation --------------------------------------------


def test_world_teleport_marks_the_next_snapshot_only() -> None:
    world = World()
    a = world.spawn(Ball())
    b = world.spawn(Ball())
    world.teleport(a)
    world.teleport(world[b])  # the entity object works too
    assert world.teleported == {a, b}
    gone = world.spawn(Ball())
    world.teleport(gone)
    world.despawn(gone)
    first = world.snapshot(1, 0.0)
    assert first.jumps == {a, b}  # a despawned entity's mark goes with it
    assert world.snapshot(2, 0.1).jumps == frozenset()
    with pytest.raises(UnknownEntityError):
        world.teleport(99)
    with pytest.raises(UnknownEntityError):
        world.teleport(Ball())


def test_jumps_travel_in_the_wire_form_and_old_snapshots_still_decode() -> None:
    world = World()
    a = world.spawn(Ball(x=1.0))
    world.spawn(Ball(x=2.0))
    base = world.snapshot(1, 0.0)
    world[a].x = 500.0  # type: ignore[attr-defined]
    world.teleport(a)
    new = world.snapshot(2, 0.1)
    wire = encode_snapshot(new, base)
    assert wire["jump"] == [a]
    assert decode_snapshot(wire, base).jumps == {a}
    assert "jump" not in encode_snapshot(world.snapshot(3, 0.2), new)  # none: left out
    old = {k: v for k, v in wire.items() if k != "jump"}  # what a server before issue 12 sends
    assert decode_snapshot(old, base).jumps == frozenset()
    for bad in ("x", [True], [1.5], [99]):
        with pytest.raises(SnapshotError, match="jump"):
            decode_snapshot({**wire, "jump": bad}, base)


def test_interpolation_shows_a_teleport_as_a_jump() -> None:
    buf = InterpolationBuffer(delay=0.25)
    buf.push(Snapshot(1, 0.0, {1: Ball(x=0.0), 2: Ball(x=0.0)}), 0.0)
    buf.push(Snapshot(2, 0.5, {1: Ball(x=100.0), 2: Ball(x=100.0)}, frozenset({1})), 0.5)
    half = buf.sample(0.5)  # render time 0.25: half-way
    assert half[2].x == 50.0  # blended
    assert half[1].x == 0.0  # jumped: where it was until the snapshot is reached ...
    at = buf.sample(0.75)
    assert at[1].x == 100.0  # ... then where it jumped to
    past = buf.sample(0.8)  # past the newest snapshot: extrapolated, but never across the jump
    assert past[2].x > 100.0 and past[1].x == 100.0


def two_player_world() -> tuple[World, int, int, int]:
    world = World()
    me = world.spawn(Paddle(x=-200.0))  # far from the ball: only the other player's paddle meets it
    them = world.spawn(Paddle(x=0.0))
    ball = world.spawn(Ball(x=100.0, vx=-90.0))
    return world, me, them, ball


def two_player_tick(world: World, me: int, them: int, mine: Any, theirs: Any) -> None:
    """A GameServer tick with two players: each one's input by the rule (join order), then simulate."""
    for eid, keys in ((me, mine), (them, theirs)):
        new = push(world[eid].copy(), keys, DT)  # type: ignore[arg-type]
        for name, value in new.to_fields().items():
            setattr(world[eid], name, value)
    for eid in sorted(eid for eid, e in world.items() if type(e).predicted):
        world[eid].simulate(world, DT)  # type: ignore[attr-defined]


def test_the_other_players_are_moved_by_their_last_input_so_their_hit_is_predicted() -> None:
    world, me, them, ball = two_player_world()
    theirs = {"x": 1.0}  # the other player runs at the ball and keeps running: its last input holds
    snapshots: dict[int, Snapshot] = {}
    truth: dict[int, tuple[float, float, float]] = {}
    for tick in range(1, 61):
        two_player_tick(world, me, them, {"x": 0.0}, theirs)
        snapshots[tick] = world.snapshot(tick, tick * DT)
        truth[tick] = (world[ball].x, world[ball].vx, world[them].x)  # type: ignore[attr-defined]
    hit = next(t for t in range(2, 61) if truth[t][1] > 0 >= truth[t - 1][1])
    assert 5 < hit < 30, "the other paddle should meet the ball early in the script"

    # Rewound to a snapshot from before the hit, with 30 inputs of ours still unapplied: knowing their
    # last input, the replay sees their paddle arrive and the ball bounce, bit for bit as the server will.
    knowing = WorldPredictor(DT, rule=push)
    blind = WorldPredictor(DT, rule=push)
    for predictor in (knowing, blind):
        for seq in range(1, 61):
            predictor.step(seq, {"x": 0.0})
    assert knowing.rewind(snapshots[hit - 4], 30, me, {them: theirs}) == 30
    assert blind.rewind(snapshots[hit - 4], 30, me) == 30
    assert knowing.tick == blind.tick == hit - 4 + 30
    now = knowing.tick
    assert (knowing.display()[ball].x, knowing.display()[ball].vx) == truth[now][:2]
    assert knowing.world[them].x == truth[now][2]  # type: ignore[attr-defined]
    # Blind, their paddle is held where the snapshot had it: the ball meets it later, elsewhere.
    assert abs(blind.display()[ball].x - truth[now][0]) > 10.0
    assert blind.world[them] is snapshots[hit - 4].entities[them]  # held, not even copied

    # Each input of ours sent after the rewind moves them on too (their last input still holds).
    knowing.step(61, {"x": 0.0})
    assert knowing.world[them].x == truth[now + 1][2]  # type: ignore[attr-defined]
    # Our own entity is moved by our inputs only, even if listed among the others.
    stray = WorldPredictor(DT, rule=push)
    stray.step(1, {"x": 0.0})
    stray.rewind(snapshots[1], 0, me, {me: {"x": 1.0}})
    assert stray.world[me].x == snapshots[1].entities[me].x  # type: ignore[attr-defined]


def test_other_players_are_drawn_predicted_and_corrected_only_when_asked() -> None:
    world, me, them, ball = two_player_world()
    snapshots: dict[int, Snapshot] = {}
    for tick in range(1, 41):
        two_player_tick(world, me, them, {"x": 0.0}, {"x": 1.0 if tick <= 20 else -1.0})
        snapshots[tick] = world.snapshot(tick, tick * DT)
    plain = WorldPredictor(DT, rule=push)
    shown = WorldPredictor(DT, rule=push, show_players=True)
    for predictor in (plain, shown):
        for seq in range(1, 31):
            predictor.step(seq, {"x": 0.0})
        predictor.rewind(snapshots[15], 15, me, {them: {"x": 1.0}})
    assert set(plain.display()) == {ball}  # their paddle left to interpolation
    assert set(shown.display()) == {ball, them}  # drawn from the predicted present
    guessed = shown.display()[them].x
    assert guessed == snapshots[15].entities[them].x + 15 * 240.0 * DT  # type: ignore[attr-defined]
    # They turned at tick 21: the next snapshot says so; what is drawn glides from the guess.
    shown.rewind(snapshots[25], 25, me, {them: {"x": -1.0}})
    truth = snapshots[25].entities[them].x - 5 * 240.0 * DT  # type: ignore[attr-defined]
    assert shown.world[them].x == pytest.approx(truth)  # type: ignore[attr-defined]
    assert shown.offset(them) == (pytest.approx(guessed - truth), 0.0)
    assert shown.display()[them].x == pytest.approx(guessed)  # nothing jumps on screen
    shown.advance_display(CORRECTION_HALF_LIFE)
    assert shown.display()[them].x == pytest.approx(truth + (guessed - truth) / 2)
    with pytest.raises(TypeError, match="show_players"):
        WorldPredictor(DT, show_players=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="others"):
        plain.rewind(snapshots[1], 1, me, [(them, {})])  # type: ignore[arg-type]
