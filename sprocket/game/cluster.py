"""Rooms over many server processes: RoomServers sharing presence and matchmaking through Redis.

Give a :class:`~sprocket.game.RoomServer` a :class:`Cluster` (``RoomServer(types, cluster=Cluster(
"redis://host:6379/0", secret=...))``, or ``sprocket serve ... --redis URL``) and it becomes one *node*
of a cluster: it registers itself and its rooms in Redis with a heartbeat and an expiry, and its lobby
answers quick-join, create, join-by-code and list for the whole cluster.  A request is answered with a
*seat reservation*, made atomically in Redis (:mod:`sprocket.game.redisstore`): when the room is on this
node the client is seated at once; when it is on another node the client is sent there (a ``go``
message: the node's address and a *ticket*), and its :class:`~sprocket.game.lobby.Lobby` connects to that
node and presents the ticket (``seat``), transparently for the game.  A node seats nobody in a room
without a valid reservation: a ticket is signed with the cluster's secret (HMAC-SHA256), names its room
and node, expires, and is used once.

Redis is only ever called from the node's worker thread, never from the tick thread: requests are queued
to it and its answers are handed back to the tick thread at its next step.  When Redis cannot be reached,
running rooms play on untouched; matchmaking requests are refused at once with the lobby error
``unavailable``; the node registers itself and its rooms again when Redis is back.  docs/ARCHITECTURE.md
("The cluster") says why it is built this way.

This module never imports pygame, and imports the ``redis`` package only when a cluster starts (install
``sprocket[redis]``).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sprocket import Client
from sprocket.errors import InvalidArgument, SprocketError

from ._checks import InvalidType, check_number, describe
from .messages import GAME_FIELD, L_CREATE, L_GO, L_JOIN, L_LIST, L_QUICK, L_ROOMS, L_SEAT

if TYPE_CHECKING:
    from .redisstore import RedisStore
    from .rooms import RoomServer

log = logging.getLogger("sprocket")

__all__ = ["Cluster", "ClusterNode", "ReservationError", "check_ticket", "sign_ticket"]

#: Lobby error: Redis cannot be reached; matchmaking is retried by the node, try again in a few seconds.
UNAVAILABLE = "unavailable"
#: Lobby error: a ``seat`` request's ticket is missing, forged, expired, used, or for another node.
RESERVATION = "reservation"
UNAVAILABLE_REASON = (
    "matchmaking unavailable (the cluster's Redis cannot be reached), retrying: try again in a few seconds"
)
_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_MAX_TICKET = 300


class ReservationError(SprocketError, ValueError):
    """A seat reservation ticket that must be refused: missing, malformed, forged (its signature does not
    match), expired, or for another node.  The message says which, for the lobby error's reason."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _sign(secret: str | bytes, body: str) -> str:
    digest = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def sign_ticket(secret: str | bytes, rid: str, code: str, node: str, expires: float) -> str:
    """The ticket for reservation ``rid`` of a seat in room ``code`` on node ``node``, valid until
    ``expires`` (Unix time, seconds): ``rid.code.node.expires_ms.signature``.  Raises nothing."""
    body = f"{rid}.{code}.{node}.{int(expires * 1000)}"
    return f"{body}.{_sign(secret, body)}"


def check_ticket(secret: str | bytes, ticket: object, node: str, now: float) -> tuple[str, str]:
    """``(rid, code)`` of a valid ticket presented at node ``node`` at Unix time ``now``.

    Raises:
        ReservationError: no ticket, a malformed one, a forged one (signature mismatch: another secret,
            or a field changed, e.g. the room), an expired one, or one for another node.
    """
    if ticket is None:
        raise ReservationError("no seat reservation: ask any node of the cluster (quick, create, join?)")
    if not isinstance(ticket, str) or len(ticket) > _MAX_TICKET or ticket.count(".") != 4:
        raise ReservationError("a malformed seat reservation")
    body, _, signature = ticket.rpartition(".")
    rid, code, where, expires_ms = body.split(".")
    if not hmac.compare_digest(_sign(secret, body), signature):
        raise ReservationError("a forged seat reservation (its signature does not match)")
    if where != node:
        raise ReservationError(f"a seat reservation for another node ({where[:40]}), not this one")
    if not expires_ms.isdigit() or int(expires_ms) / 1000 <= now:
        raise ReservationError("an expired seat reservation: ask again")
    return rid, code


@dataclass(frozen=True)
class Cluster:
    """The cluster setting of a :class:`~sprocket.game.RoomServer`: join the nodes sharing this Redis.

    Args:
        redis_url: the Redis every node uses (``redis://host:6379/0``).
        secret: the cluster secret (str or bytes, 16+ characters), the same on every node: it signs the
            seat reservations.  Keep it out of the code (``SPROCKET_CLUSTER_SECRET`` for the command).
        public_host: the address clients reach this node at (given to clients sent here).
        public_port: the port clients reach it at (default: the port it listens on).
        node_id: this node's id (letters, digits, ``-``, ``_``; default a random one).
        prefix: the Redis key prefix (clusters sharing one Redis use different ones).
        heartbeat: seconds between heartbeats (default 1).
        expiry: seconds after its last heartbeat a node and its rooms vanish (default 3).
        reservation_ttl: seconds a seat reservation holds its seat (default 10).
        redis_timeout: seconds a Redis call may take before matchmaking counts as unavailable (default 1).

    Raises:
        InvalidArgument: a bad value (``InvalidType`` for a wrong type), a ``redis_url`` that is not a
            Redis URL, a secret under 16 characters, or ``expiry`` not above ``heartbeat``.
    """

    redis_url: str
    secret: str | bytes
    public_host: str = "127.0.0.1"
    public_port: int | None = None
    node_id: str | None = None
    prefix: str = "sprocket"
    heartbeat: float = 1.0
    expiry: float = 3.0
    reservation_ttl: float = 10.0
    redis_timeout: float = 1.0

    def __post_init__(self) -> None:
        for name in ("redis_url", "public_host", "prefix"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidType(f"{name} must be a non-empty str, got {describe(getattr(self, name))}")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidArgument(
                f"redis_url must be a redis://, rediss:// or unix:// URL, got {self.redis_url[:80]!r}"
            )
        if not isinstance(self.secret, (str, bytes)):
            raise InvalidType(f"the cluster secret must be a str or bytes, got {describe(self.secret)}")
        if len(self.secret) < 16:
            raise InvalidArgument(
                "the cluster secret must have at least 16 characters (it signs reservations)"
            )
        if self.node_id is not None and not (isinstance(self.node_id, str) and _NODE_ID.match(self.node_id)):
            raise InvalidArgument(
                f"node_id must be 1 to 40 letters, digits, '-' or '_', got {self.node_id!r}"
            )
        for name in ("heartbeat", "expiry", "reservation_ttl", "redis_timeout"):
            check_number(getattr(self, name), name, positive=True, what="a number of seconds")
        if self.expiry <= self.heartbeat:
            raise InvalidArgument(
                f"expiry ({self.expiry} s) must be longer than the heartbeat ({self.heartbeat} s)"
            )

    def attach(self, server: RoomServer) -> ClusterNode:
        """Make ``server`` a node of this cluster (RoomServer calls this); starts the worker thread.

        Raises:
            UsageError: the ``redis`` package is not installed (``pip install redis``).
        """
        from .redisstore import RedisStore  # only here: sprocket.game imports without redis

        store = RedisStore(self.redis_url, prefix=self.prefix, timeout=self.redis_timeout)
        return ClusterNode(self, server, store)


class ClusterNode:
    """One RoomServer's part in a cluster: the lobby's cluster-wide requests, and the Redis worker.

    Made by :meth:`Cluster.attach`; the RoomServer calls :meth:`request`, :meth:`step`,
    :meth:`player_left`, :meth:`room_closed` and :meth:`close` from its tick thread.  :attr:`up` says
    whether Redis answered last time; :attr:`nodes` lists the live nodes as ``(host, port)``.
    """

    def __init__(self, cluster: Cluster, server: RoomServer, store: RedisStore) -> None:
        self.cluster = cluster
        self.server = server
        self.store = store
        self.node_id = cluster.node_id or "n" + secrets.token_hex(5)
        self.up = False
        self._told_down = False  # the "cannot be reached" warning was logged since Redis last answered
        self.registered = 0  # times this node (re-)registered its rooms
        self.nodes: list[tuple[str, int]] = []
        self._jobs: queue.SimpleQueue[Callable[[RedisStore], Callable[[], None] | None] | None] = (
            queue.SimpleQueue()
        )
        self._done: collections.deque[Callable[[], None]] = collections.deque()
        self._must_register = True
        self._missing: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._work, name=f"sprocket-cluster-{self.node_id}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """Where clients reach this node."""
        port = self.cluster.public_port if self.cluster.public_port is not None else self.server.port
        return self.cluster.public_host, port

    # -- the tick thread ------------------------------------------------------------------------------

    def lobby_fields(self) -> dict[str, Any]:
        """Extra fields of the ``lobby`` message: the cluster's nodes (for failing over) and this one."""
        nodes = self.nodes or [self.address]
        return {"nodes": [list(n) for n in nodes], "node": self.node_id}

    def request(self, client: Client, kind: str, packet: Any, now: float) -> bool:
        """Handle a lobby request cluster-wide; False if it is not one (``exit`` stays local)."""
        server = self.server
        if kind == L_SEAT:
            self._seat(client, packet.get("ticket"))
            return True
        if kind not in (L_QUICK, L_CREATE, L_JOIN, L_LIST):
            return False
        if kind == L_LIST:
            wanted = packet.get("type")
            types = (
                [wanted]
                if isinstance(wanted, str) and wanted in server.room_types
                else list(server.room_types)
            )
            self._submit(client, kind, lambda store: self._listed(client, store.rooms(types), wanted))
            return True
        if kind == L_JOIN:
            wait = server._limiter.allow(client, now)
            if wait > 0:
                server._error(
                    client, kind, "rate", f"too many join codes tried; wait {int(wait) + 1} s and try again"
                )
                return True
            from .rooms import normalize_code

            code = normalize_code(packet.get("code"))
            if code is None:
                server._error(client, kind, "no_room", "no room has this code (check the letters)")
                return True
            current = server._where.get(client)
            if current is not None and current.code == code:
                server._error(client, kind, "bad_request", f"you are in room {code} already")
                return True
            self._reserve(client, kind, lambda store, rid, new: store.join(code, rid, ttl_ms=self._ttl_ms()))
            return True
        type_name = server._type(client, kind, packet.get("type"))
        if type_name is None:
            return True
        seats = server.room_types[type_name].max_players or 1
        if kind == L_QUICK:
            current = server._where.get(client)
            avoid = current.code if current is not None else ""
            self._reserve(
                client,
                kind,
                lambda store, rid, new: store.quick(
                    type_name,
                    seats,
                    rid,
                    new,
                    ttl_ms=self._ttl_ms(),
                    room_ttl_ms=self._room_ttl_ms(),
                    avoid=avoid,
                ),
            )
            return True
        from .rooms import check_name

        private = packet.get("private", True)
        try:
            name = check_name(packet.get("name"), "the room name")
        except InvalidArgument as exc:
            server._error(client, kind, "bad_request", str(exc))
            return True
        if not isinstance(private, bool):
            server._error(
                client, kind, "bad_request", f"'private' must be true or false, got {describe(private)}"
            )
            return True
        self._reserve(client, kind, lambda store, rid, new: store.create(
            type_name, seats, rid, new, name=name or "", private=private, ttl_ms=self._ttl_ms(),
            room_ttl_ms=self._room_ttl_ms()))  # fmt: skip
        return True

    def step(self, now: float) -> None:
        """Run what the worker finished (answers to send, clients to seat).  Tick thread only."""
        while self._done:
            done = self._done.popleft()
            try:
                done()
            except Exception:  # a client that left meanwhile, a bug: never the loop's end
                log.exception("node %s: could not finish a cluster request", self.node_id)

    def player_left(self, code: str) -> None:
        """A seated player left room ``code`` (or moved): its seat is free again cluster-wide."""
        self._jobs.put(lambda store: store.release(code, self.node_id))

    def room_closed(self, code: str) -> None:
        """Room ``code`` closed on this node: its record goes."""
        self._jobs.put(lambda store: store.drop(code, self.node_id))

    def close(self) -> None:
        """Leave the cluster (the node and its rooms are removed from Redis, if it answers) and stop the
        worker.  Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._jobs.put(None)
        self._thread.join(5.0)
        try:
            self.store.leave(self.node_id)
        except Exception:
            log.info("could not remove node %s from Redis (its records expire by themselves)", self.node_id)
        self.store.close()

    # -- requests -------------------------------------------------------------------------------------

    def _ttl_ms(self) -> int:
        return int(self.cluster.reservation_ttl * 1000)

    def _room_ttl_ms(self) -> int:
        return int(self.cluster.expiry * 1000)

    def _submit(
        self, client: Client, kind: str, job: Callable[[RedisStore], Callable[[], None] | None]
    ) -> None:
        if not self.up:
            self.server._error(client, kind, UNAVAILABLE, UNAVAILABLE_REASON)  # at once, never a hang
            return

        def guarded(store: RedisStore) -> Callable[[], None] | None:
            from .redisstore import StoreDown

            try:
                return job(store)
            except StoreDown:
                self._down()
                return lambda: self.server._error(client, kind, UNAVAILABLE, UNAVAILABLE_REASON)

        self._jobs.put(guarded)

    def _reserve(self, client: Client, kind: str, call: Callable[[RedisStore, str, str], Any]) -> None:
        from .redisstore import Reservation
        from .rooms import new_code

        def job(store: RedisStore) -> Callable[[], None]:
            rid = secrets.token_urlsafe(9)
            result: Any = "taken"
            for _ in range(8):  # a new room's code is taken in the whole cluster: draw another
                result = call(store, rid, new_code())
                if result != "taken":
                    break
            if isinstance(result, Reservation) and result.node == self.node_id:
                status, room = store.claim(result.code, rid, self.node_id)
                return lambda: self._seat_here(client, kind, result.code, status, room)
            return lambda: self._answer(client, kind, result)

        self._submit(client, kind, job)

    def _answer(self, client: Client, kind: str, result: Any) -> None:
        from .redisstore import Reservation

        server = self.server
        if isinstance(result, Reservation):
            expires = time.time() + self.cluster.reservation_ttl
            ticket = sign_ticket(self.cluster.secret, result.rid, result.code, result.node, expires)
            client.send(**{GAME_FIELD: L_GO, "request": kind, "host": result.host, "port": result.port,
                           "code": result.code, "ticket": ticket})  # fmt: skip
        elif result == "full":
            server._error(client, kind, "full", "the room is full")
        elif result == "no_room":
            server._error(client, kind, "no_room", "no room has this code (check the letters)")
        elif result == "max_rooms":
            server._error(
                client, kind, "max_rooms", "every node of the cluster runs its most rooms; try again later"
            )
        else:
            server._error(client, kind, "bad_request", "could not find a seat (try again)")

    def _seat(self, client: Client, ticket: object) -> None:
        try:
            rid, code = check_ticket(self.cluster.secret, ticket, self.node_id, time.time())
        except ReservationError as exc:
            self.server._error(client, L_SEAT, RESERVATION, str(exc))
            return

        def job(store: RedisStore) -> Callable[[], None]:
            status, room = store.claim(code, rid, self.node_id)
            return lambda: self._seat_here(client, L_SEAT, code, status, room)

        self._submit(client, L_SEAT, job)

    def _seat_here(self, client: Client, kind: str, code: str, status: str, fields: dict[str, Any]) -> None:
        server = self.server
        if status != "ok":
            why = {"used": "a seat reservation that was used already (or expired): ask again",
                   "expired": "an expired seat reservation: ask again",
                   "other_node": "a seat reservation for a room another node holds",
                   "no_room": "the reserved room has closed"}.get(status, status)  # fmt: skip
            server._error(client, kind, RESERVATION, why)
            return
        if client not in server._where:  # it left while the seat was being claimed
            self.player_left(code)
            return
        now = server.clock()
        room = server._rooms.get(code)
        if room is None:
            name = fields["name"] or None
            room = server._create(client, kind, fields["type"], name, fields["private"], now, code=code)
            if room is None:  # refused (this node's max_rooms): the seat is given back
                self.player_left(code)
                return
        server._enter(room, client, now)

    def _listed(self, client: Client, rooms: list[dict[str, Any]], wanted: object) -> Callable[[], None]:
        public = [r for r in rooms if not r["private"] and wanted in (None, r["type"])]
        public.sort(key=lambda r: -r["players"])
        listing = [{k: r[k] for k in ("code", "type", "name", "players", "max", "state", "private")}
                   for r in public[:200]]  # fmt: skip
        return lambda: client.send(**{GAME_FIELD: L_ROOMS, "rooms": listing, "total": len(public)})

    # -- the worker thread ----------------------------------------------------------------------------

    def _down(self) -> None:
        if self.up or not self._told_down:  # lost, or never reached since the start: say so once
            log.warning(
                "node %s: Redis cannot be reached; rooms play on, matchmaking is unavailable", self.node_id
            )
        self._told_down = True
        self.up = False
        self._must_register = True

    def _work(self) -> None:
        from .redisstore import StoreDown

        next_beat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.cluster.heartbeat
                try:
                    self._beat()
                except StoreDown:
                    self._down()
                except Exception:
                    log.exception("node %s: heartbeat failed", self.node_id)
            try:
                job = self._jobs.get(timeout=max(0.0, next_beat - time.monotonic()))
            except queue.Empty:
                continue
            if job is None:
                break
            try:
                done = job(self.store)
            except StoreDown:
                self._down()
                continue
            except Exception:
                log.exception("node %s: a cluster request failed", self.node_id)
                continue
            if done is not None:
                self._done.append(done)

    def _beat(self) -> None:
        server = self.server
        rooms = server.rooms()
        host, port = self.address
        ttl, empty = int(self.cluster.expiry * 1000), int(server.empty_timeout * 1000)
        states = {r.code: r.state for r in rooms}
        load = len(server._where)
        known, lost = self.store.heartbeat(
            self.node_id, host, port, server.max_rooms, load, ttl, empty, states
        )
        # Rooms Redis lacks on two heartbeats in a row (one may be a room just disposed here, whose record
        # was dropped before this listing was refreshed): a room reopened under its code while its old
        # record was being dropped.
        missing, self._missing = set(lost) & self._missing, set(lost)
        if not known or self._must_register or missing:
            # Everything after Redis was away (or lost its data); else only the rooms Redis lacks.
            lacking = rooms if not known or self._must_register else [r for r in rooms if r.code in missing]
            rows = [
                (r.code, r.type, r.name or "", r.private, r.max_players, r.players, r.state) for r in lacking
            ]
            clashes = self.store.register(self.node_id, ttl, rows)
            for code in clashes:
                log.warning(
                    "node %s: room %s is held by another node too (while Redis was away)", self.node_id, code
                )
            if not known or self._must_register:
                self.registered += 1
                self._must_register = False
                log.info("node %s registered at %s:%s with %d rooms", self.node_id, host, port, len(rooms))
        self.nodes = [(h, p) for _, h, p, _ in self.store.nodes()]
        if not self.up:
            log.info("node %s: Redis answers; matchmaking is available", self.node_id)
        self.up = True
        self._told_down = False

    def __repr__(self) -> str:
        return f"<ClusterNode {self.node_id} {'up' if self.up else 'down'}: {len(self.nodes)} nodes>"
