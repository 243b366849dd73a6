"""Waiting for something to happen, with a deadline: the tests' replacement for ``time.sleep``.

A networked test must never sleep a guessed amount of time and hope; it waits for the condition it
needs, polling often, and fails with a message naming what it waited for when a deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sprocket import SprocketError
from sprocket.settings import check_duration

__all__ = ["POLL_INTERVAL", "WaitTimeout", "check_timeout", "step_until", "wait_until"]

T = TypeVar("T")

#: Seconds between two evaluations of a condition in :func:`wait_until`.  A poll interval, not a
#: synchronisation: the condition and the deadline decide when the wait ends.
POLL_INTERVAL = 0.002


class WaitTimeout(SprocketError, AssertionError):
    """A condition did not become true before its deadline.

    An ``AssertionError``, so test runners report it as a failed test (not an error in the test's
    machinery); the message names what was awaited and how long.  ``what`` and ``timeout`` hold the
    same as attributes, and ``last`` the condition's last (falsy) value.
    """

    def __init__(self, what: str, timeout: float, last: Any = None) -> None:
        """Build the message ``timed out after {timeout} s waiting for {what}`` (``last`` appended)."""
        message = f"timed out after {timeout:g} s waiting for {what}"
        if last is not None and last is not False:
            message += f" (last value: {last!r})"
        super().__init__(message)
        self.what = what
        self.timeout = timeout
        self.last = last


def check_timeout(timeout: float) -> float:
    """Return ``timeout`` as float seconds.

    Raises:
        InvalidArgument: it is negative or not finite (``InvalidType`` if it is not a number).
    """
    return check_duration("timeout", timeout, allow_zero=True)


def wait_until(condition: Callable[[], T], timeout: float = 5.0, what: str = "the condition") -> T:
    """Call ``condition()`` until it returns something truthy, and return that value.

    ``condition`` is called at once, then every :data:`POLL_INTERVAL` seconds, and once more at the
    deadline, so a condition that is already true never waits and a slow machine gets its last chance.
    Use it for anything another thread or process makes true: a bot joined, a packet arrived, the puck
    moved.  ``what`` completes the sentence "waiting for ..." in the failure message.

    Raises:
        WaitTimeout: ``timeout`` seconds passed and the condition was still falsy (an AssertionError).
        InvalidArgument: ``timeout`` is negative, not finite or not a number.
        Whatever ``condition`` raises, unchanged.
    """
    return _until(condition, timeout, what, lambda deadline: time.sleep(min(POLL_INTERVAL, deadline)))


def step_until(
    game: Any,
    condition: Callable[[], T],
    timeout: float = 10.0,
    what: str = "the condition",
    *,
    dt: float | None = 1 / 60,
) -> T:
    """Run ``game.step(dt)`` frame by frame until ``condition()`` is truthy, and return its value.

    For a :class:`~sprocket.game.NetworkedGame` (or anything with ``step(dt)``) driven by a test: every
    frame polls the network, runs the hooks and draws, so the condition can look at ``game.entities``,
    ``game.connected`` or your own attributes.  ``dt`` is the frame time handed to each step (default
    1/60 s; None measures the real frame time).  The condition is checked before the first frame, so a
    true condition steps nothing.  The game's own ``fps`` cap paces the frames, and a pause of
    :data:`POLL_INTERVAL` between frames leaves the server's and bots' threads time to run.

    Raises:
        WaitTimeout: the deadline passed (an AssertionError naming ``what``).
        InvalidArgument: ``timeout`` is negative, not finite or not a number.
        Whatever ``condition`` or the game's hooks raise, unchanged.
    """

    def one_frame(_: float) -> None:
        game.step(dt)
        time.sleep(POLL_INTERVAL)  # pacing for the other threads; the condition decides when we are done

    return _until(condition, timeout, what, one_frame)


def _until(condition: Callable[[], T], timeout: float, what: str, between: Callable[[float], None]) -> T:
    # The one deadline loop: check, fail at the deadline, else ``between(seconds left)`` and check again.
    limit = check_timeout(timeout)
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(what, limit, value)
        between(left)
