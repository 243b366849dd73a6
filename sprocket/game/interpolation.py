"""Smooth remote entities: render them slightly in the past, blending between the snapshots around then.

Snapshots arrive a few times a second, late by a varying amount.  :class:`InterpolationBuffer` keeps the
recent ones and, for each frame, answers "where was everything at *render time*", where render time is
the server's time minus a small delay.  Because render time is behind the newest snapshot, there is
almost always a snapshot on each side of it to blend between, and motion looks continuous.

The delay is fixed if you give one.  Otherwise it adapts to the link::

    delay = latency + 1.5 * interval + 3 * jitter        (clamped to [min_delay, max_delay])

where ``latency`` is the mean of ``arrival_time - snapshot.time`` (it is the one-way delay when your
server-time estimate is good, and absorbs any constant error in that estimate), ``interval`` the mean
time between snapshots, and ``jitter`` the mean absolute deviation of latency from its mean.  The render
clock must have a snapshot newer than render time: the newest one is up to ``latency + interval`` old,
so that much is the bare minimum, and the rest is margin.  Jitter rises quickly after a lag spike and
falls slowly, so one spike buys a few seconds of safety instead of a stutter per spike.  It starts at
``interval / 6``, which makes the first delay about two snapshot intervals past latency.

Render time never jumps when the delay changes: it closes the gap to the new target gradually (half a
second's time constant), never running slower than 0.9x or faster than 1.1x real speed.  It jumps only
if it is more than ``max_delay`` off — your server clock estimate jumped.

Past the newest snapshot, entities are extrapolated for at most ``max_extrapolation`` seconds and then
frozen; before the oldest snapshot, the oldest is shown.  An entity a snapshot marks as jumped
(:attr:`Snapshot.jumps`, the server's :meth:`World.teleport`) is never blended or extrapolated across
that jump: it is shown where it was until render time reaches the snapshot, then where it jumped to.
An entity spawned in a snapshot appears when
render time reaches that snapshot, and one despawned disappears then — never a ghost at a blended spot.

This module must never import pygame, touch sockets or threads, or read a clock: every time is an
argument.  Standard library only (and :mod:`sprocket.errors` for its exceptions).
"""

from __future__ import annotations

import bisect
import math

from sprocket.errors import InvalidArgument

from ._checks import InvalidType, check_count, check_number, describe
from .entity import Entity, extrapolate, field_kinds
from .snapshot import Snapshot

__all__ = ["InterpolationBuffer"]

# Smoothing factors of the link statistics (exponentially weighted moving averages, per snapshot).
_LATENCY_ALPHA = 0.1
_INTERVAL_ALPHA = 0.1
_JITTER_RISE = 0.25  # a late snapshot raises jitter quickly ...
_JITTER_FALL = 0.05  # ... and calm lowers it slowly
# Adaptive delay = latency + _INTERVAL_FACTOR * interval + _JITTER_FACTOR * jitter.
_INTERVAL_FACTOR = 1.5
_JITTER_FACTOR = 3.0
# How much faster or slower than real time the render clock may run while converging on its target.
_MAX_RATE_CHANGE = 0.1
# Below that limit the render clock closes its gap to the target proportionally, with this time constant
# (seconds): small wobbles of the target then nudge the clock rate slightly instead of flipping it
# between 0.9x and 1.1x.
_CONVERGE_TIME = 0.5


def _blend_all(a: Snapshot, b: Snapshot, t: float) -> dict[int, Entity]:
    """Every entity of ``a`` at ``t`` (0 <= t < 1) of the way to ``b``: what :func:`blend` gives, entity by
    entity, in one pass (sampling runs every frame, for every entity: no call per entity)."""
    later = b.entities
    jumped = b.jumps
    new_object = object.__new__
    kinds_of: dict[type, tuple[tuple[str, ...], tuple[tuple[str, float], ...]]] = {}
    out: dict[int, Entity] = {}
    for eid, entity in a.entities.items():
        new = later.get(eid)
        cls = type(entity)
        if new is entity or eid in jumped or type(new) is not cls:
            # Unchanged between the snapshots (decode_snapshot shares unchanged entities with the base):
            # nothing to blend, which in a mostly static world is most of them.  Or it teleported in b:
            # shown where it was until b is reached, then where it jumped to.  Or despawned in b (or
            # replaced by another type): shown as it was until b is reached.
            out[eid] = entity.copy()
            continue
        kinds = kinds_of.get(cls)
        if kinds is None:
            found = field_kinds(cls)
            kinds = kinds_of[cls] = (found.floats, found.angles)
        da = entity.__dict__
        db = new.__dict__  # type: ignore[union-attr]
        values = da.copy()
        for name in kinds[0]:  # as entity.blend: floats linearly, angles the short way round
            start = da[name]
            values[name] = start + (db[name] - start) * t
        for name, period in kinds[1]:
            start = da[name]
            delta = (db[name] - start) % period
            if delta > period * 0.5:
                delta -= period
            values[name] = (start + delta * t) % period
        blended = new_object(cls)
        blended.__dict__ = values
        out[eid] = blended
    return out


def _number(value: float, name: str, *, minimum: float | None = None) -> float:
    return check_number(value, name, minimum=minimum, what="a number of seconds")


class InterpolationBuffer:
    """Client-side buffer that renders remote entities ``delay`` seconds in the past.

    ``InterpolationBuffer(*, delay=None, min_delay=0.03, max_delay=0.5, max_extrapolation=0.1,
    capacity=32)``: ``delay=None`` adapts the delay to the link (see the module docs); a number fixes it
    (render time is then exactly ``server_now - delay``).  ``capacity`` bounds how many snapshots are
    kept.  Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) naming the argument for a
    negative or non-finite time, ``min_delay > max_delay``, or ``capacity < 2``; for a value of the wrong
    type it is ``InvalidType``, also a ``TypeError``.

    Every frame::

        buffer.push(snapshot, arrival_time=server_clock_estimate)   # for each snapshot received
        for eid, entity in buffer.sample(server_now).items(): draw(entity)
    """

    def __init__(
        self,
        *,
        delay: float | None = None,
        min_delay: float = 0.03,
        max_delay: float = 0.5,
        max_extrapolation: float = 0.1,
        capacity: int = 32,
    ) -> None:
        self._fixed_delay = None if delay is None else _number(delay, "delay", minimum=0.0)
        self.min_delay = _number(min_delay, "min_delay", minimum=0.0)
        self.max_delay = _number(max_delay, "max_delay", minimum=0.0)
        if self.min_delay > self.max_delay:
            raise InvalidArgument(f"min_delay ({min_delay!r}) must not exceed max_delay ({max_delay!r})")
        self.max_extrapolation = _number(max_extrapolation, "max_extrapolation", minimum=0.0)
        self.capacity = check_count(capacity, "capacity", minimum=2)  # interpolation needs two snapshots
        self.clear()

    def clear(self) -> None:
        """Forget every snapshot, the render clock and the link statistics (e.g. after reconnecting)."""
        self._snaps: list[Snapshot] = []
        self._times: list[float] = []  # parallel to _snaps, for bisect
        self._render_time: float | None = None
        self._last_now: float | None = None
        self._latency: float | None = None
        self._interval: float | None = None
        self._jitter = 0.0
        self._depth = 0
        self._extrapolating = False
        self._holding = False
        self._late = 0
        self._discarded = 0
        self._resuming = False

    def resume(self) -> None:
        """The link was down and is back (a resumed session): the next snapshots may be old ones replayed
        across the gap, and the first new one comes after a long interval.  Keep using them, but leave the
        link statistics (latency, jitter, interval: the adaptive delay) and :attr:`late` out of it until a
        snapshot arrives on time again, so one outage does not make the delay balloon for seconds."""
        self._resuming = True

    # -- input ------------------------------------------------------------------------------------------

    def push(self, snapshot: Snapshot, arrival_time: float) -> bool:
        """Add a snapshot that arrived at ``arrival_time`` (your estimate of *server* time on arrival).

        Returns False, and ignores it, if its tick is not newer than the newest buffered tick (a duplicate
        or out-of-order arrival), its time is not later, or its time is so far from ``arrival_time`` or
        the newest buffered time that the difference is not finite (counted in :attr:`discarded`).  A snapshot
        older than the current render time is still kept but counted in :attr:`late`.
        Raises ``InvalidType`` (an ``InvalidArgument`` and a ``TypeError``) if ``snapshot`` is not a
        :class:`Snapshot` or ``arrival_time`` not a number, ``InvalidArgument`` if it is not finite.
        """
        if not isinstance(snapshot, Snapshot):
            raise InvalidType(f"snapshot must be a Snapshot, got {describe(snapshot)}")
        arrival = _number(arrival_time, "arrival_time")
        if self._snaps and (snapshot.tick <= self._snaps[-1].tick or snapshot.time <= self._times[-1]):
            self._discarded += 1
            return False
        measuring = not self._resuming
        offset = arrival - snapshot.time
        gap = snapshot.time - self._times[-1] if self._snaps else 0.0
        if not (math.isfinite(offset) and math.isfinite(gap)):
            # Times so far apart that their difference overflows (a hostile server's 1e308): nothing
            # can be interpolated across that; keep the statistics finite.
            self._discarded += 1
            return False

        if self._resuming:
            latency, interval = self._latency, self._interval
            if latency is None or offset <= latency + _JITTER_FACTOR * self._jitter + (interval or 0.0):
                self._resuming = False  # on time again: measure from the next one (this one ends the gap)
        elif self._latency is None:
            self._latency = offset
        else:
            deviation = abs(offset - self._latency)
            self._latency += _LATENCY_ALPHA * (offset - self._latency)
            rate = _JITTER_RISE if deviation > self._jitter else _JITTER_FALL
            self._jitter += rate * (deviation - self._jitter)
        if self._snaps and measuring:
            if self._interval is None:
                self._interval = gap
                # Nothing is known about jitter yet: assume some, so the first delay is ~2 intervals.
                self._jitter = max(self._jitter, gap / 6.0)
            else:
                self._interval += _INTERVAL_ALPHA * (gap - self._interval)

        if measuring and self._render_time is not None and snapshot.time < self._render_time:
            self._late += 1
        self._snaps.append(snapshot)
        self._times.append(snapshot.time)
        if len(self._snaps) > self.capacity:
            del self._snaps[0]
            del self._times[0]
        return True

    # -- output -----------------------------------------------------------------------------------------

    def target_delay(self) -> float | None:
        """The delay the render clock is converging on: the fixed delay, or the adaptive one.

        None while adaptive and fewer than two snapshots have arrived (nothing is known about the link).
        """
        if self._fixed_delay is not None:
            return self._fixed_delay
        if self._latency is None or self._interval is None:
            return None
        wanted = self._latency + _INTERVAL_FACTOR * self._interval + _JITTER_FACTOR * self._jitter
        return min(max(wanted, self.min_delay), self.max_delay)

    def _advance_render_clock(self, now: float, target: float) -> float:
        goal = now - target
        if self._fixed_delay is not None or self._render_time is None or self._last_now is None:
            return goal
        elapsed = max(0.0, now - self._last_now)  # a clock that stepped back does not rewind the render
        render = self._render_time + elapsed
        error = goal - render
        if abs(error) > self.max_delay:
            # Too far off to glide there (the caller's server-clock estimate jumped): jump.
            return goal
        limit = _MAX_RATE_CHANGE * elapsed
        return render + min(max(error * min(1.0, elapsed / _CONVERGE_TIME), -limit), limit)

    def sample(self, server_now: float) -> dict[int, Entity]:
        """Return every entity as it was at render time (``server_now - delay``), by id.

        Between two snapshots: blended (:func:`~sprocket.game.entity.blend`); entities only in the older
        one are shown as they were, entities only in the newer one are not shown yet.  Past the newest:
        extrapolated from the last two for up to ``max_extrapolation`` seconds, then frozen (also the case
        with only one snapshot).  Before the oldest: the oldest.  Empty dict before any snapshot.
        The returned entities are new objects, but may share mutable field values with the buffered
        snapshots: treat them as read-only.  Raises ``InvalidArgument`` if ``server_now`` is not finite.
        """
        now = _number(server_now, "server_now")
        self._extrapolating = False
        self._holding = False
        snaps = self._snaps
        if not snaps:
            self._depth = 0
            return {}
        target = self.target_delay()
        if target is None:
            # Adaptive with a single snapshot: nothing to interpolate and no delay estimate yet.
            self._depth = 1
            self._holding = True
            return {eid: e.copy() for eid, e in snaps[-1].entities.items()}

        render = self._advance_render_clock(now, target)
        self._render_time = render
        self._last_now = now

        # Snapshots wholly behind render time are never needed again (it only moves forward), except
        # the last two, which extrapolation uses.
        while len(snaps) > 2 and self._times[1] <= render:
            del snaps[0]
            del self._times[0]

        if render < self._times[0]:
            self._depth = len(snaps)
            return {eid: e.copy() for eid, e in snaps[0].entities.items()}

        newest = snaps[-1]
        if render >= newest.time:
            self._depth = 0
            over = render - newest.time
            if over == 0.0 or len(snaps) < 2 or self.max_extrapolation == 0.0:
                self._holding = over > 0.0
                return {eid: e.copy() for eid, e in newest.entities.items()}
            self._extrapolating = over <= self.max_extrapolation
            self._holding = not self._extrapolating
            previous = snaps[-2]
            t = 1.0 + min(over, self.max_extrapolation) / (newest.time - previous.time)
            out: dict[int, Entity] = {}
            before = previous.entities
            jumped = newest.jumps
            for eid, entity in newest.entities.items():
                old = before.get(eid)
                if type(old) is type(entity) and eid not in jumped:
                    out[eid] = extrapolate(old, entity, t)
                else:  # new, replaced, or teleported: no motion to continue
                    out[eid] = entity.copy()
            return out

        i = bisect.bisect_right(self._times, render) - 1  # times[i] <= render < times[i + 1]
        a = snaps[i]
        b = snaps[i + 1]
        self._depth = len(snaps) - i - 1
        t = (render - a.time) / (b.time - a.time)
        return _blend_all(a, b, t)

    # -- statistics -------------------------------------------------------------------------------------

    @property
    def delay(self) -> float:
        """How far render time was behind ``server_now`` at the last sample (the target before that)."""
        if self._render_time is not None and self._last_now is not None:
            return self._last_now - self._render_time
        target = self.target_delay()
        return target if target is not None else 0.0

    @property
    def render_time(self) -> float | None:
        """The server time that the last :meth:`sample` showed, or None before the first."""
        return self._render_time

    @property
    def depth(self) -> int:
        """Snapshots buffered ahead of render time at the last sample (0: extrapolating or frozen)."""
        return self._depth

    @property
    def interval(self) -> float | None:
        """Mean seconds between snapshots (server time), or None before two have arrived."""
        return self._interval

    @property
    def latency(self) -> float | None:
        """Mean of ``arrival_time - snapshot.time``, or None before the first snapshot."""
        return self._latency

    @property
    def jitter(self) -> float:
        """Mean absolute deviation of arrival latency, in seconds (rises fast, falls slowly)."""
        return self._jitter

    @property
    def extrapolating(self) -> bool:
        """True if the last sample was past the newest snapshot, within ``max_extrapolation``."""
        return self._extrapolating

    @property
    def holding(self) -> bool:
        """True if the last sample showed a frozen state past the newest snapshot (nothing newer)."""
        return self._holding

    @property
    def late(self) -> int:
        """Snapshots that arrived when render time had already passed them (the delay was too short)."""
        return self._late

    @property
    def discarded(self) -> int:
        """Snapshots ignored as duplicates or out of order."""
        return self._discarded

    def __len__(self) -> int:
        """The number of snapshots buffered."""
        return len(self._snaps)
