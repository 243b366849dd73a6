"""Sprocket Hockey's scoring, checked against the demo's documented sides, not against the clients' agreement.

rules.py: "side 0 plays on the left (blue), 1 on the right (red)", and a mallet stays on its own half, so
side 0 defends the goal in the left wall and side 1 the goal in the right wall.  A puck that enters a goal
is a point for the side that does *not* defend it.  Both goals are tried, at the rule and in the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from demos.hockey.rules import (
    CENTER_X,
    CENTER_Y,
    HOME_X,
    LEFT,
    LEFT_SIDE,
    PUCK_R,
    RIGHT,
    RIGHT_SIDE,
    WIN_SCORE,
    Mallet,
    Puck,
    advance_puck,
    move,
)
from demos.hockey.server import HockeyServer
from sprocket import Servo, Sprocket
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)

GOALS = {"left": LEFT, "right": RIGHT}  # the wall each goal mouth is in


def defender(goal: str) -> int:
    """The side whose mallet can reach ``goal``'s wall (each mallet is kept on its own half)."""
    wall = GOALS[goal]
    sides = []
    for side in (LEFT_SIDE, RIGHT_SIDE):
        mallet = Mallet(x=HOME_X[side], y=CENTER_Y, side=side)
        push = {"x": -1.0 if wall < CENTER_X else 1.0}
        for _ in range(120):
            mallet = move(mallet, push, 1 / 60)
        if abs(mallet.x - wall) < CENTER_X / 2:
            sides.append(side)
    (side,) = sides
    return side


def other(side: int) -> int:
    return RIGHT_SIDE if side == LEFT_SIDE else LEFT_SIDE


def test_the_documented_sides() -> None:
    # Side 0 plays (and defends) on the left, side 1 on the right.
    assert defender("left") == LEFT_SIDE == 0
    assert defender("right") == RIGHT_SIDE == 1
    assert HOME_X[LEFT_SIDE] < CENTER_X < HOME_X[RIGHT_SIDE]


def shot_at(goal: str) -> Puck:
    """A puck just in front of ``goal``, in the middle of its mouth, heading in."""
    if goal == "left":
        return Puck(x=LEFT + PUCK_R + 20, y=CENTER_Y + 30, vx=-700.0, vy=0.0)
    return Puck(x=RIGHT - PUCK_R - 20, y=CENTER_Y - 30, vx=700.0, vy=0.0)


@pytest.mark.parametrize("goal", ["left", "right"])
def test_the_rule_credits_the_side_that_does_not_defend_the_goal(goal: str) -> None:
    puck = shot_at(goal)
    events: list[tuple[str, float, float]] = []
    for _ in range(60):
        events = advance_puck(puck, [], 1 / 60)
        if any(kind == "goal" for kind, _, _ in events):
            break
    goals = [e for e in events if e[0] == "goal"]
    assert goals == [("goal", other(defender(goal)), 0.0)]


@pytest.mark.parametrize("goal", ["left", "right"])
def test_a_shot_just_outside_the_mouth_bounces_off_the_wall(goal: str) -> None:
    puck = shot_at(goal)
    puck.y = CENTER_Y + 140  # beside the goal mouth (90 px either side of the centre line)
    events: list[tuple[str, float, float]] = []
    for _ in range(60):
        events += advance_puck(puck, [], 1 / 60)
    assert not [e for e in events if e[0] == "goal"]
    assert any(kind == "wall" and x == GOALS[goal] for kind, x, _ in events)
    assert (puck.vx > 0) == (goal == "left")  # coming back out


@pytest.fixture
def hockey() -> Iterator[tuple[HockeyServer, Sprocket]]:
    """A HockeyServer stepped by the test (no thread), with one player: "blue", on the left."""
    server = HockeyServer(Servo("127.0.0.1", 0))
    player = Sprocket("127.0.0.1", server.port, name="blue", app="sprocket-hockey-1")
    try:
        player.wait_connected(5)
        wait_until(lambda: server.step() or server.match.left_name == "blue", 5, "the player to take a side")
        yield server, player
    finally:
        player.close()
        server.close()


def score(server: HockeyServer, goal: str) -> None:
    """Put the puck in front of ``goal`` during play and step the server until the goal is given."""
    shot = shot_at(goal)
    server.match.phase = "play"
    server.still = 0.0
    for name in ("x", "y", "vx", "vy"):
        setattr(server.puck, name, getattr(shot, name))
    for _ in range(60):
        server.step()
        if server.match.phase != "play":
            return
    pytest.fail(f"no goal after a second of the puck heading into the {goal} goal")


def goal_sounds(player: Sprocket, count: int) -> list[Any]:
    got: list[Any] = []
    wait_until(
        lambda: got.extend(p for p in player.get() if p.get("sfx") in ("goal", "win")) or len(got) >= count,
        5,
        f"{count} goal announcements",
    )
    return got


@pytest.mark.parametrize("goal", ["left", "right"])
def test_the_server_gives_the_point_to_the_side_that_did_not_concede(
    hockey: tuple[HockeyServer, Sprocket], goal: str
) -> None:
    server, player = hockey
    mallet = server.mallets[LEFT_SIDE]  # the first player takes the left, as documented
    assert mallet.x < CENTER_X and server.match.left_name == "blue"
    scorer = other(defender(goal))
    score(server, goal)
    match = server.match
    assert (match.left, match.right) == ((1, 0) if scorer == LEFT_SIDE else (0, 1))
    assert match.phase == "goal" and match.winner == -1
    (announced,) = goal_sounds(player, 1)
    assert announced.sfx == "goal" and announced.side == scorer
    # The puck is served on the side of the player who conceded.
    assert (server.puck.x < CENTER_X) == (defender(goal) == LEFT_SIDE)
    assert server.puck.vx == server.puck.vy == 0.0


def test_the_winner_is_the_side_that_reaches_seven(hockey: tuple[HockeyServer, Sprocket]) -> None:
    server, player = hockey
    match = server.match
    match.left, match.right = WIN_SCORE - 1, WIN_SCORE - 1
    score(server, "left")  # the right side scores its seventh
    assert (match.left, match.right) == (WIN_SCORE - 1, WIN_SCORE)
    assert match.phase == "over" and match.winner == RIGHT_SIDE
    match.left, match.right, match.winner = WIN_SCORE - 1, 0, -1
    score(server, "right")  # the left side scores its seventh
    assert (match.left, match.right) == (WIN_SCORE, 0)
    assert match.phase == "over" and match.winner == LEFT_SIDE
    assert [p.sfx for p in goal_sounds(player, 2)] == ["win", "win"]


def test_a_goal_sends_the_puck_to_the_face_off_as_a_teleport(hockey: tuple[HockeyServer, Sprocket]) -> None:
    server, player = hockey
    puck_id = next(eid for eid, entity in server.world.items() if entity is server.puck)
    score(server, "left")
    jumps: list[Any] = []

    def snapshots_with_jumps() -> bool:
        server.step()
        for p in player.get():
            # The compact form (docs/PROTOCOL.md): [tick, back, time, change, jump, ...].
            if p.get("_g") == "S" and len(p.s[0]) > 4 and p.s[0][4]:  # "S": [w, ack, you(, in)]
                jumps.append(p.s[0][4])
        return bool(jumps)

    wait_until(snapshots_with_jumps, 5, "a snapshot marking the puck's jump")
    assert jumps == [[puck_id]]  # the face-off, and nothing else, was a jump


def test_the_client_re_simulates_the_puck_exactly_as_the_server_moves_it(
    hockey: tuple[HockeyServer, Sprocket],
) -> None:
    """The server's simulate runs Puck.simulate; a client rewinding to a snapshot and replaying its
    inputs with the same rules gets the server's puck bit for bit, through a hit by its mallet."""
    from sprocket.game.rollback import WorldPredictor

    server, _ = hockey
    client = next(iter(server.players))
    me = server.players[client].entity
    mallet = server.mallets[LEFT_SIDE]
    server.match.phase = "play"
    server.puck.x, server.puck.y, server.puck.vx, server.puck.vy = mallet.x + 140, mallet.y + 9, 0.0, 0.0
    dt = server.dt

    def tick(keys: dict[str, float]) -> None:  # GameServer.step's order, without the network
        server.on_input(client, keys)
        server.simulate(dt)
        server.tick += 1

    tick({"x": 0.0, "y": 0.0})  # the server's mallet velocities start from a tick of history
    keys = [{"x": 1.0, "y": 0.0}] * 50 + [{"x": 0.0, "y": -1.0}] * 20
    predictor = WorldPredictor(dt, rule=move)
    snapshots = {}
    hit_at = None
    for seq, k in enumerate(keys, start=1):
        tick(k)
        snapshots[seq] = server.world.snapshot(server.tick, server.tick * dt)
        predictor.step(seq, k)
        if hit_at is None and server.puck.vx > 100.0:
            hit_at = seq
    assert hit_at is not None and hit_at > 5, "the mallet should hit the puck after the snapshot used"
    predictor.rewind(snapshots[5], 5, me)  # 65 ticks re-simulated, the hit among them
    predicted = predictor.world
    assert predictor.resimulated == 65 and predictor.tick == server.tick
    puck_id = next(eid for eid, entity in server.world.items() if entity is server.puck)
    assert predicted[puck_id].to_fields() == server.puck.to_fields()
    assert predicted[me].to_fields() == mallet.to_fields()


def test_the_mallet_rule_reports_its_velocity() -> None:
    mallet = Mallet(x=HOME_X[LEFT_SIDE], y=CENTER_Y, side=LEFT_SIDE)
    mallet = move(mallet, {"x": 1.0, "y": 0.0}, 1 / 60)
    # Positions are on a grid of 0.01 px, so a tick's travel is too: within 0.01 px * 60 of 560 px/s.
    assert mallet.vx == pytest.approx(560.0, abs=0.6) and mallet.vy == 0.0
    assert round(mallet.x / 0.01) * 0.01 == mallet.x  # on the grid
    for _ in range(200):  # against its side's limit it stops, and so does its velocity
        mallet = move(mallet, {"x": 1.0, "y": 0.0}, 1 / 60)
    assert mallet.vx == 0.0


def test_the_bot_presses_keys_like_a_player() -> None:
    from demos.hockey.bot import ARRIVED_PX, press_towards

    assert press_towards(100.0, 0.0) == {"x": 1, "y": 0}
    assert press_towards(-70.0, 70.0) == {"x": -1, "y": 1}  # a diagonal: both keys
    assert press_towards(10.0, -100.0) == {"x": 0, "y": -1}  # mostly up: up only
    assert press_towards(ARRIVED_PX / 2, 0.0) == {"x": 0, "y": 0}  # there: hands off the keys
    for dx, dy in ((3.0, 400.0), (-250.0, -1.0), (90.0, 90.0)):
        keys = press_towards(dx, dy)
        assert all(type(v) is int and v in (-1, 0, 1) for v in keys.values())  # one byte each on the wire
        assert keys["x"] * dx >= 0 and keys["y"] * dy >= 0  # never away from the target
