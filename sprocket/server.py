"""``Servo``: the server end, and ``Client``, its handle for each connected Sprocket.

One I/O thread accepts and serves every client (not a thread per client).  The server assigns client
ids and stamps every received packet with its sender, so a client can never pose as another.
This module never calls user code from the I/O thread: callbacks run inside ``get()``.
"""

from __future__ import annotations

import collections
import errno
import hmac
import logging
import selectors
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .codec import Codec, encode_packet, get_codec
from .codes import RESUMABLE, CloseCode
from .endpoint import Endpoint, run_callback
from .errors import ClosedError, ConnectionFailed, InvalidType
from .events import Dropped, Joined, Left, Resumed
from .inbox import Backlog
from .iothread import KICK, IOThread, Peer
from .packet import EncodedPacket, Packet, check_field_names
from .protocol import (
    FRAME_OVERHEAD,
    Closed,
    Connection,
    Event,
    HelloReceived,
    Received,
    ResumeRequest,
    data_frame,
    reject_frame,
)
from .session import Session, new_session_id, new_token, resume_proof
from .settings import DEFAULT_PORT, Settings, check_port

log = logging.getLogger("sprocket")

UNKNOWN_SESSION = "the server does not know this session (it ended, or the server restarted)"
BAD_TOKEN = "the resume token does not match (forged, replayed or out of date)"
# Why recently ended sessions ended, kept so that a late resume hears the real reason.
ENDED_SESSIONS_KEPT = 1024

BUSY_REJECT = reject_frame(CloseCode.BUSY, "the server is busy with other connections; try again in a moment")

__all__ = ["Client", "Servo"]


class Client:
    """The server's handle for one connected client.  Hashable; use it as a dict key.

    The same handle lasts the client's whole session: when its connection drops and it comes back within
    the Servo's ``grace`` period, it is still this object with this ``id`` (``connected`` is false in
    between, and packets sent to it meanwhile are delivered when it is back).

    Attributes:
        id: unique per Servo, assigned by the server (1, 2, 3...).
        ip, port: the client's address (updated when it resumes from another one).
        name: the name the client gave (``Sprocket(name=...)``), or None.
    """

    __slots__ = ("__weakref__", "_io", "_peer", "_session", "id", "ip", "name", "port")

    def __init__(self, io: _ServerIO, peer: Peer, client_id: int, name: str | None) -> None:
        self._io = io
        self._peer = peer
        self._session: Session | None = None
        self.id = client_id
        self.ip: str = peer.addr[0]
        self.port: int = peer.addr[1]
        self.name = name

    @property
    def connected(self) -> bool:
        """True while the client's connection is open (as the I/O thread sees it, which may be ahead of
        events): false once it left, and while it is away during the grace period."""
        return self._peer.conn.is_open

    @property
    def rtt(self) -> float | None:
        """Smoothed round-trip time to this client in seconds (None until measured)."""
        return self._peer.conn.rtt

    @property
    def jitter(self) -> float:
        """Smoothed variation of the round-trip time, in seconds."""
        return self._peer.conn.jitter

    def send(self, **fields: Any) -> None:
        """Send a packet to this client only.  Never blocks.  Kept for delivery while the client is away
        in its grace period; dropped once it has left.

        Raises:
            UnsendableValue: a value cannot be encoded.
            PacketTooLarge: over the server's ``max_packet_size`` (a client that announced a smaller limit
                is disconnected with code ``limit`` instead of this raising).
            ClosedError: the Servo is closed.
        """
        self._send(fields)

    def send_packet(self, packet: Packet | Mapping[str, Any] | EncodedPacket) -> None:
        """Send a :class:`Packet`, a mapping, or an :class:`EncodedPacket` from :meth:`Servo.encode` to
        this client only.  Same contract as :meth:`send`.

        Raises:
            InvalidType: ``packet`` is none of those, or a field name is not a str.
        """
        self._send(packet)

    def _send(self, packet: Packet | Mapping[str, Any] | EncodedPacket) -> None:
        io = self._io
        payload = _payload(io, packet)
        if io.stopping:
            raise ClosedError("the Servo is closed")
        io.send_now(self, payload)

    def kick(self, reason: str = "kicked by the server") -> None:
        """Disconnect this client, telling it ``reason``.  Its leave event follows with code ``kicked`` (at
        once if it is away: its seat is not held any more).

        Raises:
            ClosedError: the Servo is closed.
        """
        self._submit(KICK, self, str(reason)[:500])

    def _submit(self, op: int, target: Any, arg: Any) -> None:
        io = self._io
        if io.stopping:
            raise ClosedError("the Servo is closed")
        io.submit(op, target, arg)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Client {self.id}{name} {self.ip}:{self.port}>"


class _ServerIO(IOThread):
    """The I/O thread of one Servo: accept, handshake, admit or refuse, then shuttle frames."""

    def __init__(self, listener: socket.socket, settings: Settings) -> None:
        super().__init__(f"sprocket-servo-{listener.getsockname()[1]}", settings)
        self.listener = listener
        self.codec: Codec = settings.codec
        self.max_packet_size = settings.max_packet_size
        self.next_id = 1
        self.client_count = 0  # admitted and not yet gone (I/O thread's view)
        self.pending: set[Peer] = set()  # accepted, handshake not finished
        self.pending_per_ip: collections.Counter[str] = collections.Counter()
        self.accept_paused_until = 0.0
        self.refused = 0
        self.sessions: dict[bytes, Client] = {}  # every client holding a resumable session, by session id
        # Recently ended sessions: why, and how (a kicked client must not come back as a new one at once).
        self.ended: collections.OrderedDict[bytes, tuple[str, CloseCode]] = collections.OrderedDict()
        # Sessions held for dropped clients, by address: held seats cost no socket, so they are capped.
        self.away_per_ip: collections.Counter[str] = collections.Counter()
        self.away_from: dict[Client, str] = {}
        self.selector.register(listener, selectors.EVENT_READ, self._on_accept)

    def _on_accept(self, mask: int) -> None:
        for _ in range(64):  # bounded, so a flood cannot starve the other sockets
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: stop accepting briefly instead of spinning on a ready listener.
                    log.warning("cannot accept connections: %s; pausing accepts for 0.5 s", exc)
                    self.selector.unregister(self.listener)
                    self.accept_paused_until = time.monotonic() + 0.5
                return
            self._admit(sock, addr)

    def _admit(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        addr = (addr[0], addr[1])
        settings = self.settings
        crowded = len(self.pending) >= settings.max_pending
        if self.stopping or crowded or self.pending_per_ip[addr[0]] >= settings.max_pending_per_ip:
            # Too many half-open handshakes, in all or from this address: refuse this one outright rather
            # than let a flood queue up (and one address cannot take every slot from the others).  The
            # REJECT is best effort (one non-blocking send of a few bytes into an empty buffer).
            self.refused += 1
            try:
                sock.send(BUSY_REJECT)
            except OSError:
                pass
            sock.close()
            where = "in all" if crowded else f"from {addr[0]}"
            log.info("refused %s:%s: too many connections still handshaking %s", *addr, where)
            return
        ssl_context = self.settings.ssl_context
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS setup failed for %s:%s: %s", addr[0], addr[1], exc)
                sock.close()
                return
        conn = Connection("server", time.monotonic(), self.settings)
        peer = Peer(sock, conn, addr)
        self.pending.add(peer)
        self.pending_per_ip[addr[0]] += 1
        self.add_peer(peer)

    def _handshake_over(self, peer: Peer) -> None:
        if peer in self.pending:
            self.pending.discard(peer)
            ip = peer.addr[0]
            self.pending_per_ip[ip] -= 1
            if self.pending_per_ip[ip] <= 0:
                del self.pending_per_ip[ip]

    def on_housekeeping(self, now: float) -> None:
        if self.accept_paused_until and now >= self.accept_paused_until and not self.stopping:
            self.accept_paused_until = 0.0
            self.selector.register(self.listener, selectors.EVENT_READ, self._on_accept)
        # A session whose buffer overflowed is kept too: the client may turn out to have received what was
        # let go (its acknowledgements were in flight), and only its resume request can tell.
        for client, session in list(self.away.items()):
            assert session.away_since is not None
            if now - session.away_since >= session.grace:
                why = f"did not come back within the {session.grace:g} s grace period"
                self._leave(client, why, CloseCode.TIMEOUT)

    # -- sends and kicks -------------------------------------------------------------------------------

    def route(self, target: Any, payload: bytes) -> Peer | None:
        peer: Peer = target._peer
        if peer.conn.is_open:
            return peer
        session = self.away.get(target)
        if session is not None:
            self.hold(target, session, data_frame(payload))
        return None

    def open_peer(self, target: Any) -> Peer | None:
        """The client's current peer if its connection is open (see :meth:`IOThread.open_peer`)."""
        peer: Peer = target._peer
        return peer if peer.conn.is_open else None

    def hold(self, handle: Any, session: Session, frame: bytes) -> None:
        # Kept for a client away in its grace period: delivered when it comes back, let go if it does not.
        # A packet over the limit it announced could never be delivered: as on an open connection, that
        # ends it (code "limit") instead of breaking the resume later.
        limit = handle._peer.conn.peer_max_packet_size
        size = len(frame) - FRAME_OVERHEAD
        if size > limit:
            why = f"a {size}-byte packet was over its max_packet_size ({limit})"
            self._leave(handle, why, CloseCode.LIMIT)
            return
        session.record(frame)

    def kick(self, target: Any, reason: str) -> Peer | None:
        peer: Peer = target._peer
        if peer.conn.is_open:
            peer.conn.close(CloseCode.KICKED, reason)
            return peer
        if target in self.away:
            self._leave(target, f"kicked while away: {reason}", CloseCode.KICKED)
        return None

    # -- sessions ------------------------------------------------------------------------------------

    def _leave(self, client: Client, reason: str, code: CloseCode) -> None:
        # The client is gone for good: free its seat and tell the application.
        self._forget_session(client, reason, code)
        self.client_count -= 1
        log.info("client %s left: %s", client.id, reason)
        self.inbox.put_event(Left(client, reason, code))

    def _too_many_away(self, ip: str) -> str:
        # Why a dropped client's session cannot be held ("" if it can): a held seat costs no socket, so
        # without caps one address could hold any number of them (and their replay buffers).
        settings = self.settings
        if len(self.away) >= settings.max_held_sessions:
            return f"the server already holds {len(self.away)} dropped sessions (max_held_sessions)"
        if self.away_per_ip[ip] >= settings.max_held_sessions_per_ip:
            return f"the server already holds {self.away_per_ip[ip]} dropped sessions from {ip}"
        return ""

    def _forget_session(self, client: Client, reason: str, code: CloseCode = CloseCode.CLOSED) -> None:
        session = client._session
        if session is None:
            return
        client._session = None
        self._back(client)
        self.sessions.pop(session.id, None)
        self.ended[session.id] = (f"the session ended: {reason}", code)
        if len(self.ended) > ENDED_SESSIONS_KEPT:
            self.ended.popitem(last=False)

    def _resume(self, peer: Peer, request: ResumeRequest) -> None:
        conn = peer.conn
        client = self.sessions.get(request.session_id)
        if client is None:
            self.refused += 1
            why, how = self.ended.get(request.session_id, (UNKNOWN_SESSION, CloseCode.CLOSED))
            log.info("refused a resume from %s:%s: %s", *peer.addr, why)
            # A kicked client is told so, with a refusal that ends it: not "session lost", after which it
            # would join again at once as a new client.
            conn.reject(CloseCode.REJECTED if how is CloseCode.KICKED else CloseCode.SESSION_LOST, why)
            return
        session = client._session
        assert session is not None
        proven = None
        for token in (session.token, session.previous_token):
            if token is not None and hmac.compare_digest(resume_proof(token, conn.nonce), request.proof):
                proven = token
        if proven is None:
            self.refused += 1
            log.warning(
                "refused a resume of client %s from %s:%s: the token does not match", client.id, *peer.addr
            )
            conn.reject(CloseCode.SESSION_LOST, BAD_TOKEN)
            return
        lost_here = request.base > session.received
        if not session.can_replay(request.received) or lost_here or request.sent < session.received:
            if lost_here:
                why = "the client could not keep everything it sent while away (more than its resume_buffer)"
                code = CloseCode.LOST
            elif request.sent < session.received:
                why = f"the client says it sent {request.sent} packets, but {session.received} arrived"
                code = CloseCode.PROTOCOL
            else:
                why = f"more than {session.limit} bytes were queued for it while it was away (resume_buffer)"
                code = CloseCode.SEND_QUEUE_FULL
            conn.reject(CloseCode.SESSION_LOST, f"cannot resume: {why}")
            old = client._peer
            if old.conn.is_open:
                self._forget_session(client, why)
                self.close_peer(old, CloseCode.CLOSED, f"the session ended: {why}")
            else:
                self._leave(client, f"could not resume: {why}", code)
            return
        old = client._peer
        if old.conn.is_open:
            # Half-open: the old connection looks alive but the client has moved on.  The new one wins.
            log.info("client %s resumed while its old connection looked open; closing the old one", client.id)
            old.handle = None
            old.conn.session = None
            self.close_peer(old, CloseCode.CLOSED, "replaced by a newer connection of the same session")
            # The application hears of the drop it could not see, so every Resumed follows a Dropped.
            why = "its connection stopped working (it came back on a new one before this end noticed)"
            self.inbox.put_event(Dropped(client, why, CloseCode.LOST))
        self._back(client)
        session.away_since = None
        # Rotate the secret.  The one just proven stays valid until the client acknowledges the WELCOME
        # that carries the new one (if that WELCOME is lost, the client still holds only the old one).
        session.previous_token = proven
        session.token = new_token()
        client._peer = peer
        client.ip, client.port = peer.addr
        peer.handle = client
        log.info("client %s resumed from %s:%s", client.id, *peer.addr)
        self.inbox.put_event(Resumed(client))
        # The frames the client replays are owed, not a burst: they do not count against the packet rate.
        self._open(peer, client, session, request.received, request.sent - session.received)

    def _back(self, client: Client) -> None:
        # No longer away (resumed, or its seat let go): its held session stops counting against the caps.
        self.away.pop(client, None)
        ip = self.away_from.pop(client, None)
        if ip is not None:
            self.away_per_ip[ip] -= 1
            if self.away_per_ip[ip] <= 0:
                del self.away_per_ip[ip]

    def _open(
        self, peer: Peer, client: Client, session: Session | None, resume_from: int | None, owed: int = 0
    ) -> None:
        limit = self.settings.max_inbox_bytes_per_client
        assert limit is not None
        peer.backlog = Backlog(limit, peer)
        peer.conn.data_sink = self.inbox.sink(client)
        peer.conn.batch_sink = self.inbox.batch_sink(client)
        # accept() parses any frames pipelined behind the HELLO, straight into the inbox through the sink.
        peer.conn.accept(client.id, time.monotonic(), session, resume_from, owed=owed)
        self._refresh_reading(peer)  # now OPEN: a full inbox applies to it as to everyone

    def on_event(self, peer: Peer, event: Event) -> None:
        if type(event) is Received:
            self.inbox.sink(peer.handle)(*event)
        elif isinstance(event, HelloReceived):
            self._handshake_over(peer)
            if peer.conn.closed:
                return
            if event.resume is not None:
                self._resume(peer, event.resume)
                return
            max_clients = self.settings.max_clients
            if max_clients is not None and self.client_count >= max_clients:
                self.refused += 1
                peer.conn.reject(CloseCode.FULL, f"the server is full ({max_clients} players)")
                return
            client_id = self.next_id
            self.next_id += 1
            self.client_count += 1
            client = Client(self, peer, client_id, event.name)
            peer.handle = client
            session = None
            settings = self.settings
            if event.session and settings.grace > 0:
                assert settings.resume_buffer is not None
                session = Session(
                    new_session_id(), new_token(), grace=settings.grace, limit=settings.resume_buffer
                )
                client._session = session
                self.sessions[session.id] = client
            log.info("client %s joined from %s:%s", client_id, *peer.addr)
            self.inbox.put_event(Joined(client))  # first: before any packet pipelined behind the HELLO
            self._open(peer, client, session, None)
        elif isinstance(event, Closed):
            client = peer.handle
            if client is None:
                # Refused, ended during the handshake, or replaced by a resumed connection.
                if peer in self.pending:
                    self._handshake_over(peer)
                    log.info("connection from %s:%s ended during handshake: %s", *peer.addr, event.reason)
                return
            code = event.code
            reason = event.reason if event.by_peer or code is not CloseCode.CLOSED else "closed by the server"
            session = client._session
            if session is not None and code in RESUMABLE and not self.stopping:
                crowded = self._too_many_away(peer.addr[0])
                if crowded:
                    self._leave(client, f"{reason}; its seat was not held: {crowded}", code)
                    return
                session.away_since = time.monotonic()
                self.away[client] = session
                self.away_from[client] = peer.addr[0]
                self.away_per_ip[peer.addr[0]] += 1
                log.info("client %s dropped (%s); holding its seat for %gs", client.id, reason, session.grace)
                self.inbox.put_event(Dropped(client, reason, code))
                return
            self._leave(client, reason, code)

    def on_peer_closed(self, peer: Peer) -> None:
        self._handshake_over(peer)

    def on_stopping(self) -> None:
        for client in list(self.away):
            self._leave(client, "the server is shutting down", CloseCode.SHUTDOWN)
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass
        self.listener.close()

    def on_stop(self) -> None:
        if self.listener.fileno() >= 0:
            self.listener.close()

    def goodbye(self) -> tuple[CloseCode, str]:
        return (CloseCode.SHUTDOWN, "the server is shutting down")

    def on_crash(self) -> None:
        log.error("the server's I/O thread stopped after an internal error")


class Servo(Endpoint):
    """A server: accepts many :class:`~sprocket.Sprocket` clients and exchanges packets with them.

    Binds in the constructor (so a busy port fails right here); everything else happens in one
    background I/O thread.  ``get()`` returns every packet received since the last call, each with
    ``packet.sender`` set to its :class:`Client`.  Joins and leaves arrive in order with the packets:
    as ``on_join(client)`` / ``on_leave(client, reason)`` callbacks run inside ``get()``, or as
    :class:`~sprocket.Joined` / :class:`~sprocket.Left` items from :meth:`events`.  So do drops and
    resumes within the ``grace`` period (``on_drop`` / ``on_resume``, :class:`~sprocket.Dropped` /
    :class:`~sprocket.Resumed`): a dropped client stays in :attr:`clients`, with ``connected`` false.

    Args:
        host: address to listen on; ``"0.0.0.0"`` (default) accepts from the network, ``"127.0.0.1"``
            only from this machine.
        port: port to listen on (default 7777); ``0`` picks a free one, read it from ``servo.port``.
        max_clients: refuse clients past this many (they are told "server full").
        password: clients must give the same password.
        app: clients must give the same ``app`` string (your game's name and version).
        codec: ``"msgpack"`` (default, safe) or ``"pickle"`` (trusted networks only).
        max_packet_size: largest encoded packet, in bytes, sent or accepted.
        ping_interval, timeout: heartbeat period and the silence after which a client is dropped.
        handshake_timeout: seconds a new connection has to complete its handshake.
        close_timeout: seconds ``close()`` waits to flush goodbyes.
        max_send_queue: bytes queued for one client before it is dropped ("send queue full").
        max_inbox_bytes: what received packets may cost in memory (the codec's estimate: 16x their size
            on the wire for small ones) while they wait for ``get()``; past it, reading pauses.
        max_inbox_bytes_per_client: the same for one client (default ``max_inbox_bytes // 4``): past it only
            that client is not read, so one flooding client cannot crowd out the others.
        max_pending: connections allowed to be mid-handshake at once; more are refused ("busy").
        max_pending_per_ip: of those, how many may come from one IP address (default 64).
        max_incomplete_bytes: bytes of unfinished frames held across all clients (default 16 MiB, at least
            ``max_packet_size``); past it the client holding the most is disconnected (code ``limit``).
            Whatever the total, a frame must finish arriving within ``timeout`` seconds.
        max_packets_per_second: disconnect a client that sends more than this (code ``limit``; bursts of up
            to one second's worth are fine).  None (default): no limit.
        ssl_context: an ``ssl.SSLContext`` (server side) to speak TLS.
        grace: seconds a client whose connection dropped (``lost`` or ``timeout``) keeps its seat, its
            ``Client`` handle and its id, waiting for it to resume (default 30; 0: no resuming).  Packets
            sent to it meanwhile are delivered when it is back.  Only clients that ask for a session
            (``Sprocket(reconnect=True)``, the default) get one; a goodbye or a kick always ends it.
        resume_buffer: bytes of sent packets kept per client until it acknowledges them, for replay after
            a resume (default 1 MiB, and at least twice ``max_packet_size``; each packet kept also counts
            64 bytes of bookkeeping).  If what a client missed while away no longer fits, its resume is
            refused and it joins afresh.
        max_held_sessions, max_held_sessions_per_ip: how many dropped clients' seats are held at once, in
            all (default 1024) and from one IP address (default 64); a client dropped beyond either leaves
            at once.  A held seat costs no socket, so without these one address could hold any number.
        on_join: ``callback(client)``, run inside ``get()``.
        on_leave: ``callback(client, reason)``, run inside ``get()``: the client is gone for good.
        on_drop: ``callback(client, reason)``, run inside ``get()``: its connection dropped and its seat
            is held for ``grace`` seconds.
        on_resume: ``callback(client)``, run inside ``get()``: it came back (same handle, nothing lost).

    Raises:
        ConnectionFailed: the address cannot be bound (port in use, bad address).
        InvalidArgument: an argument is out of range (a port outside 0-65535, a negative or non-finite
            duration, a size below its minimum), or an unknown codec.
        InvalidType: an argument has the wrong type.
    """

    _io: _ServerIO

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        *,
        max_clients: int | None = None,
        password: str | None = None,
        app: str | None = None,
        codec: str | Codec = "msgpack",
        max_packet_size: int = 1 << 20,
        ping_interval: float = 1.0,
        timeout: float = 10.0,
        handshake_timeout: float = 5.0,
        close_timeout: float = 1.0,
        max_send_queue: int = 8 << 20,
        max_inbox_bytes: int = 16 << 20,
        max_pending: int = 512,
        max_pending_per_ip: int = 64,
        max_inbox_bytes_per_client: int | None = None,
        max_incomplete_bytes: int = 16 << 20,
        max_packets_per_second: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        grace: float = 30.0,
        resume_buffer: int | None = None,
        max_held_sessions: int = 1024,
        max_held_sessions_per_ip: int = 64,
        on_join: Callable[[Client], Any] | None = None,
        on_leave: Callable[[Client, str], Any] | None = None,
        on_drop: Callable[[Client, str], Any] | None = None,
        on_resume: Callable[[Client], Any] | None = None,
    ) -> None:
        if not isinstance(host, str):
            raise InvalidType(f"host must be a str, got {host!r} ({type(host).__name__})")
        self.settings = Settings(
            codec=get_codec(codec), max_packet_size=max_packet_size, ping_interval=ping_interval,
            timeout=timeout, handshake_timeout=handshake_timeout, close_timeout=close_timeout,
            max_send_queue=max_send_queue, max_inbox_bytes=max_inbox_bytes, password=password, app=app,
            ssl_context=ssl_context,
            max_clients=max_clients, max_pending=max_pending, max_pending_per_ip=max_pending_per_ip,
            max_inbox_bytes_per_client=max_inbox_bytes_per_client, max_incomplete_bytes=max_incomplete_bytes,
            max_packets_per_second=max_packets_per_second, grace=grace, resume_buffer=resume_buffer,
            max_held_sessions=max_held_sessions, max_held_sessions_per_ip=max_held_sessions_per_ip,
        )  # fmt: skip
        self.codec = self.settings.codec
        self.max_packet_size = max_packet_size
        self.on_join = on_join
        self.on_leave = on_leave
        self.on_drop = on_drop
        self.on_resume = on_resume
        self.clients: list[Client] = []
        listener = _listen(host, check_port("port", port))
        self.host = host
        self.port: int = listener.getsockname()[1]
        self._start(_ServerIO(listener, self.settings))

    @property
    def stats(self) -> dict[str, int]:
        """Counters since start: ``bytes_in``, ``bytes_out``, ``packets_in``, ``packets_out``, ``refused``."""
        stats = self._stats()
        stats["refused"] = self._io.refused
        return stats

    def encode(self, fields: Mapping[str, Any] | Packet) -> EncodedPacket:
        """Encode a packet once, to send it to many clients with ``send_packet``/``sendall_packet``.

        Raises:
            UnsendableValue: a value cannot be encoded (the message names the field).
            PacketTooLarge: the encoded packet is over ``max_packet_size``.
            InvalidType: ``fields`` is not a mapping, or a field name is not a str.
        """
        if isinstance(fields, Packet):
            fields = fields._fields
        elif not isinstance(fields, Mapping):
            raise InvalidType(f"encode() takes a Packet or a mapping, got {type(fields).__name__}")
        else:
            check_field_names(fields)
        payload = encode_packet(self.codec, fields, self.max_packet_size)
        return EncodedPacket(data_frame(payload), len(payload))

    def sendall(self, **fields: Any) -> None:
        """Send one packet, made from keyword arguments, to every connected client.  Encoded once.

        Raises:
            UnsendableValue, PacketTooLarge, ClosedError: as for :meth:`Client.send`.
        """
        self._broadcast(fields, frozenset())

    def sendall_packet(
        self, packet: Packet | Mapping[str, Any] | EncodedPacket, exclude: Iterable[Client] | Client = ()
    ) -> None:
        """Send a packet (or an :class:`EncodedPacket` from :meth:`encode`) to every connected client
        except those in ``exclude`` (a client or several).

        Raises:
            UnsendableValue, PacketTooLarge, ClosedError: as for :meth:`Client.send`.
            InvalidType: ``packet`` is not a Packet, a mapping or an EncodedPacket, or a field name is
                not a str.
        """
        excluded = frozenset((exclude,)) if isinstance(exclude, Client) else frozenset(exclude)
        self._broadcast(packet, excluded)

    def _broadcast(
        self, packet: Packet | Mapping[str, Any] | EncodedPacket, exclude: frozenset[Client]
    ) -> None:
        self._check_open()
        self._io.broadcast_now(exclude, _frame(self._io, packet))

    def close(self) -> None:
        """Say goodbye to every client (reason "the server is shutting down"), flush up to
        ``close_timeout``, stop listening and stop the I/O thread.  Idempotent; leaves no thread or socket.
        """
        super().close()

    def _seen(self, event: Any) -> None:
        if isinstance(event, Joined):
            self.clients.append(event.client)
        elif isinstance(event, Left):
            try:
                self.clients.remove(event.client)
            except ValueError:
                pass

    def _callback(self, event: Any) -> None:
        if isinstance(event, Joined):
            run_callback(self.on_join, event.client)
        elif isinstance(event, Left):
            run_callback(self.on_leave, event.client, event.reason)
        elif isinstance(event, Dropped):
            run_callback(self.on_drop, event.client, event.reason)
        elif isinstance(event, Resumed):
            run_callback(self.on_resume, event.client)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.clients)} clients"
        return f"<Servo {self.host}:{self.port} {state}>"


def _frame(io: _ServerIO, packet: Packet | Mapping[str, Any] | EncodedPacket) -> bytes:
    # A broadcast's DATA frame (shared by every connection): see _payload.
    if type(packet) is EncodedPacket:
        return packet.frame
    return data_frame(_payload(io, packet))


def _payload(io: _ServerIO, packet: Packet | Mapping[str, Any] | EncodedPacket) -> bytes:
    # The one place a server-side packet is encoded (or taken as already encoded) and size-checked, in the
    # caller's thread, so a bad value raises right there.
    if type(packet) is EncodedPacket:
        return packet.frame[FRAME_OVERHEAD:]
    if isinstance(packet, Packet):
        fields: Mapping[str, Any] = packet._fields
    elif isinstance(packet, Mapping):
        check_field_names(packet)
        fields = packet
    else:
        raise InvalidType(f"expected a Packet, a mapping or an EncodedPacket, got {type(packet).__name__}")
    return encode_packet(io.codec, fields, io.max_packet_size)


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConnectionFailed(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = (
            "; is another server running there? use another port (0 picks a free one)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise ConnectionFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    return sock
