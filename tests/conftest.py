"""Shared test helpers: condition waits with deadlines (never bare sleeps), leak checks, SDL dummy drivers.

The project's tests also get the fixtures of its own pytest plugin (sprocket.testing.plugin), as users do.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

# The testing kit's wait_until (the one users get); tests import it from here or from sprocket.testing.
from sprocket.testing import wait_until

# Set before anything imports pygame: tests never open a real window or sound device.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def collect(endpoint: Any, count: int, timeout: float = 5.0) -> list[Any]:
    """Call ``endpoint.get()`` until ``count`` packets arrived; return them (fails on timeout)."""
    got: list[Any] = []

    def enough() -> bool:
        got.extend(endpoint.get())
        return len(got) >= count

    wait_until(enough, timeout, f"{count} packets (got {len(got)})")
    return got


def seqs_until_disconnected(endpoint: Any, what: str, timeout: float = 10.0) -> tuple[list[int], Any]:
    """Read ``endpoint.events()`` until a ``Disconnected``; return the ``seq`` of every packet before it
    and the ``Disconnected`` (fails on timeout, naming ``what``)."""
    from sprocket import Disconnected, Packet

    got: list[int] = []
    ends: list[Any] = []

    def ended() -> bool:
        for item in endpoint.events():
            if isinstance(item, Packet):
                got.append(item["seq"])
            elif isinstance(item, Disconnected):
                ends.append(item)
        return bool(ends)

    wait_until(ended, timeout, what)
    return got, ends[0]


def open_fds() -> int:
    """Number of file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def sprocket_threads() -> list[threading.Thread]:
    """Live threads started by sprocket."""
    return [t for t in threading.enumerate() if t.name.startswith("sprocket-")]


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves sprocket threads or file descriptors behind."""
    fds = open_fds()
    yield
    wait_until(lambda: not sprocket_threads(), 5.0, "sprocket threads to exit")
    wait_until(lambda: open_fds() <= fds, 5.0, f"file descriptors to be released ({open_fds()} > {fds})")


@pytest.fixture
def servo() -> Iterator[Any]:
    """A Servo on 127.0.0.1 with a free port and short timeouts, closed after the test."""
    from sprocket import Servo

    server = Servo("127.0.0.1", 0, ping_interval=0.2, timeout=3.0, handshake_timeout=3.0)
    yield server
    server.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Tests outside tests/hostile that record through its ``reliability`` fixture get their outcome in
    docs/RELIABILITY.md too (pytest calls a conftest's report hook only for tests under its directory)."""
    if "tests/hostile/" not in report.nodeid and os.environ.get("SPROCKET_RELIABILITY_JSON"):
        from tests.hostile import conftest as hostile

        hostile.pytest_runtest_logreport(report)
