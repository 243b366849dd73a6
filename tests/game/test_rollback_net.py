"""World prediction over real sockets: a GameServer, a GameClient behind a LagProxy, a cut link.

The predicted entity, a Runner, advances one unit per tick (``x = tick % 500`` after server tick
``tick``, exactly, in floating point), so at every moment the client's predicted world can be checked
against what the server's world is, or will be, at the tick the prediction shows — before a drop, after
the resume (issue 11) and after a fresh join when the grace period has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from sprocket import Servo, Sprocket
from sprocket.game import Entity, FixedStep, GameClient, GameServer
from sprocket.game.server import NO_INPUT
from sprocket.testing import LagProxy
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(120)


class Runner(Entity, type_name="rollback_net.Runner", predicted=True):
    x: float = 0.0

    def simulate(self, world: Mapping[int, Entity], dt: float) -> None:
        self.x = (self.x + 1.0) % 500.0


class Dot(Entity, type_name="rollback_net.Dot"):
    x: float = 0.0


def rule(state: Dot, keys: Any, dt: float) -> Dot:
    state.x += float(keys.get("dx", 0.0)) * 60.0 * dt
    return state


class RunServer(GameServer):
    rule = staticmethod(rule)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runner = self.world.spawn(Runner())  # before tick 1: x == tick % 500 after every tick
        self.joins = 0

    def on_join(self, client: Any) -> None:
        self.joins += 1
        self.control(client, self.world.spawn(Dot()))

    def on_leave(self, client: Any, reason: str) -> None:
        entity = self.players[client].entity
        if entity is not None and entity in self.world:
            self.world.despawn(entity)

    def on_input(self, client: Any, input: Any) -> None:
        if input.get("dx") == 9.0:
            self.control(client, None)  # lets its Dot go (still in the world, moved by nobody)
        else:
            super().on_input(client, input)

    def simulate(self, dt: float) -> None:
        self.simulate_predicted(dt)


class Driver:
    """Plays the client's frame loop from the test thread: poll, one input per elapsed fixed step,
    display smoothing, entities — each time the condition is evaluated."""

    def __init__(self, client: GameClient) -> None:
        self.client = client
        self.fixed = FixedStep(rate=60.0)
        self.last = time.monotonic()
        self.shown: dict[int, Entity] = {}
        self.keys: dict[str, float] = {"dx": 1.0}

    def frame(self) -> None:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        self.client.poll()
        for _ in range(self.fixed.advance(dt)):
            if self.client.ready:
                self.client.send_input(self.keys)
        self.client.advance(dt)
        self.shown = self.client.entities()

    def until(self, condition: Callable[[], Any], timeout: float, what: str) -> None:
        wait_until(lambda: self.frame() or condition(), timeout, what)


def consistent(client: GameClient, runner: int) -> bool:
    """The predicted world holds the server's Runner as it is at the predicted tick, bit for bit."""
    world = client.world
    if world is None or world.tick is None or client.latest is None:
        return False
    assert world.tick >= client.latest.tick  # the present is at or ahead of the newest snapshot
    return world.world[runner].x == world.tick % 500  # type: ignore[attr-defined,no-any-return]


def test_the_predicted_world_stays_consistent_across_a_resume_and_a_fresh_join() -> None:
    server = RunServer(Servo("127.0.0.1", 0, grace=1.0, ping_interval=0.2, timeout=5.0)).start()
    proxy = LagProxy("127.0.0.1", server.port, lag=0.05).start()
    client = GameClient(Sprocket("127.0.0.1", proxy.port, name="runner"), rule=rule)
    drive = Driver(client)
    runner = server.runner
    try:
        drive.until(lambda: client.world is not None and client.world.rewinds >= 10, 15, "10 rewinds")
        assert consistent(client, runner)
        assert client.world is not None and client.world.resimulated > 0  # ahead of the snapshots
        # What is drawn is the predicted Runner (the present), not the interpolated one (the past).
        drive.until(lambda: client.world.correction == 0.0, 10, "no correction being shown")
        assert drive.shown[runner].x == client.world.display()[runner].x
        assert drive.shown[runner].x == client.world.tick % 500  # type: ignore[operator]
        before = client.world.tick
        me = client.me

        # A short cut: the session resumes; the same entity, and the prediction carries on from the
        # inputs the Sprocket replays.
        proxy.stall(0.3)
        proxy.disconnect_all()
        drive.until(lambda: client.reconnecting, 10, "the drop")
        drive.until(lambda: client.ready, 15, "the resume")
        rewinds = client.world.rewinds
        drive.until(lambda: client.world.rewinds >= rewinds + 10, 15, "10 rewinds after the resume")
        assert client.me == me and server.joins == 1
        assert consistent(client, runner)
        assert client.world.resimulated > 0
        assert client.world.tick > before
        drive.until(lambda: client.world.correction == 0.0, 10, "the correction to settle")
        assert drive.shown[runner].x == client.world.tick % 500  # type: ignore[operator]

        # A long cut: past the grace period the server lets the seat go, the client joins afresh
        # (a new id, input numbering from 1 again) and world prediction starts again from scratch.
        old_id = client.id
        proxy.stall(3.0)
        proxy.disconnect_all()
        drive.until(lambda: server.joins == 2 and client.ready and client.id != old_id, 20, "the fresh join")
        drive.until(
            lambda: client.world is not None and client.world.rewinds >= 10, 15, "10 rewinds after rejoining"
        )
        assert consistent(client, runner)
        assert client.world.resimulated > 0  # ahead of the snapshots again, with the new numbering
        assert client.me is not None and client.me != me
        drive.until(lambda: client.world.correction == 0.0, 10, "no correction being shown")
        assert drive.shown[runner].x == client.world.tick % 500  # type: ignore[operator]
    finally:
        client.sprocket.close()
        proxy.close()
        server.stop()


def test_a_client_that_sends_no_input_sees_predicted_types_interpolated() -> None:
    server = RunServer(Servo("127.0.0.1", 0)).start()
    client = GameClient(Sprocket("127.0.0.1", server.port, name="watcher"), rule=rule)
    try:
        wait_until(lambda: client.poll() is not None and client.snapshots_received >= 5, 10, "snapshots")
        shown = client.entities()
        # No input sent: nothing moves the predicted world on between snapshots, so the Runner is drawn
        # from the interpolation buffer like any other entity (never frozen at the last snapshot).
        assert client.world is not None and client.world.tick is not None
        assert server.runner in shown
        assert shown[server.runner].x <= client.latest.entities[server.runner].x  # type: ignore[union-attr,attr-defined]
    finally:
        client.sprocket.close()
        server.stop()


def test_each_client_learns_the_other_players_last_inputs_as_deltas() -> None:
    server = RunServer(Servo("127.0.0.1", 0)).start()
    alice = Driver(GameClient(Sprocket("127.0.0.1", server.port, name="alice"), rule=rule))
    bob = Driver(GameClient(Sprocket("127.0.0.1", server.port, name="bob"), rule=rule))
    bob.keys = {"dx": 0.0}
    heard: list[list[Any] | None] = []  # the "in" field of every snapshot message bob reads
    read = bob.client._others_inputs

    def spy(news: Any, **kwargs: Any) -> None:
        heard.append(news)
        read(news, **kwargs)

    bob.client._others_inputs = spy  # type: ignore[method-assign]

    def both() -> None:
        alice.frame()
        bob.frame()

    try:
        wait_until(lambda: both() or None not in (alice.client.me, bob.client.me), 10, "both in")
        dot = alice.client.me
        wait_until(lambda: both() or bob.client.others_inputs.get(dot) == {"dx": 1.0}, 10, "alice's input")
        wait_until(lambda: both() or alice.client.others_inputs == {bob.client.me: {"dx": 0.0}}, 10, "bob's")
        assert all(eid != bob.client.me for item in heard if item for eid, *_ in item)  # never his own
        # Her input does not change: it is not sent again with every snapshot.
        count = len(heard)
        wait_until(lambda: both() or len(heard) >= count + 20, 10, "20 more snapshots")
        carrying = sum(1 for item in heard[count:] if item and any(entry[0] == dot for entry in item))
        assert carrying < 10, heard[count:]
        # It changes: the next snapshots say so; bob's re-simulation moves her Dot the new way.
        alice.keys = {"dx": -1.0}
        wait_until(lambda: both() or bob.client.others_inputs.get(dot) == {"dx": -1.0}, 10, "her new input")
        assert bob.client.world is not None and bob.client.world._others == [(dot, {"dx": -1.0})]
        # Drawn interpolated by default; from the predicted present with predict_players.
        wait_until(lambda: both() or dot in bob.shown, 10, "her Dot drawn")
        assert dot not in bob.client.world.display()
        bob.client.predict_players = True
        rewinds = bob.client.world.rewinds
        wait_until(lambda: both() or bob.client.world.rewinds > rewinds, 10, "a rewind")  # type: ignore[union-attr]
        assert bob.client.entities()[dot] == bob.client.world.display()[dot]  # type: ignore[union-attr]
        # She lets go of her Dot (the server's control(client, None)): nobody moves it any more.
        alice.keys = {"dx": 9.0}
        wait_until(lambda: both() or dot not in bob.client.others_inputs, 10, "her Dot let go")
        assert dot in server.world and dot in bob.client.latest.entities  # type: ignore[union-attr]
        # A client that joins now gets the whole list with its first (full) snapshot: bob's input only.
        carol = GameClient(Sprocket("127.0.0.1", server.port, name="carol"), rule=rule)
        try:
            wait_until(lambda: both() or carol.poll() is None or carol.snapshots_received >= 2, 10, "carol")
            assert carol.others_inputs == {bob.client.me: {"dx": 0.0}}
        finally:
            carol.sprocket.close()
    finally:
        alice.client.sprocket.close()
        bob.client.sprocket.close()
        server.stop()


def test_a_server_that_does_not_share_inputs_sends_none() -> None:
    class Private(RunServer):
        share_inputs = False

    server = Private(Servo("127.0.0.1", 0)).start()
    alice = Driver(GameClient(Sprocket("127.0.0.1", server.port, name="alice"), rule=rule))
    bob = Driver(GameClient(Sprocket("127.0.0.1", server.port, name="bob"), rule=rule))
    try:
        def played() -> bool:
            alice.frame()
            bob.frame()
            return bob.client.snapshots_received >= 30 and None not in (alice.client.me, bob.client.world)

        wait_until(played, 10, "30 snapshots")
        assert server.players and all(p.last_input is not NO_INPUT for p in server.players.values())
        assert bob.client.others_inputs == {} and bob.client.world._others == []  # type: ignore[union-attr]
    finally:
        alice.client.sprocket.close()
        bob.client.sprocket.close()
        server.stop()
