"""Sprocket Hockey's rules: the table, the entities, and the physics. Pure Python, shared by everyone.

The server runs these rules authoritatively; each client runs ``move`` too, to predict its own mallet
the instant a key is pressed (sprocket replays it when the server's answer arrives).  Keep ``move``
deterministic and keep it the only thing that moves a mallet, and prediction is exact.

The puck is predicted too (``predicted=True``): its physics, :meth:`Puck.simulate`, is a pure function
of the world, which the server runs every tick of play and each client re-runs from every snapshot up
to its present.  So the puck answers your mallet the frame you hit it, instead of a round trip later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sprocket.game import Entity, quantized, round_quantized

# The window is 960x640: a 64 px HUD strip on top, the rink below it.  Coordinates are screen pixels.
WIDTH, HEIGHT, HUD = 960, 640, 64
LEFT, RIGHT, TOP, BOTTOM = 7.0, 953.0, HUD + 7.0, HEIGHT - 7.0  # the inside of the glowing boundary
CENTER_X, CENTER_Y = WIDTH / 2, HUD + (HEIGHT - HUD) / 2
GOAL_TOP, GOAL_BOTTOM = CENTER_Y - 90, CENTER_Y + 90  # the goal mouths in the left and right walls
MALLET_R, PUCK_R = 32.0, 18.0
MALLET_SPEED = 560.0  # px/s
PUCK_MAX_SPEED = 1150.0
FRICTION = 0.12  # fraction of speed lost per second: an air table is slippery
BOUNCE = 0.92  # how much speed survives a wall bounce
WIN_SCORE = 7
LEFT_SIDE, RIGHT_SIDE = 0, 1
HOME_X = (LEFT + 110.0, RIGHT - 110.0)  # where each mallet waits between points


class Mallet(Entity, type_name="hockey.Mallet"):
    """A player's mallet.  ``side`` 0 plays on the left (blue), 1 on the right (red)."""

    # Positions travel as hundredths of a pixel, speeds as tenths of a pixel per second (quantized: small
    # ints on the wire; nobody can see them).  The server sends each player its own mallet exactly, so
    # the puck's physics meets the very same mallet on the server and in that player's world prediction.
    x: float = quantized(0.01)
    y: float = quantized(0.01, CENTER_Y)
    side: int = LEFT_SIDE
    # How fast it moved in its last step (px/s): what it gives the puck when they meet.  Set by move(),
    # and by the server from the tick's displacement; snap=True keeps it out of blending and corrections.
    vx: float = quantized(0.1, snap=True)
    vy: float = quantized(0.1, snap=True)


class Puck(Entity, type_name="hockey.Puck", predicted=True):
    """The puck: the server's physics moves it, and every client predicts it with the same physics."""

    # Hundredths of a pixel (and of a pixel per second) on the wire.  simulate() rounds the puck to
    # them at the end of every tick, on the server and in every client's re-simulation alike, so world
    # prediction still computes exactly the server's numbers (a puck pushed by a mallet is chaotic: a
    # hundredth of a pixel can decide whether it bounces).
    x: float = quantized(0.01, CENTER_X)
    y: float = quantized(0.01, CENTER_Y)
    vx: float = quantized(0.01)
    vy: float = quantized(0.01)

    def simulate(self, world: Mapping[int, Entity], dt: float) -> list[tuple[str, float, float]]:
        """One tick of the puck's physics in ``world``; returns what happened (see :func:`advance_puck`).

        It moves only while the match is in play, and a puck that is all the way in a goal stays there
        (the server then serves it, as a teleport).  Pure: the server calls it each tick and clients
        re-run it to predict the puck.  It ends with the puck rounded to its quantized steps.
        """
        events = self._physics(world, dt)
        round_quantized(self)
        return events

    def _physics(self, world: Mapping[int, Entity], dt: float) -> list[tuple[str, float, float]]:
        match = None
        mallets = []
        for entity in world.values():
            if isinstance(entity, Match):
                match = entity
            elif isinstance(entity, Mallet):
                mallets.append(entity)
        if match is None or match.phase != "play":
            return []
        if self.x + PUCK_R < LEFT or self.x - PUCK_R > RIGHT:
            self.vx = self.vy = 0.0  # in the net: it waits there for the face-off
            return []
        mallets.sort(key=lambda m: m.side)
        return advance_puck(self, [(m, m.vx, m.vy) for m in mallets], dt)


class Match(Entity, type_name="hockey.Match"):
    """The state of the match, synced like any entity.

    Phases: lobby, countdown, play, goal, over, paused (a player left: the game resumes when someone
    takes the empty side), away (a player's connection dropped: the match waits for them to come back
    within the server's grace period, then counts down and plays on).
    """

    phase: str = "lobby"
    timer: float = 0.0  # seconds left in countdown / goal / over
    left: int = 0
    right: int = 0
    winner: int = -1
    left_name: str = ""
    right_name: str = ""
    left_ready: bool = False
    right_ready: bool = False
    # Whole seconds left of the grace period while that side's player is away (connection dropped); 0: here.
    left_away: float = 0.0
    right_away: float = 0.0


def _axis(value: Any) -> float:
    # Inputs come from the network: anything that is not a finite number counts as "no key".
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return max(-1.0, min(1.0, float(value)))


def move(mallet: Mallet, keys: Any, dt: float) -> Mallet:
    """THE game rule: move ``mallet`` one step of ``dt`` by ``keys`` ({"x": -1..1, "y": -1..1}).

    A mallet stays on its own half and inside the rink, on its grid (hundredths of a pixel: so the server
    sends its player the steps, not floats, and the prediction still starts from the very same numbers).
    Used by the server and, for prediction, the client.
    """
    keys = keys if isinstance(keys, dict) else {}
    dx, dy = _axis(keys.get("x")), _axis(keys.get("y"))
    length = math.hypot(dx, dy)
    if length > 1.0:
        dx, dy = dx / length, dy / length
    x0, y0 = mallet.x, mallet.y
    mallet.x += dx * MALLET_SPEED * dt
    mallet.y += dy * MALLET_SPEED * dt
    if mallet.side == LEFT_SIDE:
        mallet.x = min(max(mallet.x, LEFT + MALLET_R), CENTER_X - MALLET_R)
    else:
        mallet.x = min(max(mallet.x, CENTER_X + MALLET_R), RIGHT - MALLET_R)
    mallet.y = min(max(mallet.y, TOP + MALLET_R), BOTTOM - MALLET_R)
    round_quantized(mallet)  # the position on its grid first: the velocity is how far it really went
    if dt > 0:
        mallet.vx, mallet.vy = (mallet.x - x0) / dt, (mallet.y - y0) / dt
    return round_quantized(mallet)


def advance_puck(
    puck: Puck, mallets: list[tuple[Mallet, float, float]], dt: float, substeps: int = 4
) -> list[tuple[str, float, float]]:
    """Move the puck ``dt`` seconds; bounce it off walls and mallets.  Returns the events that happened:
    ("hit", x, y), ("wall", x, y), ("goal", side_that_scored, 0).  ``mallets`` holds (mallet, vx, vy).
    """
    events: list[tuple[str, float, float]] = []
    h = dt / substeps
    for _ in range(substeps):
        puck.x += puck.vx * h
        puck.y += puck.vy * h
        if puck.y - PUCK_R < TOP:
            puck.y, puck.vy = TOP + PUCK_R, abs(puck.vy) * BOUNCE
            events.append(("wall", puck.x, TOP))
        elif puck.y + PUCK_R > BOTTOM:
            puck.y, puck.vy = BOTTOM - PUCK_R, -abs(puck.vy) * BOUNCE
            events.append(("wall", puck.x, BOTTOM))
        in_mouth = GOAL_TOP + PUCK_R * 0.5 < puck.y < GOAL_BOTTOM - PUCK_R * 0.5
        if puck.x - PUCK_R < LEFT:
            if in_mouth:
                if puck.x + PUCK_R < LEFT:  # all the way in
                    return [*events, ("goal", RIGHT_SIDE, 0.0)]
            else:
                puck.x, puck.vx = LEFT + PUCK_R, abs(puck.vx) * BOUNCE
                events.append(("wall", LEFT, puck.y))
        elif puck.x + PUCK_R > RIGHT:
            if in_mouth:
                if puck.x - PUCK_R > RIGHT:
                    return [*events, ("goal", LEFT_SIDE, 0.0)]
            else:
                puck.x, puck.vx = RIGHT - PUCK_R, -abs(puck.vx) * BOUNCE
                events.append(("wall", RIGHT, puck.y))
        for mallet, mvx, mvy in mallets:
            if _collide(puck, mallet, mvx, mvy):
                events.append(("hit", (puck.x + mallet.x) / 2, (puck.y + mallet.y) / 2))
        if mallets:
            _keep_inside(puck)  # a mallet may push the puck against a wall, never through it
    slow = max(0.0, 1.0 - FRICTION * dt)
    puck.vx *= slow
    puck.vy *= slow
    speed = math.hypot(puck.vx, puck.vy)
    if speed > PUCK_MAX_SPEED:
        puck.vx *= PUCK_MAX_SPEED / speed
        puck.vy *= PUCK_MAX_SPEED / speed
    return events


def _keep_inside(puck: Puck) -> None:
    puck.y = min(max(puck.y, TOP + PUCK_R), BOTTOM - PUCK_R)
    if not GOAL_TOP < puck.y < GOAL_BOTTOM:
        puck.x = min(max(puck.x, LEFT + PUCK_R), RIGHT - PUCK_R)


def _collide(puck: Puck, mallet: Mallet, mvx: float, mvy: float) -> bool:
    dx, dy = puck.x - mallet.x, puck.y - mallet.y
    dist = math.hypot(dx, dy)
    reach = MALLET_R + PUCK_R
    if dist >= reach:
        return False
    nx, ny = (dx / dist, dy / dist) if dist > 1e-6 else (1.0 if mallet.side == LEFT_SIDE else -1.0, 0.0)
    puck.x, puck.y = mallet.x + nx * reach, mallet.y + ny * reach  # push the puck out of the mallet
    # Bounce in the mallet's frame of reference, so a moving mallet drives the puck.
    rvx, rvy = puck.vx - mvx, puck.vy - mvy
    along = rvx * nx + rvy * ny
    if along >= 0:
        return False  # already separating
    puck.vx -= 1.9 * along * nx
    puck.vy -= 1.9 * along * ny
    return True


def serve(puck: Puck, towards: int) -> None:
    """Put the puck back on the table, still, on the side of the player who conceded (``towards``)."""
    puck.x = CENTER_X + (-140.0 if towards == LEFT_SIDE else 140.0)
    puck.y = CENTER_Y
    puck.vx = puck.vy = 0.0
