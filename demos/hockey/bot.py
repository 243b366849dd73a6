"""A headless opponent: it plays over the real network, exactly like a person's window would."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from sprocket.errors import ClosedError
from sprocket.game import Entity, GameBot, LobbyRefused, RoomLeft

from .rooms import APP, RoomPlan
from .rules import (
    CENTER_X,
    GOAL_BOTTOM,
    GOAL_TOP,
    HOME_X,
    LEFT_SIDE,
    MALLET_R,
    PUCK_R,
    RIGHT,
    Mallet,
    Match,
    Puck,
    move,
)


def plain_reason(reason: str) -> str:
    """A connection failure's reason without its "cannot connect to HOST:PORT: " prefix (said already)."""
    return re.sub(r"^(cannot|could not) connect to \S+: ", "", reason)


#: Within this distance of its target (a tick's travel at full speed is 9.3 px) the bot lets go of the keys.
ARRIVED_PX = 10.0


def press_towards(dx: float, dy: float) -> dict[str, int]:
    """The keys a player would hold to go ``(dx, dy)`` px: each axis -1, 0 or 1 (eight directions).

    Nothing once within :data:`ARRIVED_PX`.  The bot plays with the keyboard's inputs, so its traffic is
    a player's: the keys change a few times a second, not every frame (the other players' world
    prediction guesses with its last input, and snapshots carry it only when it changes).
    """
    distance = math.hypot(dx, dy)
    if distance < ARRIVED_PX:
        return {"x": 0, "y": 0}
    ux, uy = dx / distance, dy / distance
    return {"x": (ux > 0.38) - (ux < -0.38), "y": (uy > 0.38) - (uy < -0.38)}


class HockeyBot(GameBot):
    """Chases the puck on its own half, aims at the far goal, and falls back to guard its own.

    On a rooms server (``./play --server``) it follows ``plan`` (a :class:`~demos.hockey.rooms.RoomPlan`;
    by default it quick-joins a hockey room); on a plain HockeyServer it plays the one match.
    """

    rule = staticmethod(move)

    def __init__(self, *args: Any, skill: float = 0.8, plan: RoomPlan | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("name", "Robo")
        kwargs.setdefault("app", APP)
        super().__init__(*args, **kwargs)
        self.plan = plan if plan is not None else RoomPlan()
        self.skill = skill  # 0..1: how well it aims (0: it never moves); a perfect bot is no fun
        self.random = random.Random(4)
        self.aim = 0.0
        self.ready_sent_for: str | None = None

    def tick(self, dt: float) -> None:
        """As :meth:`GameBot.tick <sprocket.game.GameBot.tick>`, then the room plan's next request, if
        any (in a rooms server's lobby)."""
        super().tick(dt)
        try:
            self.plan.step(self.lobby)
        except ClosedError:
            pass  # the connection is over (run() ends): nothing to ask for

    def on_lobby_error(self, refusal: LobbyRefused) -> None:
        self.plan.refused(refusal)

    def on_room_left(self, left: RoomLeft) -> None:
        self.plan.left(left)

    def decide(self, entities: dict[int, Entity]) -> dict[str, int] | None:
        me = entities.get(self.me) if self.me is not None else None
        puck = next((e for e in entities.values() if isinstance(e, Puck)), None)
        match = next((e for e in entities.values() if isinstance(e, Match)), None)
        if me is None or puck is None or match is None:
            return None
        if match.phase in ("lobby", "over") and self.ready_sent_for != match.phase:
            self.sprocket.send(ready=True)  # the bot is always up for a game
            self.ready_sent_for = match.phase
        elif match.phase not in ("lobby", "over"):
            self.ready_sent_for = None
        side = getattr(me, "side", LEFT_SIDE)
        home = HOME_X[side]
        on_my_half = puck.x <= CENTER_X + PUCK_R if side == LEFT_SIDE else puck.x >= CENTER_X - PUCK_R
        if match.phase == "play" and on_my_half:
            # Get behind the puck on the line to the far goal, then drive through it.
            goal_x = RIGHT if side == LEFT_SIDE else 0.0
            # Aim for the half of the goal the other mallet is not covering.
            other = next((e for e in entities.values() if isinstance(e, Mallet) and e is not me), None)
            centre = (GOAL_TOP + GOAL_BOTTOM) / 2
            target = centre + (45 if other is None or other.y < centre else -45) + self.aim
            gx, gy = goal_x - puck.x, target - puck.y
            length = math.hypot(gx, gy) or 1.0
            behind = MALLET_R + PUCK_R - 6
            tx, ty = puck.x - gx / length * behind, puck.y - gy / length * behind
            reachable = move(Mallet(x=tx, y=ty, side=side), {}, 0.0)
            if math.hypot(reachable.x - tx, reachable.y - ty) > 4:
                tx, ty = puck.x, puck.y  # cannot get behind it (it is against a wall): just shove it
            elif math.hypot(tx - me.x, ty - me.y) < 10:
                tx, ty = puck.x + gx / length * 40, puck.y + gy / length * 40
        else:
            miss = 15 + 80 * (1 - self.skill)  # a weaker bot aims worse
            self.aim = self.random.uniform(-miss, miss)
            tx, ty = home, min(max(puck.y, GOAL_TOP + 20), GOAL_BOTTOM - 20)
        if self.skill <= 0.0:
            return {"x": 0, "y": 0}  # skill 0: it stands where it is (in its goal), keys untouched
        return press_towards(tx - me.x, ty - me.y)
