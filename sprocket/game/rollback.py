"""World prediction (rollback): draw the entity types that opt in where they are *now*, not in the past.

Remote entities are normally drawn a little in the past (:class:`~sprocket.game.InterpolationBuffer`)
and your own entity in the present (:class:`~sprocket.game.Predictor`), so anything that touches both
— a puck and your mallet — is drawn wrong: the mallet goes through the puck, and the puck reacts a
round trip later.  An entity type declared ``predicted=True`` (with a ``simulate(self, world, dt)``
method, see :class:`~sprocket.game.Entity`) is predicted instead, by :class:`WorldPredictor`:

* On each snapshot (server tick ``T``, the server having applied your inputs up to ``ack``) it
  **rewinds** to that snapshot, then **re-simulates** one tick per input of yours the server has not
  applied yet, up to your predicted present: each tick, your entity is moved by the game rule with
  that input (exactly as the server will), then every predicted entity's ``simulate(world, dt)`` runs,
  in id order.  The other players' entities are moved by the same rule with the **last input the
  server applied for each of them** (the snapshot message carries those, see docs/PROTOCOL.md): the
  guess that they keep doing what they did, so a hit by another player who keeps moving is predicted
  too.  A player with no known input (none yet, or away) is held where the snapshot has them.
* Between snapshots, each input you send advances the predicted world one more tick the same way
  (:meth:`WorldPredictor.step`).
* Other players' entities are drawn interpolated (in the past) unless ``show_players`` is set: then
  they too are drawn from the predicted present, with the same correction offsets.  The trade-off: the
  predicted present puts the puck and the mallet that hits it in the same time frame (no puck bouncing
  off a mallet drawn elsewhere), at the cost of corrections on those mallets whenever their player
  changes direction (a round trip of extrapolation).
* If the re-simulated present differs from what was on screen (a misprediction: the other player hit
  the puck), the difference becomes a **correction offset** added to what is drawn, which halves every
  ``half_life`` seconds (default :data:`CORRECTION_HALF_LIFE`, 1/30 s: two frames at 60 fps, so 75% of
  it is gone after four frames and 97% after ten; under :data:`SETTLED` px it is dropped).  A
  correction larger than ``snap_distance`` (default :data:`SNAP_DISTANCE`, 100 px) snaps at once, and
  so does any entity the snapshot marks as jumped (:meth:`~sprocket.game.World.teleport`): a teleport
  is shown as a teleport.  Offsets apply to the position fields (the ``float`` fields named ``x``,
  ``y``, ``z``; a type without them: all its ``float`` fields).

The server must run the very same ``simulate`` (``GameServer.simulate_predicted(dt)``, or call it
yourself from your ``simulate``); determinism is not required, but the closer the two sides agree,
the smaller the corrections.  A misprediction costs a correction, never a wrong state for long: every
snapshot starts the prediction again from the server's truth.

This module must never import pygame, touch sockets or threads, or read a clock: every time is an
argument.  Standard library only (and :mod:`sprocket.errors` for its exceptions).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from ._checks import InvalidType, check_callable, check_count, check_number, describe
from .entity import Entity, field_kinds
from .prediction import Rule, run_rule
from .snapshot import Snapshot

__all__ = ["CORRECTION_HALF_LIFE", "SETTLED", "SNAP_DISTANCE", "WorldPredictor", "position_fields"]

#: Seconds in which a correction offset halves (two frames at 60 fps).
CORRECTION_HALF_LIFE = 1.0 / 30.0
#: A correction (px, or whatever unit the position fields use) larger than this snaps instead of gliding.
SNAP_DISTANCE = 100.0
#: A correction offset smaller than this is dropped (it is invisible).
SETTLED = 0.05


def position_fields(cls: type[Entity]) -> tuple[str, ...]:
    """The fields a correction offset applies to: the ``float`` fields named x, y, z, else all floats."""
    cached = cls.__dict__.get("_sprocket_position_fields")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    floats = field_kinds(cls).floats
    fields = tuple(name for name in ("x", "y", "z") if name in floats) or floats
    type.__setattr__(cls, "_sprocket_position_fields", fields)
    return fields


def _position(entity: Entity, fields: tuple[str, ...]) -> tuple[float, ...]:
    d = entity.__dict__
    return tuple(float(d[name]) for name in fields)


class WorldPredictor:
    """Predicts the entities of types declared ``predicted=True`` up to this client's present.

    ``WorldPredictor(dt, *, rule=None, half_life=CORRECTION_HALF_LIFE, snap_distance=SNAP_DISTANCE,
    max_inputs=256, show_players=False)``: ``dt`` is the server's fixed step; ``rule`` the game rule
    that moves the entity this client controls and, with their last known inputs, the other players'
    (None: every player's entity is held where the snapshot has it).  Feed it every input you send
    (:meth:`step`, with its sequence number) and every snapshot (:meth:`rewind`, with the other
    players' last inputs), let the display correction fade once per frame (:meth:`advance_display`),
    and draw :meth:`display`.  ``show_players``: :meth:`display` includes the other players' entities
    whose input is known (predicted, corrected smoothly like the rest) instead of leaving them to
    interpolation.  At most ``max_inputs`` unacknowledged inputs are kept (the oldest are forgotten),
    which bounds a re-simulation.

    Whatever the game rule or a ``simulate`` method raises propagates (the caller decides what to show
    instead).  Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) naming the argument
    if ``dt`` or ``snap_distance`` is not a number > 0, ``half_life`` is negative or ``max_inputs < 1``;
    ``InvalidType`` (also a ``TypeError``) if ``rule`` is not callable or a number is not a number.
    """

    def __init__(
        self,
        dt: float,
        *,
        rule: Rule | None = None,
        half_life: float = CORRECTION_HALF_LIFE,
        snap_distance: float = SNAP_DISTANCE,
        max_inputs: int = 256,
        show_players: bool = False,
    ) -> None:
        self.dt = check_number(dt, "dt", positive=True, what="a number of seconds")
        check_callable(rule, "rule", optional=True)
        self.rule = rule
        self.half_life = check_number(half_life, "half_life", minimum=0.0, what="a number of seconds")
        self.snap_distance = check_number(snap_distance, "snap_distance", positive=True, finite=False)
        self.max_inputs = check_count(max_inputs, "max_inputs")
        if not isinstance(show_players, bool):
            raise InvalidType(f"show_players must be True or False, got {describe(show_players)}")
        self.show_players = show_players
        self.clear()

    def clear(self) -> None:
        """Forget everything (a new session: the input numbering starts again)."""
        self.me: int | None = None
        self._inputs: deque[tuple[int, Any]] = deque()
        self._world: dict[int, Entity] = {}
        self._predicted: list[int] = []  # ids of predicted entities in the world, in id order
        self._others: list[tuple[int, Any]] = []  # (entity id, last input) of the other players, by id
        self._shown: list[int] = []  # ids drawn from the predicted world: predicted types (+ players)
        self._offsets: dict[int, tuple[float, ...]] = {}
        self._tick: int | None = None
        self._acked = 0
        #: Ticks re-simulated by the last :meth:`rewind` (the inputs the server had not applied yet).
        self.resimulated = 0
        #: The largest correction the last :meth:`rewind` measured (before snapping or smoothing).
        self.last_correction = 0.0
        #: Corrections that snapped (over ``snap_distance``, or a teleport), and that glided, so far.
        self.snaps = 0
        self.smoothed = 0
        #: Snapshots rewound to so far.
        self.rewinds = 0

    # -- input ------------------------------------------------------------------------------------------

    def rewind(
        self, snapshot: Snapshot, acked: int, me: int | None = None, others: Mapping[int, Any] | None = None
    ) -> int:
        """Start again from ``snapshot`` and re-simulate to the present; return the ticks re-simulated.

        ``acked``: the sequence number of the last input of yours the server had applied at that tick
        (the snapshot message's ``"ack"``); inputs up to it are forgotten and the ones after it are
        replayed, one per tick.  ``me``: the entity you control (moved by the rule in the replay).
        ``others``: the last input the server applied for each other player, by the entity id it
        controls; each re-simulated tick (and each :meth:`step` until the next rewind) moves those
        entities by the rule with that input, as if their players kept doing the same; an entity not
        in it (or not in the snapshot, or ``me``) is held.  An ``acked`` older than one already seen (a
        stale snapshot) is treated as that one.  Raises ``InvalidType`` (also a ``TypeError``) if
        ``snapshot`` is not a :class:`~sprocket.game.Snapshot`, ``acked`` not an int or ``others`` not
        a mapping.
        """
        if not isinstance(snapshot, Snapshot):
            raise InvalidType(f"snapshot must be a Snapshot, got {describe(snapshot)}")
        if isinstance(acked, bool) or not isinstance(acked, int):
            raise InvalidType(f"acked must be an int, got {describe(acked)}")
        if others is not None and not isinstance(others, Mapping):
            raise InvalidType(f"others must be a mapping of entity id to input, got {describe(others)}")
        shown = self._shown_positions()
        self._acked = max(self._acked, acked)
        inputs = self._inputs
        while inputs and inputs[0][0] <= self._acked:
            inputs.popleft()
        self.me = me
        world = dict(snapshot.entities)  # shared, read-only, except what is stepped: copied below
        predicted = sorted(eid for eid, entity in world.items() if type(entity).predicted)
        for eid in predicted:
            world[eid] = world[eid].copy()
        if me is not None and me in world and self.rule is not None:
            world[me] = world[me].copy()
        moving = []
        if self.rule is not None and others:
            for eid in sorted(eid for eid in others if eid in world and eid != me):
                world[eid] = world[eid].copy()
                moving.append((eid, others[eid]))
        self._world = world
        self._predicted = predicted
        self._others = moving
        self._shown = sorted({*predicted, *(eid for eid, _ in moving)}) if self.show_players else predicted
        self._tick = snapshot.tick
        for _, value in inputs:
            self._advance(value)
        self.resimulated = len(inputs)
        self.rewinds += 1
        self._correct(shown, snapshot.jumps)
        return self.resimulated

    def step(self, seq: int, input: Any) -> None:
        """Advance the predicted world one tick with input ``seq`` of yours (the one just sent).

        Raises ``InvalidType`` (also a ``TypeError``) if ``seq`` is not an int.
        """
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise InvalidType(f"seq must be an int, got {describe(seq)}")
        self._inputs.append((seq, input))
        while len(self._inputs) > self.max_inputs:
            self._inputs.popleft()
        if self._tick is not None:
            self._advance(input)

    def advance_display(self, dt: float) -> None:
        """Let ``dt`` seconds of the correction offsets fade (each halves every ``half_life`` seconds).

        Raises ``InvalidArgument`` if ``dt`` is negative or not finite (``InvalidType`` if not a number).
        """
        dt = check_number(dt, "dt", minimum=0.0, what="a number of seconds")
        if not self._offsets or dt == 0.0:
            return
        factor = 0.0 if self.half_life == 0.0 else 0.5 ** (dt / self.half_life)
        for eid, offset in list(self._offsets.items()):
            faded = tuple(o * factor for o in offset)
            if math.hypot(*faded) < SETTLED:
                del self._offsets[eid]
            else:
                self._offsets[eid] = faded

    # -- output -----------------------------------------------------------------------------------------

    def display(self) -> dict[int, Entity]:
        """The predicted entities (and with ``show_players`` the other players' entities whose input is
        known) as they should be drawn now (present state plus correction), by id.

        New objects each call.  Empty before the first :meth:`rewind`.
        """
        out: dict[int, Entity] = {}
        world = self._world
        for eid in self._shown:
            entity = world[eid].copy()
            offset = self._offsets.get(eid)
            if offset is not None:
                d = entity.__dict__
                for name, off in zip(position_fields(type(entity)), offset, strict=False):
                    d[name] = d[name] + off
            out[eid] = entity
        return out

    @property
    def world(self) -> Mapping[int, Entity]:
        """The predicted world at :attr:`tick` (every entity; the predicted ones and yours stepped)."""
        return self._world

    @property
    def tick(self) -> int | None:
        """The server tick the predicted world shows (the present), or None before the first rewind."""
        return self._tick

    @property
    def pending(self) -> int:
        """Inputs sent that the server had not applied at the last snapshot (replayed on the next)."""
        return len(self._inputs)

    @property
    def correction(self) -> float:
        """The largest correction offset being shown now (0.0 when none)."""
        return max((math.hypot(*o) for o in self._offsets.values()), default=0.0)

    def offset(self, eid: int) -> tuple[float, ...]:
        """The correction offset added to entity ``eid``'s position fields now (empty when none)."""
        return self._offsets.get(eid, ())

    # -- internals --------------------------------------------------------------------------------------

    def _advance(self, input: Any) -> None:
        world = self._world
        me = self.me
        if me is not None and self.rule is not None:
            state = world.get(me)
            if state is not None:
                world[me] = run_rule(self.rule, state.copy(), input, self.dt)
        if self._others:
            rule = self.rule
            assert rule is not None
            for eid, last in self._others:
                world[eid] = run_rule(rule, world[eid].copy(), last, self.dt)
        dt = self.dt
        for eid in self._predicted:
            world[eid].simulate(world, dt)  # type: ignore[attr-defined]
        assert self._tick is not None
        self._tick += 1

    def _shown_positions(self) -> dict[int, tuple[type, tuple[float, ...]]]:
        shown = {}
        for eid in self._shown:
            entity = self._world[eid]
            fields = position_fields(type(entity))
            position = _position(entity, fields)
            offset = self._offsets.get(eid)
            if offset is not None:
                position = tuple(p + o for p, o in zip(position, offset, strict=False))
            shown[eid] = (type(entity), position)
        return shown

    def _correct(self, shown: dict[int, tuple[type, tuple[float, ...]]], jumps: frozenset[int]) -> None:
        offsets: dict[int, tuple[float, ...]] = {}
        largest = 0.0
        for eid in self._shown:
            before = shown.get(eid)
            entity = self._world[eid]
            if before is None or before[0] is not type(entity):
                continue  # new here: nothing was drawn, nothing to glide from
            now = _position(entity, position_fields(type(entity)))
            diff = tuple(b - n for b, n in zip(before[1], now, strict=True))
            size = math.hypot(*diff)
            if not math.isfinite(size):
                continue
            largest = max(largest, size)
            if eid in jumps or size > self.snap_distance or self.half_life == 0.0:
                if size > 0.0 or eid in jumps:
                    self.snaps += 1
                continue  # a teleport, or too far to glide: show the jump
            if size >= SETTLED:
                offsets[eid] = diff
                self.smoothed += 1
        self._offsets = offsets
        self.last_correction = largest
