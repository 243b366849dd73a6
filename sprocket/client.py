"""``Sprocket``: the client end.  Connects in the background; ``get()`` and ``send()`` never block.

This module glues the codec, the protocol and the I/O thread together for one outgoing connection.
It never calls user code from the I/O thread: callbacks run inside ``get()`` in the user's thread.
"""

from __future__ import annotations

import atexit
import collections
import errno
import logging
import os
import selectors
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .codec import Codec, encode_packet, get_codec
from .errors import ClosedError, ConnectionFailed, ConnectTimeout, InvalidArgument, Rejected
from .events import Connected, Disconnected, Endpoint, run_callback
from .iothread import IOThread, Peer, is_connect_in_progress
from .packet import Packet
from .protocol import MIN_PACKET_LIMIT, Closed, Connection, Event, Received, Welcomed, data_frame

log = logging.getLogger("sprocket")

__all__ = ["DEFAULT_PORT", "Sprocket"]

DEFAULT_PORT = 7777
REJECT_CODES = frozenset({"password", "full", "codec", "app", "version", "busy", "limit", "rejected"})


class _ClientIO(IOThread):
    """The I/O thread of one Sprocket: resolve, connect, handshake, then shuttle frames."""

    def __init__(self, host: str, port: int, conn_args: dict[str, Any]) -> None:
        super().__init__(
            f"sprocket-client-{host}:{port}",
            max_send_queue=conn_args.pop("max_send_queue"),
            max_inbox_bytes=conn_args.pop("max_inbox_bytes"),
            close_timeout=conn_args.pop("close_timeout"),
        )
        # No strong reference back to the Sprocket: an unclosed, forgotten Sprocket must be collectable.
        self.host = host
        self.port = port
        self.connect_timeout: float = conn_args.pop("connect_timeout")
        self.ssl_context: ssl.SSLContext | None = conn_args.pop("ssl_context")
        self.server_hostname: str | None = conn_args.pop("server_hostname")
        self.conn_args = conn_args
        self.peer: Peer | None = None
        self.connecting: socket.socket | None = None
        self.connect_deadline = 0.0
        self.send_limit: int = conn_args["max_packet_size"]  # lowered to the server's limit on WELCOME
        self.outbox: collections.deque[bytes] = collections.deque()  # frames from send(), user -> I/O
        self.early: list[bytes] = []  # frames sent before the handshake completed
        self.early_bytes = 0
        self.connected = threading.Event()
        self.finished = threading.Event()  # the connection is over (or never happened)
        self.is_connected = False
        self.error: str | None = None
        self.error_code: str | None = None
        self.client_id: int | None = None

    # -- connecting ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.connect_deadline = time.monotonic() + self.connect_timeout
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self._fail("refused", f"cannot resolve {self.host!r}: {exc}")
            return
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        code = sock.connect_ex(addr)
        if not is_connect_in_progress(code):
            sock.close()
            self._fail("refused", f"cannot connect to {self.host}:{self.port}: {_strerror(code)}")
            return
        self.connecting = sock
        self.selector.register(sock, selectors.EVENT_WRITE, self._on_connect_ready)

    def _on_connect_ready(self, mask: int) -> None:
        sock = self.connecting
        assert sock is not None
        self.connecting = None
        self.selector.unregister(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            sock.close()
            hint = " (is the server running?)" if code == errno.ECONNREFUSED else ""
            self._fail("refused", f"cannot connect to {self.host}:{self.port}: {_strerror(code)}{hint}")
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        addr = sock.getpeername()[:2]
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(
                    sock,
                    server_hostname=self.server_hostname or self.host,
                    do_handshake_on_connect=False,
                )
            except (ssl.SSLError, OSError, ValueError) as exc:
                sock.close()
                self._fail("refused", f"TLS setup failed: {exc}")
                return
        conn = Connection("client", now=time.monotonic(), **self.conn_args)
        self.peer = Peer(sock, conn, addr)
        self.add_peer(self.peer)

    def on_housekeeping(self, now: float) -> None:
        if self.connecting is not None and now >= self.connect_deadline:
            sock, self.connecting = self.connecting, None
            self.selector.unregister(sock)
            sock.close()
            self._fail(
                "timeout", f"could not connect to {self.host}:{self.port} within {self.connect_timeout:g} s"
            )

    def _fail(self, code: str, reason: str) -> None:
        # The connection never opened: report, and let the thread end.
        self.error, self.error_code = reason, code
        log.info("%s", reason)
        self.deliver(Disconnected(reason, code))
        self.finished.set()
        self.stopping = True
        self._stop_deadline = 0.0

    # -- the connection ------------------------------------------------------------------------------

    def drain_outbox(self) -> Peer | None:
        """I/O thread: take every frame the user sent since the last wake-up.  Connected: queue them all
        on the connection and return the peer (flushed once, one syscall for the lot).  Still
        connecting: hold them until the handshake completes."""
        box = self.outbox
        if not box:
            return None
        popleft = box.popleft
        frames = [popleft() for _ in range(len(box))]
        peer = self.peer
        if peer is not None and peer.conn.is_open:
            if peer.conn.send_many(frames):
                self.stats["packets_out"] += len(frames)
                return peer
            return None
        if self.finished.is_set():
            return None
        self.early.extend(frames)
        self.early_bytes += sum(map(len, frames))
        if self.early_bytes > self.max_send_queue:
            self.early.clear()
            if peer is not None:
                self.close_peer(peer, "send_queue_full", "send queue full before the connection opened")
            else:
                self._fail("send_queue_full", "send queue full before the connection opened")
        return None

    def on_event(self, peer: Peer, event: Event) -> None:
        if type(event) is Received:
            self.packet_sink(None)(event.fields, event.size)
        elif isinstance(event, Welcomed):
            self.client_id = event.client_id
            self.send_limit = min(self.send_limit, peer.conn.peer_max_packet_size)
            self.is_connected = True
            for frame in self.early:
                peer.conn.send_data(frame)
                self.stats["packets_out"] += 1
            self.early.clear()
            self.early_bytes = 0
            log.info("connected to %s:%s as client %s", self.host, self.port, event.client_id)
            self.deliver(Connected(event.client_id))
            # Only now may packets go straight to the inbox: any that arrived in the same read as the
            # WELCOME are Received events after this one, so Connected always comes first.
            peer.conn.data_sink = self.packet_sink(None)
            self.connected.set()
        elif isinstance(event, Closed):
            self.is_connected = False
            code = event.code
            if event.by_peer and code in ("closed", "shutdown"):
                reason = event.reason
            elif not event.by_peer and code == "closed":
                reason = "closed by you"
            elif event.by_peer and code in REJECT_CODES:
                reason = f"the server rejected the connection: {event.reason}"
            else:
                reason = event.reason
            self.error, self.error_code = reason, code
            log.info("disconnected from %s:%s: %s", self.host, self.port, reason)
            self.deliver(Disconnected(reason, code))
            self.finished.set()

    def on_peer_closed(self, peer: Peer) -> None:
        # One connection per Sprocket: when it is over, so is the thread.
        self.finished.set()
        if not self.stopping:
            self.stopping = True
            self._stop_deadline = 0.0

    def on_stop(self) -> None:
        if self.connecting is not None:
            self.connecting.close()
            self.connecting = None
        self.is_connected = False
        self.finished.set()

    def on_crash(self) -> None:
        self.error, self.error_code = "internal error in sprocket's I/O thread (see the log)", "lost"
        self.deliver(Disconnected(self.error, "lost"))


class Sprocket(Endpoint):
    """A client: connects to a :class:`~sprocket.Servo` in the background, sends and receives packets.

    The constructor returns at once; ``send()`` before the connection is up queues the packet.  Nothing
    here ever blocks on the network except :meth:`wait_connected` and :meth:`close` (bounded).

    Args:
        host: the server's address or name.
        port: the server's port (default ``DEFAULT_PORT``, 7777).
        name: a display name the server sees as ``client.name``.
        password: the server's password, if it has one (never sent in clear: an HMAC of a nonce is).
        app: your game's name/version; a server with a different ``app`` rejects the connection.
        codec: ``"msgpack"`` (default, safe) or ``"pickle"`` (trusted networks only); both ends must agree.
        max_packet_size: largest encoded packet, in bytes, this end sends or accepts.
        ping_interval: seconds between heartbeats.
        timeout: seconds of silence after which the server is considered gone.
        connect_timeout: seconds allowed for TCP connect plus handshake.
        close_timeout: seconds ``close()`` waits to flush what is queued.
        max_send_queue: bytes that may wait to be sent before the connection is dropped.
        max_inbox_bytes: bytes of received packets held for ``get()`` before reading pauses.
        ssl_context: an ``ssl.SSLContext`` to speak TLS (``server_hostname`` defaults to ``host``).
        on_connect: ``callback(sprocket)``, run inside ``get()`` once connected.
        on_disconnect: ``callback(sprocket, reason)``, run inside ``get()`` when disconnected.

    Raises:
        ValueError: an argument is out of range, or an unknown codec.
    """

    _io: _ClientIO

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        name: str | None = None,
        password: str | None = None,
        app: str | None = None,
        codec: str | Codec = "msgpack",
        max_packet_size: int = 1 << 20,
        ping_interval: float = 1.0,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        close_timeout: float = 1.0,
        max_send_queue: int = 8 << 20,
        max_inbox_bytes: int = 16 << 20,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        on_connect: Callable[[Sprocket], Any] | None = None,
        on_disconnect: Callable[[Sprocket, str], Any] | None = None,
    ) -> None:
        _check_positive(
            max_packet_size=max_packet_size, ping_interval=ping_interval, timeout=timeout,
            connect_timeout=connect_timeout, max_send_queue=max_send_queue, max_inbox_bytes=max_inbox_bytes,
        )  # fmt: skip
        if close_timeout < 0:
            raise InvalidArgument("close_timeout must be >= 0")
        self.host = host
        self.port = int(port)
        self.name = name
        self.codec = get_codec(codec)
        self.max_packet_size = max_packet_size
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self._closed = False
        self._warned_dropping = False
        self._io = _ClientIO(
            host,
            self.port,
            {
                "codec": self.codec, "max_packet_size": max_packet_size, "ping_interval": ping_interval,
                "timeout": timeout, "handshake_timeout": connect_timeout, "password": password, "app": app,
                "name": name, "max_send_queue": max_send_queue, "max_inbox_bytes": max_inbox_bytes,
                "close_timeout": close_timeout, "connect_timeout": connect_timeout,
                "ssl_context": ssl_context, "server_hostname": server_hostname,
            },
        )  # fmt: skip
        self._io.start()
        # Closing on garbage collection and at interpreter exit; the thread holds no reference to self.
        self._finalizer = weakref.finalize(self, _IOStopper(self._io))

    # -- state ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the connection is open (handshake done, not yet lost or closed)."""
        return self._io.is_connected and not self._closed

    @property
    def error(self) -> str | None:
        """Why this client is not connected, in words (None while connecting or connected)."""
        return None if self.connected else self._io.error

    @property
    def id(self) -> int | None:
        """This client's id on the server (None until connected)."""
        return self._io.client_id

    @property
    def rtt(self) -> float | None:
        """Smoothed round-trip time to the server in seconds (None until measured)."""
        peer = self._io.peer
        return peer.conn.rtt if peer is not None else None

    @property
    def jitter(self) -> float:
        """Smoothed variation of the round-trip time, in seconds."""
        peer = self._io.peer
        return peer.conn.jitter if peer is not None else 0.0

    @property
    def clock_offset(self) -> float:
        """Estimated ``server clock - time.monotonic()`` in seconds (0.0 until connected)."""
        peer = self._io.peer
        return peer.conn.clock_offset if peer is not None else 0.0

    def server_time(self) -> float:
        """The server's monotonic clock as estimated now (``time.monotonic() + clock_offset``)."""
        return time.monotonic() + self.clock_offset

    @property
    def stats(self) -> dict[str, int]:
        """Counters since creation: ``bytes_in``, ``bytes_out``, ``packets_in``, ``packets_out``."""
        return dict(self._io.stats)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self.connected else self.error or "connecting"
        return f"<Sprocket {self.host}:{self.port} id={self.id} {state}>"

    # -- sending -------------------------------------------------------------------------------------

    def send(self, **fields: Any) -> None:
        """Send a packet made from keyword arguments: ``s.send(x=3, y=2)``.  Never blocks.

        Before the connection is up the packet waits in a queue; after the connection is lost it is
        dropped (``error`` says why, and the drop is logged once).

        Raises:
            UnsendableValue: a value cannot be encoded (the message names the field and type).
            PacketTooLarge: the encoded packet is over ``max_packet_size``.
            ClosedError: you closed this Sprocket.
        """
        self._send(fields)

    def send_packet(self, packet: Packet | Mapping[str, Any]) -> None:
        """Send a :class:`Packet` (or any mapping of string keys).  Same contract as :meth:`send`."""
        self._send(packet._fields if isinstance(packet, Packet) else dict(packet))

    def _send(self, fields: Mapping[str, Any]) -> None:
        if self._closed:
            raise ClosedError("this Sprocket is closed; make a new one to reconnect")
        payload = encode_packet(self.codec, fields, self._io.send_limit)
        io = self._io
        if io.finished.is_set():
            if not self._warned_dropping:
                self._warned_dropping = True
                log.warning("not connected (%s); dropping packets sent from now on", io.error)
            return
        # The frame skips the command queue: the I/O thread drains the outbox first on every wake-up.
        io.outbox.append(data_frame(payload))
        io.wake()

    # -- waiting and closing ---------------------------------------------------------------------------

    def wait_connected(self, timeout: float | None = None) -> Sprocket:
        """Block until connected, for scripts and tests; returns self.  Games should poll ``connected``.

        ``timeout`` defaults to the ``connect_timeout`` given at construction, plus a second.

        Raises:
            Rejected: the server refused the handshake (``code`` says why).
            ConnectTimeout: not connected within the timeout.
            ConnectionFailed: the connection failed or was lost (``reason`` says why).
            ClosedError: you closed this Sprocket.
        """
        if self._closed:
            raise ClosedError("this Sprocket is closed")
        io = self._io
        if timeout is None:
            timeout = io.connect_timeout + 1.0
        deadline = time.monotonic() + timeout
        while not io.connected.is_set():
            if io.finished.is_set():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectTimeout(f"not connected to {self.host}:{self.port} after {timeout:g} s")
            io.connected.wait(min(remaining, 0.05))
        if io.is_connected:
            return self
        reason = io.error or "connection failed"
        if io.error_code in REJECT_CODES:
            raise Rejected(reason, io.error_code or "rejected")
        if io.error_code == "timeout" and not io.connected.is_set():
            raise ConnectTimeout(reason)
        raise ConnectionFailed(reason)

    def close(self) -> None:
        """Flush what is queued (up to ``close_timeout``), say goodbye, and stop the I/O thread.

        Leaves no thread or socket behind.  Idempotent; ``get()``/``send()`` raise ClosedError afterwards.
        """
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        self._io.stop(wait=True)

    def _seen(self, event: Any) -> None:
        pass

    def _callback(self, event: Any) -> None:
        if isinstance(event, Connected):
            run_callback(self.on_connect, self)
        elif isinstance(event, Disconnected):
            run_callback(self.on_disconnect, self, event.reason)


class _IOStopper:
    """Finalizer callable: stop an I/O thread without referencing its owner.

    From the garbage collector it must not block, so it only asks the thread to stop (the thread still
    says goodbye and closes its sockets).  At interpreter exit, weakref.finalize runs it from atexit,
    where waiting (up to ``close_timeout``) lets queued packets go out first.
    """

    def __init__(self, io: IOThread) -> None:
        self.io = io

    def __call__(self) -> None:
        self.io.stop(wait=_exiting)


_exiting = False


class _Anchor:
    pass


_anchor = _Anchor()
# weakref.finalize registers its atexit hook when the first finalizer is made.  Make one now, then
# register ours after it: atexit runs handlers last-registered-first, so _mark_exit runs before the
# finalizers, which then know they may wait for the flush.
weakref.finalize(_anchor, lambda: None)


@atexit.register
def _mark_exit() -> None:
    global _exiting
    _exiting = True


def _check_positive(**values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise InvalidArgument(f"{key} must be > 0, got {value!r}")
    limit = values.get("max_packet_size")
    if limit is not None and limit < MIN_PACKET_LIMIT:
        raise InvalidArgument(f"max_packet_size must be at least {MIN_PACKET_LIMIT} bytes, got {limit!r}")


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"
