"""Sprocket Hockey's server: authoritative and headless (it never imports pygame).

Run it on its own with ``python -m sprocket.game.serve demos.hockey:HockeyServer``, or let
``python -m demos.hockey`` host it in the same process.
"""

from __future__ import annotations

import math
import random
from typing import Any

from sprocket import Client, Packet
from sprocket.game import GameServer, round_quantized

from .rules import (
    CENTER_X,
    CENTER_Y,
    HOME_X,
    LEFT_SIDE,
    RIGHT_SIDE,
    WIN_SCORE,
    Mallet,
    Match,
    Puck,
    move,
    serve,
)

COUNTDOWN, GOAL_PAUSE, GAME_OVER, STUCK_AFTER = 3.0, 1.6, 4.0, 3.0
RESUME_COUNTDOWN = 3.0  # seconds of countdown when a dropped player is back, before play goes on
SFX_GAP = 5  # ticks between two sound effects of the same kind


class HockeyServer(GameServer):
    """Two players, one puck, first to seven (:attr:`win_score`).  Anyone past the second player watches.

    A player whose connection drops keeps their side, mallet and score for the server's grace period
    (30 s): the match pauses ("away") with a countdown of the time left, and goes on after a short
    countdown when they are back.  If they are not back in time, they leave: the match waits for someone
    to take the empty side ("paused").
    """

    rule = staticmethod(move)  # the client predicts its mallet with the very same function
    # What an input may hold: anything else is dropped before move() sees it (and a client that keeps
    # sending such inputs is kicked), so no hand-made input can push a mallet faster than a key can.
    input_schema = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}
    # The other player's last input is not shared for world prediction: in the game-feel harness it made
    # no measurable difference at 150 ms and, with no lag, more frames with the puck drawn inside your
    # mallet (README "Game feel, measured").  Each client holds the other mallet still while re-simulating.
    share_inputs = False
    tick_rate = 60
    snapshot_rate = 30
    win_score = WIN_SCORE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("app", "sprocket-hockey-1")  # clients of another game (or version) are turned away
        super().__init__(*args, **kwargs)
        self.match = Match()
        self.world.spawn(self.match)
        self.puck = Puck()
        self.world.spawn(self.puck)
        self.sides: dict[int, Client] = {}  # side -> the client playing it
        self.mallets: dict[int, Mallet] = {}  # side -> its mallet
        self.last_pos: dict[int, tuple[float, float]] = {}  # side -> mallet position a tick ago
        self._last_beep = 0
        self.random = random.Random()
        self.last_sfx: dict[str, int] = {}  # sound kind -> tick it was last sent
        self.still = 0.0  # seconds the puck has stayed near ``anchor`` during play
        self.away: dict[int, float] = {}  # side -> server time its player's grace period ends
        self.anchor = (CENTER_X, CENTER_Y)

    @property
    def room_state(self) -> str:
        """What a room listing shows of this match (in a RoomServer): ``"waiting"`` for a second player,
        ``"ready?"`` before it starts, ``"playing 3:2"`` with the score, ``"game over"``."""
        match = self.match
        if len(self.sides) < 2:
            return "waiting"
        if match.phase == "lobby":
            return "ready?"
        if match.phase == "over":
            return "game over"
        return f"playing {match.left}:{match.right}"

    # -- players come and go ------------------------------------------------------------------------

    def on_join(self, client: Client) -> None:
        free = [side for side in (LEFT_SIDE, RIGHT_SIDE) if side not in self.sides]
        if not free:
            return  # a spectator: no mallet; it still receives snapshots
        side = free[0]
        self.sides[side] = client
        mallet = Mallet(x=HOME_X[side], y=CENTER_Y, side=side)
        self.mallets[side] = mallet
        self.control(client, self.world.spawn(mallet))
        self._set_name(side, client.name or ("Blue" if side == LEFT_SIDE else "Red"))
        self.broadcast(sfx="join")
        if self.match.phase == "paused" and len(self.sides) == 2:
            if self.away:
                self.match.phase = "away"  # the other player is reconnecting: wait for them too
            else:
                self._start_countdown()

    def on_drop(self, client: Client, reason: str) -> None:
        side = self._side_of(client)
        if side is None:
            return  # a spectator: nothing waits for it
        self.away[side] = self.time + self.grace
        self._update_away()
        if self.match.phase in ("countdown", "play", "goal"):
            self.match.phase = "away"  # same seat, same score: wait for them

    def on_resume(self, client: Client) -> None:
        side = self._side_of(client)
        if side is None:
            return
        self.away.pop(side, None)
        self._update_away()
        if self.away:
            return  # the other player is still away
        match = self.match
        if match.phase == "away":
            match.phase, match.timer = "countdown", RESUME_COUNTDOWN
            self._last_beep = 0
        elif match.phase == "lobby" and match.left_ready and match.right_ready:
            self._start_countdown()

    def on_leave(self, client: Client, reason: str) -> None:
        for side, player in list(self.sides.items()):
            if player is client:
                self.away.pop(side, None)
                del self.sides[side]
                mallet = self.mallets.pop(side)
                self.world.despawn(next(i for i, e in self.world.items() if e is mallet))
                self._set_name(side, "")
                self._set_ready(side, False)
        self._update_away()
        if self.match.phase in ("countdown", "play", "goal", "away"):
            self.match.phase = "paused"  # keep the score; resume when someone takes the empty side
        if not self.sides:
            self._reset_match()

    def on_packet(self, client: Client, packet: Packet) -> None:
        if packet.get("ready") is True and self.match.phase in ("lobby", "over"):
            for side, player in self.sides.items():
                if player is client:
                    self._set_ready(side, True)
            if self.match.left_ready and self.match.right_ready and not self.away:
                self._start_countdown()

    # -- the simulation -----------------------------------------------------------------------------

    def simulate(self, dt: float) -> None:
        match = self.match
        if self.away:
            self._update_away()
        for side, mallet in self.mallets.items():
            # A mallet's velocity is how far it went this tick (zero for one whose player is away).
            px, py = self.last_pos.get(side, (mallet.x, mallet.y))
            mallet.vx, mallet.vy = (mallet.x - px) / dt, (mallet.y - py) / dt
            round_quantized(mallet)  # on its grid, as the rule leaves it (the client's re-simulation)
            self.last_pos[side] = (mallet.x, mallet.y)
        if match.phase == "play":
            # A puck wedged in one spot (a corner, between mallets) for a while goes back to a face-off.
            # So does a puck crawling along out of everyone's reach.
            ax, ay = self.anchor
            crawling = abs(self.puck.vx) + abs(self.puck.vy) < 40.0
            if abs(self.puck.x - ax) + abs(self.puck.y - ay) > 80 and not crawling:
                self.anchor, self.still = (self.puck.x, self.puck.y), 0.0
            self.still += dt
            if self.still > STUCK_AFTER:
                self.still = 0.0
                self._serve(self.random.choice((LEFT_SIDE, RIGHT_SIDE)))
            # The puck's physics is the rules' pure function of the world: clients re-run the very same
            # code to predict the puck (Puck is predicted=True).
            for kind, x, y in self.puck.simulate(self.world, dt):
                if kind == "goal":
                    self._goal(int(x))
                    break
                # One sound per kind per SFX_GAP: a puck squeezed against a wall would otherwise hit
                # something on every physics substep and flood the clients with sound packets.
                if self.tick - self.last_sfx.get(kind, -SFX_GAP) >= SFX_GAP:
                    self.last_sfx[kind] = self.tick
                    self.broadcast(sfx=kind, x=round(x), y=round(y))
        elif match.phase in ("countdown", "goal", "over"):
            match.timer = max(0.0, match.timer - dt)
            if match.phase == "countdown" and int(match.timer + 0.999) != self._last_beep:
                self._last_beep = int(match.timer + 0.999)
                self.broadcast(sfx="beep" if self._last_beep else "go")
            if match.timer == 0.0:
                if match.phase == "over":
                    match.phase = "lobby"
                else:
                    match.phase = "play"
                    if self.puck.vx == 0.0 and self.puck.x == CENTER_X:
                        # Face-off: the puck drifts towards a random player.
                        self.puck.vx = self.random.choice((-220.0, 220.0))
                        self.puck.vy = self.random.uniform(-90.0, 90.0)

    def _goal(self, scorer: int) -> None:
        match = self.match
        if scorer == LEFT_SIDE:
            match.left += 1
        else:
            match.right += 1
        self._serve(RIGHT_SIDE if scorer == LEFT_SIDE else LEFT_SIDE)
        if max(match.left, match.right) >= self.win_score:
            match.phase, match.timer, match.winner = "over", GAME_OVER, scorer
            self._set_ready(LEFT_SIDE, False)
            self._set_ready(RIGHT_SIDE, False)
            self.broadcast(sfx="win")
        else:
            match.phase, match.timer = "goal", GOAL_PAUSE
            self.broadcast(sfx="goal", side=scorer)

    # -- helpers ------------------------------------------------------------------------------------

    def _start_countdown(self) -> None:
        match = self.match
        if match.phase in ("lobby", "over"):
            match.left = match.right = 0
            match.winner = -1
            self._serve(LEFT_SIDE)
            self.puck.x = CENTER_X
        match.phase, match.timer = "countdown", COUNTDOWN
        self._last_beep = 0

    def _reset_match(self) -> None:
        self.match.phase, self.match.timer = "lobby", 0.0
        self.match.left = self.match.right = 0
        self.match.winner = -1
        self._serve(LEFT_SIDE)
        self.puck.x = CENTER_X

    def _serve(self, towards: int) -> None:
        # The puck goes back on the table in one step: a teleport, which clients show as a jump (not a
        # flight across the rink over a snapshot interval, nor a glide).
        serve(self.puck, towards=towards)
        self.teleport(self.puck)

    def _side_of(self, client: Client) -> int | None:
        return next((side for side, player in self.sides.items() if player is client), None)

    def _update_away(self) -> None:
        # Whole seconds of grace left per side (0: present), shown as the countdown while the match waits.
        left = {side: max(1.0, float(math.ceil(end - self.time))) for side, end in self.away.items()}
        self.match.left_away = left.get(LEFT_SIDE, 0.0)
        self.match.right_away = left.get(RIGHT_SIDE, 0.0)

    def _set_name(self, side: int, name: str) -> None:
        if side == LEFT_SIDE:
            self.match.left_name = name[:16]
        else:
            self.match.right_name = name[:16]

    def _set_ready(self, side: int, ready: bool) -> None:
        if side == LEFT_SIDE:
            self.match.left_ready = ready
        else:
            self.match.right_ready = ready
