"""The sprocket wire protocol, sans I/O: bytes in, events and bytes out.

This module never touches a socket, a thread or a clock.  Time is passed in as ``now`` (seconds on any
monotonic clock), so every rule here is tested in memory, byte for byte, with a fake clock.
docs/PROTOCOL.md is the specification; this is its implementation.

Theory of operation
-------------------
A :class:`Connection` is one end of one TCP stream.  The I/O layer feeds it what the socket read
(:meth:`Connection.receive_data`), calls :meth:`Connection.tick` regularly, collects
:meth:`Connection.events` and writes out :meth:`Connection.data_to_send`.  Application payloads go in as
already-encoded DATA frames (:func:`data_frame`), so a broadcast is encoded once and shared.

States::

    HANDSHAKE --(client: WELCOME received / server: accept())--> OPEN
    HANDSHAKE --(REJECT, BYE, timeout, protocol error)---------> CLOSED
    OPEN      --(BYE either way, timeout, protocol error)------> CLOSED

In each state only some frame types are legal; anything else is a protocol error, which closes the
connection with a BYE that tells the peer why.  Before OPEN a frame may be at most
``HANDSHAKE_FRAME_LIMIT`` bytes, so an unauthenticated peer cannot make us buffer much.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import hmac
import itertools
import math
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack

from .codec import MAX_BATCH_BYTES, SMALL_FACTOR
from .codes import SERVER_ONLY, CloseCode
from .errors import DecodeError, InvalidArgument, UsageError
from .session import (
    SESSION_ID_SIZE,
    TOKEN_SIZE,
    Session,
    ack_bytes_for,
    pack_count,
    resume_proof,
    unpack_count,
)
from .settings import MIN_PACKET_LIMIT, Settings

__all__ = [
    "FRAME_OVERHEAD",
    "HANDSHAKE_FRAME_LIMIT",
    "PROTOCOL_VERSION",
    "Closed",
    "Connection",
    "HelloReceived",
    "Received",
    "ResumeRequest",
    "Welcomed",
    "data_frame",
]

PROTOCOL_VERSION = 1
HANDSHAKE_FRAME_LIMIT = 4096

# Frame types: the first byte of every frame body.
CHALLENGE = 0x01  # server -> client, first frame: {"sprocket": version, "nonce": 16 bytes}
HELLO = 0x02  # client -> server: {"version", "codec", "app", "name", "auth", "max_packet_size"}
WELCOME = 0x03  # server -> client: {"id", "time", "ping_interval", "timeout", "max_packet_size"}
REJECT = 0x04  # server -> client: {"code", "reason"}; the server closes after sending it
DATA = 0x05  # either way, OPEN only: one codec-encoded packet
PING = 0x06  # either way: float64 sender time
PONG = 0x07  # either way: float64 echoed time, float64 responder time
BYE = 0x08  # either way: {"code", "reason"}; the sender closes after sending it
ACK = 0x09  # either way, OPEN and in a session only: uint64 count of DATA frames received in the session
BATCH = 0x0A  # either way, OPEN only, to a peer that said "batch": a msgpack array of 1+ encoded packets

FRAME_NAMES = {
    CHALLENGE: "CHALLENGE", HELLO: "HELLO", WELCOME: "WELCOME", REJECT: "REJECT",
    DATA: "DATA", PING: "PING", PONG: "PONG", BYE: "BYE", ACK: "ACK", BATCH: "BATCH",
}  # fmt: skip

_SCALARS = (type(None), bool, int, float, str, bytes)
# Bytes a frame adds around its payload: the 4-byte length and the type byte.
FRAME_OVERHEAD = 5

_HEADER = struct.Struct(">I")
_FRAME_START = struct.Struct(">IB")
_ARRAY16 = struct.Struct(">BH")
_PING = struct.Struct(">d")
_PONG = struct.Struct(">dd")

HANDSHAKE = "handshake"
OPEN = "open"
CLOSED = "closed"


def frame(kind: int, body: bytes = b"") -> bytes:
    """Return one complete frame: 4-byte big-endian length, the type byte, the body."""
    return _FRAME_START.pack(len(body) + 1, kind) + body


def data_frame(payload: bytes) -> bytes:
    """Return a DATA frame carrying an encoded packet (shareable between connections)."""
    return _FRAME_START.pack(len(payload) + 1, DATA) + payload


def batch_frames(payloads: list[bytes], limit: int) -> list[bytes]:
    """Frame ``payloads`` (msgpack-encoded packets, in order, each at most ``limit`` bytes): each run of
    them that fits in ``limit`` bytes together becomes one BATCH frame; a payload that shares with no
    neighbour gets a DATA frame of its own."""
    room = limit - 3  # the array header takes up to 3 bytes (up to 65,535 packets)
    if sum(map(len, payloads)) <= room:  # the common case: one frame for all
        return [_batch_frame(payloads)] if len(payloads) > 1 else [data_frame(payloads[0])]
    # Where each payload ends, counted over all of them (in C): a run fits while that grows by <= room.
    ends = list(itertools.accumulate(map(len, payloads)))
    out: list[bytes] = []
    start, count, before = 0, len(payloads), 0
    while start < count:
        stop = bisect.bisect_right(ends, before + room, start)
        if stop <= start + 1:  # a run of one, or a payload too large to share a frame
            stop = start + 1
            out.append(data_frame(payloads[start]))
        else:
            out.append(_batch_frame(payloads[start:stop]))
        before = ends[stop - 1]
        start = stop
    return out


def _batch_frame(run: list[bytes]) -> bytes:
    count = len(run)
    header = bytes((0x90 | count,)) if count < 16 else _ARRAY16.pack(0xDC, count)
    size = len(header) + sum(map(len, run))
    return b"".join([_FRAME_START.pack(size + 1, BATCH), header, *run])


def _control(kind: int, fields: dict[str, Any]) -> bytes:
    return frame(kind, msgpack.packb(fields, use_bin_type=True))


def reject_frame(code: CloseCode, reason: str) -> bytes:
    """A complete REJECT frame, for refusing a connection without a :class:`Connection` object."""
    return _control(REJECT, {"code": CloseCode(code).value, "reason": reason})


def password_proof(password: str, nonce: bytes) -> bytes:
    """The HELLO ``auth`` value: HMAC-SHA256 of the server's nonce keyed by the password."""
    return hmac.new(password.encode("utf-8"), nonce, hashlib.sha256).digest()


def _clean_text(text: object, limit: int) -> str:
    """A peer's words as logs and screens may show them: printable characters only (no newlines, escapes
    or NULs), at most ``limit`` of them."""
    return "".join(ch for ch in str(text)[: limit * 4] if ch.isprintable())[:limit]


def _clean_name(name: object) -> str:
    """A HELLO name: :func:`_clean_text`, at most 64 characters."""
    return _clean_text(name, 64)


def _finite(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _welcome(info: dict[str, Any], own_max: int) -> tuple[int, float, int, float] | None:
    """A WELCOME's (id, time, max_packet_size, ping_interval), or None if any is missing or unusable.

    A missing ``max_packet_size`` means "the same as ``own_max``"; a missing ``ping_interval``, 1 s.
    """
    client_id, server_time = info.get("id"), info.get("time")
    peer_max, ping_interval = info.get("max_packet_size", own_max), info.get("ping_interval", 1.0)
    if type(client_id) is not int or not 0 < client_id < 2**63 or type(peer_max) is not int:
        return None
    if not (_finite(server_time) and _finite(ping_interval)):
        return None
    assert isinstance(server_time, (int, float)) and isinstance(ping_interval, (int, float))
    if peer_max < MIN_PACKET_LIMIT or ping_interval <= 0:
        return None
    return client_id, float(server_time), peer_max, float(ping_interval)


def _resume_request(info: dict[str, Any]) -> ResumeRequest | None:
    """A HELLO's resume fields, or None if any is missing or unusable."""
    session_id, proof = info.get("resume"), info.get("proof")
    counts = (info.get("received"), info.get("base"), info.get("sent"))
    if not (isinstance(session_id, bytes) and len(session_id) == SESSION_ID_SIZE):
        return None
    if not (isinstance(proof, bytes) and len(proof) == 32):
        return None
    if not all(type(count) is int and count >= 0 for count in counts):
        return None
    received, base, sent = counts
    assert isinstance(received, int) and isinstance(base, int) and isinstance(sent, int)
    if base > sent:
        return None
    return ResumeRequest(session_id, proof, received, base, sent)


# -- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumeRequest:
    """The resume fields of a HELLO: which session, the proof of its token, and the client's counts.

    ``received``: DATA frames the client received in the session; ``base``: the client no longer holds its
    frames up to this number (so the server must have received at least that many); ``sent``: DATA frames
    the client sent in the session (it replays those the server has not received).
    """

    session_id: bytes
    proof: bytes
    received: int
    base: int
    sent: int


@dataclass(frozen=True)
class HelloReceived:
    """Server side: a well-formed HELLO passed the version, codec, app and password checks.

    ``session``: the client asks for a resumable session; ``resume``: it asks to resume one.
    The server must now call :meth:`Connection.accept` or :meth:`Connection.reject`.
    """

    name: str | None
    app: str | None
    session: bool = False
    resume: ResumeRequest | None = None


@dataclass(frozen=True)
class Welcomed:
    """Client side: the server accepted us; ``client_id`` is our id on that server.  ``resumed``: the
    session given to the Connection was resumed (its replay is already queued)."""

    client_id: int
    resumed: bool = False


class Received(NamedTuple):
    """A packet's decoded fields arrived (OPEN state only).  A tuple: one is made per packet.

    ``size`` is the payload's size on the wire; ``cost`` the codec's estimate of its size in memory.
    """

    fields: dict[str, Any]
    size: int
    cost: int


@dataclass(frozen=True)
class Closed:
    """The connection is over.  ``by_peer`` tells whether the other side (or the network) ended it.

    ``code`` is a :class:`~sprocket.CloseCode`; ``reason`` is a sentence for humans.  ``rejected`` is True
    when the server refused the handshake with a REJECT frame (the code is then a refusal).
    """

    code: CloseCode
    reason: str
    by_peer: bool
    rejected: bool = False


Event = HelloReceived | Welcomed | Received | Closed


class Connection:
    """One end of a sprocket connection, with no I/O.

    Contract: feed every byte the socket reads to :meth:`receive_data`; call :meth:`tick` at least every
    ``ping_interval / 2``; after either, write :meth:`data_to_send` to the socket and handle
    :meth:`events`.  Once :attr:`closed` is true, flush :meth:`data_to_send` (it holds the BYE) and close
    the socket.  None of the methods raise on bad input from the peer: they close the connection instead.
    """

    def __init__(
        self,
        role: str,
        now: float,
        settings: Settings | None = None,
        *,
        nonce: bytes | None = None,
        session: Session | None = None,
    ) -> None:
        if role not in ("client", "server"):
            raise InvalidArgument(f"role must be 'client' or 'server', not {role!r}")
        settings = settings if settings is not None else Settings()
        self.role = role
        self.settings = settings
        self.codec = settings.codec
        self.max_packet_size = settings.max_packet_size
        self.peer_max_packet_size = settings.max_packet_size
        self.ping_interval = settings.ping_interval
        self.timeout = settings.timeout
        self.password = settings.password
        self.app = settings.app
        self.name = settings.name
        self.state = HANDSHAKE
        self.client_id: int | None = None
        # The session this connection carries (None: not resumable).  A client passes the session to
        # resume; a server attaches one in accept(); a client gets a new one from a WELCOME that offers it.
        self.session: Session | None = None
        self._resuming = session if role == "client" else None
        self.close_code: CloseCode | None = None
        self.close_reason: str | None = None
        # Round trip and clock estimates (seconds).
        self.rtt: float | None = None
        self.jitter = 0.0
        self.clock_offset = 0.0  # peer clock - our clock, best estimate
        self._offset_samples: list[tuple[float, float]] = []  # (rtt, offset) of recent pongs
        self._pings_sent: collections.deque[float] = collections.deque(maxlen=16)  # times of our PINGs
        self._buffer = bytearray()
        # If set, DATA payloads go straight to data_sink(fields, size, cost) as they are parsed instead of
        # becoming Received events: the I/O layer's fast path.  Order with other events is kept, since
        # events are handled after receive_data() returns and the sink runs during it.
        self.data_sink: Callable[[dict[str, Any], int, int], None] | None = None
        # Likewise for the packets of a BATCH frame: batch_sink(fields_list, size, cost), the size and cost
        # of each packet (its share of the frame's body).
        self.batch_sink: Callable[[list[dict[str, Any]], int, int], None] | None = None
        # BATCH frames: we take them if our codec can (said in our HELLO/WELCOME); we send them to a peer
        # that said so in its own (peer_batches), running several queued packets together.
        self.batches = self.codec.batches
        self.peer_batches = False
        # Since when the frame at the front of the buffer has been incomplete (None: no partial frame).
        self._partial_since: float | None = None
        # Rate limit on DATA frames: a token bucket holding at most one second's worth.
        self._rate = settings.max_packets_per_second
        self._tokens = max(self._rate or 0.0, 1.0)
        self._tokens_at = now
        self._owed = 0  # DATA frames a resuming client replays first, exempt from the rate limit
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._deadline = now + settings.handshake_timeout
        self._handshake_timeout = settings.handshake_timeout
        self._last_received = now
        self._next_ping = now + self.ping_interval
        # tick() has nothing to do before this time: a bound the I/O layer may use to skip calling it.  Never
        # later than a deadline: it is recomputed by tick() and brought forward by whatever moves one nearer.
        self.due = self._deadline
        self._hello_sent = False  # client: HELLO sent; server: HELLO received
        self._hello_sent_at = 0.0
        self._deciding = False  # server: HelloReceived emitted, accept()/reject() not yet called
        self._peer_resume_buffer: object = None  # server: the HELLO's "resume_buffer" (see ack_bytes_for)
        self._nonce = nonce if nonce is not None else os.urandom(16)
        if role == "server":
            self._out.append(_control(CHALLENGE, {"sprocket": PROTOCOL_VERSION, "nonce": self._nonce}))

    # -- what the I/O layer calls ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is over (flush :meth:`data_to_send`, then close the socket)."""
        return self.state == CLOSED

    @property
    def nonce(self) -> bytes:
        """The CHALLENGE nonce of this connection (server: the one it sent)."""
        return self._nonce

    @property
    def is_open(self) -> bool:
        """True between a completed handshake and the close."""
        return self.state == OPEN

    def events(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """Return and forget the bytes to write to the socket, in order (may be empty)."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out = []
        return out

    def has_events(self) -> bool:
        """True if :meth:`events` would return something."""
        return bool(self._events)

    def has_data_to_send(self) -> bool:
        """True if :meth:`data_to_send` would return something."""
        return bool(self._out)

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the socket.  Complete frames are handled at once; a partial one waits.

        An empty ``data`` means the peer closed the stream (EOF).
        """
        if self.state == CLOSED:
            return
        if not data:
            self._finish(CloseCode.LOST, "the connection was closed without a goodbye", by_peer=True)
            return
        self._last_received = now
        if type(data) is not bytes:
            data = bytes(data)
        buf = self._buffer
        if not buf:
            self._parse(data, now)  # the common case: parsed straight from what was read
        elif len(buf) <= len(data):
            # The tail of a frame cut by the previous read: joined to this read as bytes (a copy no longer
            # than the read itself), which decode faster than slices of a bytearray.
            self._buffer = bytearray()
            self._parse(bytes(buf) + data, now)
        else:
            buf += data  # a long frame arriving in pieces: accumulated in place, parsed once complete
            self._parse(buf, now)

    def _parse(self, buf: bytes | bytearray, now: float) -> None:
        # `buf` is either self._buffer (a bytearray) or bytes that are not kept: what is left unparsed of
        # those is copied into self._buffer at the end.
        pos = 0
        end = len(buf)
        open_ = self.state == OPEN
        limit = (self.max_packet_size if open_ else HANDSHAKE_FRAME_LIMIT) + 1
        session = self.session
        header = _HEADER.unpack_from
        decode = self.codec.decode_sized
        sink = self.data_sink
        rate = self._rate
        received = 0  # DATA frames and their bytes counted into `session` when the loop stops (finally)
        received_bytes = 0
        try:
            while end - pos >= 4 and not self._deciding:
                (length,) = header(buf, pos)
                if length == 0 or length > limit:
                    self._buffer = bytearray()
                    if length == 0:
                        self._fail(CloseCode.PROTOCOL, "received an empty frame")
                    elif open_:
                        self._fail(
                            CloseCode.PROTOCOL,
                            f"received a frame of {length - 1} bytes, over max_packet_size ({limit - 1})",
                        )
                    else:
                        self._fail(
                            CloseCode.PROTOCOL,
                            f"handshake frame of {length} bytes is too large (limit {limit})",
                        )
                    return
                if length > HANDSHAKE_FRAME_LIMIT + 1 and end - pos > 4 and buf[pos + 4] != DATA:
                    # Only DATA may be large: control frames are small maps decoded without budgets.
                    self._buffer = bytearray()
                    if buf[pos + 4] == BATCH:
                        why = f"a BATCH frame of {length - 1} bytes is over the limit of {MAX_BATCH_BYTES}"
                    else:
                        cap = HANDSHAKE_FRAME_LIMIT + 1
                        why = f"a control frame of {length} bytes is too large (limit {cap})"
                    self._fail(CloseCode.PROTOCOL, why)
                    return
                if end - pos - 4 < length:
                    break
                start = pos + FRAME_OVERHEAD
                pos += 4 + length
                if buf[start - 1] == DATA and open_:
                    if rate is not None and not self._take_data_token(now):
                        self._buffer = bytearray()
                        return
                    try:
                        fields, cost = decode(buf[start:pos])
                    except DecodeError as exc:
                        self._buffer = bytearray()
                        self._fail(CloseCode.PROTOCOL, str(exc))
                        return
                    if session is not None:
                        received += 1
                        received_bytes += length
                    if sink is None:
                        self._events.append(Received(fields, length - 1, cost))
                    else:
                        sink(fields, length - 1, cost)
                elif buf[start - 1] == BATCH and open_ and self.batches:
                    if not self._batch(buf[start:pos], now):
                        self._buffer = bytearray()
                        return
                    if session is not None:
                        received += 1
                        received_bytes += length
                else:
                    if received:
                        assert session is not None
                        session.received += received
                        session.unacked_bytes += received_bytes
                        received = received_bytes = 0
                    self._control_frame(buf[start - 1], bytes(buf[start:pos]), now)
                    if self.state == CLOSED:
                        self._buffer = bytearray()
                        return
                    open_ = self.state == OPEN
                    limit = (self.max_packet_size if open_ else HANDSHAKE_FRAME_LIMIT) + 1
                    session = self.session
                    sink = self.data_sink
        finally:
            if received:
                assert session is not None
                session.received += received
                session.unacked_bytes += received_bytes
        if session is not None and session.ack_due() and self.state == OPEN:
            self._out.append(frame(ACK, pack_count(session.take_ack())))
        # While the server decides on a HELLO, later frames wait here: they are parsed after accept().
        if buf is self._buffer:
            del buf[:pos]
            left = len(buf)
        else:
            left = end - pos
            if left:
                self._buffer = bytearray(memoryview(buf)[pos:])
        # A frame must finish arriving within `timeout` of the moment it became the one we wait for.
        if not left:
            self._partial_since = None
        elif pos or self._partial_since is None:
            self._partial_since = now

    def _batch(self, payload: bytes | bytearray, now: float) -> bool:
        # One BATCH frame: its packets in order, as that many DATA frames would give.  False: we closed.
        try:
            packets = self.codec.decode_batch(payload)
        except DecodeError as exc:
            self._fail(CloseCode.PROTOCOL, str(exc))
            return False
        count = len(packets)
        if self._rate is not None and not self._take_data_token(now, count):
            return False
        size = -(-len(payload) // count)  # each packet's share of the body, rounded up
        sink = self.batch_sink
        if sink is not None:
            sink(packets, size, SMALL_FACTOR * size)
        else:
            self._events.extend([Received(fields, size, SMALL_FACTOR * size) for fields in packets])
        return True

    def _take_data_token(self, now: float, count: int = 1) -> bool:
        # The rate limit for one DATA or BATCH frame of `count` packets; False: we closed.  A frame a
        # resuming client replays first is owed, not a burst: it takes no tokens.
        if self._owed:
            self._owed -= 1
            return True
        return self._take_token(now, count)

    def _take_token(self, now: float, count: int = 1) -> bool:
        rate = self._rate
        assert rate is not None
        # The bucket holds one second's worth, and at least one packet (a rate below 1/s must let one in).
        self._tokens = min(max(rate, 1.0), self._tokens + (now - self._tokens_at) * rate) - count
        self._tokens_at = now
        if self._tokens >= 0.0:
            return True
        self._fail(CloseCode.LIMIT, f"sent more than {rate:g} packets per second (the server's limit)")
        return False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed: an incomplete frame (or frames waiting for accept())."""
        return len(self._buffer)

    def tick(self, now: float) -> None:
        """Run the timers: handshake deadline, dead-peer timeout, heartbeats.  Call often."""
        if self.state == HANDSHAKE:
            if now >= self._deadline:
                hint = " (is it a sprocket server? does it expect TLS?)" if self.role == "client" else ""
                self._fail(
                    CloseCode.TIMEOUT,
                    f"the handshake did not complete within {self._handshake_timeout:g} s{hint}",
                )
            return
        if self.state != OPEN:
            return
        silent = now - self._last_received
        if silent >= self.timeout:
            self._fail(CloseCode.TIMEOUT, f"nothing received for {silent:.1f} s (timeout {self.timeout:g} s)")
            return
        partial = self._partial_since
        if partial is not None and now - partial >= self.timeout:
            self._fail(
                CloseCode.TIMEOUT,
                f"a frame took longer than {self.timeout:g} s to arrive ({len(self._buffer)} bytes so far)",
            )
            return
        if now >= self._next_ping:
            session = self.session
            if session is not None and session.received != session.acked_out:
                # Heartbeats carry the acknowledgement of whatever trickled in since the last one.
                self._out.append(frame(ACK, pack_count(session.take_ack())))
            self._out.append(frame(PING, _PING.pack(now)))
            self._pings_sent.append(now)
            self._next_ping = now + self.ping_interval
        # The earliest time any of the above can be due next.  Receiving later only moves the silence
        # deadline further, and a frame left partial later starts its clock later than now.
        due = min(self._next_ping, self._last_received + self.timeout)
        if partial is not None:
            due = min(due, partial + self.timeout)
        self.due = due

    def keep_alive(self, now: float) -> None:
        """Treat the peer as heard from now.

        The I/O layer calls this while it deliberately stops reading (back-pressure when the application
        is not calling ``get()``): silence we caused is not the peer's fault, nor is a frame left half-read.
        We keep sending heartbeats, so the peer does not time us out either.
        """
        self._last_received = now
        if self._partial_since is not None:
            self._partial_since = now

    def send_data(self, frame_bytes: bytes) -> bool:
        """Queue a DATA frame made by :func:`data_frame`; return True if it was queued.

        Dropped (False) unless OPEN.  A frame whose payload is over the peer's announced
        ``max_packet_size`` is not sent: the connection closes with :attr:`CloseCode.LIMIT` and a reason
        instead (the peer asked for the smaller limit; raising in the sender's thread would let a peer
        make our code fail).
        """
        if self.state != OPEN:
            return False
        size = len(frame_bytes) - FRAME_OVERHEAD
        if size > self.peer_max_packet_size:
            limit = self.peer_max_packet_size
            self.close(CloseCode.LIMIT, f"a {size}-byte packet was over your max_packet_size ({limit})")
            return False
        self._out.append(frame_bytes)
        session = self.session
        if session is not None:
            session.record(frame_bytes)
        return True

    def send_payloads(self, payloads: list[bytes]) -> int:
        """Queue packets (codec-encoded payloads) in order, as :meth:`send_data` would queue a DATA frame
        of each, but with every run of small ones in one BATCH frame if the peer takes those; return how
        many were queued (fewer than all if the connection is not OPEN, or closes on one over the peer's
        ``max_packet_size``, as send_data does)."""
        if self.state != OPEN or not payloads:
            return 0
        limit = self.peer_max_packet_size
        count = len(payloads)
        if max(map(len, payloads)) > limit:
            count = next(i for i, payload in enumerate(payloads) if len(payload) > limit)
        taken = payloads if count == len(payloads) else payloads[:count]
        if not taken:
            frames = []
        elif self.peer_batches and count > 1:
            frames = batch_frames(taken, min(MAX_BATCH_BYTES, limit))
        else:
            frames = [data_frame(payload) for payload in taken]
        self._out.extend(frames)
        if self.session is not None:
            self.session.record_many(frames)
        if count < len(payloads):
            self.send_data(data_frame(payloads[count]))  # closes the connection with the reason
        return count

    def close(self, code: CloseCode = CloseCode.CLOSED, reason: str = "closed") -> None:
        """Say goodbye with a reason and close.  No-op if already closed."""
        if self.state == CLOSED:
            return
        self._out.append(_control(BYE, {"code": CloseCode(code).value, "reason": reason}))
        self._finish(code, reason, by_peer=False)

    def lost(self, reason: str) -> None:
        """The socket failed (reset, broken pipe...): close without a goodbye."""
        if self.state != CLOSED:
            self._out.clear()
            self._finish(CloseCode.LOST, reason, by_peer=True)

    # -- server side ---------------------------------------------------------------------------------

    def accept(
        self,
        client_id: int,
        now: float,
        session: Session | None = None,
        resume_from: int | None = None,
        *,
        owed: int = 0,
    ) -> None:
        """Server: answer a :class:`HelloReceived` with WELCOME; the connection is OPEN from now on.

        With ``session``, the WELCOME hands the client that session's id, token and grace period, and the
        connection counts, acknowledges and keeps its DATA frames.  With ``resume_from`` too (the resume
        request's ``received``; check :meth:`Session.can_replay` first), the WELCOME says ``resumed`` and
        how many frames the server received, and the frames the client missed follow it.  ``owed``: DATA
        frames the client will replay first; they do not count against ``max_packets_per_second``.

        Raises:
            UsageError: not answering a HelloReceived, or ``resume_from`` without a session.
        """
        if self.role != "server" or self.state != HANDSHAKE or not self._deciding:
            raise UsageError("accept() answers a HelloReceived event, once")
        if resume_from is not None and session is None:
            raise UsageError("accept(resume_from=...) needs the session being resumed")
        self._deciding = False
        self.client_id = client_id
        self.state = OPEN
        self._owed = max(0, owed)
        self._last_received = now
        self._next_ping = now + self.ping_interval
        self.due = now  # OPEN: the next tick() sets the heartbeat's time
        welcome: dict[str, Any] = {
            "id": client_id,
            "time": now,
            "ping_interval": self.ping_interval,
            "timeout": self.timeout,
            "max_packet_size": self.max_packet_size,
        }
        if self.batches:
            welcome["batch"] = True
        if session is not None:
            self.session = session
            session.ack_bytes = ack_bytes_for(self._peer_resume_buffer)
            welcome.update(
                session=session.id, token=session.token, grace=session.grace, resume_buffer=session.limit
            )
            if resume_from is not None:
                welcome.update(resumed=True, received=session.take_ack())
        self._out.append(_control(WELCOME, welcome))
        if session is not None and resume_from is not None:
            self._out.extend(session.replay(resume_from))
        if self._buffer:
            self._parse(self._buffer, now)

    def reject(self, code: CloseCode, reason: str) -> None:
        """Server: refuse the handshake with a reason the client will show; the connection closes.

        Raises:
            InvalidArgument: ``code`` is not a refusal (see :attr:`CloseCode.is_refusal`).
        """
        code = CloseCode(code)
        if not code.is_refusal:
            raise InvalidArgument(f"reject() takes a refusal code, not {code.value!r}")
        if self.state == CLOSED:
            return
        self._deciding = False
        self._out.append(reject_frame(code, reason))
        self._finish(code, f"rejected: {reason}", by_peer=False, rejected=True)

    # -- internals -----------------------------------------------------------------------------------

    def _finish(self, code: CloseCode, reason: str, *, by_peer: bool, rejected: bool = False) -> None:
        self.state = CLOSED
        self.close_code = code
        self.close_reason = reason
        # Nothing more is parsed: let an unfinished frame's bytes go now, not when the last reference to
        # this object does (a client handle can outlive its connection by a long way).
        self._buffer = bytearray()
        self._events.append(Closed(code, reason, by_peer, rejected))

    def _fail(self, code: CloseCode, reason: str) -> None:
        # We end the connection because of something the peer did; tell it why, then close.
        self.close(code, reason)

    def _control_frame(self, kind: int, body: bytes, now: float) -> None:
        if kind in (PING, PONG, ACK) and self._rate is not None and not self._take_token(now):
            return None  # heartbeats and acks count against the packet rate too: a PING flood is a flood
        if kind == PING:
            if len(body) != _PING.size:
                return self._fail(CloseCode.PROTOCOL, "malformed PING frame")
            self._out.append(frame(PONG, body + _PING.pack(now)))
            return None
        if kind == PONG:
            if len(body) != _PONG.size:
                return self._fail(CloseCode.PROTOCOL, "malformed PONG frame")
            sent, peer_time = _PONG.unpack(body)
            # Only answers to our own recent PINGs count: a forged PONG cannot set our RTT or clock.
            if sent in self._pings_sent and math.isfinite(peer_time):
                self._pings_sent.remove(sent)
                self._measure(now - sent, peer_time, now)
            return None
        if kind == BYE:
            info = self._fields(body, "BYE")
            if info is None:
                return None
            # A peer may only claim the codes its side may say: a client cannot say it was kicked.
            code = CloseCode.from_wire(info.get("code"), CloseCode.CLOSED)
            if not code.peer_may_say and not (self.role == "client" and code in SERVER_ONLY):
                code = CloseCode.CLOSED
            reason = _clean_text(info.get("reason", ""), 500)
            if not reason or reason == "closed":
                reason = f"the {'server' if self.role == 'client' else 'client'} closed the connection"
            return self._finish(code, reason, by_peer=True)
        if kind == ACK and self.state == OPEN and self.session is not None:
            return self._ack(body)
        if self.state == HANDSHAKE:
            if self.role == "client":
                return self._client_handshake(kind, body, now)
            if kind == HELLO and not self._hello_sent:
                self._hello_sent = True  # server: "HELLO seen"; a second one is a protocol error
                self._deciding = True
                return self._server_hello(body)
        name = FRAME_NAMES.get(kind, f"unknown type 0x{kind:02x}")
        return self._fail(CloseCode.PROTOCOL, f"unexpected {name} frame in state {self.state}")

    def _ack(self, body: bytes) -> None:
        session = self.session
        assert session is not None
        count = unpack_count(body)
        if count is None:
            return self._fail(CloseCode.PROTOCOL, "malformed ACK frame")
        if not session.acknowledge(count):
            return self._fail(
                CloseCode.PROTOCOL,
                f"ACK of {count} frames, but {session.sent} were sent and {session.peer_acked} already "
                "acknowledged",
            )
        # The client acknowledges at once after a resumed WELCOME: it has the new token, so the old one
        # stops working (server side; a client's session never has a previous token).
        session.previous_token = None
        return None

    def _fields(self, body: bytes, what: str) -> dict[str, Any] | None:
        # Control frames are flat maps of scalars.  Anything nested is refused before any of it is
        # formatted into a message (a 1000-deep list would otherwise blow the stack in repr()).
        try:
            value = msgpack.unpackb(body, raw=False)
        except Exception:
            value = None
        if not isinstance(value, dict) or not all(
            type(k) is str and isinstance(v, _SCALARS) for k, v in value.items()
        ):
            self._fail(CloseCode.PROTOCOL, f"malformed {what} frame")
            return None
        return value

    def _client_handshake(self, kind: int, body: bytes, now: float) -> None:
        if kind == CHALLENGE and not self._hello_sent:
            info = self._fields(body, "CHALLENGE")
            if info is None:
                return
            nonce = info.get("nonce")
            if not isinstance(nonce, bytes) or info.get("sprocket") is None:
                return self._fail(
                    CloseCode.PROTOCOL, "malformed CHALLENGE frame (is this a sprocket server?)"
                )
            auth = password_proof(self.password, nonce) if self.password is not None else None
            self._hello_sent = True
            self._hello_sent_at = now
            hello: dict[str, Any] = {
                "version": PROTOCOL_VERSION,
                "codec": self.codec.name,
                "app": self.app,
                "name": self.name,
                "auth": auth,
                "max_packet_size": self.max_packet_size,
            }
            if self.batches:
                hello["batch"] = True
            if self.settings.reconnect:
                hello["session"] = True
                hello["resume_buffer"] = self.settings.resume_buffer
            resuming = self._resuming
            if resuming is not None:
                hello.update(
                    resume=resuming.id,
                    proof=resume_proof(resuming.token, nonce),
                    received=resuming.take_ack(),
                    base=resuming.base,
                    sent=resuming.sent,
                )
            self._out.append(_control(HELLO, hello))
            return
        if kind == WELCOME and self._hello_sent:
            info = self._fields(body, "WELCOME")
            if info is None:
                return
            welcome = _welcome(info, self.max_packet_size)
            if welcome is None:
                return self._fail(CloseCode.PROTOCOL, "malformed WELCOME frame")
            client_id, server_time, self.peer_max_packet_size, ping_interval = welcome
            self.peer_batches = self.batches and info.get("batch") is True
            resuming = self._resuming
            if resuming is not None:
                problem = self._resumed(info, resuming)
                if problem:
                    return self._fail(CloseCode.PROTOCOL, f"malformed WELCOME frame: {problem}")
            else:
                self.session = self._offered_session(info)
            self.ping_interval = min(self.ping_interval, ping_interval)
            self.client_id = client_id
            self.state = OPEN
            self._next_ping = now + self.ping_interval
            self.due = now  # OPEN: the next tick() sets the heartbeat's time
            self._measure(now - self._hello_sent_at, server_time, now)
            self._events.append(Welcomed(client_id, resumed=resuming is not None))
            return
        if kind == REJECT:
            info = self._fields(body, "REJECT")
            if info is None:
                return
            code = CloseCode.from_wire(info.get("code"), CloseCode.REJECTED)
            if not code.is_refusal:
                code = CloseCode.REJECTED
            reason = _clean_text(info.get("reason", "no reason given"), 500)
            return self._finish(code, reason, by_peer=True, rejected=True)
        name = FRAME_NAMES.get(kind, f"unknown type 0x{kind:02x}")
        self._fail(CloseCode.PROTOCOL, f"unexpected {name} frame during the handshake")

    def _offered_session(self, info: dict[str, Any]) -> Session | None:
        # A fresh WELCOME's session fields, if we asked for a session and they are usable.
        session_id, token, grace = info.get("session"), info.get("token"), info.get("grace")
        if not self.settings.reconnect or session_id is None:
            return None
        if not (
            isinstance(session_id, bytes)
            and len(session_id) == SESSION_ID_SIZE
            and isinstance(token, bytes)
            and len(token) == TOKEN_SIZE
            and _finite(grace)
            and grace >= 0  # type: ignore[operator]
        ):
            return None  # not resumable, but the connection itself is fine
        assert self.settings.resume_buffer is not None
        session = Session(session_id, token, grace=float(grace), limit=self.settings.resume_buffer)  # type: ignore[arg-type]
        session.ack_bytes = ack_bytes_for(info.get("resume_buffer"))
        return session

    def _resumed(self, info: dict[str, Any], session: Session) -> str:
        # A resumed WELCOME: take the new token and queue the replay.  Returns what is wrong, or "".
        token, received = info.get("token"), info.get("received")
        if info.get("resumed") is not True or info.get("session") != session.id:
            return "it does not resume the session asked for"
        if not isinstance(token, bytes) or len(token) != TOKEN_SIZE or type(received) is not int:
            return "missing or bad token or received count"
        if not session.can_replay(received):
            return (
                f"the server says it received {received} packets; {session.sent} were sent and those up "
                f"to {session.base} are no longer held"
            )
        session.token = token
        session.ack_bytes = ack_bytes_for(info.get("resume_buffer"))
        self.session = session
        self._out.extend(session.replay(received))
        # Acknowledge at once: it tells the server we hold the new token (the old one stops working).
        self._out.append(frame(ACK, pack_count(session.take_ack())))
        return ""

    def _server_hello(self, body: bytes) -> None:
        info = self._fields(body, "HELLO")
        if info is None:
            return
        version = info.get("version")
        if version != PROTOCOL_VERSION:
            return self.reject(
                CloseCode.VERSION,
                f"protocol version {version!r} is not supported (server speaks {PROTOCOL_VERSION})",
            )
        codec = info.get("codec")
        if codec != self.codec.name:
            return self.reject(
                CloseCode.CODEC,
                f"codec mismatch: the server uses {self.codec.name!r} and the client {codec!r}; "
                "pass the same codec= on both ends",
            )
        app = info.get("app")
        if self.app is not None and app != self.app:
            return self.reject(
                CloseCode.APP, f"this server runs {self.app!r}, not {app!r}: connect with app={self.app!r}"
            )
        if self.password is not None:
            auth = info.get("auth")
            expected = password_proof(self.password, self._nonce)
            if not isinstance(auth, bytes) or not hmac.compare_digest(auth, expected):
                return self.reject(
                    CloseCode.PASSWORD, "wrong password" if auth else "this server needs a password"
                )
        peer_max = info.get("max_packet_size", self.max_packet_size)
        if type(peer_max) is not int or peer_max < MIN_PACKET_LIMIT:
            return self.reject(
                CloseCode.LIMIT,
                f"max_packet_size must be an int >= {MIN_PACKET_LIMIT}, got {str(peer_max)[:20]}",
            )
        self.peer_max_packet_size = peer_max
        self.peer_batches = self.batches and info.get("batch") is True
        self._peer_resume_buffer = info.get("resume_buffer")
        resume: ResumeRequest | None = None
        if info.get("resume") is not None:
            resume = _resume_request(info)
            if resume is None:
                return self.reject(CloseCode.SESSION_LOST, "malformed resume request")
        name = info.get("name")
        self._events.append(
            HelloReceived(
                name=_clean_name(name) if name is not None else None,
                app=app if isinstance(app, str) else None,
                session=info.get("session") is True,
                resume=resume,
            )
        )

    def _measure(self, rtt: float, peer_time: float, now: float) -> None:
        if rtt < 0:
            return
        if self.rtt is None:
            self.rtt = rtt
            self.jitter = rtt / 2
        else:
            # RFC 6298 style smoothing: the estimate follows the trend, jitter tracks the spread.
            self.jitter += (abs(self.rtt - rtt) - self.jitter) / 4
            self.rtt += (rtt - self.rtt) / 8
        # The offset sample from the fastest recent round trip is the least distorted by queueing.
        samples = self._offset_samples
        samples.append((rtt, peer_time + rtt / 2 - now))
        if len(samples) > 8:
            del samples[0]
        self.clock_offset = min(samples)[1]
