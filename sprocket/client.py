"""``Sprocket``: the client end.  Connects in the background; ``get()`` and ``send()`` never block.

This module glues the codec, the protocol and the I/O thread together for one outgoing connection.
It never calls user code from the I/O thread: callbacks run inside ``get()`` in the user's thread.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .codec import Codec, get_codec, packet_too_large
from .codes import RESUMABLE, CloseCode
from .endpoint import Endpoint, run_callback
from .errors import ClosedError, ConnectionFailed, ConnectTimeout, InvalidArgument, InvalidType, Rejected
from .events import Connected, Disconnected, Reconnected, Reconnecting
from .iothread import IOThread, Peer, is_connect_in_progress
from .packet import Packet, check_field_names
from .protocol import FRAME_OVERHEAD, Closed, Connection, Event, Received, Welcomed, data_frame
from .session import Session
from .settings import DEFAULT_PORT, Settings, check_duration, check_port

log = logging.getLogger("sprocket")

__all__ = ["DEFAULT_PORT", "Sprocket"]

# Reconnecting: the first attempt comes after about this long, each failed one doubles the wait up to
# RECONNECT_MAX_DELAY, and each wait is shortened by a random part of itself (jitter: many clients dropped
# by one outage do not all come back in the same instant).
RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 4.0


class _ClientIO(IOThread):
    """The I/O thread of one Sprocket: resolve, connect, handshake, then shuttle frames."""

    def __init__(
        self, host: str, port: int, settings: Settings, source_address: tuple[str, int] | None = None
    ) -> None:
        super().__init__(f"sprocket-client-{host}:{port}", settings)
        self.source_address = source_address
        # No strong reference back to the Sprocket: an unclosed, forgotten Sprocket must be collectable.
        self.host = host
        self.port = port
        self.connect_timeout = settings.handshake_timeout
        self.peer: Peer | None = None
        self.connecting: socket.socket | None = None
        self.connect_deadline = 0.0
        self.send_limit = settings.max_packet_size  # lowered to the server's limit on WELCOME
        self.early: list[bytes] = []  # packets (payloads) sent before the handshake completed
        self.early_bytes = 0
        self.connected = threading.Event()
        self.finished = threading.Event()  # the connection is over (or never happened)
        self.is_connected = False
        self.error: str | None = None
        self.error_code: CloseCode | None = None
        self.rejected = False
        self.client_id: int | None = None
        # Reconnecting (I/O thread writes, the user's thread reads the flag).
        self.session: Session | None = None  # the session to resume, once a WELCOME offered one
        self.reconnecting = False
        self.drop: tuple[str, CloseCode] | None = None  # why the connection dropped
        self.give_up_at = 0.0
        self.next_attempt: float | None = None
        self.delay = RECONNECT_FIRST_DELAY
        self.attempts = 0

    # -- connecting ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        self._connect()

    def _connect(self) -> None:
        self.connect_deadline = time.monotonic() + self.connect_timeout
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self._fail(CloseCode.REFUSED, f"cannot resolve {self.host!r}: {exc}")
            return
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        if self.source_address is not None:
            try:
                sock.bind(self.source_address)
            except OSError as exc:
                sock.close()
                self._fail(
                    CloseCode.REFUSED,
                    f"cannot bind to {self.source_address[0]}:{self.source_address[1]}: {exc}",
                )
                return
        code = sock.connect_ex(addr)
        if not is_connect_in_progress(code):
            sock.close()
            self._fail(CloseCode.REFUSED, f"cannot connect to {self.host}:{self.port}: {_strerror(code)}")
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
            self._fail(
                CloseCode.REFUSED, f"cannot connect to {self.host}:{self.port}: {_strerror(code)}{hint}"
            )
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        addr = sock.getpeername()[:2]
        settings = self.settings
        if settings.ssl_context is not None:
            try:
                sock = settings.ssl_context.wrap_socket(
                    sock,
                    server_hostname=settings.server_hostname or self.host,
                    do_handshake_on_connect=False,
                )
            except (ssl.SSLError, OSError, ValueError) as exc:
                sock.close()
                self._fail(CloseCode.REFUSED, f"TLS setup failed: {exc}")
                return
        conn = Connection("client", time.monotonic(), settings, session=self.session)
        self.peer = Peer(sock, conn, addr)
        self.add_peer(self.peer)

    def on_housekeeping(self, now: float) -> None:
        attempt = self.next_attempt
        if attempt is not None and now >= attempt and not self.stopping:
            self.next_attempt = None
            self.attempts += 1
            self.error = f"{self._drop_reason()}; reconnecting (attempt {self.attempts})"
            self._connect()
        if self.connecting is not None and now >= self.connect_deadline:
            sock, self.connecting = self.connecting, None
            self.selector.unregister(sock)
            sock.close()
            self._fail(
                CloseCode.TIMEOUT,
                f"could not connect to {self.host}:{self.port} within {self.connect_timeout:g} s",
            )
        if self.next_attempt is not None:
            self.run_timers_at(self.next_attempt)  # this pass reset the timer to the regular beat

    def _fail(self, code: CloseCode, reason: str) -> None:
        if self.reconnecting:
            self._retry_later(reason)
            return
        self._give_up(code, reason)

    def _give_up(self, code: CloseCode, reason: str, rejected: bool = False) -> None:
        # No connection, and none coming: report, and let the thread end.
        self.rejected = rejected
        self.error, self.error_code = reason, code
        self.reconnecting = False
        self.next_attempt = None
        log.info("%s", reason)
        self.inbox.put_event(Disconnected(reason, code, rejected))
        self.finished.set()
        self.stopping = True
        self._stop_deadline = 0.0

    # -- reconnecting --------------------------------------------------------------------------------

    def _drop_reason(self) -> str:
        return self.drop[0] if self.drop is not None else "connection lost"

    def _dropped(self, reason: str, code: CloseCode) -> None:
        # The open connection dropped and the session can be resumed: get it back.
        session = self.session
        assert session is not None
        now = time.monotonic()
        # The user's thread reads these flags without a lock: it must never see "neither connected nor
        # reconnecting" while we are about to reconnect, so the new state is set before the old is cleared.
        self.error, self.error_code = f"{reason}; reconnecting", code
        self.reconnecting = True
        self.is_connected = False
        self.drop = (reason, code)
        # Past the grace period the server has let the session go; a little more covers clock skew and the
        # time it took us to notice.
        self.give_up_at = now + session.grace + self.connect_timeout
        self.delay = RECONNECT_FIRST_DELAY
        self.attempts = 0
        self.connected.clear()
        log.info("connection to %s:%s dropped (%s); reconnecting", self.host, self.port, reason)
        self.inbox.put_event(Reconnecting(reason, code))
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        delay = self.delay * (0.5 + 0.5 * random.random())
        self.delay = min(self.delay * 2, RECONNECT_MAX_DELAY)
        self.next_attempt = min(now + delay, max(now, self.give_up_at))
        self.run_timers_at(self.next_attempt)

    def _retry_later(self, reason: str) -> None:
        # One attempt failed (refused, timed out, dropped during the handshake): try again, or give up.
        now = time.monotonic()
        log.info("reconnect attempt %d to %s:%s failed: %s", self.attempts, self.host, self.port, reason)
        if now >= self.give_up_at:
            grace = self.session.grace if self.session is not None else 0.0
            drop_reason, drop_code = self.drop or (reason, CloseCode.LOST)
            self.session = None
            self._give_up(
                drop_code,
                f"{drop_reason}; could not reconnect within the server's {grace:g} s grace period "
                f"(last attempt: {reason})",
            )
            return
        self.error = f"{self._drop_reason()}; reconnecting (attempt {self.attempts} failed: {reason})"
        self._schedule(now)

    def _resume_refused(self, reason: str) -> None:
        # The server no longer holds the session: join afresh, as a new client.
        session = self.session
        lost = session.sent - session.peer_acked if session is not None else 0
        self.session = None
        self.client_id = None
        if lost > 0:
            reason += f"; {lost} packet(s) sent while away may not have arrived"
        log.info("could not resume the session with %s:%s (%s); joining afresh", self.host, self.port, reason)
        self.rejected = True
        self.inbox.put_event(
            Disconnected(
                f"could not resume: {reason}; joining again as a new client", CloseCode.SESSION_LOST, True
            )
        )
        self.next_attempt = time.monotonic()
        self.run_timers_at(self.next_attempt)

    # -- the connection ------------------------------------------------------------------------------

    def route(self, target: Any, payload: bytes) -> Peer | None:
        """I/O thread: a packet from send() goes to the server once connected; until then it waits (in the
        session while reconnecting, to be replayed)."""
        peer = self.peer
        if peer is not None and peer.conn.is_open:
            return peer
        if self.finished.is_set():
            return None
        session = self.session
        if session is not None and self.reconnecting:
            session.record(data_frame(payload))
            return None
        self.early.append(payload)
        self.early_bytes += len(payload) + FRAME_OVERHEAD
        if self.early_bytes > self.max_send_queue:
            self.early.clear()
            reason = "send queue full before the connection opened"
            if peer is not None:
                self.close_peer(peer, CloseCode.SEND_QUEUE_FULL, reason)
            else:
                self._fail(CloseCode.SEND_QUEUE_FULL, reason)
        return None

    def open_peer(self, target: Any) -> Peer | None:
        """The server's peer while the connection is open (see :meth:`IOThread.open_peer`)."""
        peer = self.peer
        return peer if peer is not None and peer.conn.is_open else None

    def on_event(self, peer: Peer, event: Event) -> None:
        if type(event) is Received:
            self.inbox.sink(None)(*event)
        elif isinstance(event, Welcomed):
            self.send_limit = min(self.send_limit, peer.conn.peer_max_packet_size)
            self.is_connected = True
            self.reconnecting = False
            self.next_attempt = None
            self.error = self.error_code = None
            self.rejected = False
            if event.resumed:
                log.info("reconnected to %s:%s: session resumed", self.host, self.port)
                self.inbox.put_event(Reconnected())
            else:
                self.client_id = event.client_id
                self.session = peer.conn.session
                self.stats["packets_out"] += peer.conn.send_payloads(self.early)
                self.early.clear()
                self.early_bytes = 0
                log.info("connected to %s:%s as client %s", self.host, self.port, event.client_id)
                self.inbox.put_event(Connected(event.client_id))
            # Only now may packets go straight to the inbox: any that arrived in the same read as the
            # WELCOME are Received events after this one, so Connected always comes first.
            peer.conn.data_sink = self.inbox.sink(None)
            peer.conn.batch_sink = self.inbox.batch_sink(None)
            self._refresh_reading(peer)  # now OPEN: a full inbox applies to it
            self.connected.set()
        elif isinstance(event, Closed):
            was_open = self.is_connected
            if self.reconnecting and not self.stopping:
                # An attempt ended before its WELCOME.
                if event.rejected and event.code is CloseCode.SESSION_LOST:
                    self._resume_refused(event.reason)
                elif event.rejected and event.code is not CloseCode.BUSY:
                    self.session = None
                    self._give_up(event.code, f"the server rejected the connection: {event.reason}", True)
                else:
                    self._retry_later(event.reason)
                return
            if (
                was_open
                and self.session is not None
                and self.settings.reconnect
                and event.code in RESUMABLE
                and not self.stopping
            ):
                self._dropped(event.reason, event.code)
                return
            code = event.code
            self.is_connected = False
            if event.rejected:
                reason = f"the server rejected the connection: {event.reason}"
            elif not event.by_peer and code is CloseCode.CLOSED:
                reason = "closed by you"
            else:
                reason = event.reason
            self.error, self.error_code, self.rejected = reason, code, event.rejected
            log.info("disconnected from %s:%s: %s", self.host, self.port, reason)
            self.inbox.put_event(Disconnected(reason, code, event.rejected))
            self.finished.set()

    def on_peer_closed(self, peer: Peer) -> None:
        # When the connection is over, so is the thread, unless it is being got back.
        if peer is not self.peer or (self.reconnecting and not self.stopping):
            return
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
        self.error, self.error_code = "internal error in sprocket's I/O thread (see the log)", CloseCode.LOST
        self.inbox.put_event(Disconnected(self.error, CloseCode.LOST))


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
        max_inbox_bytes: what received packets may cost in memory (the codec's estimate: 16x their size
            on the wire for small ones) while they wait for ``get()``; past it, reading pauses.
        ssl_context: an ``ssl.SSLContext`` to speak TLS (``server_hostname`` defaults to ``host``).
        source_address: ``(host, port)`` to connect from (e.g. ``("127.0.0.2", 0)``, or one network card's
            address); default: let the system choose.
        reconnect: when an open connection drops (``lost`` or ``timeout``, not a goodbye or a kick), get it
            back by itself (default True): retry after about 0.1 s, doubling up to 4 s with jitter, for as
            long as the server holds the session (its ``grace``), and resume it: the same ``id``, and
            every packet sent either way meanwhile delivered once, in order.  If the server no longer holds
            the session, a :class:`~sprocket.Disconnected` (code ``session_lost``) is followed by a fresh
            join as a new client.  False: a drop ends the connection, as a goodbye does.
        resume_buffer: bytes of sent packets kept until the server acknowledges them, for replay after a
            resume (default 1 MiB, and at least twice ``max_packet_size``).
        on_connect: ``callback(sprocket)``, run inside ``get()`` once connected.
        on_disconnect: ``callback(sprocket, reason)``, run inside ``get()`` when disconnected.
        on_drop: ``callback(sprocket, reason)``, run inside ``get()`` when the connection dropped and the
            Sprocket is reconnecting.
        on_resume: ``callback(sprocket)``, run inside ``get()`` when it is back, the session resumed.

    Raises:
        InvalidArgument: an argument is out of range (a port outside 0-65535, a negative or non-finite
            duration, a size below its minimum), or an unknown codec.
        InvalidType: an argument has the wrong type.
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
        source_address: tuple[str, int] | None = None,
        reconnect: bool = True,
        resume_buffer: int | None = None,
        on_connect: Callable[[Sprocket], Any] | None = None,
        on_disconnect: Callable[[Sprocket, str], Any] | None = None,
        on_drop: Callable[[Sprocket, str], Any] | None = None,
        on_resume: Callable[[Sprocket], Any] | None = None,
    ) -> None:
        if not isinstance(host, str):
            raise InvalidType(f"host must be a str, got {host!r} ({type(host).__name__})")
        self.settings = Settings(
            codec=get_codec(codec), max_packet_size=max_packet_size, ping_interval=ping_interval,
            timeout=timeout, handshake_timeout=check_duration("connect_timeout", connect_timeout),
            close_timeout=close_timeout, max_send_queue=max_send_queue, max_inbox_bytes=max_inbox_bytes,
            password=password, app=app, name=name,
            ssl_context=ssl_context, server_hostname=server_hostname, reconnect=reconnect,
            resume_buffer=resume_buffer,
        )  # fmt: skip
        self.host = host
        self.port = check_port("port", port)
        self.name = name
        self.codec = self.settings.codec
        self._encode = self.codec.encode
        self.max_packet_size = max_packet_size
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_drop = on_drop
        self.on_resume = on_resume
        self._warned_dropping = False
        if source_address is not None:
            if not (
                isinstance(source_address, tuple)
                and len(source_address) == 2
                and isinstance(source_address[0], str)
            ):
                raise InvalidType(f"source_address must be a (host, port) tuple, got {source_address!r}")
            source_address = (source_address[0], check_port("source_address port", source_address[1]))
        self._start(_ClientIO(host, self.port, self.settings, source_address))

    # -- state ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the connection is open (handshake done, not lost, not closed; false while
        reconnecting)."""
        return self._io.is_connected and not self._closed

    @property
    def reconnecting(self) -> bool:
        """True while the connection is down and the Sprocket is getting it back (see ``reconnect``).
        Never true at the same time as :attr:`connected`."""
        io = self._io
        return io.reconnecting and not io.is_connected and not self._closed

    @property
    def grace(self) -> float | None:
        """Seconds the server holds this client's session after a drop (its ``grace``), or None without a
        session (not connected yet, ``reconnect=False``, or a server with ``grace=0``)."""
        session = self._io.session
        return session.grace if session is not None else None

    @property
    def error(self) -> str | None:
        """Why this client is not connected, in words (None while connecting or connected).  While
        reconnecting it says what happened and that it is reconnecting."""
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
        return self._stats()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self.connected else self.error or "connecting"
        return f"<Sprocket {self.host}:{self.port} id={self.id} {state}>"

    # -- sending -------------------------------------------------------------------------------------

    def send(self, /, **fields: Any) -> None:
        """Send a packet made from keyword arguments: ``s.send(x=3, y=2)``.  Never blocks.

        Before the connection is up the packet waits in a queue, and while reconnecting it is kept for
        the resumed session; once the connection is over for good it is dropped (``error`` says why, and
        the drop is logged once).

        Raises:
            UnsendableValue: a value cannot be encoded (the message names the field and type).
            PacketTooLarge: the encoded packet is over ``max_packet_size``.
            ClosedError: you closed this Sprocket.
        """
        # Every packet's path: encode_packet and the rest inlined, one Python call fewer each.
        if self._closed:
            raise ClosedError("this Sprocket is closed; make a new one to reconnect")
        io = self._io
        payload = self._encode(fields)
        if len(payload) > io.send_limit:
            raise packet_too_large(len(payload), io.send_limit)
        if io.finished.is_set():
            self._dropping()
            return
        io.send_now(None, payload)

    def send_packet(self, packet: Packet | Mapping[str, Any]) -> None:
        """Send a :class:`Packet` (or any mapping of string keys).  Same contract as :meth:`send`.

        Raises:
            InvalidType: ``packet`` is not a Packet or a mapping, or a field name is not a str.
        """
        if isinstance(packet, Packet):
            self.send(**packet._fields)
        elif isinstance(packet, Mapping):
            check_field_names(packet)
            self.send(**packet)
        else:
            raise InvalidType(f"send_packet() takes a Packet or a mapping, got {type(packet).__name__}")

    def _dropping(self) -> None:
        # A packet sent after the connection ended for good: dropped, and said once.
        if not self._warned_dropping:
            self._warned_dropping = True
            log.warning("not connected (%s); dropping packets sent from now on", self._io.error)

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
        timeout = io.connect_timeout + 1.0 if timeout is None else check_duration("timeout", timeout)
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
        if io.rejected:
            raise Rejected(reason, io.error_code or CloseCode.REJECTED)
        if io.error_code is CloseCode.TIMEOUT and not io.connected.is_set():
            raise ConnectTimeout(reason)
        raise ConnectionFailed(reason)

    def close(self, code: CloseCode | str = CloseCode.CLOSED, reason: str = "closed") -> None:
        """Flush what is queued (up to ``close_timeout``), say goodbye with ``code`` and ``reason``, and stop
        the I/O thread.

        ``code`` tells the server why: ``closed`` (the default), or ``protocol`` (it sent something this
        client could not accept), ``timeout``, ``limit`` or ``send_queue_full``; ``reason`` is a sentence
        for its logs.  Leaves no thread or socket behind.  Idempotent; ``get()``/``send()`` raise
        ClosedError afterwards.

        While :attr:`reconnecting` there is no connection to flush to or say goodbye on: packets sent
        while away are dropped (a warning says how many), and the server holds the seat until its grace
        period ends.

        Raises:
            InvalidArgument: ``code`` is not one a client may say (see :class:`~sprocket.CloseCode`).
        """
        word = CloseCode.from_wire(code, CloseCode.REFUSED)
        if not word.peer_may_say:
            raise InvalidArgument(
                f"a client cannot close with code {code!r}; use closed, protocol, timeout or limit"
            )
        if not isinstance(reason, str):
            raise InvalidType(f"reason must be a str, got {reason!r}")
        if self._closed:
            return
        io = self._io
        session = io.session
        if io.reconnecting and session is not None and session.sent > session.peer_acked:
            log.warning(
                "closed while reconnecting: up to %d packet(s) the server had not acknowledged may not have "
                "arrived, and the server holds this client's seat until its grace period ends",
                session.sent - session.peer_acked,
            )
        self._closed = True
        self._finalizer.detach()
        self._io.stop(
            wait=True,
            goodbye=None if word is CloseCode.CLOSED and reason == "closed" else (word, reason[:500]),
        )

    def _callback(self, event: Any) -> None:
        if isinstance(event, Connected):
            run_callback(self.on_connect, self)
        elif isinstance(event, Disconnected):
            run_callback(self.on_disconnect, self, event.reason)
        elif isinstance(event, Reconnecting):
            run_callback(self.on_drop, self, event.reason)
        elif isinstance(event, Reconnected):
            run_callback(self.on_resume, self)


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"
