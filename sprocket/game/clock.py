"""Frame and tick timing: how many fixed simulation steps to run now, given how much time has passed.

Two small accumulators, both driven by time *you* pass in (an injected clock), so they are exact and
testable:

* :class:`FixedStep` — for a client's frame loop.  Feed it each frame's elapsed seconds; it says how many
  fixed-``dt`` steps to simulate, and how far into the next step you are (``alpha``) for render blending.
  A very slow frame is capped at ``max_steps`` and the excess time is dropped, so one hitch can never
  start a "spiral of death" where catching up takes longer than the time it catches up on.
* :class:`TickSchedule` — for a server's tick loop.  Tick ``n`` is due at ``start + n / rate`` on a
  monotonic clock, computed from the anchor every time rather than by adding up sleeps, so rounding and
  oversleeping never make the server drift.  If the loop falls far behind it skips ahead instead of
  running a burst of stale ticks.

This module must never read a clock, sleep, start threads or touch the network: time is always an
argument.  It uses the standard library only (and :mod:`sprocket.errors`).

Bad arguments raise :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) naming the argument and
the value; one of the wrong type raises its subclass ``InvalidType``, which is also a ``TypeError``.
"""

from __future__ import annotations

import math

from ._checks import check_count, check_number

__all__ = ["FixedStep", "TickSchedule"]

# Float accumulation of 1/rate is not exact: after adding 1/60 sixty times the total may be a hair under
# one second.  A step that is due "to within a billionth of a step" counts as due, so a loop fed exactly
# dt per frame runs exactly one step per frame instead of occasionally 0 then 2.
_EPSILON = 1e-9


def _check_rate(rate: float) -> float:
    return check_number(rate, "rate", positive=True, what="a number of steps per second")


def _check_time(value: float, name: str) -> float:
    return check_number(value, name, what="a number of seconds")


class FixedStep:
    """Fixed-timestep accumulator for a frame loop.

    ``FixedStep(rate=60.0, max_steps=5)``: simulate at ``rate`` steps per second (``dt = 1 / rate``),
    never more than ``max_steps`` steps per :meth:`advance` call.

    Typical use::

        steps = FixedStep(60)
        while running:
            for _ in range(steps.advance(frame_seconds)):
                state = step(state, input, steps.dt)
            render(previous_state, state, steps.alpha)

    Raises ``InvalidArgument`` if ``rate`` is not a finite number > 0 or ``max_steps`` is not an int >= 1
    (``InvalidType``, also a ``TypeError``, if they are not a number / an int).
    """

    def __init__(self, rate: float = 60.0, max_steps: int = 5) -> None:
        self.rate: float = _check_rate(rate)
        self.max_steps: int = check_count(max_steps, "max_steps")
        self.dt: float = 1.0 / self.rate
        #: Simulation steps dropped because a frame was too long (the spiral-of-death guard).
        self.dropped_steps: int = 0
        #: Steps handed out by :meth:`advance` so far.
        self.steps: int = 0
        self._accumulator = 0.0

    def advance(self, elapsed: float) -> int:
        """Add ``elapsed`` seconds; return how many fixed steps to run now (``0 .. max_steps``).

        When more than ``max_steps`` whole steps are due, the extra whole steps are discarded (and counted
        in :attr:`dropped_steps`); the fractional remainder is kept so :attr:`alpha` stays meaningful.
        Raises ``InvalidArgument`` if ``elapsed`` is negative or not finite (``InvalidType`` if not a
        number).
        """
        elapsed = check_number(elapsed, "elapsed", minimum=0.0, what="a number of seconds")
        self._accumulator += elapsed
        due = math.floor(self._accumulator / self.dt + _EPSILON)
        self._accumulator = max(0.0, self._accumulator - due * self.dt)
        if due > self.max_steps:
            # Running every due step would make this frame slower still; drop the backlog instead.
            self.dropped_steps += due - self.max_steps
            due = self.max_steps
        self.steps += due
        return due

    @property
    def alpha(self) -> float:
        """How far into the next step the leftover time reaches, in ``[0, 1)``: blend renders by this."""
        return min(max(self._accumulator / self.dt, 0.0), math.nextafter(1.0, 0.0))

    def reset(self) -> None:
        """Forget leftover time (e.g. after a pause or a level load) so the next frame starts clean."""
        self._accumulator = 0.0


class TickSchedule:
    """Drift-free tick scheduling for a server loop on a monotonic clock.

    ``TickSchedule(rate, start, max_catch_up=5)``: tick ``n`` (counting from 0) is due at
    ``start + (n + skipped) / rate``.  Deadlines are always computed from ``start`` — never by adding up
    intervals — so the schedule does not drift however late each wake-up is.

    Typical use::

        sched = TickSchedule(30, start=time.monotonic())
        while running:
            now = time.monotonic()
            for _ in range(sched.due(now)):
                tick()
            wait(sched.time_until(time.monotonic()))

    Raises ``InvalidArgument`` if ``rate`` is not a finite number > 0, ``start`` is not finite or
    ``max_catch_up`` is not an int >= 1 (``InvalidType``, also a ``TypeError``, for a wrong type).
    """

    def __init__(self, rate: float, start: float, max_catch_up: int = 5) -> None:
        self.rate: float = _check_rate(rate)
        self.start: float = _check_time(start, "start")
        self.max_catch_up: int = check_count(max_catch_up, "max_catch_up")
        #: Ticks handed out by :meth:`due` so far (the number of the next tick to run).
        self.tick: int = 0
        #: Calls to :meth:`due` that found more than ``max_catch_up`` ticks due and skipped ahead.
        self.overruns: int = 0
        #: Tick slots skipped in total by those overruns (they are never run).
        self.skipped: int = 0

    def due(self, now: float) -> int:
        """Return how many ticks to run now (``0 .. max_catch_up``) and count them as run.

        If more than ``max_catch_up`` ticks are due, the oldest excess slots are skipped (counted in
        :attr:`skipped`, and the call in :attr:`overruns`): the schedule keeps its phase — later ticks stay
        on the same ``1 / rate`` grid — but does not try to replay the backlog.  A ``now`` earlier than a
        previous call (a clock that went backwards) simply yields 0.
        Raises ``InvalidArgument`` if ``now`` is not finite (``InvalidType`` if not a number).
        """
        now = _check_time(now, "now")
        if now < self.start:
            return 0
        # Slots 0..k are due when start + k / rate <= now.
        slots_due = math.floor((now - self.start) * self.rate + _EPSILON) + 1
        count = slots_due - self.skipped - self.tick
        if count <= 0:
            return 0
        if count > self.max_catch_up:
            self.overruns += 1
            self.skipped += count - self.max_catch_up
            count = self.max_catch_up
        self.tick += count
        return count

    @property
    def next_deadline(self) -> float:
        """The monotonic time at which the next tick (number :attr:`tick`) is due."""
        return self.start + (self.tick + self.skipped) / self.rate

    def time_until(self, now: float) -> float:
        """Seconds from ``now`` until the next tick is due; ``0.0`` if it is already due (never negative).

        Raises ``InvalidArgument`` if ``now`` is not finite (``InvalidType`` if not a number).
        """
        now = _check_time(now, "now")
        return max(0.0, self.next_deadline - now)
