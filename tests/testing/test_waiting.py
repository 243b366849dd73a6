"""wait_until, step_until and the Harness's argument checks, in memory (no sockets, no pygame)."""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any

import pytest

from sprocket import ClosedError, InvalidArgument, SprocketError
from sprocket.testing import Harness, WaitTimeout, port_of, step_until, wait_until

pytestmark = pytest.mark.timeout(30)


def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", 5, "three calls") == "done"
    assert next(counter) == 4  # called exactly until it was true


def test_a_true_condition_is_checked_once_and_never_waits() -> None:
    calls: list[int] = []
    assert wait_until(lambda: calls.append(1) or 7, 0) == 7
    assert calls == [1]


def test_wait_until_fails_with_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: [], 0.05, "the queue to fill")
    error = info.value
    assert str(error) == "timed out after 0.05 s waiting for the queue to fill (last value: [])"
    assert (error.what, error.timeout, error.last) == ("the queue to fill", 0.05, [])
    assert isinstance(error, AssertionError) and isinstance(error, SprocketError)


def test_a_zero_timeout_checks_once_and_another_thread_can_make_it_true() -> None:
    calls = itertools.count(1)
    with pytest.raises(WaitTimeout):
        wait_until(lambda: next(calls) >= 2, 0)
    assert next(calls) == 2  # one call, then the deadline had passed
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    assert wait_until(flag.is_set, 5, "the timer") is True


def test_errors_from_the_condition_propagate() -> None:
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, 1)


@pytest.mark.parametrize("timeout", [-1, math.nan, math.inf, "soon", None])
def test_bad_timeouts_are_invalid_arguments(timeout: Any) -> None:
    with pytest.raises(InvalidArgument, match="timeout"):
        wait_until(lambda: True, timeout)
    with pytest.raises(InvalidArgument, match="timeout"):
        step_until(object(), lambda: True, timeout)


class FakeGame:
    """Anything with step(dt) can be stepped."""

    def __init__(self) -> None:
        self.frames: list[float | None] = []

    def step(self, dt: float | None = None) -> None:
        self.frames.append(dt)


def test_step_until_steps_frame_by_frame_until_the_condition_holds() -> None:
    game = FakeGame()
    assert step_until(game, lambda: len(game.frames) >= 5 and len(game.frames), 5, "five frames") == 5
    assert game.frames == [1 / 60] * 5
    step_until(game, lambda: len(game.frames) >= 7, 5, dt=None)
    assert game.frames[5:] == [None, None]


def test_step_until_steps_nothing_when_already_true_and_fails_with_a_message() -> None:
    game = FakeGame()
    step_until(game, lambda: True, 5)
    assert game.frames == []
    with pytest.raises(WaitTimeout, match="waiting for the goal"):
        step_until(game, lambda: False, 0.05, "the goal")
    assert game.frames  # it did step while waiting


class HasPort:
    port = 4321


@pytest.mark.parametrize(("target", "port"), [(80, 80), (HasPort(), 4321)])
def test_port_of_accepts_ports_and_things_with_a_port(target: Any, port: int) -> None:
    assert port_of(target) == port


@pytest.mark.parametrize("target", [0, 65536, -1, True, "7777", None, object()])
def test_port_of_rejects_anything_else(target: Any) -> None:
    with pytest.raises(InvalidArgument, match="port"):
        port_of(target)


def test_the_harness_checks_its_arguments_before_starting_anything() -> None:
    with Harness() as harness:
        with pytest.raises(InvalidArgument, match="GameServer subclass"):
            harness.start_server(dict)  # type: ignore[type-var]
        with pytest.raises(InvalidArgument, match="GameBot subclass"):
            harness.connect_bots(7777, int)  # type: ignore[type-var]
        with pytest.raises(InvalidArgument, match="count"):
            harness.connect_bots(7777, count=0)
        with pytest.raises(InvalidArgument, match="names"):
            harness.connect_bots(7777, count=2, names=["only one"])
        with pytest.raises(InvalidArgument, match="lag"):
            harness.lag_proxy(7777, lag=-1)
    with pytest.raises(ClosedError):
        harness.lag_proxy(7777)
