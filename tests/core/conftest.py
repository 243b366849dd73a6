"""Fixtures shared by the core's socket tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sprocket import Servo, Sprocket
from sprocket.testing import LagProxy
from tests.conftest import wait_until


@pytest.fixture
def pair(no_leaks: None) -> Iterator[tuple[Servo, Sprocket]]:
    """A Servo on 127.0.0.1 and one Sprocket connected to it, its join already collected."""
    with Servo("127.0.0.1", 0) as servo, Sprocket("127.0.0.1", servo.port) as client:
        client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and servo.clients, 5, "the client to join")
        yield servo, client


@pytest.fixture
def proxied_pair(no_leaks: None) -> Iterator[tuple[Servo, LagProxy, Sprocket]]:
    """A Servo, a LagProxy in front of it (``disconnect_all()`` cuts the link) and a Sprocket connected
    through it, all with fast heartbeats (0.2 s, timeout 3 s), the join already collected."""
    fast = {"ping_interval": 0.2, "timeout": 3.0}
    with (
        Servo("127.0.0.1", 0, **fast) as servo,  # type: ignore[arg-type]
        LagProxy("127.0.0.1", servo.port).start() as proxy,
        Sprocket("127.0.0.1", proxy.port, **fast) as client,  # type: ignore[arg-type]
    ):
        client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and servo.clients, 5, "the client to join")
        yield servo, proxy, client
