"""Client-side prediction with server reconciliation, and smoothing of the corrections.

You write the game rule once, as a pure-ish function ``step(state, input, dt) -> new_state``, and both
the server and the client run it.  The client does not wait a round trip to see its own input take
effect: :class:`Predictor` applies each input locally at once and remembers it.  When the server's
authoritative state arrives, tagged with the sequence number of the last input the server applied,
the predictor starts again from that state and replays the inputs the server has not seen yet.  If the
server agreed, nothing visibly happens; if not (a collision the client did not know about), the error is
measured and the displayed state glides to the corrected one over ``smoothing`` seconds instead of
jumping.

States are usually :class:`~sprocket.game.entity.Entity` instances; a float, a tuple or list of floats, or
any copyable object also works (smoothing and the error measure need an Entity or numbers; for other
states the error is 0.0 when equal, ``inf`` otherwise, and corrections snap).

This module must never import pygame, touch sockets or threads, or read a clock: every time is an
argument.  Standard library only (and :mod:`sprocket.errors` for its exceptions).
"""

from __future__ import annotations

import copy as _copy
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sprocket.errors import InvalidArgument

from ._checks import InvalidType, check_callable, check_count, check_number, describe
from .entity import Entity, field_kinds

__all__ = ["Predictor", "Rule", "run_rule"]

#: The game rule: ``rule(state, input, dt) -> new_state``, one function shared by the server (which
#: applies each client's inputs with it) and the clients (which predict their own entity with it).
Rule = Callable[[Any, Any, float], Any]

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the conventional name for the input type parameter


def _copy_state(state: S) -> S:
    if isinstance(state, Entity):
        return state.copy()
    return _copy.copy(state)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _difference(old: Any, new: Any) -> tuple[float, ...] | None:
    """``old - new`` over the continuous components, or None if the states cannot be compared that way."""
    try:
        if isinstance(old, Entity):
            if type(new) is not type(old):
                return None
            kinds = field_kinds(type(old))
            a = old.__dict__
            b = new.__dict__
            diff = [float(a[n]) - float(b[n]) for n in kinds.floats]
            for name, period in kinds.angles:
                d = (float(a[name]) - float(b[name])) % period
                diff.append(d - period if d > period * 0.5 else d)  # the short way round
            return tuple(diff)
        if _is_number(old) and _is_number(new):
            return (float(old) - float(new),)
        if (
            isinstance(old, (tuple, list))
            and type(new) is type(old)
            and len(old) == len(new)
            and all(_is_number(v) for v in old)
            and all(_is_number(v) for v in new)
        ):
            return tuple(float(x) - float(y) for x, y in zip(old, new, strict=True))
    except (TypeError, ValueError, OverflowError):  # a float field holding something that is not a number
        return None
    return None


def _within_quanta(state: Any, diff: tuple[float, ...]) -> bool:
    """True if ``diff`` (from :func:`_difference`) is only the rounding of quantized fields: every
    component of a :func:`~sprocket.game.quantized` field within its step, every other one zero.

    Such an error comes from the wire (the server's value and the client's differ by up to half a step
    each time), not from a misprediction, and is too small to see: it is not smoothed as a correction.
    """
    if not isinstance(state, Entity):
        return False
    kinds = field_kinds(type(state))
    if not kinds.quantized:
        return False
    steps = kinds.quantized
    for name, d in zip(kinds.floats, diff, strict=False):
        if abs(d) > steps.get(name, 0.0):
            return False
    return all(d == 0.0 for d in diff[len(kinds.floats) :])


def _with_offset(state: Any, offset: tuple[float, ...]) -> Any:
    """A copy of ``state`` with ``offset`` added to the components :func:`_difference` measures.

    ``offset`` must come from :func:`_difference` on a state of the same type (and length).
    """
    if isinstance(state, Entity):
        kinds = field_kinds(type(state))
        shown = state.copy()
        d = shown.__dict__
        n = len(kinds.floats)
        for name, off in zip(kinds.floats, offset[:n], strict=True):
            d[name] = d[name] + off
        for (name, period), off in zip(kinds.angles, offset[n:], strict=True):
            d[name] = (d[name] + off) % period
        return shown
    if _is_number(state):
        return state + offset[0]
    values = [v + o for v, o in zip(state, offset, strict=True)]
    if isinstance(state, list):
        return values
    if hasattr(state, "_make"):  # a namedtuple
        return state._make(values)
    return tuple(values)


def run_rule(rule: Rule, state: Any, input: Any, dt: float, *, name: str = "the game rule") -> Any:
    """Return ``rule(state, input, dt)``; raise if the rule forgot to return the new state.

    Raises:
        InvalidType: the rule returned None (also a ``TypeError``).  Whatever the rule raises propagates.
    """
    new = rule(state, input, dt)
    if new is None:
        raise InvalidType(f"{name} returned None; it must return the new state")
    return new


class Predictor(Generic[S, I]):
    """Client-side prediction and reconciliation for one locally controlled state.

    ``Predictor(step, state, dt, *, max_pending=256, smoothing=0.1, snap_distance=math.inf)``:

    * ``step(state, input, dt) -> new_state`` — the game rule, shared with the server.  It receives a
      private copy of the state (``Entity.copy()``, else ``copy.copy``) so it may mutate and return it.
      It must be deterministic for reconciliation to be exact.
    * ``dt`` — the fixed step each input advances (the server must use the same).
    * ``max_pending`` — unacknowledged inputs kept for replay; see :meth:`apply`.
    * ``smoothing`` — seconds over which a correction is blended out of :attr:`display` (0: snap).
    * ``snap_distance`` — corrections with a larger error (a teleport, a respawn) snap at once.

    Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) naming the argument if ``dt`` is
    not a finite number > 0, ``max_pending < 1``, ``smoothing`` is negative or not finite,
    ``snap_distance <= 0``, or a value is NaN; ``InvalidType`` (an ``InvalidArgument`` and a ``TypeError``)
    if ``step`` is not callable or a number is not a number.
    """

    def __init__(
        self,
        step: Callable[[S, I, float], S],
        state: S,
        dt: float,
        *,
        max_pending: int = 256,
        smoothing: float = 0.1,
        snap_distance: float = math.inf,
    ) -> None:
        check_callable(step, "step")
        self._dt = check_number(dt, "dt", positive=True, what="a number of seconds")
        check_count(max_pending, "max_pending")
        self._smoothing = check_number(smoothing, "smoothing", minimum=0.0, what="a number of seconds")
        self._snap_distance = check_number(snap_distance, "snap_distance", positive=True, finite=False)
        self._step = step
        self._max_pending = max_pending
        self._state: S = _copy_state(state)
        self._pending: deque[tuple[int, I]] = deque()
        self._seq = 0
        self._acked = 0
        self._dropped = 0
        self._last_error = 0.0
        self._max_error = 0.0
        # Display correction: the offset at the moment of the last correction, and the seconds since.
        self._offset: tuple[float, ...] | None = None
        self._offset_type: type = type(None)  # the state type the offset was measured on
        self._fade = 0.0

    def _run(self, state: S, input: I) -> S:
        return run_rule(self._step, _copy_state(state), input, self._dt, name="step()")

    def apply(self, input: I) -> int:
        """Predict the effect of ``input``: advance the state one step, remember the input, return its seq.

        Sequence numbers count 1, 2, 3...  Send ``(seq, input)`` to the server; it reports back the last
        seq it applied.  Do not mutate ``input`` afterwards: it is replayed on reconciliation.  If more than
        ``max_pending`` inputs are unacknowledged — the server has gone quiet — the oldest are forgotten
        (counted in :attr:`dropped`) so memory and replay time stay bounded; a later correction then
        covers whatever they did.  Whatever ``step`` raises propagates, and the input is not recorded.
        """
        new = self._run(self._state, input)
        self._seq += 1
        self._pending.append((self._seq, input))
        if len(self._pending) > self._max_pending:
            self._pending.popleft()
            self._dropped += 1
        self._state = new
        return self._seq

    def reconcile(self, server_state: S, last_applied_seq: int) -> float:
        """Adopt the server's state as of input ``last_applied_seq``, replay later inputs; return the error.

        The error is the Euclidean distance over float (and angle, the short way) fields between the
        prediction before and after; it is blended out of :attr:`display` over ``smoothing`` seconds, or
        snapped if over ``snap_distance``.  An ack older than one already reconciled is stale (packets
        reordered) and ignored, returning 0.0; an equal ack is applied (the server state may have moved
        for other reasons).  Raises ``InvalidType`` (also a ``TypeError``) if ``last_applied_seq`` is not
        an int, ``InvalidArgument`` (a ``ValueError``) if it is negative or larger than any seq handed out
        (the server is confused or this predictor is from an older connection).
        """
        if isinstance(last_applied_seq, bool) or not isinstance(last_applied_seq, int):
            raise InvalidType(f"last_applied_seq must be an int, got {describe(last_applied_seq)}")
        if last_applied_seq < 0 or last_applied_seq > self._seq:
            raise InvalidArgument(
                f"last_applied_seq {last_applied_seq} is outside 0..{self._seq} (the inputs sent so far)"
            )
        if last_applied_seq < self._acked:
            return 0.0
        self._acked = last_applied_seq
        pending = self._pending
        while pending and pending[0][0] <= last_applied_seq:
            pending.popleft()

        old = self._state
        shown_offset = self._current_offset()
        state = _copy_state(server_state)
        for _, input in pending:
            state = self._run(state, input)
        self._state = state

        diff = _difference(old, state)
        if diff is None:
            try:
                same = bool(old == state)
            except Exception:  # an exotic __eq__; treat the states as different
                same = False
            error = 0.0 if same else math.inf
        else:
            error = math.sqrt(math.fsum(d * d for d in diff))
        self._last_error = error
        self._max_error = max(self._max_error, error)

        if diff is None or error > self._snap_distance or self._smoothing == 0.0:
            self._offset = None
        elif error > 0.0 and not _within_quanta(state, diff):
            # Keep showing what was shown: the new offset is the old visible offset plus this correction.
            if shown_offset is not None and len(shown_offset) == len(diff):
                diff = tuple(a + b for a, b in zip(diff, shown_offset, strict=True))
            self._offset = diff
            self._offset_type = type(state)
            self._fade = 0.0
        return error

    def _current_offset(self) -> tuple[float, ...] | None:
        if self._offset is None or type(self._state) is not self._offset_type:
            # No correction, or step() started returning another type of state: nothing to blend.
            return None
        u = self._fade / self._smoothing
        if u >= 1.0:
            return None
        # (1 - u)^3: starts like an exponential decay with time constant smoothing / 3, but reaches
        # exactly zero, with zero velocity, after `smoothing` seconds.
        weight = (1.0 - u) ** 3
        return tuple(o * weight for o in self._offset)

    def advance_display(self, dt: float) -> None:
        """Let ``dt`` seconds of the display correction fade.

        Raises ``InvalidArgument`` if ``dt`` is negative or not finite (``InvalidType`` if not a number).
        """
        dt = check_number(dt, "dt", minimum=0.0, what="a number of seconds")
        if self._offset is None:
            return
        self._fade += dt
        if self._fade >= self._smoothing:
            self._offset = None

    @property
    def state(self) -> S:
        """A copy of the predicted state (server state plus every unacknowledged input)."""
        return _copy_state(self._state)

    @property
    def display(self) -> S:
        """What to draw: a copy of the predicted state plus the fading correction offset."""
        offset = self._current_offset()
        if offset is None:
            return _copy_state(self._state)
        try:
            return _with_offset(self._state, offset)  # type: ignore[no-any-return]
        except ValueError:  # a tuple/list state changed length since the correction: just show it
            return _copy_state(self._state)

    @property
    def correction(self) -> tuple[float, ...]:
        """The offset :attr:`display` currently adds (empty when none), over the measured components."""
        offset = self._current_offset()
        return offset if offset is not None else ()

    @property
    def dt(self) -> float:
        """The fixed step each input advances."""
        return self._dt

    @property
    def seq(self) -> int:
        """The last sequence number handed out by :meth:`apply` (0 before any)."""
        return self._seq

    @property
    def acked(self) -> int:
        """The highest ``last_applied_seq`` reconciled so far."""
        return self._acked

    @property
    def pending(self) -> int:
        """Inputs applied but not yet acknowledged by the server."""
        return len(self._pending)

    @property
    def last_error(self) -> float:
        """The prediction error measured by the last (non-stale) :meth:`reconcile`."""
        return self._last_error

    @property
    def max_error(self) -> float:
        """The largest prediction error measured so far."""
        return self._max_error

    @property
    def dropped(self) -> int:
        """Unacknowledged inputs forgotten because more than ``max_pending`` piled up."""
        return self._dropped
