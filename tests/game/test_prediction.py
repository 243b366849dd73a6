"""Predictor: prediction, reconciliation, replay over a simulated laggy link, display smoothing."""

from __future__ import annotations

import math
import random
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import pytest

from sprocket.game.entity import Entity, angle
from sprocket.game.prediction import Predictor

pytestmark = pytest.mark.timeout(60)

DT = 1 / 60
SPEED = 120.0


class Player(Entity, type_name="test_prediction.Player"):
    x: float = 0.0
    y: float = 0.0
    heading: float = angle()
    score: int = 0


Input = tuple[float, float, float]  # dx, dy, turn (each -1..1)


def step(state: Player, inp: Input, dt: float) -> Player:
    """The shared game rule.  Mutates its argument on purpose: the predictor hands it a private copy."""
    dx, dy, turn = inp
    state.x += dx * SPEED * dt
    state.y += dy * SPEED * dt
    state.heading = (state.heading + turn * 180.0 * dt) % 360.0
    if state.x > 100.0:  # a rule with a branch, so corrections can change the path
        state.score += 1
    return state


def run(state: Player, inputs: list[Input]) -> Player:
    for inp in inputs:
        state = step(state.copy(), inp, DT)
    return state


def random_inputs(rng: random.Random, n: int) -> list[Input]:
    return [(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.choice([-1.0, 0.0, 1.0])) for _ in range(n)]


def test_prediction_without_corrections_matches_the_server() -> None:
    rng = random.Random(1)
    inputs = random_inputs(rng, 200)
    pred = Predictor(step, Player(), DT)
    server = Player()
    for i, inp in enumerate(inputs, start=1):
        assert pred.apply(inp) == i
        server = step(server.copy(), inp, DT)
        if i % 7 == 0:  # the server acknowledges every seventh input
            assert pred.reconcile(server, i) == 0.0
    assert pred.state == server
    assert pred.pending == 200 % 7
    assert pred.max_error == 0.0
    assert pred.display == pred.state


def test_correction_replays_unacknowledged_inputs_exactly() -> None:
    rng = random.Random(2)
    inputs = random_inputs(rng, 30)
    pred = Predictor(step, Player(), DT)
    for inp in inputs:
        pred.apply(inp)
    # The server applied the first 10 but disagrees about where that left us (a collision, say).
    server = run(Player(), inputs[:10])
    server.x += 5.0
    server.heading = (server.heading + 3.0) % 360.0
    before = pred.state
    error = pred.reconcile(server, 10)
    expected = run(server.copy(), inputs[10:])
    assert pred.state == expected
    assert pred.pending == 20
    assert pred.acked == 10
    assert error == pytest.approx(math.hypot(5.0, 3.0))
    assert error == pytest.approx(math.hypot(before.x - expected.x, before.y - expected.y, 3.0))
    assert pred.last_error == error and pred.max_error == error


def test_error_measures_angles_the_short_way() -> None:
    pred = Predictor(step, Player(heading=359.0), DT)
    assert pred.reconcile(Player(heading=1.0), 0) == pytest.approx(2.0)


def test_stale_and_impossible_acks() -> None:
    pred = Predictor(step, Player(), DT)
    for _ in range(5):
        pred.apply((1.0, 0.0, 0.0))
    pred.reconcile(run(Player(), [(1.0, 0.0, 0.0)] * 3), 3)
    state = pred.state
    assert pred.reconcile(Player(x=-1000.0), 2) == 0.0  # stale: reordered packet
    assert pred.state == state and pred.acked == 3
    with pytest.raises(ValueError):
        pred.reconcile(Player(), 6)  # never sent
    with pytest.raises(ValueError):
        pred.reconcile(Player(), -1)
    with pytest.raises(TypeError):
        pred.reconcile(Player(), 3.0)  # type: ignore[arg-type]


def test_equal_ack_is_applied() -> None:
    # After the player stops sending inputs, the server keeps reporting the same last seq while other
    # things (a push from another player) move the state: those corrections must still be taken.
    pred = Predictor(step, Player(), DT)
    pred.apply((1.0, 0.0, 0.0))
    pred.reconcile(Player(x=2.0), 1)
    pred.reconcile(Player(x=3.0), 1)
    assert pred.state == Player(x=3.0)


def test_too_many_pending_inputs_drop_the_oldest() -> None:
    pred = Predictor(step, Player(), DT, max_pending=10)
    for _ in range(25):
        pred.apply((1.0, 0.0, 0.0))
    assert pred.pending == 10 and pred.dropped == 15 and pred.seq == 25
    pred.reconcile(Player(), 20)
    assert pred.pending == 5
    assert pred.state.x == pytest.approx(5 * SPEED * DT)


def test_step_gets_a_private_copy() -> None:
    start = Player(x=1.0)
    seen: list[Player] = []

    def recording_step(state: Player, inp: Input, dt: float) -> Player:
        seen.append(state)
        return step(state, inp, dt)

    pred = Predictor(recording_step, start, DT)
    pred.apply((1.0, 0.0, 0.0))
    assert start == Player(x=1.0)  # the caller's object was never handed to step
    pred.state.x = 1e9  # nor can the caller reach the predictor's own state
    assert pred.state.x == pytest.approx(1.0 + SPEED * DT)
    server = Player(x=50.0)
    pred.reconcile(server, 0)
    assert server == Player(x=50.0)
    assert all(s is not server for s in seen)


def test_step_returning_none_is_a_clear_error() -> None:
    def forgetful(state: Player, inp: Input, dt: float) -> Player:  # type: ignore[return]
        state.x += 1

    pred = Predictor(forgetful, Player(), DT)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="returned None"):
        pred.apply((0.0, 0.0, 0.0))
    assert pred.seq == 0 and pred.pending == 0  # nothing recorded


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dt": 0.0}, ValueError),
        ({"dt": math.inf}, ValueError),
        ({"dt": "1"}, TypeError),
        ({"max_pending": 0}, ValueError),
        ({"max_pending": 1.5}, TypeError),
        ({"smoothing": -0.1}, ValueError),
        ({"smoothing": math.nan}, ValueError),
        ({"snap_distance": 0.0}, ValueError),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"dt": DT, **kwargs}
    with pytest.raises(error):
        Predictor(step, Player(), **args)


def test_step_must_be_callable() -> None:
    with pytest.raises(TypeError):
        Predictor("step", Player(), DT)  # type: ignore[arg-type]


# -- a simulated 100 ms link --------------------------------------------------------------------------


@dataclass
class Link:
    """Messages released after ``latency`` (+ jitter) seconds of injected time; optionally lossy."""

    latency: float
    rng: random.Random
    jitter: float = 0.0
    loss: float = 0.0
    in_flight: list[tuple[float, Any]] = field(default_factory=list)

    def send(self, now: float, message: Any) -> None:
        if self.rng.random() >= self.loss:
            self.in_flight.append((now + self.latency + self.rng.uniform(0, self.jitter), message))

    def receive(self, now: float) -> list[Any]:
        ready = sorted((m for m in self.in_flight if m[0] <= now), key=lambda m: m[0])
        self.in_flight = [m for m in self.in_flight if m[0] > now]
        return [message for _, message in ready]


def simulate(
    *, loss: float = 0.0, jitter: float = 0.0, seed: int = 0, server_rule: Any = None
) -> tuple[Predictor[Player, Input], Player, list[float]]:
    """Client at 60 Hz sends inputs for 3 s then idles 1 s; the server applies them as they arrive."""
    rng = random.Random(seed)
    up = Link(0.1, rng, jitter, loss)
    down = Link(0.1, rng, jitter, loss)
    pred = Predictor(step, Player(), DT)
    server = Player()
    server_seq = 0
    errors: list[float] = []
    inputs = random_inputs(rng, 180)
    for frame in range(240):
        now = frame * DT
        if frame < len(inputs):
            seq = pred.apply(inputs[frame])
            up.send(now, (seq, inputs[frame]))
        # Server: apply inputs in seq order, skipping lost or reordered-late ones.
        for seq, inp in up.receive(now):
            if seq > server_seq:
                server = step(server.copy(), inp, DT)
                if server_rule is not None:
                    server = server_rule(server)
                server_seq = seq
        down.send(now, (server.copy(), server_seq))
        for state, acked in down.receive(now):
            errors.append(pred.reconcile(state, acked))
        pred.advance_display(DT)
    return pred, server, errors


def assert_close(a: Player, b: Player, tol: float = 1e-9) -> None:
    assert abs(a.x - b.x) <= tol and abs(a.y - b.y) <= tol
    assert min(abs(a.heading - b.heading), 360 - abs(a.heading - b.heading)) <= tol
    assert a.score == b.score


def test_over_a_100ms_link_prediction_ends_equal_to_the_server() -> None:
    pred, server, errors = simulate()
    assert_close(pred.state, server)
    assert pred.pending == 0
    assert max(errors) <= 1e-9  # same rule on both sides: the prediction was never wrong
    assert_close(pred.display, server)


def test_over_a_lossy_jittery_link_corrections_converge() -> None:
    pred, server, errors = simulate(loss=0.2, jitter=0.03, seed=4)
    assert max(errors) > 0.1  # lost inputs made the prediction wrong...
    assert_close(pred.state, server)  # ...but it converged once the inputs stopped
    assert pred.pending == 0
    assert_close(pred.display, server)  # and the display has caught up


def test_server_only_rule_is_corrected() -> None:
    # The server has walls at x = +-3 that the client's rule does not know about.
    def walls(state: Player) -> Player:
        state.x = min(max(state.x, -3.0), 3.0)
        return state

    pred, server, errors = simulate(server_rule=walls, seed=9)
    assert max(errors) > 1.0
    assert_close(pred.state, server)


# -- display smoothing --------------------------------------------------------------------------------


def test_display_blends_a_correction_out_over_smoothing_seconds() -> None:
    pred = Predictor(step, Player(), DT, smoothing=0.1)
    error = pred.reconcile(Player(x=10.0, heading=350.0), 0)
    assert error == pytest.approx(math.hypot(10.0, 10.0))
    shown = pred.display
    assert shown.x == pytest.approx(0.0) and shown.heading == pytest.approx(0.0, abs=1e-9)  # no jump
    assert pred.state == Player(x=10.0, heading=350.0)
    previous = abs(pred.correction[0])
    for _ in range(5):
        pred.advance_display(0.02)
        now = abs(pred.correction[0]) if pred.correction else 0.0
        assert now < previous or now == 0.0
        previous = now
    assert pred.correction == ()
    assert pred.display == pred.state  # decayed exactly to zero after `smoothing` seconds


def test_consecutive_corrections_accumulate_from_what_is_shown() -> None:
    pred = Predictor(step, Player(), DT, smoothing=0.1)
    pred.reconcile(Player(x=10.0), 0)
    pred.advance_display(0.05)
    shown_before = pred.display.x
    pred.reconcile(Player(x=20.0), 0)
    assert pred.display.x == pytest.approx(shown_before)  # still no jump


def test_huge_errors_snap() -> None:
    pred = Predictor(step, Player(), DT, snap_distance=50.0)
    pred.reconcile(Player(x=10.0), 0)
    assert pred.display.x == pytest.approx(0.0)  # smoothed
    pred.reconcile(Player(x=500.0), 0)  # a teleport
    assert pred.display == Player(x=500.0)
    assert pred.correction == ()


def test_zero_smoothing_snaps() -> None:
    pred = Predictor(step, Player(), DT, smoothing=0.0)
    pred.reconcile(Player(x=10.0), 0)
    assert pred.display == Player(x=10.0)


def test_advance_display_validates() -> None:
    pred = Predictor(step, Player(), DT)
    with pytest.raises(ValueError):
        pred.advance_display(-0.1)


# -- non-Entity states ----------------------------------------------------------------------------------


def test_float_state() -> None:
    pred: Predictor[float, float] = Predictor(lambda s, i, dt: s + i * dt, 0.0, 0.5)
    pred.apply(2.0)
    pred.apply(2.0)
    assert pred.state == 2.0
    assert pred.reconcile(0.5, 1) == pytest.approx(0.5)  # 0.5 + 1.0 = 1.5 vs 2.0
    assert pred.state == 1.5
    assert pred.display == pytest.approx(2.0)


Vec = namedtuple("Vec", "x y")


@pytest.mark.parametrize("kind", [tuple, list, Vec._make])
def test_sequence_states(kind: Any) -> None:
    def move(s: Any, i: float, dt: float) -> Any:
        return kind([s[0] + i, s[1]])

    pred = Predictor(move, kind([0.0, 0.0]), 1.0)
    pred.apply(1.0)
    assert pred.reconcile(kind([0.0, 4.0]), 0) == pytest.approx(4.0)
    shown = pred.display
    assert type(shown) is type(kind([0.0, 0.0]))
    assert list(shown) == pytest.approx([1.0, 0.0])


def test_opaque_states_snap() -> None:
    pred: Predictor[str, str] = Predictor(lambda s, i, dt: s + i, "", 1.0)
    pred.apply("a")
    pred.apply("c")
    assert pred.reconcile("b", 1) == math.inf  # "ac" predicted, "bc" after replay: not comparable
    assert pred.display == "bc"
    assert pred.reconcile("b", 1) == 0.0
