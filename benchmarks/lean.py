"""Lean client hosts: many client connections served by one single-threaded loop, for capacity and memory.

Those groups measure the *server* with hundreds of clients.  Hundreds of real ``Sprocket`` objects in one
process would mean hundreds of I/O threads fighting for one GIL on a 2-core machine, and the clients'
own delays would be charged to the server.  A real game has one client per process, on another machine.
So each host here speaks the library's own wire protocol for many sockets from one ``selectors`` loop:

* sprocket: ``sprocket.protocol.Connection``, the very sans-I/O protocol object ``Sprocket`` runs
  (handshake, heartbeats and pong replies included), fed from the loop instead of an I/O thread;
* raw: the raw baseline's framing (:class:`benchmarks.raw._Framer`) on non-blocking sockets;
* PodSixNet: its own ``EndPoint`` objects sharing one asyncore map, so one ``poll()`` serves them all.

All hosts connect in batches (``batch`` at a time, waiting for each batch), like players arriving.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import time
from typing import Any

from .common import load_podsixnet

Batch = list[tuple[int, dict[str, Any]]]


class LeanHost:
    """The interface: connect ``n`` clients, then ``step()`` returns ``(client index, fields)`` pairs."""

    def connect(self, n: int, timeout: float, batch: int = 24) -> int:
        """Connect ``n`` clients, ``batch`` at a time; return how many are connected.

        All the hosts' clients come from 127.0.0.1, and a Servo refuses more than ``max_pending_per_ip``
        (64) handshakes in progress from one address (a flood guard): two hosts of 24 stay under it, as
        a crowd of real players, arriving from many addresses and over time, would."""
        deadline = time.monotonic() + timeout
        while self.started < n and time.monotonic() < deadline:
            self.start(min(batch, n - self.started))
            target = self.started
            while self.connected() < target and time.monotonic() < deadline:
                self.step(0.005)
        while self.connected() < n and time.monotonic() < deadline:
            self.step(0.005)
        return self.connected()

    started = 0

    def start(self, n: int) -> None:
        raise NotImplementedError

    def connected(self) -> int:
        raise NotImplementedError

    def closed(self) -> int:
        raise NotImplementedError

    def step(self, timeout: float) -> Batch:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SocketHost(LeanHost):
    """A host whose clients are plain non-blocking sockets in one selector (sprocket's and raw's)."""

    conn_class: Any
    addr: tuple[str, int]
    selector: selectors.BaseSelector
    conns: list[Any]
    n_connected: int
    n_closed: int

    def start(self, n: int) -> None:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(self.addr)
            c = self.conn_class(len(self.conns), sock)
            self.conns.append(c)
            self.selector.register(sock, selectors.EVENT_WRITE, c)
        self.started += n

    def connected(self) -> int:
        return self.n_connected

    def closed(self) -> int:
        return self.n_closed


# -- sprocket ------------------------------------------------------------------------------------------


class _SprocketConn:
    __slots__ = ("conn", "index", "open", "out", "sock")

    def __init__(self, index: int, sock: socket.socket) -> None:
        self.index = index
        self.sock = sock
        self.conn: Any = None
        self.open = False
        self.out = b""


class SprocketHost(_SocketHost):
    conn_class = _SprocketConn

    def __init__(self, port: int) -> None:
        from sprocket.codec import MsgpackCodec

        self.addr = ("127.0.0.1", port)
        self.codec = MsgpackCodec()
        self.selector = selectors.DefaultSelector()
        self.conns: list[_SprocketConn] = []
        self.n_connected = 0
        self.n_closed = 0
        self.next_tick = 0.0
        self.started = 0

    def step(self, timeout: float) -> Batch:
        from sprocket.protocol import Closed, Connection, Received, Welcomed
        from sprocket.settings import Settings

        out: Batch = []
        now = time.monotonic()
        for key, _ in self.selector.select(timeout):
            c = key.data
            if c.conn is None:  # connect finished
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._drop(c)
                    continue
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.conn = Connection("client", now, Settings(codec=self.codec))
                self.selector.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(256 * 1024)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            c.conn.receive_data(data, now)
            for event in c.conn.events():
                if type(event) is Received:
                    out.append((c.index, event.fields))
                elif isinstance(event, Welcomed):
                    c.open = True
                    self.n_connected += 1
                elif isinstance(event, Closed):
                    self._drop(c)
            self._flush(c)
        if now >= self.next_tick:  # heartbeats and timeouts, as the I/O thread's housekeeping does
            self.next_tick = now + 0.05
            for c in self.conns:
                if c.conn is not None and not c.conn.closed:
                    c.conn.tick(now)
                    self._flush(c)
        return out

    def _flush(self, c: _SprocketConn) -> None:
        if c.conn is None or c.sock.fileno() < 0:
            return
        c.out += c.conn.data_to_send()
        if c.out:
            try:
                sent = c.sock.send(c.out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._drop(c)
                return
            c.out = c.out[sent:]
        if c.conn.closed and not c.out:
            self._drop(c)

    def _drop(self, c: _SprocketConn) -> None:
        if c.sock.fileno() < 0:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(c.sock)
        c.sock.close()
        if c.open:
            self.n_connected -= 1
            c.open = False
        self.n_closed += 1

    def close(self) -> None:
        for c in self.conns:
            if c.conn is not None and not c.conn.closed:
                c.conn.close("closed", "benchmark over")
                self._flush(c)
            self._drop(c)
        self.selector.close()


# -- raw -----------------------------------------------------------------------------------------------


class _RawConn:
    __slots__ = ("carry", "index", "open", "sock")

    def __init__(self, index: int, sock: socket.socket) -> None:
        self.index = index
        self.sock = sock
        self.open = False
        self.carry = b""


class RawHost(_SocketHost):
    conn_class = _RawConn

    def __init__(self, port: int) -> None:
        from .raw import _Framer

        self.addr = ("127.0.0.1", port)
        self.selector = selectors.DefaultSelector()
        self.framer = _Framer()
        self.conns: list[_RawConn] = []
        self.n_connected = 0
        self.n_closed = 0
        self.started = 0
        self.inbox: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()

    def step(self, timeout: float) -> Batch:
        for key, _ in self.selector.select(timeout):
            c = key.data
            if not c.open:
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._drop(c)
                    continue
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.open = True
                self.n_connected += 1
                self.selector.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                carry = self.framer.read(c.sock, c.carry, self.inbox, c.index)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                carry = None
            if carry is None:
                self._drop(c)
            else:
                c.carry = carry
        inbox = self.inbox
        return [inbox.popleft() for _ in range(len(inbox))]

    def _drop(self, c: _RawConn) -> None:
        if c.sock.fileno() < 0:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(c.sock)
        c.sock.close()
        if c.open:
            self.n_connected -= 1
            c.open = False
        self.n_closed += 1

    def close(self) -> None:
        for c in self.conns:
            self._drop(c)
        self.selector.close()


# -- PodSixNet -----------------------------------------------------------------------------------------


class PodSixNetHost(LeanHost):
    def __init__(self, port: int) -> None:
        load_podsixnet()
        from PodSixNet.asyncwrapper import poll
        from PodSixNet.EndPoint import EndPoint

        self._poll = poll
        self._endpoint = EndPoint
        self.addr = ("127.0.0.1", port)
        self.map: dict[int, Any] = {}
        self.eps: list[Any] = []
        self.started = 0
        self.n_closed = 0

    def start(self, n: int) -> None:
        for _ in range(n):
            ep = self._endpoint(self.addr, map=self.map)
            ep.DoConnect()
            self.eps.append(ep)
        self.started += n

    def connected(self) -> int:
        return sum(1 for ep in self.eps if ep.isConnected)

    def closed(self) -> int:
        return self.n_closed

    def step(self, timeout: float) -> Batch:
        self._poll(timeout, self.map)
        out: Batch = []
        for i, ep in enumerate(self.eps):
            if ep.queue:
                items, ep.queue = ep.queue, []
                for d in items:
                    action = d.get("action")
                    if action == "disconnected":
                        self.n_closed += 1
                    elif action not in ("connected", "socketConnect", "error"):
                        out.append((i, d))
        return out

    def close(self) -> None:
        for ep in self.eps:
            with contextlib.suppress(OSError):
                ep.close()


HOSTS: dict[str, type[LeanHost]] = {"sprocket": SprocketHost, "raw": RawHost, "podsixnet": PodSixNetHost}


def make_host(impl: str, port: int) -> LeanHost:
    """A lean host of ``impl``'s clients for a server on 127.0.0.1:``port``."""
    return HOSTS[impl](port)  # type: ignore[call-arg]
