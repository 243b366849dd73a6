"""The compact snapshot form over real sockets: a GameServer's clients decode it, and a hostile server's
malformed compact snapshots are refused (then the connection closed, with a reason), never raised.

A real Servo on 127.0.0.1 plays the hostile server, sending hand-made ``"snap"`` messages to a real
GameClient; the honest server is a real GameServer.  Nothing is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sprocket import Client, CloseCode, Disconnected, Joined, Servo, Sprocket
from sprocket.game import Entity, GameClient, GameServer, quantized
from sprocket.testing import wait_until

pytestmark = pytest.mark.timeout(60)


class Bead(Entity, type_name="test_compact_net.Bead"):
    x: float = quantized(0.01)
    y: float = quantized(0.01)


def slide(bead: Bead, keys: Any, dt: float) -> Bead:
    bead.x += 30.0 * dt
    return bead


class BeadServer(GameServer):
    rule = staticmethod(slide)

    def on_join(self, client: Client) -> None:
        self.control(client, self.world.spawn(Bead(x=1.234, y=5.678)))
        self.world.spawn(Bead(x=0.004, y=9.999))  # someone else's: travels in steps

    def simulate(self, dt: float) -> None:
        for entity in self.world.values():
            if entity is not self.world.get(1):
                entity.x += 7.0 * dt  # type: ignore[attr-defined]


def test_a_game_servers_clients_get_their_own_entity_exactly_and_the_others_in_steps() -> None:
    game = BeadServer(host="127.0.0.1", port=0, tick_rate=60, snapshot_rate=20).start()
    net = GameClient(Sprocket("127.0.0.1", game.port, name="p"), rule=slide)
    try:

        def moved() -> bool:
            net.poll()
            return net.latest is not None and net.snapshots_received >= 5 and net.me is not None

        wait_until(moved, 10, "a few snapshots")
        latest = net.latest
        assert latest is not None
        mine = latest.entities[net.me]  # type: ignore[index]
        others = [e for eid, e in latest.entities.items() if eid != net.me]
        assert (mine.x, mine.y) == (1.234, 5.678)  # type: ignore[attr-defined]  # exact: never moved
        for other in others:
            assert round(other.x / 0.01) * 0.01 == other.x  # type: ignore[attr-defined]  # on its grid
        assert net.snapshots_refused == 0 and net.error is None
    finally:
        net.sprocket.close()
        game.stop()


# -- a hostile server ------------------------------------------------------------------------------------


@pytest.fixture
def servo() -> Iterator[Servo]:
    server = Servo("127.0.0.1", 0, ping_interval=0.2, timeout=5.0)
    try:
        yield server
    finally:
        server.close()


def _victim(servo: Servo) -> tuple[GameClient, Client]:
    net = GameClient(Sprocket("127.0.0.1", servo.port, name="victim"))
    clients: list[Client] = []

    def joined() -> bool:
        clients.extend(e.client for e in servo.events() if isinstance(e, Joined))
        net.poll()
        return bool(clients)

    wait_until(joined, 5, "the victim to connect")
    client = clients[0]
    client.send(_g="hello", rate=60.0, snap=20.0, id=client.id, players=[[client.id, "victim"]])
    wait_until(lambda: bool(net.poll() or net.ready), 5, "the hello")
    return net, client


BEAD = ["test_compact_net.Bead", ["x", "y"], [0.01, 0.01]]


def _full(tick: int) -> list[Any]:
    return [tick, None, round(time.monotonic() * 1000), [], [], [], [BEAD], [[1, 0, 100, 200]]]


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(lambda t: [t, None, "now"], id="time a str"),
        pytest.param(lambda t: [t, None, round(time.monotonic() * 1000), [1, 1, 5]], id="change not in base"),
        pytest.param(
            lambda t: [*_full(t)[:6], [["test_compact_net.Bead", ["x"], [0.01]]], [[1, 0, 1]]],
            id="other fields",
        ),
        pytest.param(lambda t: [*_full(t)[:7], [[1, 0, 2**62, 0]]], id="steps out of range"),
        pytest.param(lambda t: [*_full(t)[:7], [[1, 0, float("nan"), 0]]], id="exact NaN"),
        pytest.param(lambda t: [*_full(t)[:7], [[i, 0, 0, 0] for i in range(1, 6002)]], id="too many"),
    ],
)
def test_malformed_compact_snapshots_are_refused_then_the_server_is_dropped(servo: Servo, wire: Any) -> None:
    net, client = _victim(servo)
    events: list[Any] = []
    for tick in range(1, 21):  # max_refused_snapshots in a row
        client.send(_g="snap", w=wire(tick), ack=0, you=None)

    def closed() -> bool:
        events.extend(net.poll())  # never raises: that is the point
        return net.error is not None

    wait_until(closed, 10, "the victim to give up on the server")
    assert net.snapshots_refused == 20 and net.latest is None
    assert "snapshots in a row" in (net.error or "")
    assert any(isinstance(e, Disconnected) and e.code is CloseCode.PROTOCOL for e in events)
    net.sprocket.close()


def test_a_valid_compact_snapshot_after_refused_ones_is_used(servo: Servo) -> None:
    net, client = _victim(servo)
    client.send(_g="snap", w=[1, None, "now"], ack=0, you=None)
    client.send(_g="snap", w=_full(2), ack=0, you=None)

    def used() -> bool:
        net.poll()
        return net.latest is not None

    wait_until(used, 5, "the valid snapshot")
    assert net.snapshots_refused == 1 and net.error is None
    bead = net.latest.entities[1]  # type: ignore[union-attr]
    assert (bead.x, bead.y) == (1.0, 2.0)  # type: ignore[attr-defined]
    net.sprocket.close()


def test_a_w_list_that_cannot_be_a_snapshot_closes_the_connection_with_a_reason(servo: Servo) -> None:
    net, client = _victim(servo)
    client.send(_g="snap", w=[1, None], ack=0, you=None)
    events: list[Any] = []

    def closed() -> bool:
        events.extend(net.poll())
        return net.error is not None

    wait_until(closed, 5, "the victim to close")
    assert "'w' is a list of 2 items, not a compact snapshot" in (net.error or "")
    assert any(isinstance(e, Disconnected) and e.code is CloseCode.PROTOCOL for e in events)
    net.sprocket.close()
