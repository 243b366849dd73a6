"""FixedStep and TickSchedule, driven by an injected clock."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprocket.game.clock import FixedStep, TickSchedule

pytestmark = pytest.mark.timeout(60)


# -- FixedStep ------------------------------------------------------------------------------------------


def test_fixed_step_dt_and_defaults() -> None:
    steps = FixedStep()
    assert steps.dt == pytest.approx(1 / 60)
    assert steps.max_steps == 5
    assert steps.alpha == 0.0


def test_exactly_one_step_per_frame_when_fed_dt() -> None:
    # Floating-point accumulation of 1/60 must not produce the occasional 0-then-2 pattern.
    steps = FixedStep(60)
    assert [steps.advance(1 / 60) for _ in range(10_000)] == [1] * 10_000
    assert steps.steps == 10_000
    assert steps.dropped_steps == 0


def test_half_frames_alternate_and_alpha_tracks_leftover() -> None:
    steps = FixedStep(50)
    assert steps.advance(0.01) == 0
    assert steps.alpha == pytest.approx(0.5)
    assert steps.advance(0.01) == 1
    assert steps.alpha == pytest.approx(0.0, abs=1e-9)
    assert steps.advance(0.035) == 1
    assert steps.alpha == pytest.approx(0.75)


def test_slow_frame_is_capped_and_excess_dropped() -> None:
    steps = FixedStep(rate=10, max_steps=3)
    assert steps.advance(1.05) == 3  # 10 steps due
    assert steps.dropped_steps == 7
    assert steps.alpha == pytest.approx(0.5)  # the fraction is kept
    assert steps.advance(0.05) == 1  # and the next frame is normal again: no spiral
    assert steps.dropped_steps == 7


def test_reset_forgets_leftover() -> None:
    steps = FixedStep(10)
    steps.advance(0.09)
    steps.reset()
    assert steps.alpha == 0.0
    assert steps.advance(0.05) == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rate": 0}, ValueError),
        ({"rate": -1.0}, ValueError),
        ({"rate": math.inf}, ValueError),
        ({"rate": math.nan}, ValueError),
        ({"max_steps": 0}, ValueError),
        ({"rate": "60"}, TypeError),
        ({"max_steps": 2.5}, TypeError),
    ],
)
def test_fixed_step_rejects_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        FixedStep(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("elapsed", [-0.001, math.nan, math.inf])
def test_fixed_step_rejects_bad_elapsed(elapsed: float) -> None:
    with pytest.raises(ValueError):
        FixedStep().advance(elapsed)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(1, 240),
    max_steps=st.integers(1, 8),
    frames=st.lists(st.floats(0, 0.5, allow_nan=False), max_size=200),
)
def test_fixed_step_accounts_for_all_time(rate: float, max_steps: int, frames: list[float]) -> None:
    steps = FixedStep(rate, max_steps)
    for elapsed in frames:
        n = steps.advance(elapsed)
        assert 0 <= n <= max_steps
        assert 0.0 <= steps.alpha < 1.0
    # Every second fed in is a run step, a dropped step, or the leftover fraction.
    accounted = (steps.steps + steps.dropped_steps + steps.alpha) * steps.dt
    assert accounted == pytest.approx(math.fsum(frames), abs=1e-6)


# -- TickSchedule -------------------------------------------------------------------------------------


def test_ticks_are_due_on_the_grid() -> None:
    sched = TickSchedule(rate=10, start=100.0)
    assert sched.due(99.0) == 0
    assert sched.next_deadline == 100.0
    assert sched.due(100.0) == 1  # tick 0 is due at start
    assert sched.tick == 1
    assert sched.next_deadline == pytest.approx(100.1)
    assert sched.time_until(100.05) == pytest.approx(0.05)
    assert sched.due(100.05) == 0
    assert sched.due(100.25) == 2  # ticks 1 and 2
    assert sched.time_until(100.5) == 0.0  # overdue: never negative


def test_schedule_does_not_drift_with_late_wakeups() -> None:
    # A loop that always oversleeps by a random amount still runs tick n at ~start + n / rate.
    rng = random.Random(1)
    sched = TickSchedule(rate=60, start=5.0)
    now = 5.0
    run_at: list[float] = []
    while sched.tick < 6000:
        for _ in range(sched.due(now)):
            run_at.append(now)
        now += sched.time_until(now) + rng.uniform(0, 0.004)
    assert sched.overruns == 0
    for n in (0, 1000, 5999):
        assert 5.0 + n / 60 <= run_at[n] < 5.0 + n / 60 + 0.0045
    assert sched.next_deadline == pytest.approx(5.0 + 6000 / 60, abs=1e-9)


def test_overrun_skips_ahead_keeping_phase() -> None:
    sched = TickSchedule(rate=10, start=0.0, max_catch_up=3)
    assert sched.due(0.0) == 1
    assert sched.due(2.0) == 3  # ticks 1..20 were due: run 3, skip 17
    assert sched.overruns == 1
    assert sched.skipped == 17
    assert sched.tick == 4
    assert sched.next_deadline == pytest.approx(2.1)  # back on the original 0.1 s grid
    assert sched.due(2.1) == 1
    assert sched.overruns == 1


def test_clock_going_backwards_yields_nothing() -> None:
    sched = TickSchedule(rate=10, start=0.0, max_catch_up=10)
    assert sched.due(0.55) == 6
    assert sched.due(0.3) == 0
    assert sched.due(0.6) == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, 0.0), ValueError),
        ((10, math.nan), ValueError),
        ((10, 0.0, 0), ValueError),
        ((10, "0"), TypeError),
    ],
)
def test_schedule_rejects_bad_arguments(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        TickSchedule(*args)  # type: ignore[arg-type]


def test_schedule_rejects_non_finite_now() -> None:
    with pytest.raises(ValueError):
        TickSchedule(10, 0.0).due(math.inf)
    with pytest.raises(ValueError):
        TickSchedule(10, 0.0).time_until(math.nan)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(1, 120),
    cap=st.integers(1, 6),
    waits=st.lists(st.floats(0, 0.3, allow_nan=False), max_size=100),
)
def test_schedule_never_runs_a_tick_early(rate: float, cap: int, waits: list[float]) -> None:
    sched = TickSchedule(rate, start=0.0, max_catch_up=cap)
    now = 0.0
    handed_out = 0
    for wait in waits:
        now += wait
        skipped_before = sched.skipped
        n = sched.due(now)
        assert 0 <= n <= cap
        handed_out += n
        assert sched.tick == handed_out  # tick counts exactly the ticks due() returned
        # The last tick handed out was due by now, and the next one is not yet due.
        if n:
            assert (sched.tick + sched.skipped - 1) / rate <= now + 1e-9
        assert sched.next_deadline > now - 1e-9
        # Slots are skipped only when more than max_catch_up were due, and then exactly cap ticks run.
        if sched.skipped != skipped_before:
            assert sched.skipped > skipped_before and n == cap
            assert sched.overruns >= 1
