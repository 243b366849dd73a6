"""Each room's tick statistics: late and skipped ticks, tick-duration percentiles (RoomServer.tick_stats).

The RoomServer is stepped by hand on an injected clock (its Servo and the client are real, on 127.0.0.1), so
which tick is late is exact, not a timing.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprocket import Servo, Sprocket
from sprocket.game import Entity, RoomServer, messages, snapshot
from sprocket.game.rooms import RoomTickStats
from sprocket.game.server import ServerStats
from sprocket.game.snapshot import entity_problems
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


# -- the tick path made cheaper: the entity checks of a small world ------------------------------------------


class Probe(Entity, type_name="rooms_stats.Probe"):
    f: float = 0.0
    i: int = 0
    b: bool = False
    s: str = ""


VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.floats(), st.integers(), VALUES),
            st.one_of(st.integers(), VALUES),
            st.one_of(st.booleans(), VALUES),
            st.one_of(st.text(max_size=3), VALUES),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_the_small_world_check_agrees_with_the_bulk_one(rows: list[tuple[Any, ...]], delete: bool) -> None:
    """A world of a few entities is checked entity by entity (cheaper per tick); it must pass exactly the
    groups the field-by-field check passes, or send them to the slow check (never pass a bad one)."""
    group = {}
    for n, (f, i, b, s) in enumerate(rows):
        probe = Probe()
        probe.__dict__.update(f=f, i=i, b=b, s=s)
        group[n] = probe
    if delete:
        del group[0].__dict__["s"]
    small = snapshot._small_group_is_valid(Probe, group)
    saved = snapshot._SMALL_GROUP
    snapshot._SMALL_GROUP = 0  # the field-by-field check, as for a large world
    try:
        bulk = snapshot._group_is_valid(Probe, group)
    finally:
        snapshot._SMALL_GROUP = saved
    problems = ["a field deleted"] if delete else [p for e in group.values() for p in entity_problems(e)]
    assert not (small and problems)  # never passes a group the slow check finds a problem in
    assert small or not bulk  # and passes every group the bulk check passes (no slower)


def test_the_small_world_check_passes_a_good_world_and_catches_a_nan() -> None:
    group = {1: Probe(f=1.5, i=2, b=True, s="x"), 2: Probe(f=3, i=-(2**70), b=False, s="")}
    assert snapshot._small_group_is_valid(Probe, group)
    for bad in (
        {"f": math.nan},
        {"f": -math.inf},
        {"f": 2**1024},
        {"i": 1.0},
        {"i": True},
        {"b": 1},
        {"s": None},
    ):
        probe = Probe()
        probe.__dict__.update(bad)
        assert not snapshot._small_group_is_valid(Probe, {**group, 3: probe}), bad
