"""Fixtures of the cluster tests: a real redis-server per test (tests/cluster/redis_server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .redis_server import RedisServer, available


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port of 127.0.0.1, stopped after the test.  Skips the test when
    redis-server or the redis package is missing, except in CI (CI=true), where that is a failure."""
    if not available():
        if os.environ.get("CI"):
            pytest.fail("redis-server or the redis package is missing (.ci/run installs them)")
        pytest.skip(
            "redis-server or the redis package is missing (apt-get install redis-server; pip install redis)"
        )
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()
