"""Every snapshot a client receives must decode, however far its acknowledgements lag behind.

The server encodes each client's snapshot as a delta against the last snapshot *that client* acknowledged
(docs/PROTOCOL.md, "Deltas against the acknowledged baseline").  A delta against any other baseline
(say, the server's latest) cannot be applied by a client that joined later or whose acks are in flight:
it logs "could not apply a snapshot", asks for a full one and shows a stale world.  Here a server is
stepped in the test's thread while three clients (one joining late, two behind a lagging, jittery link)
receive a world that spawns, changes and despawns entities; every snapshot sent must be decoded, and
each client must end up with exactly the server's world.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from sprocket import Servo, Sprocket
from sprocket.game import Entity, GameClient, GameServer
from sprocket.netsim import LagProxy
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


class Blob(Entity, type_name="stream.Blob"):
    x: float = 0.0
    y: float = 0.0
    size: int = 1


class Avatar(Entity, type_name="stream.Avatar"):
    x: float = 0.0
    label: str = ""


class ChurnServer(GameServer):
    """A world that changes every tick: blobs move, one spawns every 5 ticks, the oldest goes every 7."""

    tick_rate = 60.0
    snapshot_rate = 30.0

    def on_join(self, client: Any) -> None:
        self.control(client, self.world.spawn(Avatar(label=client.name or "")))

    def on_leave(self, client: Any, reason: str) -> None:
        entity = self.players[client].entity
        if entity is not None and entity in self.world:
            self.world.despawn(entity)

    def simulate(self, dt: float) -> None:
        blobs = [i for i, e in self.world.items() if isinstance(e, Blob)]
        for i in blobs:
            blob = self.world[i]
            assert isinstance(blob, Blob)
            blob.x += 30.0 * dt
            blob.y = (blob.y + 7.0) % 300.0
        if self.tick % 5 == 0:
            self.world.spawn(Blob(x=float(self.tick), size=self.tick % 9))
        if self.tick % 7 == 0 and len(blobs) > 3:
            self.world.despawn(blobs[0])


EVERY = round(ChurnServer.tick_rate / ChurnServer.snapshot_rate)  # ticks between snapshots (PROTOCOL.md)


def fields(entities: Any) -> dict[int, tuple[str, dict[str, Any]]]:
    return {i: (type(e).__name__, e.to_fields()) for i, e in entities.items()}


def test_every_snapshot_decodes_with_lagging_acks_and_a_late_joiner(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sprocket")
    server = ChurnServer(Servo("127.0.0.1", 0, ping_interval=0.2, timeout=10.0))
    proxy = LagProxy("127.0.0.1", server.port, lag=0.08, jitter=0.04, seed=11).start()
    clients: dict[str, GameClient] = {}
    lagging_bases = 0  # snapshots encoded against a baseline older than the previous snapshot
    pace = threading.Event()

    def tick() -> None:
        nonlocal lagging_bases
        for client in clients.values():
            client.poll()
        server.step()
        if server.tick % EVERY == 0:
            for player in server.players.values():
                base = player.acked_tick
                if base is not None and base < server.tick - EVERY:
                    lagging_bases += 1
        pace.wait(1 / 120)  # the loop's own pace (a game loop's clock), not synchronisation

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if "could not apply a snapshot" in r.getMessage()]

    def run_until(condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert not failures(), failures()
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            tick()

    try:
        clients["lagged"] = GameClient(Sprocket("127.0.0.1", proxy.port, name="lagged"))
        clients["direct"] = GameClient(Sprocket("127.0.0.1", server.port, name="direct"))
        run_until(lambda: min(c.snapshots_received for c in clients.values()) >= 10, 20, "first snapshots")
        # A late joiner behind the lagging link: snapshots have been flowing to others for a while.
        clients["late"] = GameClient(Sprocket("127.0.0.1", proxy.port, name="late"))
        run_until(lambda: clients["late"].snapshots_received >= 40, 20, "40 snapshots at the late joiner")

        while server.tick % EVERY:  # end on a snapshot tick, so the last snapshot shows the world as it is
            tick()
        # Stop the world and let every snapshot in flight arrive.
        sent = {p.client.name: p.snapshots_sent for p in server.players.values()}
        assert set(sent) == set(clients)

        def all_accounted_for() -> bool:
            for client in clients.values():
                client.poll()
            received = sum(c.snapshots_received for c in clients.values())
            return received + len(failures()) >= sum(sent.values())

        wait_until(all_accounted_for, 10, "every snapshot sent to arrive")
        assert not failures(), failures()
        assert {name: c.snapshots_received for name, c in clients.items()} == sent
        truth = fields(server.world)
        for name, client in clients.items():
            assert client.latest is not None and client.latest.tick == server.tick - server.tick % EVERY, name
            assert fields(client.latest.entities) == truth, name
        # The scenario did what it claims: acks lagged, so deltas were against older baselines.
        assert lagging_bases > 0
    finally:
        for client in clients.values():
            client.sprocket.close()
        proxy.close()
        server.close()
