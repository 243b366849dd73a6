"""Each room's tick statistics: late and skipped ticks, tick-duration percentiles (RoomServer.tick_stats).

The RoomServer is stepped by hand on an injected clock (its Servo and the client are real, on 127.0.0.1), so
which tick is late is exact, not a timing.
"""

from __future__ import annotations

import pytest

from sprocket import Servo, Sprocket
from sprocket.game import RoomServer, messages
from sprocket.game.rooms import RoomTickStats
from sprocket.game.server import ServerStats
from tests.conftest import wait_until
from tests.game.test_rooms import DotRoom

pytestmark = pytest.mark.timeout(60)

RATE = DotRoom.tick_rate  # 30 ticks a second


def test_late_and_skipped_ticks_are_counted_per_room() -> None:
    now = [1000.0]
    server = RoomServer({"dot": DotRoom}, Servo("127.0.0.1", 0), clock=lambda: now[0])
    client = Sprocket("127.0.0.1", server.port, name="counter")
    try:
        client.wait_connected(10)
        client.send(_g=messages.L_CREATE, type="dot", private=True)

        def created() -> list[RoomTickStats]:
            server.step()
            return server.tick_stats()

        (first,) = wait_until(created, 10, "the room created")  # it ran its first tick, on time
        assert (first.ticks, first.late_ticks, first.skipped_ticks) == (1, 0, 0)
        start = now[0]
        now[0] = start + 1 / RATE  # on time
        server.step()
        now[0] = start + 4.5 / RATE  # ticks 2, 3, 4 due, begun 2.5, 1.5 and 0.5 intervals after their time
        server.step()
        (stats,) = server.tick_stats()
        assert (stats.ticks, stats.late_ticks, stats.skipped_ticks) == (5, 2, 0)
        assert stats.samples == 5 and 0.0 < stats.tick_p50_ms <= stats.tick_p99_ms <= stats.tick_max_ms
        assert stats.tick_interval_ms == pytest.approx(1e3 / RATE)
        assert stats.late_percent == pytest.approx(40.0)
        now[0] = start + 14.5 / RATE  # 10 ticks due: 5 run (max_catch_up), 5 skipped; 4 of those run late
        server.step()
        (stats,) = server.tick_stats()
        assert (stats.ticks, stats.late_ticks, stats.skipped_ticks) == (10, 6, 5)
        assert stats.late_percent == pytest.approx(100.0 * 11 / 15)
        game = server.room_server(stats.code)
        assert game is not None and game.stats.late_ticks == 6
        assert game.stats.late_percent == stats.late_percent
    finally:
        client.close()
        server.close()


def test_server_stats_late_percent() -> None:
    stats = ServerStats()
    assert stats.late_percent == 0.0
    stats.ticks, stats.late_ticks, stats.skipped_ticks = 95, 3, 5
    assert stats.late_percent == pytest.approx(8.0)
