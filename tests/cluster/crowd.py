"""A crowd of lean lobby clients: hundreds of connections quick-joining rooms from one selector thread.

Hundreds of real Sprockets would be hundreds of I/O threads fighting for one GIL on a 2-core machine (see
benchmarks/lean.py); each client here is sprocket's own sans-I/O ``Connection`` (handshake, heartbeats)
on a non-blocking socket, all fed by one loop thread.  A client speaks the lobby as a GameClient's Lobby
does: ``quick`` on the ``lobby`` message, follows ``go`` to another node with ``seat`` and the ticket,
records ``room`` and ``lerr``; with ``failover``, a client whose node vanished connects to another node of
the ``nodes`` list it was given and quick-joins there.  Used by tests/cluster and benchmarks/cluster.py.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sprocket import CloseCode
from sprocket.codec import MsgpackCodec
from sprocket.protocol import Closed, Connection, Received, Welcomed, data_frame
from sprocket.settings import Settings


@dataclass
class Lean:
    """One lean client: where it is, what it was told."""

    index: int
    room_type: str
    started: float = 0.0  # when its first connection began (time.monotonic)
    seated_at: float | None = None  # when its latest "room" arrived
    seats: list[tuple[str, int]] = field(default_factory=list)  # (room code, node port) of each "room"
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (request, error, reason) of "lerr"
    redirects: int = 0
    nodes: list[tuple[str, int]] = field(default_factory=list)
    addr: tuple[str, int] = ("127.0.0.1", 0)
    lost: str | None = None  # why its last connection ended without us closing it
    lost_at: float | None = None
    # connection state (loop thread only)
    sock: Any = None
    conn: Any = None
    first: dict[str, Any] | None = None
    out: bytes = b""

    @property
    def seat(self) -> tuple[str, int] | None:
        """The latest (code, port), or None when never seated or the connection was lost since."""
        return self.seats[-1] if self.seats and self.lost is None else None


class LobbyCrowd:
    """Lean clients driven by one background thread.  ``add`` them; read ``clients``; ``close``."""

    def __init__(self, *, failover: bool = False) -> None:
        self.failover = failover
        self.codec = MsgpackCodec()
        self.settings = Settings(codec=self.codec, ping_interval=0.5, timeout=3.0)
        self.clients: list[Lean] = []
        self._selector = selectors.DefaultSelector()
        self._todo: list[Lean] = []
        self._later: list[tuple[float, Lean, tuple[str, int], dict[str, Any] | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lean-crowd", daemon=True)
        self._thread.start()

    def add(self, n: int, addr: tuple[str, int], room_type: str) -> list[Lean]:
        """Start ``n`` clients that quick-join ``room_type`` through the node at ``addr``."""
        new = [Lean(len(self.clients) + i, room_type, started=time.monotonic(), addr=addr) for i in range(n)]
        self.clients.extend(new)
        with self._lock:
            self._todo.extend(new)
        return new

    def seated(self) -> list[Lean]:
        """The clients in a room now."""
        return [c for c in self.clients if c.seat is not None]

    def close(self) -> None:
        """Close every connection and stop the thread."""
        self._stop.set()
        self._thread.join(10)

    # -- the loop thread -----------------------------------------------------------------------------

    def _connect(self, c: Lean, addr: tuple[str, int], first: dict[str, Any] | None) -> None:
        self._drop(c)
        c.addr, c.first, c.out, c.conn = addr, first, b"", None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(addr)
        c.sock = sock
        self._selector.register(sock, selectors.EVENT_WRITE, c)

    def _drop(self, c: Lean) -> None:
        sock, c.sock, c.conn = c.sock, None, None
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()

    def _send(self, c: Lean, fields: dict[str, Any]) -> None:
        c.conn.send_data(data_frame(self.codec.encode(fields)))

    def _loop(self) -> None:
        next_tick = 0.0
        try:
            while not self._stop.is_set():
                with self._lock:
                    todo, self._todo = self._todo, []
                for c in todo:
                    self._connect(c, c.addr, None)
                now = time.monotonic()
                due = [item for item in self._later if item[0] <= now]
                if due:
                    self._later = [item for item in self._later if item[0] > now]
                    for _, c, addr, first in due:
                        self._connect(c, addr, first)
                for key, _ in self._selector.select(0.01) if self._selector.get_map() else ():
                    self._ready(key.data, now)
                if now >= next_tick:
                    next_tick = now + 0.05
                    for c in self.clients:
                        if c.conn is not None and not c.conn.closed:
                            c.conn.tick(now)
                            self._flush(c, now)
                if not self._selector.get_map() and not self._later:
                    self._stop.wait(0.01)  # pacing an idle loop, not synchronisation
        finally:
            for c in self.clients:
                if c.conn is not None and not c.conn.closed:
                    c.conn.close()
                    with contextlib.suppress(OSError):
                        c.sock.send(c.conn.data_to_send())
                self._drop(c)
            self._selector.close()

    def _ready(self, c: Lean, now: float) -> None:
        if c.sock is None:
            return
        if c.conn is None:  # the connect finished (or failed)
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._lose(c, "could not connect", now)
                return
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.conn = Connection("client", now, self.settings)
            self._selector.modify(c.sock, selectors.EVENT_READ, c)
            self._flush(c, now)
            return
        try:
            data = c.sock.recv(256 * 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        c.conn.receive_data(data, now)
        for event in c.conn.events():
            if type(event) is Received:
                self._message(c, event.fields, now)
                if c.conn is None:
                    return  # moved to another node
            elif isinstance(event, Welcomed):
                if c.first is not None:
                    self._send(c, c.first)
            elif isinstance(event, Closed):
                if event.rejected and event.code is CloseCode.BUSY:
                    # Over the node's max_pending_per_ip (every lean client has the same address): again
                    # shortly, as players from many addresses would simply have got in.
                    self._drop(c)
                    self._later.append((now + 0.05, c, c.addr, c.first))
                    return
                self._lose(c, event.reason, now)
                return
        self._flush(c, now)

    def _message(self, c: Lean, fields: dict[str, Any], now: float) -> None:
        kind = fields.get("_g")
        if kind == "lobby":
            c.nodes = [(h, p) for h, p in fields.get("nodes", [])]
            if c.first is None:
                self._send(c, {"_g": "quick", "type": c.room_type})
        elif kind == "go":
            c.redirects += 1
            c.conn.close()
            self._flush(c, now)
            self._connect(c, (fields["host"], fields["port"]), {"_g": "seat", "ticket": fields["ticket"]})
        elif kind == "room":
            c.seats.append((fields["code"], c.addr[1]))
            c.seated_at = now
            c.lost = None
        elif kind == "lerr":
            c.errors.append((fields["request"], fields["error"], fields["reason"]))

    def _lose(self, c: Lean, reason: str, now: float) -> None:
        self._drop(c)
        c.lost, c.lost_at = reason, now
        if self.failover:
            others = [n for n in c.nodes if n != c.addr]
            if others:
                self._connect(c, others[c.index % len(others)], None)

    def _flush(self, c: Lean, now: float) -> None:
        if c.conn is None or c.sock is None:
            return
        c.out += c.conn.data_to_send()
        if c.out:
            try:
                sent = c.sock.send(c.out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._lose(c, "connection lost", now)
                return
            c.out = c.out[sent:]
