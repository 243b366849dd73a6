"""Game feel: what each client of the hockey demo *draws*, frame by frame, and what that adds up to.

Used by the game-feel benchmark group (:mod:`benchmarks.gamefeel`), the hockey step of the frame-cost
group (:mod:`benchmarks.framecost`) and the game-feel test (``tests/demos/test_game_feel.py``).

**The rig** (:class:`Rig`).  A real :class:`~demos.hockey.server.HockeyServer` (a match that never ends:
``win_score`` is huge) on 127.0.0.1 port 0 in a background thread, a :class:`~sprocket.testing.LagProxy`
in front of it (``lag`` round trip, ``jitter``), and two real :class:`FeelGame` windows (the demo's
:class:`~demos.hockey.game.HockeyGame`, rendering under whatever SDL driver is set: the dummy one in tests
and benchmarks) connected through the proxy.  :meth:`Rig.run` steps both windows frame by frame with a
fixed ``dt`` of 1/60 s (``NetworkedGame.step(dt)``: exactly one input per frame), paced to the wall clock
at 60 frames per second (the network and the server run in real time; a frame that is late is not
caught up with a burst, it is counted in :attr:`Rig.late_frames`).

**The players.**  Each window's ``input()`` asks a :class:`Striker`, a scripted player that reads what
*that* window draws (its own predicted mallet and the puck as rendered), strikes the puck towards the far
goal whenever it is on its half and backs off after each touch, so contacts happen all the time.  It
steers with analog axes (a new direction every frame), or, with ``keys=True``, presses keys as a player
does on the demo's keyboard (each axis -1, 0 or 1, held until the direction changes): the case where the
other players' last inputs are a good guess (world prediction re-simulates them with it).

**The record.**  :meth:`FeelGame.draw` records, before drawing, what it is about to draw
(``self.entities``: the positions ``draw()`` uses, not the server's state): the match phase, its own
mallet, the puck, the other mallet, and the size of the display corrections in force (its own mallet's
prediction offset, ``net.predictor.correction``; the puck's, when the game layer predicts the world and
says how far off it shows it).  One :class:`FrameRecord` per frame.

**The figures** (:func:`analyse`, pure; only frames in the ``play`` phase count, and a frame where the
drawn puck jumps more than :data:`TELEPORT_PX` ends any contact being followed):

* contact: a frame where the drawn own mallet circle reaches the puck circle (centre distance <=
  ``MALLET_R + PUCK_R`` + :data:`TOUCH_SLACK_PX`), either as the puck is drawn in this frame or as it
  was drawn in the frame before (the mallet struck it there: a predicted puck is already on its way in
  the frame of the hit, and never seen touching), after a frame where the two were apart;
* response: frames from the contact to the first frame in which the drawn puck moves away from the mallet,
  i.e. its displacement since the previous frame, along the mallet-to-puck direction at the contact, is
  more than :data:`MOVE_PX` (0: the puck answers in the contact frame).  None within
  :data:`RESPONSE_WINDOW` frames: "unanswered" (counted, not averaged);
* overlap: frames where the drawn puck is more than :data:`OVERLAP_PX` inside the drawn mallet (own
  mallet; the other mallet separately), per 100 contacts and as a share of the contact frames (frames
  where the circles touch or overlap);
* corrections: in each frame where a correction offset is in force, its size (px) and how far it moved
  the drawing since the previous frame (px/frame): p50 and p99, for the own mallet and for the puck.

Everything is counted in frames and pixels; nothing here asserts a time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # benchmark workers never open a window or a sound card
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

FPS = 60
DT = 1.0 / FPS
#: The drawn circles touch when their centres are this much further apart than the radii's sum, or less
#: (a predicted collision pushes the puck out to exactly the sum, give or take a rounding error).
TOUCH_SLACK_PX = 0.5
#: A drawn puck "moves" in a frame when it goes this far away from the mallet since the frame before.
MOVE_PX = 0.5
#: Overlaps deeper than this (px) count as "drawn through the mallet".
OVERLAP_PX = 2.0
#: Frames after a contact within which the drawn puck must move away, or the contact counts as unanswered.
RESPONSE_WINDOW = 60
#: A drawn puck that jumps further than this in one frame was put back on the table (a face-off): no
#: contact is followed across it.
TELEPORT_PX = 80.0
#: A correction offset smaller than this (px) counts as none.
CORRECTION_EPSILON = 1e-6


Point = tuple[float, float]


class FrameRecord(NamedTuple):
    """What one window drew in one frame (positions are the drawn centres, in screen pixels)."""

    phase: str  # the drawn Match's phase ("" before the first snapshot)
    me: Point | None  # the own mallet
    puck: Point | None
    other: Point | None  # the other player's mallet
    own_correction: Point  # the own mallet's display offset (0, 0 when none)
    world_correction: Point | None  # the puck's display offset, when the game layer reports one


# -- the figures (pure) -------------------------------------------------------------------------------


@dataclass
class Feel:
    """The game-feel figures of one or more windows' records (see the module docstring)."""

    frames: int = 0  # frames in the play phase
    contacts: int = 0
    responses: list[int] = field(default_factory=list)  # frames from contact to the puck moving away
    unanswered: int = 0
    contact_frames: int = 0  # frames where the drawn own mallet and puck touch or overlap
    overlap_frames: int = 0  # frames where the drawn puck is > OVERLAP_PX inside the drawn own mallet
    overlap_other_frames: int = 0  # the same with the other player's mallet
    max_overlap: float = 0.0  # px, own mallet
    own_corrections: list[float] = field(default_factory=list)  # offset size per correcting frame, px
    own_correction_steps: list[float] = field(default_factory=list)  # offset change per frame, px
    world_corrections: list[float] = field(default_factory=list)
    world_correction_steps: list[float] = field(default_factory=list)
    world_reported: bool = False  # the game layer reported a world (puck) correction at all

    def add(self, other: Feel) -> Feel:
        """Fold ``other`` (another window's figures) into this one; returns self."""
        self.frames += other.frames
        self.contacts += other.contacts
        self.responses += other.responses
        self.unanswered += other.unanswered
        self.contact_frames += other.contact_frames
        self.overlap_frames += other.overlap_frames
        self.overlap_other_frames += other.overlap_other_frames
        self.max_overlap = max(self.max_overlap, other.max_overlap)
        self.own_corrections += other.own_corrections
        self.own_correction_steps += other.own_correction_steps
        self.world_corrections += other.world_corrections
        self.world_correction_steps += other.world_correction_steps
        self.world_reported = self.world_reported or other.world_reported
        return self

    def per_100_contacts(self, count: int) -> float:
        return 100.0 * count / self.contacts if self.contacts else math.nan

    def metrics(self) -> dict[str, float]:
        """The figures as a flat dict of numbers (NaN where there is nothing to measure)."""
        r = self.responses
        return {
            "contacts": float(self.contacts),
            "response_p50_frames": percentile(r, 50),
            "response_mean_frames": sum(r) / len(r) if r else math.nan,
            "response_p90_frames": percentile(r, 90),
            "response_max_frames": float(max(r)) if r else math.nan,
            "response_within_1_pct": 100.0 * sum(1 for v in r if v <= 1) / len(r) if r else math.nan,
            "unanswered": float(self.unanswered),
            "overlap_frames_per_100_contacts": self.per_100_contacts(self.overlap_frames),
            "overlap_pct_of_contact_frames": (
                100.0 * self.overlap_frames / self.contact_frames if self.contact_frames else math.nan
            ),
            "max_overlap_px": self.max_overlap,
            "overlap_other_per_100_contacts": self.per_100_contacts(self.overlap_other_frames),
            "own_correction_p50_px": percentile(self.own_corrections, 50),
            "own_correction_p99_px": percentile(self.own_corrections, 99),
            "own_correction_step_p50_px": percentile(self.own_correction_steps, 50),
            "own_correction_step_p99_px": percentile(self.own_correction_steps, 99),
            "own_correcting_pct": 100.0 * len(self.own_corrections) / self.frames
            if self.frames
            else math.nan,
            "world_correction_p50_px": percentile(self.world_corrections, 50),
            "world_correction_p99_px": percentile(self.world_corrections, 99),
            "world_correction_step_p50_px": percentile(self.world_correction_steps, 50),
            "world_correction_step_p99_px": percentile(self.world_correction_steps, 99),
            "world_correcting_pct": (
                100.0 * len(self.world_corrections) / self.frames
                if self.frames and self.world_reported
                else math.nan
            ),
            "play_frames": float(self.frames),
        }


def percentile(values: list[float] | list[int], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``values``, linearly interpolated; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def analyse(records: Iterable[FrameRecord], reach: float | None = None) -> Feel:
    """The figures of one window's records, in order (see the module docstring for each definition).

    ``reach`` is the centre distance at which the mallet and puck circles touch (default: the demo's
    ``MALLET_R + PUCK_R``).
    """
    if reach is None:
        from demos.hockey.rules import MALLET_R, PUCK_R

        reach = MALLET_R + PUCK_R
    touch = reach + TOUCH_SLACK_PX
    feel = Feel()
    prev: FrameRecord | None = None  # the previous play frame (None after a frame out of play)
    following: tuple[int, Point] | None = None  # (frame of the contact, direction the puck should go)
    index = 0
    for rec in records:
        if rec.phase != "play":
            prev = None
            if following is not None:
                feel.unanswered += 1
                following = None
            continue
        index += 1
        feel.frames += 1
        _corrections(feel, rec, prev)
        if rec.me is None or rec.puck is None:
            prev = None
            continue
        jumped = prev is not None and prev.puck is not None and _distance(prev.puck, rec.puck) > TELEPORT_PX
        if jumped:
            if following is not None:
                feel.unanswered += 1
                following = None
            prev = None
        distance = _distance(rec.me, rec.puck)
        if distance <= touch:
            feel.contact_frames += 1
        overlap = reach - distance
        feel.max_overlap = max(feel.max_overlap, overlap)
        if overlap > OVERLAP_PX:
            feel.overlap_frames += 1
        if rec.other is not None and reach - _distance(rec.other, rec.puck) > OVERLAP_PX:
            feel.overlap_other_frames += 1
        if following is None and prev is not None and prev.me is not None and prev.puck is not None:
            # A contact: the circles were apart, and now the mallet reaches the puck as it was drawn a frame
            # ago (it struck it: a puck that answers at once is already moving off in this frame), or
            # touches it as it is drawn now.
            struck = _distance(rec.me, prev.puck) <= touch
            if _distance(prev.me, prev.puck) > touch and (struck or distance <= touch):
                feel.contacts += 1
                target = prev.puck if struck else rec.puck
                dx, dy = target[0] - rec.me[0], target[1] - rec.me[1]
                norm = math.hypot(dx, dy)
                if norm < 1e-9:  # the centres coincide: use the direction they were apart in
                    dx, dy = prev.puck[0] - prev.me[0], prev.puck[1] - prev.me[1]
                    norm = math.hypot(dx, dy) or 1.0
                following = (index, (dx / norm, dy / norm))
        if following is not None and prev is not None and prev.puck is not None:
            start, (nx, ny) = following
            along = (rec.puck[0] - prev.puck[0]) * nx + (rec.puck[1] - prev.puck[1]) * ny
            if along > MOVE_PX:
                feel.responses.append(index - start)
                following = None
            elif index - start >= RESPONSE_WINDOW:
                feel.unanswered += 1
                following = None
        prev = rec
    if following is not None:
        feel.unanswered += 1  # the record ended before the puck moved
    return feel


def _corrections(feel: Feel, rec: FrameRecord, prev: FrameRecord | None) -> None:
    own = math.hypot(*rec.own_correction)
    if own > CORRECTION_EPSILON:
        feel.own_corrections.append(own)
        if prev is not None:
            feel.own_correction_steps.append(_distance(rec.own_correction, prev.own_correction))
    if rec.world_correction is not None:
        feel.world_reported = True
        world = math.hypot(*rec.world_correction)
        if world > CORRECTION_EPSILON:
            feel.world_corrections.append(world)
            if prev is not None and prev.world_correction is not None:
                feel.world_correction_steps.append(_distance(rec.world_correction, prev.world_correction))


# -- the players: the demo's window, driven by a script, recording what it draws ----------------------


class Striker:
    """The scripted player: strike the puck towards the far goal, back off, strike again.

    When the puck is on our half, drive through it towards the far goal; the moment the drawn mallet
    touches the drawn puck, hold the same keys for :attr:`follow_through` frames (a strike goes through,
    as a player's does: this is what draws the mallet through a puck that does not answer), then back off
    towards home for :attr:`retreat` frames, so that every strike is a new contact and the puck is not
    pinned against a wall.  When the puck is on the other half, wait at home level with it.
    Pure: it sees only the positions passed in.
    """

    follow_through = 8  # frames of driving on after the touch, as a player does (keys held)
    retreat = 12  # frames of backing off after that

    def __init__(self, keys: bool = False) -> None:
        #: Press keys as a keyboard player does (each axis -1, 0 or 1, held until the direction changes)
        #: instead of steering with analog axes that change a little every frame.
        self.digital = keys
        self.following_through = 0
        self.backing_off = 0
        self.keys = {"x": 0.0, "y": 0.0}

    def decide(self, me: Point, puck: Point, side: int) -> dict[str, float]:
        """This frame's input (-1..1 axes) for the mallet at ``me`` playing ``side``."""
        from demos.hockey.rules import (
            CENTER_X,
            CENTER_Y,
            GOAL_BOTTOM,
            GOAL_TOP,
            HOME_X,
            LEFT_SIDE,
            MALLET_R,
            PUCK_R,
            RIGHT,
        )

        mx, my = me
        px, py = puck
        forward = 1.0 if side == LEFT_SIDE else -1.0
        touching = _distance(me, puck) <= MALLET_R + PUCK_R + TOUCH_SLACK_PX
        if touching and not (self.following_through or self.backing_off):
            self.following_through = self.follow_through
            self.backing_off = self.retreat
        if self.following_through:
            self.following_through -= 1
            return dict(self.keys)  # the keys of the strike, held through the puck
        home = (HOME_X[side], min(max(py, GOAL_TOP + 20.0), GOAL_BOTTOM - 20.0))
        if self.backing_off:
            self.backing_off -= 1
            tx, ty = home
        elif (px - CENTER_X) * forward <= 20.0:  # the puck is on our half: strike it
            goal_x = RIGHT if side == LEFT_SIDE else 0.0
            gx, gy = goal_x - px, CENTER_Y - py
            length = math.hypot(gx, gy) or 1.0
            tx, ty = px + gx / length * 30.0, py + gy / length * 30.0  # through it, towards the far goal
        else:
            tx, ty = home
        dx, dy = tx - mx, ty - my
        distance = math.hypot(dx, dy)
        if self.digital:
            # Eight directions; stop within a frame's travel of the target (no dithering on the spot).
            stop = 10.0
            self.keys = {"x": 0.0, "y": 0.0}
            if distance >= stop:
                self.keys = {axis: float((d / distance > 0.38) - (d / distance < -0.38))
                             for axis, d in (("x", dx), ("y", dy))}  # fmt: skip
            return dict(self.keys)
        if distance < 3.0:
            self.keys = {"x": 0.0, "y": 0.0}
        else:
            push = min(1.0, distance / 30.0)
            self.keys = {
                "x": max(-1.0, min(1.0, dx / distance * push)),
                "y": max(-1.0, min(1.0, dy / distance * push)),
            }
        return dict(self.keys)


def world_correction(net: Any, puck_id: int | None) -> Point | None:
    """The puck's display correction offset (px) if the game layer predicts the world, else None.

    The one place that knows how the game layer exposes it: ``GameClient.world`` (a ``WorldPredictor``,
    issue 12) and its ``offset(eid)``; a game layer without world prediction reports None.
    """
    world = getattr(net, "world", None)
    if world is None or puck_id is None:
        return None
    offset = world.offset(puck_id)
    if len(offset) < 2:
        return (0.0, 0.0)
    return (float(offset[0]), float(offset[1]))


def feel_game_class() -> type:
    """:class:`FeelGame`, made on first use (importing pygame and the demo's window only then)."""
    global _FEEL_GAME
    if _FEEL_GAME is None:
        _FEEL_GAME = _make_feel_game()
    return _FEEL_GAME


_FEEL_GAME: type | None = None


def _make_feel_game() -> type:
    from demos.hockey.game import HockeyGame
    from demos.hockey.rules import LEFT_SIDE, Mallet, Match, Puck

    class FeelGame(HockeyGame):  # type: ignore[misc, valid-type]
        """The demo's window, played by a :class:`Striker`, recording what it draws (``records``)."""

        def __init__(self, *args: Any, render: bool = True, **kwargs: Any) -> None:
            kwargs.setdefault("fps", 0)  # the rig paces the frames; step() must not sleep
            super().__init__(*args, **kwargs)
            self.render = render
            self.records: list[FrameRecord] = []
            self.recording = False
            self._ready_at = -(10**9)
            self.striker = Striker()
            #: Seconds spent in each hook per frame (the frame-cost benchmark reads them).
            self.hook_time = 0.0

        def _find(self, kind: type) -> Any:
            return next((e for e in self.entities.values() if isinstance(e, kind)), None)

        def input(self) -> dict[str, float]:
            began = time.perf_counter()
            me = self.my_entity
            puck = self._find(Puck)
            keys = {"x": 0.0, "y": 0.0}
            if isinstance(me, Mallet) and puck is not None:
                keys = self.striker.decide((me.x, me.y), (puck.x, puck.y), me.side)
            self.hook_time += time.perf_counter() - began
            return keys

        def update(self, dt: float) -> None:
            began = time.perf_counter()
            match = self._find(Match)
            lobby = match is not None and match.phase in ("lobby", "over")
            if lobby and self.connected and self.frame - self._ready_at > 30:
                self.sprocket.send(ready=True)  # both players are always up for a game
                self._ready_at = self.frame
            super().update(dt)
            self.hook_time += time.perf_counter() - began

        def draw(self, screen: Any) -> None:
            began = time.perf_counter()
            if self.recording:
                self.records.append(self.snapshot_frame())
            if self.render:
                super().draw(screen)
            self.hook_time += time.perf_counter() - began

        def snapshot_frame(self) -> FrameRecord:
            """What this frame draws (see :class:`FrameRecord`)."""
            me = self.my_entity
            mine = (me.x, me.y) if isinstance(me, Mallet) else None
            puck_id, puck = next(
                ((eid, e) for eid, e in self.entities.items() if isinstance(e, Puck)), (None, None)
            )
            other = next(
                (e for eid, e in self.entities.items() if isinstance(e, Mallet) and eid != self.me), None
            )
            match = self._find(Match)
            predictor = self.net.predictor
            own = predictor.correction if predictor is not None else ()
            return FrameRecord(
                phase=match.phase if match is not None else "",
                me=mine,
                puck=(puck.x, puck.y) if puck is not None else None,
                other=(other.x, other.y) if other is not None else None,
                own_correction=(float(own[0]), float(own[1])) if len(own) >= 2 else (0.0, 0.0),
                world_correction=world_correction(self.net, puck_id),
            )

        @property
        def side(self) -> int:
            me = self.my_entity
            return me.side if isinstance(me, Mallet) else LEFT_SIDE

    return FeelGame


def drill_server_class() -> type:
    """:class:`DrillServer`, made on first use (importing the demo's server only then)."""
    from demos.hockey.rules import BOTTOM, CENTER_X, LEFT, LEFT_SIDE, MALLET_R, PUCK_R, RIGHT, TOP
    from demos.hockey.server import HockeyServer

    class DrillServer(HockeyServer):  # type: ignore[misc, valid-type]
        """The demo's server (its rules and physics untouched), in a match that never ends, with a drill.

        ``win_score`` is huge, so there is no game-over screen.  With ``drill=True``, every
        :attr:`drill_every` ticks of play the puck is put down still in front of one player's mallet, the
        sides taking turns (a teleport: the face-off's own mark when the game layer has one), so that the
        situation of issue 12 -- a mallet driven into a still puck -- happens about once a second, besides
        whatever the rally brings.
        """

        win_score = 10**6
        drill_every = 60

        def __init__(self, *args: Any, seed: int = 1, drill: bool = True, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            import random

            self.drill = drill
            self.drill_random = random.Random(seed)
            self.drill_ticks = 0
            self.drill_side = LEFT_SIDE
            self.drills = 0

        def simulate(self, dt: float) -> None:
            super().simulate(dt)
            if not self.drill or self.match.phase != "play":
                self.drill_ticks = 0
                return
            self.drill_ticks += 1
            if self.drill_ticks >= self.drill_every:
                self.drill_ticks = 0
                self.drill_side = 1 - self.drill_side
                self.place_puck(self.drill_side)

        def place_puck(self, side: int) -> None:
            mallet = self.mallets.get(side)
            if mallet is None:
                return
            rnd = self.drill_random
            forward = 1.0 if side == LEFT_SIDE else -1.0
            x = mallet.x + forward * rnd.uniform(110.0, 170.0)
            low, high = (LEFT + PUCK_R + 10, CENTER_X - PUCK_R - 5) if side == LEFT_SIDE else (
                CENTER_X + PUCK_R + 5, RIGHT - PUCK_R - 10)  # fmt: skip
            x = min(max(x, low), high)
            y = min(max(mallet.y + rnd.uniform(-50.0, 50.0), TOP + PUCK_R + 10), BOTTOM - PUCK_R - 10)
            reach = MALLET_R + PUCK_R + 30.0
            if any(math.hypot(m.x - x, m.y - y) < reach for m in self.mallets.values()):
                return  # too close to a mallet to be a clean strike: skip this one
            puck = self.puck
            puck.x, puck.y, puck.vx, puck.vy = x, y, 0.0, 0.0
            self.anchor, self.still = (x, y), 0.0
            teleport = getattr(self, "teleport", None)
            if teleport is not None:
                teleport(puck)
            self.drills += 1

    return DrillServer


# -- the rig -------------------------------------------------------------------------------------------


class RigError(RuntimeError):
    """The rig could not get a match going (or lost it) within its deadlines."""


class Rig:
    """A hockey server, a LagProxy and two recording windows (see the module docstring).

    ``Rig(lag=0.0, jitter=0.0, seed=1, render=True, drill=True, keys=False)``; use it as a context
    manager or call :meth:`close`.  ``drill=False`` plays plain matches (no puck put in front of a
    player); ``keys=True`` has the strikers press keys (:class:`Striker`) instead of steering.
    """

    def __init__(
        self,
        lag: float = 0.0,
        jitter: float = 0.0,
        seed: int = 1,
        render: bool = True,
        drill: bool = True,
        keys: bool = False,
    ) -> None:
        from sprocket import Servo
        from sprocket.testing import LagProxy

        self.lag, self.jitter = lag, jitter
        self.late_frames = 0
        self.frames = 0
        self.server = drill_server_class()(
            Servo("127.0.0.1", 0, timeout=10.0), seed=seed, drill=drill
        ).start()
        self.proxy = None
        self.games: list[Any] = []
        try:
            self.proxy = LagProxy("127.0.0.1", self.server.port, lag=lag, jitter=jitter, seed=seed).start()
            game = feel_game_class()
            for name in ("left", "right"):
                self.games.append(game("127.0.0.1", self.proxy.port, name=name, render=render))
                self.games[-1].striker = Striker(keys=keys)
                # The first window takes the left side: let it join before the second one.
                self.step_until(lambda: self.games[-1].me is not None, 15.0, f"{name} to join")
        except BaseException:
            self.close()
            raise

    def step(self) -> None:
        """One frame of every window (fixed dt), then wait for the next frame's slot (pacing)."""
        for game in self.games:
            game.step(DT)
        self.frames += 1
        self._next = getattr(self, "_next", time.monotonic()) + DT
        now = time.monotonic()
        if now > self._next + DT:
            self.late_frames += 1
            self._next = now  # behind: go on from now rather than run a burst of frames
        elif self._next > now:
            time.sleep(self._next - now)  # frame pacing (60 FPS), not synchronisation

    def step_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Step frames until ``condition()`` holds; raise :class:`RigError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RigError(f"timed out after {timeout:g} s waiting for {what}")
            self.step()

    def run(self, play_frames: int, timeout: float = 120.0) -> list[list[FrameRecord]]:
        """Get the match into play, then record until each window drew ``play_frames`` frames of play.

        Returns each window's records (every frame from the first one in play, other phases included).
        Raises :class:`RigError` if the match does not start, or the frames are not recorded, in time.
        """
        server = self.server
        self.step_until(lambda: server.match.phase == "play", 30.0, "the match to start")
        for game in self.games:
            game.recording = True

        def enough() -> bool:
            return all(sum(r.phase == "play" for r in g.records) >= play_frames for g in self.games)

        self.step_until(enough, timeout, f"{play_frames} frames of play in each window")
        for game in self.games:
            game.recording = False
        return [list(g.records) for g in self.games]

    @property
    def rtt(self) -> list[float | None]:
        """Each window's round-trip time as its Sprocket measures it (seconds)."""
        return [g.sprocket.rtt for g in self.games]

    def close(self) -> None:
        """Close the windows, the proxy and the server (idempotent)."""
        for game in self.games:
            game.sprocket.close()
        if self.games:
            self.games[0].close()  # closes pygame's display, which both windows share
            for game in self.games[1:]:
                game._closed = True
        self.games = []
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        self.server.stop()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure(
    lag: float,
    jitter: float,
    play_frames: int,
    seed: int = 1,
    timeout: float = 120.0,
    drill: bool = True,
    keys: bool = False,
) -> dict[str, Any]:
    """Run a :class:`Rig` and return the figures of both windows together (:meth:`Feel.metrics`), with
    ``late_frames_pct`` (frames the pacing could not keep on time) and ``rtt_ms`` (mean of the windows)."""
    with Rig(lag, jitter, seed, drill=drill, keys=keys) as rig:
        records = rig.run(play_frames, timeout)
        rtts = [r for r in rig.rtt if r is not None]
        total = Feel()
        for rec in records:
            total.add(analyse(rec))
        out: dict[str, Any] = total.metrics()
        out["late_frames_pct"] = 100.0 * rig.late_frames / rig.frames if rig.frames else math.nan
        out["rtt_ms"] = 1000.0 * sum(rtts) / len(rtts) if rtts else math.nan
        return out
