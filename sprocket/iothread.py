"""The background I/O thread shared by :class:`~sprocket.Sprocket` and :class:`~sprocket.Servo`.

One thread runs a ``selectors`` loop over every socket plus a wake-up socketpair.  It owns the sockets and
the protocol objects.  The user's thread talks to it through two thread-safe queues: the ``outbox`` (user
-> I/O thread: sends, kicks and the stop request, in the order they were made, followed by
:meth:`IOThread.wake`) and the :class:`~sprocket.inbox.Inbox` (I/O thread -> user), so nothing the user
calls ever waits on the network.  One shortcut: while the I/O thread is idle in ``select()`` (its
``lock`` is free) and nothing is queued, a send may be written straight from the user's thread, under
that lock (:meth:`IOThread.send_now`); the user's thread only ever *tries* the lock.

Memory is bounded both ways:

* outbound, per peer: bytes waiting for a socket that cannot keep up are capped at ``max_send_queue``;
  past that the peer is dropped with the reason "send queue full" and nobody else slows down;
* inbound: when the user has not collected ``max_inbox_bytes`` of received packets, the thread stops
  reading sockets and lets TCP push back on the senders, instead of dropping anything.

This module never calls user code and never blocks outside ``select``.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import ssl
import threading
import time
from typing import Any

from .codes import CloseCode
from .inbox import Backlog, Inbox
from .protocol import FRAME_OVERHEAD, Closed, Connection, Event, data_frame
from .session import Session
from .settings import Settings

log = logging.getLogger("sprocket")
_clock = time.perf_counter

__all__ = ["BROADCAST", "FLUSH", "KICK", "SEND", "STOP", "IOThread", "Peer"]

# Bytes read from one socket per turn of the loop: every ready socket gets its turn before any gets a
# second, so one flooding peer costs the others at most this much parsing and decoding per turn.
RECV_SIZE = 32 * 1024
HOUSEKEEPING_INTERVAL = 0.05
LINGER = 2.0  # seconds a closing socket may take to flush its goodbye
# A user thread writes a frame itself (send_now) only if no frame was sent for this long: in a burst, the
# frames after the first are handed to the I/O thread, which writes all it has for a peer with one send().
DIRECT_SEND_GAP = 20e-6

# What the user's thread puts in the outbox: (op, target, arg) tuples, handled in order.
SEND = 1  # (SEND, handle or None, payload): route() says which peer; None means "the one peer" (a Sprocket's)
BROADCAST = 2  # (BROADCAST, excluded handles, frame): every admitted peer but those, and every session away
KICK = 3  # (KICK, handle, reason): say goodbye with code "kicked" (kick() says how)
STOP = 4  # (STOP, None, goodbye or None): goodbye to everyone, flush, end the thread
FLUSH = 5  # (FLUSH, peer, None): a send from the user's thread left bytes in peer.out; write them


class Peer:
    """The I/O thread's record of one socket: the socket, its protocol object and its write buffer."""

    __slots__ = (
        "addr", "backlog", "buffered", "conn", "handle", "linger_until", "out", "paused", "shut_down", "sock",
        "tls_handshaking", "want_write",
    )  # fmt: skip

    def __init__(self, sock: socket.socket, conn: Connection, addr: tuple[str, int]) -> None:
        self.sock = sock
        self.conn = conn
        self.addr = addr
        self.out = bytearray()
        self.handle: Any = None
        self.want_write = False
        self.paused = False  # not reading: the whole inbox or this peer's backlog is full
        self.backlog: Backlog | None = None  # a server's client: its share of the inbox
        self.buffered = 0  # bytes of an incomplete frame held by conn, as of the last read
        self.linger_until = 0.0
        self.shut_down = False
        self.tls_handshaking = isinstance(sock, ssl.SSLSocket)


class IOThread:
    """A selector loop in one daemon thread.  Subclasses handle protocol events (``on_event``) and peers
    going away (``on_peer_closed``); everything here runs in the I/O thread unless it says otherwise."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.settings = settings
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.outbox: collections.deque[tuple[int, Any, Any]] = collections.deque()
        # Held by the I/O thread whenever it is not waiting in select(), and by a user thread sending
        # straight from its own thread (send_now): whoever holds it may touch the peers, their Connections
        # and sessions, and `stats`.  The user's thread only ever tries it (never waits for it).
        self.lock = threading.Lock()
        self.inbox = Inbox(settings.max_inbox_bytes)
        self.inbox.set_reading = self._set_reading
        self.inbox.set_peer_reading = self._set_peer_reading
        self.inbox.wake = self.wake
        self.incomplete_bytes = 0  # sum of every peer's `buffered`: incomplete frames held in memory
        self._wake_pending = False
        self._last_send = 0.0  # user thread: when send_now was last called (perf_counter)
        self._last_broadcast = 0.0  # user thread: when broadcast_now was last called (perf_counter)
        self.peers: dict[int, Peer] = {}  # by file descriptor
        # Sessions whose connection dropped and that wait for a resume, by handle: broadcasts are kept
        # for them (a Servo's clients in their grace period).
        self.away: dict[Any, Session] = {}
        self.max_send_queue = settings.max_send_queue
        self.close_timeout = settings.close_timeout
        self.stopping = False
        self._stop_deadline = 0.0
        self._next_housekeeping = 0.0
        # bytes_in/out and packets_out; packets_in is the inbox's packets_out (counted by the user thread).
        self.stats = {"bytes_in": 0, "bytes_out": 0, "packets_out": 0}
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- called from the user's thread ---------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (user thread)."""
        self.thread.start()

    def wake(self) -> None:
        """Make the I/O thread look at the outbox soon (user thread; cheap when already pending)."""
        # The flag saves a syscall per send under load.  The I/O thread clears it *before* draining the
        # outbox, so an item appended after the drain started always gets its own wake-up.
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # already full of wake-ups, or closed during shutdown: either way nothing is lost

    def submit(self, op: int, target: Any, arg: Any) -> None:
        """Queue one outbox item (``SEND``, ``BROADCAST``, ``KICK`` or ``STOP``) and wake the thread
        (user thread)."""
        self.outbox.append((op, target, arg))
        self.wake()

    def send_now(self, target: Any, payload: bytes) -> None:
        """Send one packet (an encoded payload) to ``target`` as a ``SEND`` item would (user thread), from
        this thread when it can: if the I/O thread is not busy (the lock is free), nothing is queued in the
        outbox (order), and ``target``'s connection is open with nothing older waiting to be written, the
        packet's DATA frame is counted and recorded by its Connection and written with one non-blocking
        ``send()`` right here, with no wake-up and no hand-off; the I/O thread gets only what the socket
        did not take.  Otherwise it is queued with :meth:`submit`.  Never blocks."""
        outbox = self.outbox
        if not outbox:  # (in a burst the outbox is seldom empty: no need to read the clock)
            now = _clock()
            if now - self._last_send >= DIRECT_SEND_GAP and self.lock.acquire(False):
                self._last_send = now
                try:
                    if not outbox and not self.stopping:
                        peer = self.open_peer(target)
                        if peer is not None and self._send_direct(peer, payload):
                            return
                finally:
                    self.lock.release()
            else:
                self._last_send = now
        outbox.append((SEND, target, payload))  # submit(), inlined: this is every send's path
        if not self._wake_pending:
            self.wake()

    def _send_direct(self, peer: Peer, payload: bytes) -> bool:
        # The lock is held.  Only the common case goes here: one that cannot raise, close the connection or
        # produce events (those stay in the I/O thread); False sends nothing and changes nothing.
        conn = peer.conn
        if (
            peer.out
            or peer.linger_until
            or peer.tls_handshaking
            or not conn.is_open
            or len(payload) > conn.peer_max_packet_size
        ):
            return False
        conn.send_data(data_frame(payload))  # counts and records it in the session, as from the I/O thread
        data = conn.data_to_send()  # with anything the Connection queued before it (an ACK, a PONG)
        self.stats["packets_out"] += 1
        if self._write_direct(peer, data):
            self.wake()
        return True

    def _write_direct(self, peer: Peer, data: bytes) -> bool:
        # The lock is held, peer.out is empty: one non-blocking send() of `data`, counted.  What the socket
        # does not take goes to peer.out with a FLUSH item for the I/O thread; True then (the caller wakes
        # it, once for however many peers).
        try:
            sent = peer.sock.send(data)
        except OSError:  # would block (BlockingIOError, SSLWant*), interrupted, or the socket failed:
            sent = 0  # the I/O thread writes it, or meets the failure itself and handles it
        self.stats["bytes_out"] += sent
        if sent < len(data):
            peer.out += memoryview(data)[sent:]
            self.outbox.append((FLUSH, peer, None))
            return True
        return False

    def broadcast_now(self, exclude: Any, frame: bytes) -> None:
        """Send one DATA frame to every admitted peer whose handle is not in ``exclude`` (and keep it for
        every session away), as a ``BROADCAST`` item would (user thread), from this thread when it can: if
        the I/O thread is not busy (the lock is free), nothing is queued in the outbox (order), no session
        is away, no broadcast came in the last ``DIRECT_SEND_GAP`` (a burst is left to the I/O thread,
        which coalesces it), and every target is in the plain state (open, the frame within its limit,
        nothing queued in its Connection, its write buffer room for the frame), the frame is counted and
        recorded per peer and written with one non-blocking ``send()`` per peer right here: no wake-up,
        no hand-off.  The I/O thread gets only what a socket did not take.  Otherwise the whole broadcast
        is queued with :meth:`submit`.  Never blocks, never raises."""
        now = _clock()
        if now - self._last_broadcast >= DIRECT_SEND_GAP and self.lock.acquire(False):
            self._last_broadcast = now
            try:
                if (
                    not self.outbox
                    and not self.stopping
                    and not self.away
                    and self._broadcast_direct(exclude, frame)
                ):
                    return
            finally:
                self.lock.release()
        else:
            self._last_broadcast = now
        self.submit(BROADCAST, exclude, frame)

    def _broadcast_direct(self, exclude: Any, frame: bytes) -> bool:
        # The lock is held.  All or nothing: every target is checked first, so a case that could close a
        # connection or produce events (a frame over a peer's limit, a full write buffer) leaves the whole
        # broadcast to the I/O thread, in order; False sends nothing and changes nothing.
        size = len(frame) - FRAME_OVERHEAD
        room = self.max_send_queue - len(frame)
        targets = []
        for peer in self.peers.values():
            handle = peer.handle
            if handle is None or handle in exclude:
                continue
            conn = peer.conn
            if not conn.is_open:
                if conn.closed:
                    continue  # closing: a BROADCAST skips it too (send_data drops the frame)
                return False
            if (
                peer.tls_handshaking
                or size > conn.peer_max_packet_size
                or len(peer.out) > room
                or conn.has_data_to_send()
            ):
                return False
            targets.append(peer)
        unsent = False
        for peer in targets:
            session = peer.conn.session
            if session is not None:
                session.record(frame)  # what send_data does for an open connection with nothing queued
            if peer.out:
                peer.out += frame  # the I/O thread is already watching this socket for room
            elif self._write_direct(peer, frame):
                unsent = True
        self.stats["packets_out"] += len(targets)
        if unsent:
            self.wake()
        return True

    def read_now(self) -> bool:
        """Read the one peer's socket from the user's thread, as this thread does when ``select()`` reports
        it readable (user thread; for a loop polling ``get()`` busily, see ``Endpoint.get``).

        Only when it is safe and cheap: the I/O thread is idle in ``select()`` (the lock is free: it is
        only tried) with nothing queued for it, not stopping, and there is exactly one peer (a Sprocket's
        connection), open, read (not paused by back-pressure), not closing and not TLS.  Then one
        non-blocking ``recv`` under the lock (the GIL is released during it), and what it brings takes the
        I/O thread's own path (:meth:`_read`): packets and events to the inbox in order, replies flushed.
        Anything more than packets (an event, the connection closing, a timer moved) wakes the I/O thread,
        whose ``select()`` timeout and state were computed before it.  Returns True when it read (maybe
        nothing), False when it did not try.  Never blocks; raises nothing (errors close the connection,
        as in the I/O thread)."""
        lock = self.lock
        # Something queued for the I/O thread (a send, a flush): step aside.  It gets the GIL only while this
        # thread is in a system call, and in read_now that is the recv(), lock held: a busy poller reading
        # here every time could keep it from the lock until Python's switch interval (5 ms) forced a switch.
        if self.outbox or not lock.acquire(False):
            return False
        try:
            if self.stopping or len(self.peers) != 1:
                return False
            (peer,) = self.peers.values()
            if (
                peer.paused
                or peer.linger_until
                or peer.tls_handshaking
                or not peer.conn.is_open
                or isinstance(peer.sock, ssl.SSLSocket)
            ):
                return False
            inbox = self.inbox
            before = (inbox.events_in, self._next_housekeeping)
            try:
                self._read(peer)
            except Exception:  # a bug: handled as in the I/O thread's loop, not raised from get()
                log.exception("internal error serving %s:%s; dropping that connection", *peer.addr)
                self._drop_broken(peer)
            if self.stopping or not peer.conn.is_open or (inbox.events_in, self._next_housekeeping) != before:
                self.wake()
            return True
        finally:
            lock.release()

    def stop(self, wait: bool = True, goodbye: tuple[CloseCode, str] | None = None) -> None:
        """Ask the thread to say goodbye to every peer (``goodbye``'s code and reason, or the subclass's
        :meth:`goodbye`), flush (up to ``close_timeout``) and exit."""
        if not self.stopping:
            self.submit(STOP, None, goodbye)
        if wait and self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(self.close_timeout + 2.0)

    def run_timers_at(self, when: float) -> None:
        """Run the next housekeeping pass no later than ``when`` (I/O thread), e.g. for a timer of a
        subclass that must not wait for the regular 50 ms beat."""
        self._next_housekeeping = min(self._next_housekeeping, when)

    # -- the loop --------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            lock = self.lock
            with lock:
                self.on_start()
            while True:
                now = time.monotonic()
                if self.stopping and (not self.peers or now >= self._stop_deadline):
                    break
                timeout = max(0.0, self._next_housekeeping - now)
                ready = self.selector.select(timeout)
                with lock:  # everything but the wait in select() holds it (see send_now)
                    for key, mask in ready:
                        obj = key.data
                        if obj is None:
                            self._on_wake()
                        elif isinstance(obj, Peer):
                            try:
                                self._on_ready(obj, mask)
                            except Exception:
                                # A bug triggered by one peer must not take the others down with it.
                                log.exception(
                                    "internal error serving %s:%s; dropping that connection", *obj.addr
                                )
                                self._drop_broken(obj)
                        else:
                            obj(mask)
                    now = time.monotonic()
                    if now >= self._next_housekeeping:
                        self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
                        self._housekeeping(now)
        except Exception:
            log.exception("sprocket I/O thread crashed; closing every connection")
            with self.lock:
                self.on_crash()
        finally:
            with self.lock:
                for peer in list(self.peers.values()):
                    self._close_socket(peer)
                self.on_stop()
                self.selector.close()
                self._wake_r.close()
                self._wake_w.close()

    def _on_wake(self) -> None:
        try:
            # One read: more wake-ups than fit in 4 KiB just make the selector report the socket again,
            # whereas reading until EAGAIN would cost a failing syscall on every wake.
            self._wake_r.recv(4096)
        except (BlockingIOError, InterruptedError):
            pass
        self._wake_pending = False
        self._drain_outbox()
        self.inbox.resume_where_room()

    def _drain_outbox(self) -> None:
        box = self.outbox
        dirty: dict[int, Peer] = {}
        packets_out = 0
        while box:
            op, target, arg = box.popleft()
            if op == SEND:
                peer = self.route(target, arg)
                if peer is not None:
                    dirty[id(peer)] = peer
                    # A run of sends to the same target (a burst) is queued with one call: small packets
                    # share BATCH frames.  If the connection stops taking them (closed on one over the
                    # peer's limit), the rest of the run is routed one by one, as before.
                    payloads = [arg]
                    while box and box[0][0] == SEND and box[0][1] is target:
                        payloads.append(box.popleft()[2])
                    taken = peer.conn.send_payloads(payloads)
                    packets_out += taken
                    for payload in payloads[taken:]:
                        rest = self.route(target, payload)
                        if rest is not None:
                            packets_out += rest.conn.send_payloads([payload])
                            dirty[id(rest)] = rest
            elif op == BROADCAST:
                for peer in list(self.peers.values()):
                    handle = peer.handle
                    if handle is None or handle in target:
                        continue
                    packets_out += peer.conn.send_data(arg)
                    dirty[id(peer)] = peer
                for handle, session in list(self.away.items()):
                    if handle not in target:
                        self.hold(handle, session, arg)
            elif op == KICK:
                peer = self.kick(target, arg)
                if peer is not None:
                    dirty[id(peer)] = peer
            elif op == STOP:
                self._begin_stop(arg)
            elif op == FLUSH:
                dirty[id(target)] = target
        self.stats["packets_out"] += packets_out
        # Coalescing: every frame queued above leaves in one send() per peer.
        for peer in dirty.values():
            self._after_io(peer)

    def _begin_stop(self, goodbye: tuple[CloseCode, str] | None = None) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._stop_deadline = time.monotonic() + self.close_timeout
        self.on_stopping()
        code, reason = goodbye or self.goodbye()
        for peer in list(self.peers.values()):
            self.close_peer(peer, code, reason)

    # -- per-peer I/O ----------------------------------------------------------------------------------

    def add_peer(self, peer: Peer) -> None:
        """Start watching a connected socket."""
        self.peers[peer.sock.fileno()] = peer
        paused = self._must_pause(peer)
        events = selectors.EVENT_READ if not paused else 0
        if peer.tls_handshaking or peer.conn.has_data_to_send():
            events |= selectors.EVENT_WRITE
            peer.want_write = True
        if events:
            self.selector.register(peer.sock, events, peer)
        peer.paused = paused
        self.flush(peer)

    def _on_ready(self, peer: Peer, mask: int) -> None:
        if peer.tls_handshaking:
            self._tls_handshake(peer)
            return
        if mask & selectors.EVENT_WRITE:
            self.flush(peer)
        if mask & selectors.EVENT_READ and peer.sock.fileno() >= 0:
            self._read(peer)

    def _tls_handshake(self, peer: Peer) -> None:
        sock = peer.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(peer, read=True, write=False)
            return
        except ssl.SSLWantWriteError:
            self._watch(peer, read=False, write=True)
            return
        except (ssl.SSLError, OSError) as exc:
            peer.conn.lost(f"TLS handshake failed: {exc}")
            self._after_io(peer)
            return
        peer.tls_handshaking = False
        peer.paused = self._must_pause(peer)  # reading may have paused or resumed meanwhile
        self._watch(peer, read=not peer.paused, write=True)
        self.flush(peer)

    def _read(self, peer: Peer) -> None:
        sock = peer.sock
        conn = peer.conn
        now = time.monotonic()
        try:
            data = sock.recv(RECV_SIZE)
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                # Decrypted bytes the selector cannot see: take them now (at most one more turn's worth;
                # the rest is seen by the housekeeping pass below).
                data += sock.recv(min(sock.pending(), RECV_SIZE))
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            conn.lost(f"connection lost: {exc.strerror or exc}")
            self._after_io(peer)
            return
        if peer.linger_until:
            # Closing: we only read to let the peer's last bytes drain (closing a socket with unread data
            # sends a reset that can destroy our goodbye in flight).
            if not data:
                self._close_socket(peer)
            return
        self.stats["bytes_in"] += len(data)
        inbox = self.inbox
        before = inbox.bytes_in
        conn.receive_data(data, now)
        buffered = conn.buffered
        if buffered != peer.buffered:
            self.incomplete_bytes += buffered - peer.buffered
            peer.buffered = buffered
            if self.incomplete_bytes > self.settings.max_incomplete_bytes:
                self._shed_incomplete()
        self._after_io(peer)
        added = inbox.bytes_in - before
        if added:
            # A peer whose connection just ended is not paused (it will not be read again anyway).
            inbox.appended(peer.backlog if not conn.closed else None, added)

    def _shed_incomplete(self) -> None:
        # Too many bytes of unfinished frames held across all peers (many slow or parked senders): drop the
        # peer holding the most, until under the limit again.
        limit = self.settings.max_incomplete_bytes
        while self.incomplete_bytes > limit:
            peer = max(self.peers.values(), key=lambda p: p.buffered)
            if not peer.buffered:
                return
            log.warning(
                "%s:%s holds %d bytes of an unfinished frame, %d are held in all (limit %d); dropping it",
                *peer.addr, peer.buffered, self.incomplete_bytes, limit,
            )  # fmt: skip
            self._forget_incomplete(peer)
            self.close_peer(
                peer, CloseCode.LIMIT, "the server holds too much of unfinished frames; send faster or less"
            )

    def _forget_incomplete(self, peer: Peer) -> None:
        self.incomplete_bytes -= peer.buffered
        peer.buffered = 0

    def _after_io(self, peer: Peer) -> None:
        # Handling an event can produce more (accepting a HELLO parses frames that waited behind it).
        conn = peer.conn
        while conn.has_events():
            for event in conn.events():
                self.on_event(peer, event)
        self.flush(peer)

    def flush(self, peer: Peer) -> None:
        """Write what the protocol has queued for ``peer``; buffer the rest and watch for writability."""
        conn = peer.conn
        data = conn.data_to_send()
        out = peer.out
        if not out and not peer.want_write and conn.is_open and not peer.tls_handshaking:
            # The common case: an open connection with nothing older waiting.  With nothing new either (a
            # read that produced no answer) there is nothing to write or watch.  A socket that takes
            # everything costs one send() and nothing else; one that takes part (or would block) gets the
            # rest buffered and watched below.
            if not data:
                return
            try:
                sent = peer.sock.send(data)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                sent = 0
            except OSError as exc:
                sent = len(data)  # nothing of it will be written
                conn.lost(f"connection lost: {exc.strerror or exc}")
                for event in conn.events():
                    self.on_event(peer, event)
            else:
                self.stats["bytes_out"] += sent
                if sent == len(data):
                    return
            if sent < len(data):
                out += memoryview(data)[sent:]
        elif data or out:
            sock = peer.sock
            if peer.tls_handshaking or sock.fileno() < 0:
                out += data
            else:
                # Send straight from the new data when nothing older is waiting: a broadcast frame shared
                # by many peers is then never copied into a per-peer buffer at all.
                if out and data:
                    out += data
                payload = out if out else data
                try:
                    sent = sock.send(payload)
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    sent = 0
                except OSError as exc:
                    sent = 0
                    out.clear()
                    payload = out
                    conn.lost(f"connection lost: {exc.strerror or exc}")
                    for event in conn.events():
                        self.on_event(peer, event)
                if sent:
                    self.stats["bytes_out"] += sent
                if payload is out:
                    if sent:
                        del out[:sent]
                elif sent < len(data):
                    out += memoryview(data)[sent:]
        if len(out) > self.max_send_queue and not conn.closed:
            # The peer cannot keep up.  Its queue is full, so a goodbye would never get through either.
            out.clear()
            conn.close(CloseCode.SEND_QUEUE_FULL, "send queue full: the connection could not keep up")
            conn.data_to_send()
            for event in conn.events():
                self.on_event(peer, event)
        if peer.conn.closed and not peer.linger_until:
            self._begin_linger(peer)
        if peer.linger_until and not out and not peer.shut_down and peer.sock.fileno() >= 0:
            peer.shut_down = True
            try:
                peer.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close_socket(peer)
                return
        if peer.sock.fileno() >= 0:
            want = bool(out) or peer.tls_handshaking
            if want != peer.want_write:
                self._watch(peer, read=not peer.paused, write=want)

    def _begin_linger(self, peer: Peer) -> None:
        peer.linger_until = time.monotonic() + min(LINGER, self.close_timeout)
        self._forget_incomplete(peer)  # a closed connection parses nothing more
        if peer.conn.close_code is CloseCode.LOST:
            self._close_socket(peer)
        elif peer.paused:
            peer.paused = False  # closing: read only to let the peer's last bytes drain
            self._watch(peer, read=True, write=bool(peer.out))

    def _watch(self, peer: Peer, *, read: bool, write: bool) -> None:
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        peer.want_write = write
        sock = peer.sock
        try:
            if events:
                try:
                    self.selector.modify(sock, events, peer)
                except KeyError:
                    self.selector.register(sock, events, peer)
            else:
                try:
                    self.selector.unregister(sock)
                except KeyError:
                    pass
        except (ValueError, OSError):
            pass  # socket already closed

    def _drop_broken(self, peer: Peer) -> None:
        try:
            peer.conn.lost("internal error in sprocket (see the log)")
            self._close_socket(peer)
        except Exception:
            log.exception("could not drop %s:%s cleanly", *peer.addr)
            self.peers.pop(peer.sock.fileno(), None)

    def close_peer(self, peer: Peer, code: CloseCode, reason: str) -> None:
        """Say goodbye to ``peer`` with a reason; its socket closes once the goodbye is flushed."""
        peer.conn.close(code, reason)
        self._after_io(peer)

    def _close_socket(self, peer: Peer) -> None:
        sock = peer.sock
        fd = sock.fileno()
        if fd >= 0:
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            self.peers.pop(fd, None)
            sock.close()
        self._forget_incomplete(peer)
        self.inbox.forget(peer.backlog)
        if not peer.conn.closed:
            peer.conn.lost("connection closed")
        for event in peer.conn.events():
            self.on_event(peer, event)
        self.on_peer_closed(peer)

    def _must_pause(self, peer: Peer) -> bool:
        if not peer.conn.is_open:
            # Still handshaking: what it sends is a few KiB of handshake and never reaches the inbox, so
            # back-pressure must not stop a newcomer from joining while the application collects slowly.
            return False
        backlog = peer.backlog
        return self.inbox.reading_paused or (backlog is not None and backlog.paused)

    def _set_reading(self, on: bool) -> None:
        # Called by the inbox (which keeps the flag): stop or resume reading every open socket (except those
        # whose own backlog is full).
        for peer in self.peers.values():
            self._refresh_reading(peer)
        log.debug("reading %s", "resumed" if on else "paused: the application is not calling get()")

    def _set_peer_reading(self, peer: Peer, on: bool) -> None:
        # Called by the inbox for one client whose share of the inbox is full (or has room again).
        if peer.sock.fileno() >= 0:
            self._refresh_reading(peer)
        if not on:
            log.debug("paused reading %s:%s: its packets wait uncollected", *peer.addr)

    def _refresh_reading(self, peer: Peer) -> None:
        if peer.linger_until or peer.tls_handshaking:
            return
        paused = self._must_pause(peer)
        if paused != peer.paused:
            peer.paused = paused
            self._watch(peer, read=not paused, write=bool(peer.out))

    def _housekeeping(self, now: float) -> None:
        self.inbox.settle()  # keeps the per-client ledger short even when nobody is paused
        self.inbox.resume_where_room()  # a safety net: get() normally wakes us for this
        for peer in list(self.peers.values()):
            if peer.linger_until:
                if now >= peer.linger_until:
                    self._close_socket(peer)
                continue
            conn = peer.conn
            if peer.paused:
                conn.keep_alive(now)
            elif now < conn.due:
                continue  # no timer is due (and whatever else it produced was flushed when it happened)
            conn.tick(now)
            if conn.has_data_to_send() or conn.has_events() or conn.closed:
                self._after_io(peer)
        self.on_housekeeping(now)

    # -- hooks for subclasses --------------------------------------------------------------------------

    def on_start(self) -> None:
        """Runs first in the thread (e.g. resolve and connect)."""

    def route(self, target: Any, payload: bytes) -> Peer | None:
        """Where a ``SEND`` to ``target`` goes: the peer to queue ``payload`` on, or None if the subclass
        kept (or dropped) it itself."""
        return None

    def open_peer(self, target: Any) -> Peer | None:
        """The peer a ``SEND`` to ``target`` would go to if its connection is open, else None; no side
        effects (called by :meth:`send_now` in a user thread, with the lock held)."""
        return None

    def hold(self, handle: Any, session: Session, frame: bytes) -> None:
        """Keep ``frame``, sent to ``handle`` while its connection is down, in its session for replay."""
        session.record(frame)

    def kick(self, target: Any, reason: str) -> Peer | None:
        """Handle a ``KICK`` of ``target``: return the peer to flush (its goodbye queued), or None."""
        return None

    def on_event(self, peer: Peer, event: Event) -> None:
        """Handle one protocol event of ``peer``."""
        if isinstance(event, Closed):
            log.debug("connection %s closed: %s", peer.addr, event.reason)

    def on_peer_closed(self, peer: Peer) -> None:
        """The peer's socket has been closed."""

    def on_housekeeping(self, now: float) -> None:
        """Runs every HOUSEKEEPING_INTERVAL seconds."""

    def on_stopping(self) -> None:
        """Runs once when a stop begins, before goodbyes."""

    def on_stop(self) -> None:
        """Runs last in the thread, after every socket is closed."""

    def on_crash(self) -> None:
        """Runs if the loop itself failed (a bug): make sure the user hears of it."""

    def goodbye(self) -> tuple[CloseCode, str]:
        """The (code, reason) said to every peer when the thread stops."""
        return (CloseCode.CLOSED, "closed")


def is_connect_in_progress(code: int) -> bool:
    """True for the errno values a non-blocking connect() returns while still connecting."""
    return code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, 0)
