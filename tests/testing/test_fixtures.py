"""The plugin's fixtures used directly by sprocket's own suite (the plugin is installed here too)."""

from __future__ import annotations

from typing import Any

import pytest

from sprocket import Servo
from sprocket.game import GameServer
from sprocket.testing import Harness, LeakedThreads

pytestmark = pytest.mark.timeout(60)


def test_game_clients_connect_and_the_test_drives_them(
    game_server: Any, game_clients: Any, wait_until: Any
) -> None:
    server = game_server(GameServer, tick_rate=30)
    a, b = game_clients(server, count=2, names=["a", "b"])
    assert a.sprocket.connected and b.sprocket.connected
    for client in (a, b):
        wait_until(lambda c=client: c.poll() is not None and c.ready, 5, "the game's welcome")
    assert a.id != b.id
    assert sorted(p.client.name for p in server.players.values()) == ["a", "b"]
    assert a.send_input({"x": 1}) == 1  # in the game: inputs are numbered from 1


def test_clients_through_a_stalled_proxy_wait_for_the_stall(
    game_server: Any, lag_proxy: Any, game_clients: Any, wait_until: Any
) -> None:
    server = game_server(GameServer)
    proxy = lag_proxy(server, lag=0.0)
    proxy.stall(0.3)  # the handshake waits behind the stall, then goes through
    (client,) = game_clients(proxy, timeout=10)
    assert client.sprocket.connected and len(proxy.connections) == 1


def test_the_harness_without_pytest_stops_what_it_started() -> None:
    with Harness(thread_exit_timeout=2.0) as harness:
        server = harness.start_server(GameServer)
        harness.connect_bots(harness.lag_proxy(server, lag=0.02), count=2)
        assert len(server.players) == 2
    harness.close()  # idempotent
    # What the harness did not start, it reports instead of stopping.
    with pytest.raises(LeakedThreads, match="sprocket-servo-"), Harness(thread_exit_timeout=0.1):
        stray = Servo("127.0.0.1", 0)
    stray.close()
