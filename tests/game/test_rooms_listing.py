"""The listing is never stale: the first listing asked after a join or a leave took effect shows it.

(The issue asks for "within one second"; this is the timing-free form of it: no cache, no refresh period.
A player hears its join or leave in the same loop iteration that makes it, so a listing asked after that
is answered from the new state.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sprocket import Servo, Sprocket
from sprocket.game import RoomServer, RoomType, messages
from tests.conftest import wait_until
from tests.game.test_rooms import DotRoom, Pump, in_room

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pump() -> Iterator[Pump]:
    p = Pump()
    yield p
    p.close()


def test_the_first_listing_after_each_join_and_leave_shows_it(pump: Pump) -> None:
    servo = Servo("127.0.0.1", 0, ping_interval=0.2)
    server = RoomServer({"party": RoomType(DotRoom, max_players=8)}, servo).start()
    watcher = Sprocket("127.0.0.1", server.port, name="watcher")
    try:
        watcher.wait_connected(10)
        got: list[Any] = []

        def listing() -> list[tuple[int, str]]:
            """Ask once; the answer to this very request (no retry until it matches)."""
            before = len(got)
            watcher.send(_g=messages.L_LIST, type="party")

            def answered() -> bool:
                got.extend(p for p in watcher.get() if p.get("_g") == messages.L_ROOMS)
                return len(got) > before

            wait_until(answered, 10, "the listing")
            return [(room["players"], room["state"]) for room in got[-1]["rooms"]]

        assert listing() == []
        a = pump.add(server.port, "a", quick="party")
        wait_until(lambda: in_room(a), 10, "a in a room")
        assert listing() == [(1, "waiting")]
        b = pump.add(server.port, "b", quick="party")
        wait_until(lambda: in_room(b), 10, "b in the room")
        assert listing() == [(2, "playing")]
        pump.call(a, lambda bot: bot.lobby.leave())
        wait_until(lambda: a.left, 10, "a back in the lobby")
        assert listing() == [(1, "playing")]
        pump.call(b, lambda bot: bot.lobby.leave())
        wait_until(lambda: b.left, 10, "b back in the lobby")
        assert listing() == [(0, "playing")]
    finally:
        watcher.close()
        server.close()
