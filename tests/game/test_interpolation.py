"""InterpolationBuffer with an injected clock: exact blends, no ghosts, bounded extrapolation, smoothness."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest

from sprocket.game.entity import Entity, angle
from sprocket.game.interpolation import InterpolationBuffer
from sprocket.game.snapshot import Snapshot

pytestmark = pytest.mark.timeout(60)


class Ship(Entity, type_name="test_interpolation.Ship"):
    x: float = 0.0
    y: float = 0.0
    heading: float = angle()
    score: int = 0


def snap(tick: int, time: float, **ships: Ship) -> Snapshot:
    return Snapshot(tick, time, {int(k[1:]): v for k, v in ships.items()})


def fixed(delay: float = 0.1, **kwargs: float) -> InterpolationBuffer:
    return InterpolationBuffer(delay=delay, **kwargs)  # type: ignore[arg-type]


def test_empty_buffer_samples_nothing() -> None:
    buf = fixed()
    assert buf.sample(1.0) == {}
    assert buf.depth == 0 and not buf.holding and not buf.extrapolating


def test_exact_blend_between_two_snapshots() -> None:
    # Binary-exact times, so "exactly at the newer snapshot" is exact in floating point too.
    buf = fixed(0.25)
    buf.push(snap(1, 1.0, e1=Ship(x=0.0, y=10.0, score=1)), arrival_time=1.125)
    buf.push(snap(2, 1.5, e1=Ship(x=10.0, y=30.0, score=2)), arrival_time=1.625)
    out = buf.sample(1.5)  # render time 1.25: half-way
    assert (out[1].x, out[1].y) == (5.0, 20.0)  # type: ignore[attr-defined]
    assert out[1].score == 1  # type: ignore[attr-defined]
    out = buf.sample(1.375)  # render time 1.125: a quarter
    assert out[1].x == 2.5  # type: ignore[attr-defined]
    assert buf.delay == 0.25
    assert buf.depth == 1 and not buf.extrapolating and not buf.holding
    out = buf.sample(1.75)  # render time 1.5: exactly the newer snapshot
    assert out[1] == Ship(x=10.0, y=30.0, score=2)


def test_angle_blends_through_zero() -> None:
    buf = fixed(0.0)
    buf.push(snap(1, 0.0, e1=Ship(heading=350.0)), 0.0)
    buf.push(snap(2, 1.0, e1=Ship(heading=10.0)), 1.0)
    headings = [buf.sample(t / 10).get(1).heading for t in range(11)]  # type: ignore[union-attr]
    expected = [350, 352, 354, 356, 358, 0, 2, 4, 6, 8, 10]
    for got, want in zip(headings, expected, strict=True):
        assert min(abs(got - want), 360 - abs(got - want)) == pytest.approx(0.0, abs=1e-9)


def test_spawn_and_despawn_never_ghost() -> None:
    buf = fixed(0.0)
    buf.push(snap(1, 1.0, e1=Ship(x=0.0), e2=Ship(x=100.0)), 1.0)
    buf.push(snap(2, 2.0, e1=Ship(x=10.0), e3=Ship(x=50.0)), 2.0)
    before = buf.sample(1.99)
    assert set(before) == {1, 2}
    assert before[2].x == 100.0  # type: ignore[attr-defined]  # shown where it was, not blended anywhere
    after = buf.sample(2.0)
    assert set(after) == {1, 3}
    assert after[3].x == 50.0  # type: ignore[attr-defined]


def test_id_reused_by_another_type_is_not_blended() -> None:
    class Rock(Entity, type_name="test_interpolation.Rock"):
        x: float = 0.0

    buf = fixed(0.0)
    buf.push(snap(1, 0.0, e1=Ship(x=0.0)), 0.0)
    buf.push(Snapshot(2, 1.0, {1: Rock(x=10.0)}), 1.0)
    assert buf.sample(0.5)[1] == Ship(x=0.0)
    assert buf.sample(1.0)[1] == Rock(x=10.0)


def test_extrapolation_is_bounded_then_holds() -> None:
    buf = fixed(0.0, max_extrapolation=0.1)
    buf.push(snap(1, 1.0, e1=Ship(x=0.0, score=1)), 1.0)
    buf.push(snap(2, 1.1, e1=Ship(x=10.0, score=2)), 1.1)
    out = buf.sample(1.15)
    assert out[1].x == pytest.approx(15.0) and out[1].score == 2  # type: ignore[attr-defined]
    assert buf.extrapolating and not buf.holding and buf.depth == 0
    out = buf.sample(1.2)
    assert out[1].x == pytest.approx(20.0)  # type: ignore[attr-defined]
    for now in (1.25, 1.5, 10.0):
        out = buf.sample(now)
        assert out[1].x == pytest.approx(20.0)  # type: ignore[attr-defined]  # frozen at the limit
        assert buf.holding and not buf.extrapolating


def test_extrapolation_only_for_entities_in_both_snapshots() -> None:
    buf = fixed(0.0)
    buf.push(snap(1, 1.0, e1=Ship(x=0.0), e2=Ship(x=0.0)), 1.0)
    buf.push(snap(2, 1.1, e1=Ship(x=10.0), e3=Ship(x=7.0)), 1.1)
    out = buf.sample(1.15)
    assert set(out) == {1, 3}
    assert out[3].x == 7.0  # type: ignore[attr-defined]  # new entity: held, no velocity known


def test_no_extrapolation_when_disabled_or_single_snapshot() -> None:
    buf = fixed(0.0, max_extrapolation=0.0)
    buf.push(snap(1, 1.0, e1=Ship(x=0.0)), 1.0)
    assert buf.sample(1.5)[1].x == 0.0  # type: ignore[attr-defined]
    assert buf.holding
    buf.push(snap(2, 1.1, e1=Ship(x=10.0)), 1.1)
    assert buf.sample(1.5)[1].x == 10.0  # type: ignore[attr-defined]
    assert buf.holding


def test_before_the_oldest_snapshot_shows_the_oldest() -> None:
    buf = fixed(0.5)
    buf.push(snap(1, 1.0, e1=Ship(x=3.0)), 1.0)
    buf.push(snap(2, 1.1, e1=Ship(x=4.0)), 1.1)
    assert buf.sample(1.2)[1].x == 3.0  # type: ignore[attr-defined]  # render time 0.7
    assert buf.depth == 2


def test_sampled_entities_are_independent_of_the_buffer() -> None:
    buf = fixed(0.0)
    buf.push(snap(1, 1.0, e1=Ship(x=3.0)), 1.0)
    buf.sample(1.0)[1].x = 99.0  # type: ignore[attr-defined]
    assert buf.sample(1.0)[1].x == 3.0  # type: ignore[attr-defined]


def test_duplicates_and_out_of_order_are_discarded() -> None:
    buf = fixed(0.0)
    assert buf.push(snap(5, 1.0, e1=Ship(x=5.0)), 1.0)
    assert not buf.push(snap(5, 1.0, e1=Ship(x=99.0)), 1.0)
    assert not buf.push(snap(4, 0.9, e1=Ship(x=99.0)), 1.0)
    assert not buf.push(snap(6, 1.0, e1=Ship(x=99.0)), 1.0)  # newer tick but not later in time
    assert buf.discarded == 3 and len(buf) == 1
    assert buf.sample(1.0)[1].x == 5.0  # type: ignore[attr-defined]


def test_late_snapshots_are_counted() -> None:
    buf = fixed(0.05)
    buf.push(snap(1, 1.0, e1=Ship()), 1.0)
    buf.push(snap(2, 1.1, e1=Ship()), 1.1)
    buf.sample(1.3)  # render time 1.25: past everything
    buf.push(snap(3, 1.2, e1=Ship()), 1.3)  # arrives already behind render time
    assert buf.late == 1


def test_capacity_bounds_the_buffer() -> None:
    buf = fixed(0.0, capacity=4)  # type: ignore[arg-type]
    for tick in range(10):
        buf.push(snap(tick, tick * 0.1, e1=Ship(x=float(tick))), tick * 0.1)
    assert len(buf) == 4


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"delay": -0.1}, ValueError),
        ({"delay": math.nan}, ValueError),
        ({"min_delay": 0.6}, ValueError),  # above max_delay
        ({"max_extrapolation": -1.0}, ValueError),
        ({"capacity": 1}, ValueError),
        ({"capacity": 2.0}, TypeError),
        ({"delay": "0.1"}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        InterpolationBuffer(**kwargs)  # type: ignore[arg-type]


def test_bad_push_and_sample_arguments() -> None:
    buf = InterpolationBuffer()
    with pytest.raises(TypeError):
        buf.push({"tick": 1}, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        buf.push(snap(1, 0.0), math.inf)
    with pytest.raises(ValueError):
        buf.sample(math.nan)


# -- adaptive delay over a simulated link ----------------------------------------------------------------


@dataclass
class LinkRun:
    buf: InterpolationBuffer
    xs: list[float] = field(default_factory=list)  # sampled x per 60 Hz frame
    times: list[float] = field(default_factory=list)  # frame times
    delays: list[float] = field(default_factory=list)  # buf.delay per frame
    starved: list[bool] = field(default_factory=list)  # extrapolating or holding, per frame


def run_link(
    *,
    seconds: float = 20.0,
    speed: float = 120.0,
    send_rate: float = 20.0,
    latency: float = 0.06,
    jitter: float = 0.04,
    loss: float = 0.0,
    clock_noise: float = 0.0,
    seed: int = 7,
    buf: InterpolationBuffer | None = None,
) -> LinkRun:
    """A ship flying at constant speed; snapshots at send_rate, each delayed latency + U(0, jitter)."""
    rng = random.Random(seed)
    run = LinkRun(buf if buf is not None else InterpolationBuffer())
    buf = run.buf
    in_flight: list[tuple[float, Snapshot]] = []
    for tick in range(int(seconds * send_rate) + 1):
        t = tick / send_rate
        if rng.random() >= loss:
            in_flight.append((t + latency + rng.uniform(0, jitter), snap(tick, t, e1=Ship(x=speed * t))))
    in_flight.sort(key=lambda item: item[0])
    frame = 0
    while frame / 60 < seconds:
        now = frame / 60
        while in_flight and in_flight[0][0] <= now:
            arrival, s = in_flight.pop(0)
            buf.push(s, arrival)
        out = buf.sample(now + rng.uniform(-clock_noise, clock_noise))
        if 1 in out:
            run.xs.append(out[1].x)  # type: ignore[attr-defined]
            run.times.append(now)
            run.delays.append(buf.delay)
            run.starved.append(buf.extrapolating or buf.holding)
        frame += 1
    return run


def assert_smooth(xs: list[float], speed: float, warm_up_frames: int = 120, factor: float = 1.5) -> None:
    frame_motion = speed / 60
    steps = [b - a for a, b in zip(xs[warm_up_frames:], xs[warm_up_frames + 1 :], strict=False)]
    assert steps, "no samples after warm-up"
    assert max(steps) <= factor * frame_motion, max(steps) / frame_motion
    assert min(steps) >= 0.0  # never moves backwards


def test_adaptive_delay_is_smooth_at_20hz_with_jitter() -> None:
    run = run_link()
    buf = run.buf
    # The render clock's rate stays within 0.9x-1.1x, so motion per frame does too (the brief's bound is
    # 1.5x; this holds tighter).
    assert_smooth(run.xs, 120.0, factor=1.15)
    assert not any(run.starved[120:])  # always a snapshot on each side of render time after warm-up
    settled = run.delays[600:]
    assert all(buf.min_delay <= d <= buf.max_delay for d in settled)
    # latency 60-100 ms, 50 ms interval: the settled delay covers latency + an interval, with margin.
    assert min(settled) >= 0.15 and max(settled) <= 0.3, (min(settled), max(settled))
    assert buf.interval == pytest.approx(0.05)
    assert buf.late == 0
    assert not buf.holding


def test_first_delay_is_about_two_intervals_past_latency() -> None:
    buf = InterpolationBuffer()
    buf.push(snap(1, 1.0, e1=Ship()), 1.05)
    assert buf.target_delay() is None
    assert buf.sample(1.06)[1] == Ship()  # a single snapshot is held
    buf.push(snap(2, 1.05, e1=Ship()), 1.1)
    assert buf.target_delay() == pytest.approx(0.05 + 2 * 0.05)


def test_adaptive_delay_survives_loss_and_reordering() -> None:
    # 40 ms of jitter on top of 20 Hz reorders some snapshots; 10% are lost outright.
    run = run_link(jitter=0.08, loss=0.1, seed=3)
    assert_smooth(run.xs, 120.0, factor=1.15)
    assert run.buf.discarded > 0


def test_render_clock_never_runs_backwards_with_a_noisy_server_clock() -> None:
    # +-3 ms of noise per frame in the caller's server-clock estimate shows up as up to +-36% per-frame
    # speed (3 ms of 16.7 ms, twice), but never as motion backwards.
    run = run_link(clock_noise=0.003, seed=11)
    assert_smooth(run.xs, 120.0, factor=1.5)


def test_render_clock_glides_to_a_new_delay() -> None:
    # Latency jumps from 50 ms to 150 ms half-way: the delay must grow without freezing or jumping back.
    buf = InterpolationBuffer()
    rng = random.Random(5)
    xs: list[float] = []
    delays: list[float] = []
    pending: list[tuple[float, Snapshot]] = []
    for tick in range(400):
        t = tick / 20
        lat = 0.05 if t < 10 else 0.15
        pending.append((t + lat + rng.uniform(0, 0.01), snap(tick, t, e1=Ship(x=100 * t))))
    pending.sort(key=lambda p: p[0])
    for frame in range(60 * 20):
        now = frame / 60
        while pending and pending[0][0] <= now:
            arrival, s = pending.pop(0)
            buf.push(s, arrival)
        out = buf.sample(now)
        if 1 in out:
            xs.append(out[1].x)  # type: ignore[attr-defined]
            delays.append(buf.delay)
    # The render clock runs at 0.9x-1.1x, so the per-frame motion stays within 1.1x.  (While the first
    # slow snapshots are awaited it extrapolates; constant velocity extrapolates exactly, so no jump.)
    assert_smooth(xs, 100.0, warm_up_frames=60, factor=1.15)
    assert delays[-1] > delays[500] + 0.05


def test_fixed_delay_follows_server_time_exactly() -> None:
    run = run_link(buf=InterpolationBuffer(delay=0.2), seconds=5)
    assert all(d == pytest.approx(0.2) for d in run.delays)
    for x, now in zip(run.xs[60:], run.times[60:], strict=True):
        assert x == pytest.approx(120.0 * (now - 0.2))
