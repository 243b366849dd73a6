"""Sessions: what lets a dropped connection resume with nothing lost and nothing repeated (sans I/O).

A :class:`Session` outlives the TCP connections that carry it.  Each side counts the DATA frames it sends
and receives in the session (frames are numbered 1, 2, 3... per direction, implicitly: TCP keeps them in
order, so no number travels with a frame), keeps what it sent until the peer acknowledges it (an ACK frame
carries "I have received n"), and on a resume each side tells the other how many it received, so the other
replays exactly the frames after that.  The same idea as XMPP's stream management (XEP-0198).

The replay buffer is bounded (``limit`` bytes, each frame counting ``ENTRY_COST`` more than its size):
past it the oldest unacknowledged frames are let go, and a resume that would need them is refused
(:meth:`Session.can_replay`).  docs/PROTOCOL.md, "Sessions", is the specification.

This module never touches a socket, a thread or a clock.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
import struct

__all__ = [
    "ACK_BYTES",
    "ACK_BYTES_MAX",
    "ACK_EVERY",
    "SESSION_ID_SIZE",
    "TOKEN_SIZE",
    "Session",
    "ack_bytes_for",
    "new_session_id",
    "new_token",
    "resume_proof",
]

SESSION_ID_SIZE = 16
TOKEN_SIZE = 32
# A receiver acknowledges after this many DATA frames or this many payload bytes, whichever comes first
# (and with every heartbeat), so the sender's replay buffer holds about one round trip of traffic.  The
# byte threshold grows to a quarter of the sender's replay buffer when the sender announces it (HELLO and
# WELCOME "resume_buffer"), at most ACK_BYTES_MAX: fewer ACKs for a steady stream of large packets.
ACK_EVERY = 512
ACK_BYTES = 64 * 1024
ACK_BYTES_MAX = 256 * 1024
# What keeping one frame costs beyond its bytes (its slot, the bytes object's header), counted against
# ``limit``: a flood of tiny frames must not hold many times the buffer's size.
ENTRY_COST = 64

_COUNT = struct.Struct(">Q")


def new_session_id() -> bytes:
    """A fresh random session id (16 bytes): names a session; not a secret."""
    return os.urandom(SESSION_ID_SIZE)


def new_token() -> bytes:
    """A fresh random resume token (32 bytes): the secret that proves a resume comes from the session's
    owner.  It never travels again after the WELCOME that hands it out: resumes send :func:`resume_proof`."""
    return os.urandom(TOKEN_SIZE)


def resume_proof(token: bytes, nonce: bytes) -> bytes:
    """The HELLO ``proof`` of a resume: HMAC-SHA256 of the server's CHALLENGE nonce keyed by the token.

    The nonce is fresh for every connection, so a proof seen on the wire cannot be replayed."""
    return hmac.new(token, nonce, hashlib.sha256).digest()


def ack_bytes_for(peer_buffer: object) -> int:
    """The byte threshold of :meth:`Session.ack_due` for a sender whose replay buffer holds ``peer_buffer``
    bytes (its HELLO or WELCOME ``resume_buffer``): a quarter of it, but at least ``ACK_BYTES`` and at most
    ``ACK_BYTES_MAX``; ``ACK_BYTES`` if it is missing or not an int (never raises)."""
    if type(peer_buffer) is not int:
        return ACK_BYTES
    return max(ACK_BYTES, min(peer_buffer // 4, ACK_BYTES_MAX))


def pack_count(count: int) -> bytes:
    """An ACK frame's body: ``count`` as an 8-byte big-endian unsigned integer."""
    return _COUNT.pack(count)


def unpack_count(body: bytes) -> int | None:
    """The count in an ACK frame's body, or None if the body is not exactly 8 bytes."""
    if len(body) != _COUNT.size:
        return None
    return int(_COUNT.unpack(body)[0])


class Session:
    """One side's state of a resumable session: counters, the replay buffer and the resume secret.

    Attributes:
        id: the session's id (16 bytes, chosen by the server).
        token: the current resume secret (rotated by the server on every resume).
        grace: seconds the server holds the session after its connection drops.
        sent: DATA frames sent in this session (including those held while the link was down).
        received: DATA frames received in this session.
        base: frames up to this number are no longer held (acknowledged by the peer, or let go because the
            buffer was full); the buffer holds frames ``base + 1`` to ``sent``.
        peer_acked: the highest count the peer acknowledged.
        ack_bytes: payload bytes received after which an ACK is due (:func:`ack_bytes_for` the peer's
            announced replay buffer; ``ACK_BYTES`` until known).
    """

    __slots__ = (
        "ack_bytes", "acked_out", "away_since", "base", "frames", "grace", "held", "id", "limit",
        "peer_acked", "previous_token", "received", "sent", "token", "unacked_bytes",
    )  # fmt: skip

    def __init__(self, session_id: bytes, token: bytes, *, grace: float, limit: int) -> None:
        self.id = session_id
        self.token = token
        self.previous_token: bytes | None = (
            None  # server: still accepted until the client confirms the new one
        )
        self.grace = grace
        self.limit = limit
        self.sent = 0
        self.received = 0
        self.base = 0
        self.peer_acked = 0
        self.frames: collections.deque[bytes] = collections.deque()
        self.held = 0  # bytes in `frames`, plus ENTRY_COST per frame
        self.ack_bytes = ACK_BYTES
        self.acked_out = 0  # the `received` count last sent to the peer (in an ACK, HELLO or WELCOME)
        self.unacked_bytes = 0  # payload bytes received since then
        self.away_since: float | None = None  # set by the I/O layer while no connection carries the session

    # -- sending -------------------------------------------------------------------------------------------

    def record(self, frame: bytes) -> None:
        """Count one DATA frame sent (or held while the link is down) and keep it until acknowledged.

        Past ``limit`` bytes the oldest frames are let go; a resume that needs them will be refused."""
        self.sent += 1
        self.frames.append(frame)
        self.held += len(frame) + ENTRY_COST
        if self.held > self.limit:
            frames = self.frames
            while self.held > self.limit and frames:
                self.held -= len(frames.popleft()) + ENTRY_COST
                self.base += 1

    def record_many(self, frames: list[bytes]) -> None:
        """:meth:`record` each of ``frames``, in order (the same counts, buffer and limit)."""
        self.sent += len(frames)
        self.frames.extend(frames)
        self.held += sum(map(len, frames)) + ENTRY_COST * len(frames)
        if self.held > self.limit:
            frames_held = self.frames
            while self.held > self.limit and frames_held:
                self.held -= len(frames_held.popleft()) + ENTRY_COST
                self.base += 1

    def acknowledge(self, count: int) -> bool:
        """The peer has received ``count`` frames: forget them.  False if ``count`` is impossible (more
        than was sent, or less than the peer already acknowledged); nothing changes then."""
        if not self.peer_acked <= count <= self.sent:
            return False
        self.peer_acked = count
        frames = self.frames
        while self.base < count:
            self.held -= len(frames.popleft()) + ENTRY_COST
            self.base += 1
        return True

    @property
    def overflowed(self) -> bool:
        """True when frames the peer has not acknowledged were let go: the session can no longer resume
        unless the peer turns out to have received them."""
        return self.base > self.peer_acked

    def can_replay(self, peer_received: int) -> bool:
        """True if this side still holds every frame after ``peer_received`` (and that count is possible)."""
        return self.base <= peer_received <= self.sent

    def replay(self, peer_received: int) -> list[bytes]:
        """The frames after ``peer_received``, in order, to send first on a resumed connection.

        Call :meth:`can_replay` first; frames up to ``peer_received`` are forgotten (acknowledged)."""
        self.acknowledge(peer_received)
        return list(self.frames)

    # -- receiving -----------------------------------------------------------------------------------------

    def ack_due(self) -> bool:
        """True when enough arrived since the last acknowledgement that the peer should hear of it now."""
        return self.received - self.acked_out >= ACK_EVERY or self.unacked_bytes >= self.ack_bytes

    def take_ack(self) -> int:
        """The count to acknowledge now (the caller sends it); resets the "since last ACK" tallies."""
        self.acked_out = self.received
        self.unacked_bytes = 0
        return self.received

    def __repr__(self) -> str:
        return (
            f"<Session {self.id.hex()[:8]} sent={self.sent} received={self.received} base={self.base} "
            f"held={self.held}B>"
        )
