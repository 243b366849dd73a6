"""Bad networks on demand: a lag/jitter/stall simulating TCP relay for local testing.

Part of :mod:`sprocket.testing` (also importable as ``sprocket.netsim``, its old name).

:class:`LagProxy` is a TCP relay meant for one machine. Game clients connect to the
proxy instead of the real server; for every accepted client the proxy opens its own
connection to the real server and forwards bytes both ways, holding every chunk of
bytes for a while before it is forwarded. This lets a developer feel and test, say,
150 ms +/- 30 ms of ping without a second computer::

    with LagProxy("127.0.0.1", 9000, listen_port=9001, lag=0.150, jitter=0.030) as proxy:
        ...  # point the game client at 127.0.0.1:9001
        proxy.stall(2.0)           # a 2 s hiccup; the bytes arrive afterwards, in order
        proxy.disconnect_all()     # as if the cable had been pulled

or from a shell::

    sprocket netsim --target 127.0.0.1:9000 --listen 9001 --lag 150 --jitter 30

Delay model (per direction, "up" = client -> server, "down" = server -> client):

* A *chunk* is whatever one ``recv()`` on the source socket returns (at most 64 KiB).
  Application messages sent back to back may share a chunk and therefore a delay.
* Each chunk's one-way delay is ``max(0, lag/2 + U(-jitter/2, +jitter/2))`` where ``U``
  is uniform. The round trip therefore gains ``lag`` seconds on average and lies within
  ``[lag - jitter, lag + jitter]`` (a triangular distribution centred on ``lag``), so
  ``--lag 150 --jitter 30`` feels like a ping of 150 +/- 30 ms.
* TCP never reorders, so a chunk is never delivered before the previous chunk of the
  same direction: ``delivery = max(previous delivery, arrival + one-way delay)``. With a
  lot of jitter and a steady stream of chunks this biases the observed delay upwards.
* Stalls hold all deliveries of a direction until the stall ends; nothing is lost.

Everything runs on a single daemon thread with one ``selectors`` loop over all sockets.
Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import selectors
import socket
import struct
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any

__all__ = ["MAX_QUEUED_BYTES", "LagProxy", "RelayedConnection"]

from sprocket import ClosedError, InvalidArgument
from sprocket.settings import check_duration

log = logging.getLogger("sprocket.netsim")

#: Bytes that may wait inside the proxy for one direction of one connection before the
#: proxy stops reading from that direction's source (TCP back-pressure). Read when a
#: :class:`LagProxy` is constructed.
MAX_QUEUED_BYTES = 8 * 1024 * 1024

_RECV_SIZE = 64 * 1024
_ACCEPTS_PER_WAKEUP = 64
_ACCEPT_PAUSE = 0.1
_DRAIN_LIMIT = 64
_JOIN_TIMEOUT = 5.0
_CLIENT = "client"
_SERVER = "server"
_UP = "up"
_DOWN = "down"
_VALID_DIRECTIONS = ("up", "down", "both")
_LISTENER = object()
_WAKE = object()
_CONNECT_PENDING = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY}


def _check_delay(name: str, value: float) -> float:
    """Return ``value`` as float seconds; raise InvalidArgument unless it is finite and >= 0."""
    return check_duration(name, value, allow_zero=True)


def _check_stall(seconds: float, direction: str) -> float:
    """Validate ``stall()`` arguments; raise InvalidArgument on bad ones."""
    if direction not in _VALID_DIRECTIONS:
        raise InvalidArgument(f"direction must be one of {_VALID_DIRECTIONS}, got {direction!r}")
    return _check_delay("seconds", seconds)


def _set_nodelay(sock: socket.socket) -> None:
    """Best effort TCP_NODELAY (some socket kinds reject it)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Direction:
    """Bytes travelling one way through one relayed connection (loop-thread state)."""

    __slots__ = ("delivered", "dst", "last_due", "name", "out", "queue", "queued", "src", "stall_until")

    def __init__(self, name: str, src: str, dst: str) -> None:
        self.name = name
        self.src = src
        self.dst = dst
        self.queue: deque[tuple[float, bytes]] = deque()  # (due time, chunk), due times non-decreasing
        self.queued = 0  # bytes waiting, including the unsent rest of ``out``
        self.last_due = 0.0
        self.out: memoryview | None = None  # a due chunk that is partly written
        self.stall_until = 0.0
        self.delivered = 0

    def drop(self) -> None:
        """Forget everything still waiting (the destination is gone)."""
        self.queue.clear()
        self.out = None
        self.queued = 0

    def idle(self) -> bool:
        """True when nothing waits to be written."""
        return self.out is None and not self.queue


class RelayedConnection:
    """One client connection relayed by a :class:`LagProxy` to the target server.

    Instances are created by the proxy; obtain them from :attr:`LagProxy.connections`.
    Counters are updated by the proxy thread and may be read from any thread.
    """

    def __init__(
        self, proxy: LagProxy, client: socket.socket, client_address: Any, server: socket.socket
    ) -> None:
        """Internal: wrap an accepted ``client`` socket and a ``server`` socket being connected."""
        self._proxy = proxy
        self._socks = {_CLIENT: client, _SERVER: server}
        self._mask = {_CLIENT: 0, _SERVER: 0}  # events currently registered with the selector
        self._eof = {_CLIENT: False, _SERVER: False}  # nothing more will be read from that side
        self._dead = {_CLIENT: False, _SERVER: False}  # that side can no longer be written to
        self._connecting = True
        self._closing = False  # one side has gone: flush what is queued, then close both
        self._closed = False
        self._up = _Direction(_UP, _CLIENT, _SERVER)
        self._down = _Direction(_DOWN, _SERVER, _CLIENT)
        #: The client's address as returned by ``accept()``.
        self.client_address: Any = client_address

    @property
    def bytes_up(self) -> int:
        """Bytes delivered to the server so far (client -> server). Never raises."""
        return self._up.delivered

    @property
    def bytes_down(self) -> int:
        """Bytes delivered to the client so far (server -> client). Never raises."""
        return self._down.delivered

    @property
    def queued_up(self) -> int:
        """Bytes read from the client and not yet delivered to the server. Never raises."""
        return self._up.queued

    @property
    def queued_down(self) -> int:
        """Bytes read from the server and not yet delivered to the client. Never raises."""
        return self._down.queued

    @property
    def closed(self) -> bool:
        """True once both sockets of this connection have been closed. Never raises."""
        return self._closed

    def stall(self, seconds: float, direction: str = "both") -> None:
        """Hold this connection's traffic for ``seconds`` from now, then deliver it in order.

        ``direction`` is ``"up"`` (client -> server), ``"down"`` (server -> client) or
        ``"both"``. Bytes keep being read (up to the back-pressure cap) and are delivered
        once the stall ends and their own delay has passed. A stall never shortens an
        earlier, longer one. Thread-safe; a no-op on a closed connection.
        Raises InvalidArgument (a ValueError) for a negative/non-finite ``seconds`` or an unknown
        ``direction``.
        """
        seconds = _check_stall(seconds, direction)
        self._proxy._stall_connection(self, seconds, direction)

    def disconnect(self) -> None:
        """Abruptly close both sides (TCP reset), dropping anything still queued.

        Both the client and the server see the connection reset or closed, as after a
        cable pull. Thread-safe and idempotent; never raises.
        """
        self._proxy._disconnect(self)

    def __repr__(self) -> str:
        """Debug representation with the client address and the counters."""
        state = "closed" if self._closed else "open"
        return (
            f"<RelayedConnection {self.client_address!r} {state} up={self.bytes_up} down={self.bytes_down}>"
        )


class LagProxy:
    """A loopback TCP relay that adds lag, jitter, stalls and disconnects on demand.

    Clients connect to ``(listen_host, port)``; for each one the proxy connects to
    ``(target_host, target_port)`` and relays bytes both ways. ``lag`` is the added
    *round-trip* time in seconds, split evenly across the two directions. Each chunk's
    one-way delay is ``max(0, lag/2 + uniform(-jitter/2, +jitter/2))``, so the round trip
    varies within ``lag +/- jitter``; chunks of one direction are never reordered
    (``delivery = max(previous delivery, arrival + delay)``). ``seed`` makes the jitter
    sequence reproducible.

    The listening socket is bound by the constructor, so :attr:`port` is known at once;
    no traffic is relayed until :meth:`start`. Use as a context manager to start on enter
    and close on exit.

    Raises InvalidArgument (a ValueError) for a negative or non-finite ``lag``/``jitter`` or an
    out-of-range port, and OSError (including ``socket.gaierror``) when the addresses cannot be
    resolved or the listening socket cannot be bound.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        lag: float = 0.0,
        jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Validate the settings, resolve the target and bind the listening socket.

        Raises InvalidArgument (a ValueError) for bad ``lag``/``jitter``/ports and OSError when
        resolving or binding fails.
        """
        self._lag = _check_delay("lag", lag)
        self._jitter = _check_delay("jitter", jitter)
        if isinstance(target_port, bool) or not isinstance(target_port, int) or not 0 < target_port <= 65535:
            raise InvalidArgument(f"target_port must be in 1..65535, got {target_port!r}")
        if isinstance(listen_port, bool) or not isinstance(listen_port, int) or not 0 <= listen_port <= 65535:
            raise InvalidArgument(f"listen_port must be in 0..65535, got {listen_port!r}")
        self._target_host = target_host
        self._target_port = target_port
        infos = socket.getaddrinfo(target_host, target_port, type=socket.SOCK_STREAM)
        self._target_family: socket.AddressFamily = infos[0][0]
        self._target_addr: Any = infos[0][4]
        self._rng = random.Random(seed)
        self._max_queued = MAX_QUEUED_BYTES
        self._lock = threading.Lock()
        self._conns: dict[RelayedConnection, None] = {}  # insertion-ordered set
        self._stall_until = {_UP: 0.0, _DOWN: 0.0}
        self._thread: threading.Thread | None = None
        self._closing = False
        self._cleaned = False
        self._accept_paused_until: float | None = None

        listen_family = socket.AF_INET
        if listen_host:
            listen_family = socket.getaddrinfo(
                listen_host, listen_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0][0]
        self._listener = socket.create_server((listen_host, listen_port), family=listen_family, backlog=128)
        try:
            self._listener.setblocking(False)
            _set_nodelay(self._listener)
            self._port: int = self._listener.getsockname()[1]
            self._listen_host = listen_host
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            self._listener.close()
            raise
        try:
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
            self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        except BaseException:
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()
            raise

    # ------------------------------------------------------------------ public API

    @property
    def port(self) -> int:
        """The bound listening port (known from construction on, also after close). Never raises."""
        return self._port

    @property
    def lag(self) -> float:
        """Current added round-trip time in seconds. Never raises."""
        return self._lag

    @property
    def jitter(self) -> float:
        """Current round-trip jitter in seconds (each direction varies by +/- jitter/2). Never raises."""
        return self._jitter

    @property
    def running(self) -> bool:
        """True while the relay thread runs: after :meth:`start`, before :meth:`close`. Never raises."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._closing

    @property
    def connections(self) -> list[RelayedConnection]:
        """A snapshot list of the live relayed connections (oldest first). Never raises."""
        with self._lock:
            return list(self._conns)

    def start(self) -> LagProxy:
        """Start the single background daemon thread that relays all traffic; return ``self``.

        Calling it again while running does nothing. Raises ClosedError after
        :meth:`close`.
        """
        with self._lock:
            if self._closing:
                raise ClosedError("LagProxy is closed and cannot be restarted")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"sprocket.netsim:{self._port}", daemon=True
                )
                self._thread.start()
                log.info(
                    "relaying %s -> %s (lag %.1f ms, jitter %.1f ms)",
                    _fmt_addr(self._listen_host, self._port),
                    _fmt_addr(self._target_host, self._target_port),
                    self._lag * 1000,
                    self._jitter * 1000,
                )
        return self

    def close(self) -> None:
        """Stop the thread and close every socket (listener and all relayed connections).

        Data still queued is dropped. Waits up to 5 s for the thread to finish (it is a
        daemon thread, so it can never keep the interpreter alive). Idempotent; never
        raises.
        """
        with self._lock:
            self._closing = True
            thread = self._thread
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("netsim relay thread did not stop within %.0f s", _JOIN_TIMEOUT)
        with self._lock:
            self._cleanup()

    def __enter__(self) -> LagProxy:
        """Start the proxy (see :meth:`start`) and return it. Raises ClosedError if closed."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the proxy (see :meth:`close`); exceptions are not suppressed."""
        self.close()

    def set(self, *, lag: float | None = None, jitter: float | None = None) -> None:
        """Change the conditions live; ``None`` leaves a setting unchanged. Thread-safe.

        The new values apply to chunks that arrive from now on; chunks already waiting
        keep their delivery time. Raises InvalidArgument (a ValueError) for a negative or
        non-finite value (and then changes nothing).
        """
        new_lag = self._lag if lag is None else _check_delay("lag", lag)
        new_jitter = self._jitter if jitter is None else _check_delay("jitter", jitter)
        with self._lock:
            self._lag = new_lag
            self._jitter = new_jitter
        log.info("conditions set to lag %.1f ms, jitter %.1f ms", new_lag * 1000, new_jitter * 1000)

    def stall(self, seconds: float, direction: str = "both") -> None:
        """Hold all traffic in ``direction`` for ``seconds`` from now, then deliver it in order.

        ``direction`` is ``"up"`` (client -> server), ``"down"`` (server -> client) or
        ``"both"``. Applies to every connection, including ones accepted during the stall.
        Bytes keep being read (up to the back-pressure cap) and nothing is lost. A stall
        never shortens an earlier, longer one. Thread-safe.
        Raises InvalidArgument (a ValueError) for a negative/non-finite ``seconds`` or an unknown
        ``direction``.
        """
        seconds = _check_stall(seconds, direction)
        with self._lock:
            until = time.monotonic() + seconds
            for name in (_UP, _DOWN):
                if direction in (name, "both"):
                    self._stall_until[name] = max(self._stall_until[name], until)
        log.info("stalling %s for %.3f s", direction, seconds)
        self._wake()

    def disconnect_all(self) -> None:
        """Abruptly close every relayed connection on both sides (TCP reset), as a cable pull would.

        Queued data is dropped. The proxy keeps accepting new clients. Thread-safe;
        never raises.
        """
        with self._lock:
            conns = list(self._conns)
            for conn in conns:
                self._close_conn(conn, abortive=True)
        log.info("disconnected %d connection(s)", len(conns))
        self._wake()

    def __repr__(self) -> str:
        """Debug representation with addresses and conditions."""
        return (
            f"<LagProxy {self._listen_host}:{self._port} -> {self._target_host}:{self._target_port} "
            f"lag={self._lag:.3f}s jitter={self._jitter:.3f}s>"
        )

    # ------------------------------------------------------- cross-thread helpers

    def _wake(self) -> None:
        """Interrupt the loop's select() so it re-reads the shared state."""
        # OSError: buffer full (a wake-up is pending anyway) or already closed.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _stall_connection(self, conn: RelayedConnection, seconds: float, direction: str) -> None:
        """Implementation of :meth:`RelayedConnection.stall` (arguments already validated)."""
        with self._lock:
            until = time.monotonic() + seconds
            for d in (conn._up, conn._down):
                if direction in (d.name, "both"):
                    d.stall_until = max(d.stall_until, until)
        self._wake()

    def _disconnect(self, conn: RelayedConnection) -> None:
        """Implementation of :meth:`RelayedConnection.disconnect`."""
        with self._lock:
            self._close_conn(conn, abortive=True)
        self._wake()

    # ------------------------------------------------------------- relay loop

    def _run(self) -> None:
        """Body of the relay thread: one selectors loop over every socket."""
        try:
            while True:
                with self._lock:
                    if self._closing:
                        break
                    timeout = self._next_timeout(time.monotonic())
                events = self._selector.select(timeout)
                with self._lock:
                    if self._closing:
                        break
                    now = time.monotonic()
                    for key, mask in events:
                        self._dispatch(key.data, mask, now)
                    if self._accept_paused_until is not None and now >= self._accept_paused_until:
                        self._accept_paused_until = None
                        self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
                    now = time.monotonic()
                    for conn in list(self._conns):
                        self._service_guarded(conn, now)
        except Exception:
            log.exception("netsim relay loop crashed; closing all relayed connections")
        finally:
            with self._lock:
                self._closing = True
                self._cleanup()

    def _dispatch(self, data: Any, mask: int, now: float) -> None:
        """Handle one selector event."""
        if data is _WAKE:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass
        elif data is _LISTENER:
            self._accept(now)
        else:
            conn, side = data
            if conn._closed:
                return
            try:
                if side == _SERVER and conn._connecting:
                    if mask & selectors.EVENT_WRITE:
                        self._finish_connect(conn)
                elif mask & selectors.EVENT_READ:
                    self._read(conn, side, now)
            except Exception:
                log.exception("error relaying %r; closing it", conn)
                self._close_conn(conn, abortive=True)

    def _service_guarded(self, conn: RelayedConnection, now: float) -> None:
        """:meth:`_service` that closes (rather than propagates for) a broken connection."""
        try:
            self._service(conn, now)
        except Exception:
            log.exception("error relaying %r; closing it", conn)
            self._close_conn(conn, abortive=True)

    def _accept(self, now: float) -> None:
        """Accept pending clients and start connecting each to the target."""
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                client, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: back off instead of spinning
                log.warning("accept failed (%s); pausing accepts for %.1f s", exc, _ACCEPT_PAUSE)
                self._selector.unregister(self._listener)
                self._accept_paused_until = now + _ACCEPT_PAUSE
                return
            self._start_relay(client, address, now)

    def _start_relay(self, client: socket.socket, address: Any, now: float) -> None:
        """Begin relaying one accepted client: create the target connection non-blockingly."""
        try:
            client.setblocking(False)
            _set_nodelay(client)
            server = socket.socket(self._target_family, socket.SOCK_STREAM)
        except OSError as exc:
            log.warning("cannot relay client %r: %s", address, exc)
            client.close()
            return
        try:
            server.setblocking(False)
            _set_nodelay(server)
            err = server.connect_ex(self._target_addr)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err not in _CONNECT_PENDING:
            log.warning(
                "cannot connect to target %s: %s; closing client %r",
                _fmt_addr(self._target_host, self._target_port),
                os.strerror(err),
                address,
            )
            server.close()
            self._close_socket(client, abortive=False)
            return
        conn = RelayedConnection(self, client, address, server)
        self._conns[conn] = None
        log.info("client %r connected", address)
        self._update_interest(conn, now)

    def _finish_connect(self, conn: RelayedConnection) -> None:
        """The target socket became writable: check whether the connect succeeded."""
        err = conn._socks[_SERVER].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            log.warning(
                "cannot connect to target %s: %s; closing client %r",
                _fmt_addr(self._target_host, self._target_port),
                os.strerror(err),
                conn.client_address,
            )
            self._close_conn(conn, abortive=False)
            return
        conn._connecting = False
        log.debug("client %r: connected to target", conn.client_address)

    def _read(self, conn: RelayedConnection, side: str, now: float) -> None:
        """Read one chunk from ``side`` and schedule it (or note EOF / a reset)."""
        sock = conn._socks[side]
        try:
            data = sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("client %r: %s side failed: %s", conn.client_address, side, exc)
            conn._eof[side] = True
            conn._dead[side] = True
            toward = conn._down if side == _CLIENT else conn._up
            toward.drop()
            conn._closing = True
            return
        if not data:
            log.debug("client %r: %s side closed", conn.client_address, side)
            conn._eof[side] = True
            conn._closing = True
            return
        if conn._closing:
            return  # the other side is gone; there is nowhere to deliver this
        d = conn._up if side == _CLIENT else conn._down
        due = max(d.last_due, now + self._one_way_delay())
        d.last_due = due
        d.queue.append((due, data))
        d.queued += len(data)

    def _one_way_delay(self) -> float:
        """Sample one chunk's one-way delay: ``max(0, lag/2 + uniform(-jitter/2, +jitter/2))``."""
        delay = self._lag / 2
        if self._jitter:
            delay += self._rng.uniform(-self._jitter / 2, self._jitter / 2)
        return max(0.0, delay)

    def _stall_end(self, d: _Direction) -> float:
        """When the stall affecting direction ``d`` (proxy-wide or per connection) ends."""
        return max(self._stall_until[d.name], d.stall_until)

    def _writable(self, conn: RelayedConnection, d: _Direction) -> bool:
        """Whether ``d``'s destination can be written to at all (connected and alive)."""
        return not conn._dead[d.dst] and not (d.dst == _SERVER and conn._connecting)

    def _service(self, conn: RelayedConnection, now: float) -> None:
        """Write every due chunk, close a finished connection, and update selector interest."""
        if conn._closed:
            return
        for d in (conn._up, conn._down):
            if not self._writable(conn, d) or now < self._stall_end(d):
                continue
            sock = conn._socks[d.dst]
            while True:
                if d.out is None:
                    if not d.queue or d.queue[0][0] > now:
                        break
                    d.out = memoryview(d.queue.popleft()[1])
                try:
                    sent = sock.send(d.out)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    log.debug("client %r: writing to %s failed: %s", conn.client_address, d.dst, exc)
                    conn._dead[d.dst] = True
                    conn._eof[d.dst] = True
                    conn._closing = True
                    d.drop()
                    break
                d.delivered += sent
                d.queued -= sent
                if sent < len(d.out):
                    d.out = d.out[sent:]
                    break
                d.out = None
        if conn._closing and all(conn._dead[d.dst] or d.idle() for d in (conn._up, conn._down)):
            self._close_conn(conn, abortive=False)
            return
        self._update_interest(conn, now)

    def _update_interest(self, conn: RelayedConnection, now: float) -> None:
        """Register each socket for exactly the events the relay currently needs."""
        for side in (_CLIENT, _SERVER):
            if side == _SERVER and conn._connecting:
                want = selectors.EVENT_WRITE
            else:
                src_dir, dst_dir = (conn._up, conn._down) if side == _CLIENT else (conn._down, conn._up)
                want = 0
                if not conn._eof[side] and (conn._closing or src_dir.queued < self._max_queued):
                    want |= selectors.EVENT_READ
                if dst_dir.out is not None and not conn._dead[side] and now >= self._stall_end(dst_dir):
                    want |= selectors.EVENT_WRITE
            have = conn._mask[side]
            if want == have:
                continue
            sock = conn._socks[side]
            if not have:
                self._selector.register(sock, want, (conn, side))
            elif not want:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, want, (conn, side))
            conn._mask[side] = want

    def _next_timeout(self, now: float) -> float | None:
        """Seconds until the next delivery (or stall end / accept resume) is due; None if none."""
        deadline = self._accept_paused_until
        for conn in self._conns:
            for d in (conn._up, conn._down):
                if not self._writable(conn, d):
                    continue
                stall_end = self._stall_end(d)
                if d.out is not None:
                    if now >= stall_end:
                        continue  # waiting for the socket to become writable
                    due = stall_end
                elif d.queue:
                    due = max(d.queue[0][0], stall_end)
                else:
                    continue
                deadline = due if deadline is None else min(deadline, due)
        return None if deadline is None else max(0.0, deadline - now)

    # ----------------------------------------------------------------- closing

    def _close_conn(self, conn: RelayedConnection, *, abortive: bool) -> None:
        """Close both sockets of ``conn`` (with a reset if ``abortive``); caller holds the lock."""
        if conn._closed:
            return
        conn._closed = True
        for side in (_CLIENT, _SERVER):
            sock = conn._socks[side]
            if conn._mask[side]:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(sock)
                conn._mask[side] = 0
            self._close_socket(sock, abortive=abortive)
        conn._up.drop()
        conn._down.drop()
        self._conns.pop(conn, None)
        log.info(
            "client %r %s (%d bytes up, %d bytes down)",
            conn.client_address,
            "disconnected" if abortive else "closed",
            conn._up.delivered,
            conn._down.delivered,
        )

    @staticmethod
    def _close_socket(sock: socket.socket, *, abortive: bool) -> None:
        """Close ``sock``: with a TCP reset if ``abortive``, else after discarding unread input.

        Unread input would make the kernel send a reset instead of a clean FIN, which can
        destroy data the peer has not read yet.
        """
        try:
            if abortive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.setblocking(False)
                for _ in range(_DRAIN_LIMIT):
                    if not sock.recv(_RECV_SIZE):
                        break
        except OSError:
            pass
        sock.close()

    def _cleanup(self) -> None:
        """Close every socket and the selector exactly once; caller holds the lock."""
        if self._cleaned:
            return
        self._cleaned = True
        for conn in list(self._conns):
            self._close_conn(conn, abortive=False)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()
        log.info("proxy on port %d closed", self._port)


def _fmt_addr(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
