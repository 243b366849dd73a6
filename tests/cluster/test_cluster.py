"""Rooms over many nodes through a real redis-server (started per test on a free port of 127.0.0.1).

Nodes are RoomServers: subprocesses (``python -m sprocket.game.serve ... --redis``) where a node must be
killed with SIGKILL, in this process where a test reads a room's ticks.  Clients are lean lobby clients
(tests/cluster/crowd.py: one selector thread for hundreds) or real GameBots.  Every wait is a condition
with a deadline (wait_until); no timing thresholds beyond the issue's own bounds (re-seated within 10 s,
listings clean within the expiry).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprocket import Sprocket
from sprocket.errors import InvalidArgument
from sprocket.game import GameBot, LobbyRefused, RoomInfo, RoomServer
from sprocket.game.cluster import Cluster, ReservationError, check_ticket, sign_ticket
from tests.conftest import wait_until

from .crowd import LobbyCrowd
from .games import Duel, rule
from .redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-cluster-secret-0123456789"


# -- helpers ---------------------------------------------------------------------------------------------


class Node:
    """A node in a subprocess: ``python -m sprocket.game.serve tests.cluster.games:Duel --redis URL``."""

    def __init__(self, redis_url: str, node_id: str) -> None:
        env = {**os.environ, "SPROCKET_CLUSTER_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
        self.id = node_id
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sprocket.game.serve",
                "tests.cluster.games:Duel",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--redis",
                redis_url,
                "--node-id",
                node_id,
                "--room-type",
                "duel",
                "--grace",
                "0",
            ],
            stdout=subprocess.PIPE,
            env=env,
            cwd=str(ROOT),
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the node says where it listens once it is up
        assert "listening on 127.0.0.1:" in line, line
        self.port = int(line.split("listening on 127.0.0.1:")[1].split(",")[0])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def nodes(redis_server: RedisServer) -> Iterator[list[Node]]:
    started: list[Node] = []
    try:
        for i in range(3):
            started.append(Node(redis_server.url, f"node{i}"))
        db = redis_server.client()
        wait_until(lambda: db.scard("sprocket:nodes") == 3, 10, "three nodes registered")
        beats = {n.id: int(db.hget(f"sprocket:node:{n.id}", "beats") or 0) for n in started}
        wait_until(  # two more heartbeats each: every node has read the list of all three
            lambda: all(
                int(db.hget(f"sprocket:node:{n.id}", "beats") or 0) >= beats[n.id] + 2 for n in started
            ),
            10,
            "every node to know the others",
        )
        yield started
    finally:
        for node in started:
            node.stop()


def listed_rooms(redis_server: RedisServer) -> dict[str, dict[str, str]]:
    """Every room record in Redis: code -> its fields."""
    db = redis_server.client()
    rooms = {key.split(":")[-1]: db.hgetall(key) for key in db.scan_iter("sprocket:room:*")}
    return {code: fields for code, fields in rooms.items() if fields}  # not one that expired meanwhile


def local_cluster(redis_server: RedisServer, node_id: str, **options: Any) -> Cluster:
    return Cluster(
        redis_server.url, SECRET, node_id=node_id, heartbeat=0.2, expiry=1.0, redis_timeout=0.5, **options
    )


def local_node(redis_server: RedisServer, node_id: str, **options: Any) -> RoomServer:
    return RoomServer(
        {"duel": Duel}, host="127.0.0.1", port=0, cluster=local_cluster(redis_server, node_id), **options
    ).start()


class Player(GameBot):
    """A bot that quick-joins "duel" on connecting (and again when asked) and records the lobby's news."""

    rule = staticmethod(rule)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connects = 0
        self.joined: list[RoomInfo] = []
        self.refusals: list[LobbyRefused] = []
        self.disconnects: list[str] = []
        self.listings: list[list[RoomInfo]] = []

    def on_connect(self) -> None:
        self.connects += 1
        self.lobby.quick_join("duel")

    def on_room_joined(self, room: RoomInfo) -> None:
        self.joined.append(room)

    def on_lobby_error(self, refusal: LobbyRefused) -> None:
        self.refusals.append(refusal)

    def on_room_list(self, rooms: list[RoomInfo]) -> None:
        self.listings.append(rooms)

    def on_disconnect(self, reason: str) -> None:
        self.disconnects.append(reason)
        self.lobby.quick_join("duel")  # the node went away: the lobby takes us to another one

    def on_drop(self, reason: str) -> None:
        self.disconnects.append(reason)
        self.lobby.quick_join("duel")  # the same, while the Sprocket would still try to resume

    def decide(self, entities: dict[int, Any]) -> dict[str, float]:
        return {"dx": 1.0}


# -- pure: tickets ----------------------------------------------------------------------------------------


def test_a_ticket_is_bound_to_its_room_and_node_and_expires() -> None:
    ticket = sign_ticket(SECRET, "r1", "ABCDE", "node1", expires=1000.0)
    assert check_ticket(SECRET, ticket, "node1", now=999.0) == ("r1", "ABCDE")
    cases = {
        "no seat reservation": None,
        "malformed": "nonsense",
        "forged": ticket.replace("ABCDE", "FGHJK"),  # another room's code in a signed ticket
        "another node": ticket,  # presented at node2 below
    }
    for words, bad in cases.items():
        node = "node2" if words == "another node" else "node1"
        with pytest.raises(ReservationError, match=words):
            check_ticket(SECRET, bad, node, now=999.0)
    with pytest.raises(ReservationError, match="forged"):
        check_ticket(
            SECRET, sign_ticket("another-secret-0123456", "r1", "ABCDE", "node1", 1000.0), "node1", 999.0
        )
    with pytest.raises(ReservationError, match="expired"):
        check_ticket(SECRET, ticket, "node1", now=1000.0)


def test_cluster_settings_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="at least 16"):
        Cluster("redis://127.0.0.1:1/0", "short")
    with pytest.raises(InvalidArgument, match="expiry"):
        Cluster("redis://127.0.0.1:1/0", SECRET, heartbeat=2.0, expiry=1.0)
    with pytest.raises(InvalidArgument, match="redis_url"):
        Cluster("127.0.0.1:6379", SECRET)
    with pytest.raises(InvalidArgument, match="node_id"):
        Cluster("redis://127.0.0.1:1/0", SECRET, node_id="a b")


def test_the_game_layer_imports_without_redis_and_the_cluster_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import sprocket, sprocket.game\n"
        "from sprocket.game.cluster import Cluster\n"
        "from sprocket.errors import UsageError\n"
        "try:\n"
        "    sprocket.game.RoomServer({'d': sprocket.game.GameServer}, host='127.0.0.1', port=0,\n"
        "        cluster=Cluster('redis://127.0.0.1:1/0', 'x' * 16))\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "pip install redis" in out.stdout, out.stdout + out.stderr


def test_serve_wants_a_cluster_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SPROCKET_CLUSTER_SECRET"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sprocket.game.serve",
            "tests.cluster.games:Duel",
            "--port",
            "0",
            "--redis",
            "redis://127.0.0.1:1/0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode != 0 and "SPROCKET_CLUSTER_SECRET" in out.stderr


# -- three nodes in subprocesses ---------------------------------------------------------------------------


def test_two_hundred_clients_quick_join_two_player_rooms_across_three_nodes(
    redis_server: RedisServer, nodes: list[Node]
) -> None:
    crowd = LobbyCrowd()
    try:
        for i, node in enumerate(nodes):  # each client knows one node, any node
            crowd.add(67 if i < 2 else 66, ("127.0.0.1", node.port), "duel")
        wait_until(lambda: len(crowd.seated()) == 200, 60, f"200 seated (got {len(crowd.seated())})")
        assert all(len(c.seats) == 1 for c in crowd.clients), "a client seated more than once"
        assert not any(c.errors for c in crowd.clients), [c.errors for c in crowd.clients if c.errors][:3]
        members = collections.Counter(c.seats[0] for c in crowd.clients)
        assert set(members.values()) == {2}, "rooms are filled 2 by 2, none over capacity"
        per_node = collections.Counter(port for _, port in members)
        mean = len(members) / 3
        assert len(per_node) == 3 and all(0.8 * mean <= n <= 1.2 * mean for n in per_node.values()), per_node
        assert sum(c.redirects for c in crowd.clients) > 0  # rooms on other nodes were reached by "go"
        records = listed_rooms(redis_server)  # the cluster-wide listing agrees
        assert {code: int(r["players"]) for code, r in records.items()} == {code: 2 for code, _ in members}
    finally:
        crowd.close()


def test_a_killed_node_s_players_are_reseated_on_the_others_and_its_rooms_vanish(
    redis_server: RedisServer, nodes: list[Node]
) -> None:
    crowd = LobbyCrowd(failover=True)
    bots = [Player("127.0.0.1", nodes[i % 3].port, name=f"p{i}").start() for i in range(6)]
    try:
        for node in nodes:
            crowd.add(20, ("127.0.0.1", node.port), "duel")
        wait_until(
            lambda: len(crowd.seated()) == 60 and all(b.joined and b.net.ready for b in bots), 30, "seated"
        )
        victim = next(n for n in nodes if n.port == bots[0].sprocket.port)  # a node holding bots
        on_victim = [c for c in crowd.clients if c.seats[-1][1] == victim.port]
        bots_on_victim = [b for b in bots if b.sprocket.port == victim.port]
        assert on_victim and bots_on_victim  # rooms are spread over the nodes
        victim.kill()
        killed_at = time.monotonic()
        # Real clients (GameBot's Lobby): told why (on_drop / on_disconnect), then re-seated elsewhere.
        wait_until(
            lambda: all(len(b.joined) == 2 and b.net.ready for b in bots_on_victim),
            10,
            "the killed node's bots re-seated",
        )
        assert all(b.sprocket.port != victim.port for b in bots_on_victim)
        # a clear reason, e.g. "connection lost: Connection reset by peer"
        assert all(b.disconnects and "connection" in b.disconnects[0] for b in bots_on_victim), [
            b.disconnects for b in bots_on_victim
        ]
        assert all(b.connects == 1 for b in bots)
        wait_until(lambda: all(c.lost is not None or len(c.seats) > 1 for c in on_victim), 10, "drops seen")
        wait_until(
            lambda: all(c.seat is not None and c.seat[1] != victim.port for c in on_victim),
            10,
            "the killed node's players re-seated on the others",
        )
        assert time.monotonic() - killed_at < 10
        others = [c for c in crowd.clients if c not in on_victim]
        assert all(len(c.seats) == 1 for c in others)  # nobody else was moved
        wait_until(
            lambda: all(r["node"] != victim.id for r in listed_rooms(redis_server).values()),
            5,
            "the killed node's rooms gone from the listing",
        )
        members = collections.Counter(c.seat for c in crowd.clients)
        assert max(members.values()) <= 2
    finally:
        crowd.close()
        for bot in bots:
            bot.stop()


# -- nodes in this process ---------------------------------------------------------------------------------


def test_matches_play_on_while_redis_is_down_and_the_nodes_register_again(redis_server: RedisServer) -> None:
    servers = [local_node(redis_server, "a"), local_node(redis_server, "b")]
    bots = [Player("127.0.0.1", servers[0].port, name=f"p{i}").start() for i in range(2)]
    crowd = LobbyCrowd()
    try:
        wait_until(lambda: all(b.joined and b.net.ready for b in bots), 15, "two bots playing in one room")
        code = bots[0].joined[-1].code
        assert bots[1].joined[-1].code == code
        room = next(s.room_server(code) for s in servers if s.room_server(code) is not None)
        assert room is not None
        redis_server.stop()
        wait_until(lambda: not any(s.cluster.up for s in servers if s.cluster), 5, "the nodes see Redis gone")
        ticks = room.tick
        snaps = bots[0].net.snapshots_received
        (late,) = crowd.add(1, ("127.0.0.1", servers[1].port), "duel")
        wait_until(lambda: late.errors, 5, "an answer while Redis is down")
        assert late.errors[0][1] == "unavailable" and "retrying" in late.errors[0][2]
        wait_until(lambda: room.tick >= ticks + 40, 10, "the match ticking on")  # 2 s of play at 20 Hz
        wait_until(lambda: bots[0].net.snapshots_received > snaps, 10, "snapshots flowing")
        assert all(b.net.ready and len(b.joined) == 1 for b in bots)  # nobody was moved or dropped
        redis_server.start()
        db = redis_server.client()
        wait_until(lambda: all(s.cluster and s.cluster.up for s in servers), 10, "the nodes see Redis back")
        wait_until(
            lambda: db.hget(f"sprocket:room:{code}", "players") == "2", 10, "the room registered again"
        )
        assert db.scard("sprocket:nodes") == 2
        (again,) = crowd.add(1, ("127.0.0.1", servers[1].port), "duel")
        wait_until(lambda: again.seat is not None, 10, "matchmaking resumed")
        assert again.seat is not None and again.seat[0] != code
    finally:
        crowd.close()
        for bot in bots:
            bot.stop()
        for server in servers:
            server.close()


def test_a_room_record_lost_from_redis_is_written_back_by_its_node(redis_server: RedisServer) -> None:
    server = local_node(redis_server, "a")
    bots = [Player("127.0.0.1", server.port, name=f"p{i}").start() for i in range(2)]
    db = redis_server.client()
    try:
        wait_until(lambda: all(b.joined and b.net.ready for b in bots), 15, "two bots in a room")
        code = bots[0].joined[0].code
        wait_until(lambda: db.hget(f"sprocket:room:{code}", "players") == "2", 5, "the room in Redis")
        db.delete(f"sprocket:room:{code}")
        wait_until(lambda: db.hget(f"sprocket:room:{code}", "players") == "2", 5, "the room written back")
        assert db.hget(f"sprocket:room:{code}", "node") == "a"
    finally:
        for bot in bots:
            bot.stop()
        server.close()


def test_the_lobby_follows_a_redirect_transparently_and_fails_over(redis_server: RedisServer) -> None:
    servers = [local_node(redis_server, "a"), local_node(redis_server, "b")]
    wait_until(lambda: all(s.cluster and len(s.cluster.nodes) == 2 for s in servers), 10, "two nodes")
    bots = [Player("127.0.0.1", servers[0].port, name=f"p{i}").start() for i in range(4)]
    try:
        wait_until(lambda: all(b.joined and b.net.ready for b in bots), 15, "four bots playing")
        moved = [b for b in bots if b.lobby.moves]
        assert moved and all(b.sprocket.port == servers[1].port for b in moved)  # 2 rooms, one per node
        assert all(b.connects == 1 and not b.refusals for b in bots)  # the move is not news for the game
        bots[0].lobby.list_rooms()  # the listing is the cluster's: both nodes' rooms, with their players
        wait_until(lambda: bots[0].listings, 10, "a listing")
        assert sorted((r.code, r.players) for r in bots[0].listings[0]) == sorted(
            {(b.joined[0].code, 2) for b in bots}
        )
        stay = [b for b in bots if not b.lobby.moves]
        servers[0].close()  # its players are told, and quick-join again: the lobby takes them to node b
        wait_until(lambda: all(len(b.joined) == 2 and b.net.ready for b in stay), 10, "re-seated on b")
        assert all(b.sprocket.port == servers[1].port and b.disconnects for b in stay)
    finally:
        for bot in bots:
            bot.stop()
        for server in servers:
            server.close()


def test_a_seat_needs_a_valid_unused_reservation_for_this_node(redis_server: RedisServer) -> None:
    from sprocket.game.redisstore import RedisStore

    servers = [local_node(redis_server, "a"), local_node(redis_server, "b")]
    wait_until(lambda: all(s.cluster and len(s.cluster.nodes) == 2 for s in servers), 10, "two nodes")
    store = RedisStore(redis_server.url)
    raws: list[Sprocket] = []

    def seat(port: int, ticket: object) -> dict[str, Any]:
        raw = Sprocket("127.0.0.1", port, name="raw")
        raws.append(raw)
        raw.send(_g="seat", ticket=ticket)
        got: list[dict[str, Any]] = []
        wait_until(
            lambda: bool(got.extend(p for p in raw.get() if p.get("_g") in ("room", "lerr")) or got),
            10,
            "an answer to seat",
        )
        return dict(got[0])

    try:
        res = store.create(
            "duel", 2, "rid1", "QQQQQ", name="", private=True, ttl_ms=10_000, room_ttl_ms=5_000
        )
        assert not isinstance(res, str)
        taken = store.create(
            "duel", 2, "rid9", "QQQQQ", name="", private=False, ttl_ms=10_000, room_ttl_ms=5_000
        )
        assert taken == "taken"  # a code is unique in the whole cluster
        here = next(s for s in servers if s.cluster and s.cluster.node_id == res.node)
        there = next(s for s in servers if s is not here)
        good = sign_ticket(SECRET, "rid1", "QQQQQ", res.node, time.time() + 10)
        refusals = {
            "no seat reservation": seat(here.port, None),
            "forged": seat(here.port, good.replace("QQQQQ", "WWWWW")),
            "another node": seat(there.port, good),
            "expired": seat(here.port, sign_ticket(SECRET, "rid1", "QQQQQ", res.node, time.time() - 1)),
        }
        for words, answer in refusals.items():
            assert answer["_g"] == "lerr" and answer["error"] == "reservation" and words in answer["reason"]
        assert seat(here.port, good)["_g"] == "room"
        reused = seat(here.port, good)
        assert reused["error"] == "reservation" and "used" in reused["reason"]
        # An unused reservation expires and frees its seat: the room has 2 seats, 1 taken.
        assert not isinstance(store.join("QQQQQ", "rid2", ttl_ms=300), str)
        assert store.join("QQQQQ", "rid3", ttl_ms=300) == "full"
        wait_until(
            lambda: not isinstance(store.join("QQQQQ", "rid4", ttl_ms=10_000), str), 5, "the seat freed"
        )
        expired = seat(here.port, sign_ticket(SECRET, "rid2", "QQQQQ", res.node, time.time() + 10))
        assert expired["error"] == "reservation"  # Redis no longer holds it, whatever the ticket says
    finally:
        for raw in raws:
            raw.close()
        store.close()
        for server in servers:
            server.close()


def test_a_node_whose_redis_cannot_be_reached_at_start_says_so(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
        caplog.set_level("WARNING", logger="sprocket")
        server = RoomServer(
            {"duel": Duel}, host="127.0.0.1", port=0,
            cluster=Cluster(f"redis://127.0.0.1:{dead}/0", SECRET, heartbeat=0.2, expiry=1.0,
                            redis_timeout=0.2),
        ).start()  # fmt: skip
        try:
            wait_until(lambda: "cannot be reached" in caplog.text, 10, "the warning")
            assert caplog.text.count("cannot be reached") == 1  # once, not every heartbeat
            assert server.cluster is not None and not server.cluster.up
        finally:
            server.close()
