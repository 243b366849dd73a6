"""Fixtures shared by the core's socket tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sprocket import Servo, Sprocket
from tests.conftest import wait_until


@pytest.fixture
def pair(no_leaks: None) -> Iterator[tuple[Servo, Sprocket]]:
    """A Servo on 127.0.0.1 and one Sprocket connected to it, its join already collected."""
    with Servo("127.0.0.1", 0) as servo, Sprocket("127.0.0.1", servo.port) as client:
        client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and servo.clients, 5, "the client to join")
        yield servo, client
