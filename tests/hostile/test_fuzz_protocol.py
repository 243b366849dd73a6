"""Fuzzing the frame decoder in memory: whatever bytes a peer sends, the connection either carries on or
closes with a reason, never raises, never hangs, and never buffers more than one frame.

The protocol object is driven exactly like the I/O thread drives it (accept every HELLO at once, collect
events, flush) with an injected clock, so a hang shows up as a connection that does not close after its
deadlines, not as a stuck test.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Iterable
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sprocket.codec import MsgpackCodec
from sprocket.protocol import (
    ACK,
    BATCH,
    BYE,
    CHALLENGE,
    DATA,
    HANDSHAKE_FRAME_LIMIT,
    HELLO,
    PING,
    PONG,
    PROTOCOL_VERSION,
    REJECT,
    WELCOME,
    Closed,
    Connection,
    HelloReceived,
    Received,
    frame,
)
from sprocket.session import Session, pack_count
from sprocket.settings import Settings
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import CLOSE_CODES, EXAMPLES, FUZZ, hello_body

pytestmark = pytest.mark.timeout(60)

MAX_PACKET = 1024  # small, so "huge" inputs are cheap to make
# A live connection may hold at most one incomplete frame: its 4-byte header plus the largest body allowed
# in any state (HANDSHAKE_FRAME_LIMIT before the handshake, max_packet_size + the type byte after).
BUFFER_BOUND = 4 + max(HANDSHAKE_FRAME_LIMIT, MAX_PACKET + 1)
NONCE = bytes(16)
# Every close code, including the resume refusal (tests.hostile.helpers predates sessions).


class Driven:
    """One end of a connection driven like the I/O thread drives it, with a fake clock and checks."""

    def __init__(self, role: str = "server", now: float = 1000.0) -> None:
        self.now = now
        self.conn = Connection(
            role,
            now,
            Settings(max_packet_size=MAX_PACKET, ping_interval=0.5, timeout=2.0, handshake_timeout=1.0),
            nonce=NONCE,
        )
        self.sent = bytearray(self.conn.data_to_send())
        self.events: list[Any] = []
        self.fed = 0

    def feed(self, data: bytes) -> None:
        self.fed += len(data)
        self.conn.receive_data(data, self.now)
        self._handle()

    def feed_chunks(self, data: bytes, cuts: Iterable[int]) -> None:
        start = 0
        for cut in sorted(set(cuts)):
            if 0 < cut < len(data) and cut > start:
                self.feed(data[start:cut])
                start = cut
        if start < len(data):
            self.feed(data[start:])

    def _handle(self) -> None:
        while True:
            events = self.conn.events()
            if not events:
                break
            for event in events:
                self.events.append(event)
                if isinstance(event, HelloReceived) and not self.conn.closed:
                    # The server admits at once, as _ServerIO does, with a session if one was asked for.
                    session = None
                    if event.session:
                        session = Session(bytes(16), bytes(32), grace=30.0, limit=64 * 1024)
                    self.conn.accept(1, self.now, session)
        self.sent += self.conn.data_to_send()
        self.check()

    def check(self) -> None:
        conn = self.conn
        if not conn.closed:
            assert len(conn._buffer) <= BUFFER_BOUND, f"buffer holds {len(conn._buffer)} bytes"
        closes = [e for e in self.events if isinstance(e, Closed)]
        assert len(closes) <= (1 if conn.closed else 0)
        if closes:
            (closed,) = closes
            assert closed.code in CLOSE_CODES and isinstance(closed.reason, str) and closed.reason
            assert self.events[-1] is closed, "nothing may happen after the close"
            if not closed.by_peer:
                # We hung up because of the peer: it was told why, in the last frame we sent.
                kind, body = last_frame(self.sent)
                assert kind in (BYE, REJECT)
                assert msgpack.unpackb(body)["code"] == closed.code
        for event in self.events:
            if isinstance(event, Received):
                assert type(event.fields) is dict and all(type(k) is str for k in event.fields)

    def finish(self) -> Closed:
        """Let time pass with nothing more received: every connection ends by itself, with a reason."""
        for _ in range(40):
            if self.conn.closed:
                break
            self.now += 0.25
            self.conn.tick(self.now)
            self._handle()
        assert self.conn.closed, "the connection outlived every deadline"
        before = len(self.conn._buffer)
        self.conn.receive_data(b"more junk after the close", self.now)  # ignored
        assert len(self.conn._buffer) == before and not self.conn.has_events()
        closed = self.events[-1]
        assert isinstance(closed, Closed)
        return closed


def frames_of(data: bytes | bytearray) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos + 5 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4], bytes(data[pos + 5 : pos + 4 + length])))
        pos += 4 + length
    return out


def last_frame(data: bytes | bytearray) -> tuple[int, bytes]:
    return frames_of(data)[-1]


def ping(t: float) -> bytes:
    return frame(PING, struct.pack(">d", t))


def pong(t: float, peer: float) -> bytes:
    return frame(PONG, struct.pack(">dd", t, peer))


def data(**fields: Any) -> bytes:
    return frame(DATA, MsgpackCodec().encode(fields))


HELLO_FRAME = frame(HELLO, hello_body(name="fuzz"))
SESSION_HELLO_FRAME = frame(HELLO, hello_body(name="fuzz", session=True))

# -- strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=20), st.binary(max_size=20),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
kinds = st.one_of(
    st.sampled_from([CHALLENGE, HELLO, WELCOME, REJECT, DATA, PING, PONG, BYE, ACK, BATCH]),
    st.integers(0, 255),
)


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


bodies = st.one_of(
    st.binary(max_size=64),
    values.map(packb),
    st.dictionaries(st.text(max_size=10), values, max_size=5).map(packb),
    st.builds(lambda n: b"x" * n, st.integers(0, MAX_PACKET + 10)),
)


@st.composite
def hostile_frames(draw: st.DrawFn) -> bytes:
    """One frame whose length field is right, zero, enormous, off by a little, or random."""
    kind = draw(kinds)
    body = draw(bodies)
    length = draw(
        st.one_of(
            st.just(len(body) + 1), st.just(len(body) + 1), st.just(0), st.just(2**32 - 1),
            st.integers(0, 2**32 - 1), st.integers(max(0, len(body) - 3), len(body) + 5),
            st.just(MAX_PACKET + 2), st.just(HANDSHAKE_FRAME_LIMIT + 2),
        )
    )  # fmt: skip
    return struct.pack(">IB", length, kind) + body


@st.composite
def valid_session(draw: st.DrawFn) -> bytes:
    """What a well-behaved client sends: HELLO, then packets and heartbeats, maybe a goodbye."""
    parts = [HELLO_FRAME]
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            parts.append(data(**draw(st.dictionaries(st.text(max_size=6), values, max_size=4))))
        elif choice == 1:
            parts.append(ping(draw(st.floats(0, 1e6))))
        else:
            parts.append(pong(draw(st.floats(0, 1e6)), draw(st.floats(0, 1e6))))
    if draw(st.booleans()):
        parts.append(frame(BYE, msgpack.packb({"code": "closed", "reason": "bye"})))
    return b"".join(parts)


cut_points = st.lists(st.integers(0, 5000), max_size=12)

# -- the fuzz tests --------------------------------------------------------------------------------------


def test_random_bytes_at_a_server(reliability: Reliability) -> None:
    codes: collections.Counter[str] = collections.Counter()
    fed = 0

    @FUZZ
    @given(junk=st.binary(max_size=6000), cuts=cut_points, after_hello=st.booleans())
    def run(junk: bytes, cuts: list[int], after_hello: bool) -> None:
        nonlocal fed
        end = Driven("server")
        if after_hello:
            end.feed(HELLO_FRAME)
            assert end.conn.is_open
        end.feed_chunks(junk, cuts)
        codes[end.finish().code] += 1
        fed += end.fed

    run()
    reliability.record(
        "Hostile input (in memory)",
        "Random bytes at the server's frame decoder",
        tried=f"{sum(codes.values())} random byte strings (0-6000 B, split at random points), "
        "before and after the handshake",
        outcome=f"every one ended with a reason: {dict(codes)}; no exception, buffer <= {BUFFER_BOUND} B",
        examples=sum(codes.values()),
        bytes=fed,
        close_codes=dict(codes),
    )


def test_hostile_frames_at_a_server(reliability: Reliability) -> None:
    codes: collections.Counter[str] = collections.Counter()
    frames = 0

    @FUZZ
    @given(
        junk=st.lists(hostile_frames(), min_size=1, max_size=6),
        cuts=cut_points,
        after_hello=st.booleans(),
        in_session=st.booleans(),
    )
    def run(junk: list[bytes], cuts: list[int], after_hello: bool, in_session: bool) -> None:
        nonlocal frames
        end = Driven("server")
        if after_hello:
            end.feed(SESSION_HELLO_FRAME if in_session else HELLO_FRAME)
            assert (end.conn.session is not None) == in_session
        end.feed_chunks(b"".join(junk), cuts)
        codes[end.finish().code] += 1
        frames += len(junk)

    run()
    reliability.record(
        "Hostile input (in memory)",
        "Malformed frames at the server (bad lengths 0 / 2^32-1 / off-by-n, every type byte, junk bodies)",
        tried=f"{sum(codes.values())} sequences, {frames} frames, all 256 type bytes, bodies up to "
        f"{MAX_PACKET + 10} B, random chunking, with and without a session (ACK frames parsed)",
        outcome=f"closed with a reason each time: {dict(codes)}; peer told why in a BYE/REJECT",
        examples=sum(codes.values()),
        frames=frames,
        close_codes=dict(codes),
    )


def test_hostile_server_bytes_at_a_client(reliability: Reliability) -> None:
    codes: collections.Counter[str] = collections.Counter()

    @FUZZ
    @given(
        junk=st.lists(st.one_of(hostile_frames(), st.binary(max_size=200)), min_size=1, max_size=6),
        cuts=cut_points,
        challenge_first=st.booleans(),
    )
    def run(junk: list[bytes], cuts: list[int], challenge_first: bool) -> None:
        end = Driven("client")
        if challenge_first:
            end.feed(frame(CHALLENGE, msgpack.packb({"sprocket": PROTOCOL_VERSION, "nonce": NONCE})))
        end.feed_chunks(b"".join(junk), cuts)
        codes[end.finish().code] += 1

    run()
    reliability.record(
        "Hostile input (in memory)",
        "A hostile server's bytes at a client",
        tried=f"{sum(codes.values())} sequences of malformed frames and raw bytes, before and after a "
        "valid CHALLENGE",
        outcome=f"client closed with a reason each time: {dict(codes)}",
        examples=sum(codes.values()),
        close_codes=dict(codes),
    )


def test_valid_stream_split_at_every_boundary_gives_the_same_events(reliability: Reliability) -> None:
    splits = 0

    @FUZZ
    @given(stream=valid_session())
    def run(stream: bytes) -> None:
        nonlocal splits
        whole = Driven("server")
        whole.feed(stream)
        expected = whole.events
        assert not any(isinstance(e, Closed) and e.code == "protocol" for e in expected)
        for cut in range(1, len(stream)):
            split = Driven("server")
            split.feed(stream[:cut])
            # A prefix of a valid stream is never an error: it is a frame still arriving.
            assert split.events == expected[: len(split.events)]
            assert not split.conn.closed or split.events == expected
            split.feed(stream[cut:])
            assert split.events == expected
            splits += 1

    run()
    reliability.record(
        "Hostile input (in memory)",
        "Valid streams truncated and split at every byte boundary",
        tried=f"{EXAMPLES} client sessions (HELLO, packets, pings, pongs, goodbye), each cut at every "
        f"position: {splits} splits",
        outcome="identical events for every split; a truncated stream waits (no error) until the "
        "handshake/heartbeat deadline closes it",
        splits=splits,
    )


def test_truncated_stream_waits_then_times_out() -> None:
    stream = HELLO_FRAME + data(x=1, pad="y" * 300) + ping(5.0)
    for cut in range(1, len(stream)):
        end = Driven("server")
        end.feed(stream[:cut])
        assert not end.conn.closed
        closed = end.finish()
        assert closed.code == "timeout" and not closed.by_peer


# -- the classic attacks, one by one ---------------------------------------------------------------------


def open_server() -> Driven:
    end = Driven("server")
    end.feed(HELLO_FRAME)
    assert end.conn.is_open
    return end


@pytest.mark.parametrize("state", ["handshake", "open"])
@pytest.mark.parametrize(
    ("header", "words"),
    [
        (struct.pack(">I", 0), "empty frame"),
        (struct.pack(">I", 2**32 - 1), "too large|over max_packet_size"),
        (struct.pack(">I", HANDSHAKE_FRAME_LIMIT + MAX_PACKET + 2), "too large|over max_packet_size"),
    ],
)
def test_impossible_lengths_close_at_once_without_allocating(state: str, header: bytes, words: str) -> None:
    end = Driven("server") if state == "handshake" else open_server()
    end.feed(header)  # just the 4-byte header: nothing else needs to arrive
    (closed,) = [e for e in end.events if isinstance(e, Closed)]
    assert closed.code == "protocol"
    assert any(w in closed.reason for w in words.split("|"))
    assert len(end.conn._buffer) == 0


@pytest.mark.parametrize("kind", [0x00, 0x0B, 0x42, 0x7F, 0xFF])
@pytest.mark.parametrize("state", ["handshake", "open"])
def test_unknown_frame_types_are_protocol_errors(kind: int, state: str) -> None:
    end = Driven("server") if state == "handshake" else open_server()
    end.feed(frame(kind, b"whatever"))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and "unknown type" in closed.reason


# -- ACK (0x09): only when OPEN in a session, 8 bytes, a count between what was acknowledged and sent ------


def session_server(sent: int = 0) -> Driven:
    """An OPEN server connection holding a session, that has sent ``sent`` DATA frames."""
    end = Driven("server")
    end.feed(SESSION_HELLO_FRAME)
    assert end.conn.is_open and end.conn.session is not None
    for i in range(sent):
        assert end.conn.send_data(data(i=i))
    end._handle()
    return end


def test_ack_before_the_handshake_is_a_protocol_error() -> None:
    end = Driven("server")
    end.feed(frame(ACK, pack_count(0)))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and "ACK" in closed.reason
    end = Driven("server")
    end.feed(frame(HELLO, hello_body(name="fuzz", session=True)) + frame(ACK, pack_count(0)))
    # Pipelined behind a HELLO asking for a session: parsed only once accepted, and then legal.
    assert end.conn.is_open and not any(isinstance(e, Closed) for e in end.events)


def test_ack_without_a_session_is_a_protocol_error() -> None:
    end = open_server()  # the HELLO did not ask for a session
    assert end.conn.session is None
    end.feed(frame(ACK, pack_count(0)))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and "ACK" in closed.reason


@pytest.mark.parametrize("body", [b"", b"\x00" * 7, b"\x00" * 9, b"\x00" * 16])
def test_malformed_ack_is_a_protocol_error(body: bytes) -> None:
    end = session_server(sent=3)
    end.feed(frame(ACK, body))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and "malformed ACK" in closed.reason


def test_ack_counts_must_lie_between_what_was_acknowledged_and_what_was_sent() -> None:
    end = session_server(sent=3)
    session = end.conn.session
    assert session is not None
    end.feed(frame(ACK, pack_count(2)))
    end.feed(frame(ACK, pack_count(2)))  # the same count again is harmless (a heartbeat's repeat)
    assert not end.conn.closed and session.peer_acked == 2 and session.base == 2 and len(session.frames) == 1
    end.feed(frame(ACK, pack_count(3)))
    assert not end.conn.closed and session.peer_acked == 3 and not session.frames and session.held == 0
    for bad in (4, 2**64 - 1):  # more than was sent
        over = session_server(sent=3)
        over.feed(frame(ACK, pack_count(bad)))
        closed = over.events[-1]
        assert isinstance(closed, Closed) and closed.code == "protocol"
        assert f"ACK of {bad} frames" in closed.reason and "3 were sent" in closed.reason
    end.feed(frame(ACK, pack_count(1)))  # below what it already acknowledged
    closed = end.events[-1]
    assert (
        isinstance(closed, Closed) and closed.code == "protocol" and "already acknowledged" in closed.reason
    )


@pytest.mark.parametrize("kind", [DATA, PONG, WELCOME, CHALLENGE, REJECT])
def test_frames_before_the_handshake_are_protocol_errors(kind: int) -> None:
    end = Driven("server")
    end.feed(frame(kind, msgpack.packb({"x": 1})))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol"
    assert not any(isinstance(e, Received) for e in end.events)


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_second_hello_is_refused(pipelined: bool) -> None:
    end = Driven("server")
    if pipelined:
        end.feed(HELLO_FRAME + HELLO_FRAME + data(x=1))  # in one chunk, before the server decided
    else:
        end.feed(HELLO_FRAME)
        end.feed(HELLO_FRAME)
    assert [type(e) for e in end.events] == [HelloReceived, Closed]
    assert end.events[-1].code == "protocol" and "HELLO" in end.events[-1].reason


def test_data_pipelined_behind_the_hello_arrives_once_admitted() -> None:
    end = Driven("server")
    end.feed(HELLO_FRAME + data(n=1) + data(n=2))
    assert [type(e) for e in end.events] == [HelloReceived, Received, Received]


def test_largest_packet_passes_and_one_more_byte_closes() -> None:
    codec = MsgpackCodec()
    fits = codec.encode({"b": b"x" * (MAX_PACKET - 6)})  # map, key and bin16 header take 6 bytes
    too_big = codec.encode({"b": b"x" * (MAX_PACKET - 5)})
    assert (len(fits), len(too_big)) == (MAX_PACKET, MAX_PACKET + 1)
    end = open_server()
    end.feed(frame(DATA, fits))
    assert isinstance(end.events[-1], Received)
    end.feed(frame(DATA, too_big))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and "max_packet_size" in closed.reason


# -- BATCH (0x0a): an array of packets, each checked as a DATA body; the whole frame at most 4095 bytes -----


def batch(*packets: bytes, header: bytes | None = None) -> bytes:
    """A BATCH frame of already-encoded packets (``header``: a msgpack array header of our choosing)."""
    head = header if header is not None else bytes((0x90 | len(packets),))
    return frame(BATCH, head + b"".join(packets))


P1, P2 = MsgpackCodec().encode({"n": 1}), MsgpackCodec().encode({"n": 2})


def test_a_well_formed_batch_delivers_its_packets_in_order() -> None:
    end = open_server()
    nested = b"\x81\xa1n\x91\x81\x01\xc4\x01n"  # {"n": [{1: b"n"}]}: inner keys may be anything
    end.feed(batch(P1, P2) + data(n=3) + batch(nested, P1))
    assert [e.fields for e in end.events if isinstance(e, Received)] == [
        {"n": 1}, {"n": 2}, {"n": 3}, {"n": [{1: b"n"}]}, {"n": 1},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\x90", "holding no packets"),
        (b"\x81\xa1n\x01", "must be an array of packets, got dict"),
        (b"\x92" + P1 + b"\x01", "must be a map of fields, got int"),
        (b"\x91\x81\x01\x02", "field names must be strings, got int"),
        (b"\x91\x81\xc4\x01n\x01", "field names must be strings, got bytes"),
        (b"\x92" + P1, "undecodable"),  # claims two packets, holds one
        (b"\x91" + P1 + P2, "undecodable"),  # bytes after the last packet
        (b"\xdd\xff\xff\xff\xff" + P1, "undecodable"),  # 4 billion packets in 9 bytes
        (b"\xdc\x00\x02" + P1 + b"\xc1", "undecodable"),  # 0xc1: never used in msgpack
        (b"", "undecodable"),
    ],
)
def test_malformed_batches_close_with_a_reason(body: bytes, words: str) -> None:
    end = open_server()
    end.feed(frame(BATCH, body))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and words in closed.reason
    assert not [e for e in end.events if isinstance(e, Received)], "nothing of a bad batch is delivered"


def test_a_batch_over_4095_bytes_closes_even_within_max_packet_size() -> None:
    small = MsgpackCodec().encode({"b": b"x" * 1018})  # 1024 bytes
    smaller = MsgpackCodec().encode({"b": b"x" * 1017})  # 1023
    # 4096 bytes: decoded and refused; 5121: refused from its header, never buffered.
    for packets in ([small] * 3 + [smaller], [small] * 5):
        size = 1 + sum(map(len, packets))
        conn = Connection("server", 1000.0, Settings(), nonce=NONCE)  # max_packet_size 1 MiB
        conn.receive_data(HELLO_FRAME, 1000.0)
        conn.events()
        conn.accept(1, 1000.0)
        conn.receive_data(batch(*packets), 1000.0)
        (closed,) = conn.events()
        assert isinstance(closed, Closed) and closed.code == "protocol"
        assert f"BATCH frame of {size} bytes is over the limit of 4095" in closed.reason


def test_a_batch_before_the_handshake_is_a_protocol_error() -> None:
    end = Driven("server")
    end.feed(batch(P1, P2))
    closed = end.events[-1]
    assert isinstance(closed, Closed) and closed.code == "protocol" and "unexpected BATCH" in closed.reason


@FUZZ
@given(items=st.lists(st.one_of(values.map(packb), st.binary(max_size=8)), max_size=20))
def test_random_batches_are_delivered_whole_or_refused_whole(items: list[bytes]) -> None:
    end = open_server()
    body = (
        bytes((0x90 | len(items),)) if len(items) < 16 else b"\xdc" + struct.pack(">H", len(items))
    ) + b"".join(items)
    end.feed(frame(BATCH, body))
    got = [e for e in end.events if isinstance(e, Received)]
    if end.conn.closed:
        assert not got
    else:  # accepted: exactly the packets, each a map with string keys (Driven.check)
        assert len(got) == len(items) >= 1


def test_a_deep_and_huge_but_legal_packet_is_decoded_within_bounds() -> None:
    end = open_server()
    deep = b"\x81\xa1d" + b"\x91" * 500 + b"\xc0"  # {"d": [[[...[None]...]]]} 500 deep
    wide = MsgpackCodec().encode({"m": {str(i): i for i in range(100)}})
    end.feed(frame(DATA, deep) + frame(DATA, wide))
    assert [type(e) for e in end.events[-2:]] == [Received, Received]


def deep(depth: int) -> bytes:
    """msgpack for a list nested ``depth`` deep: legal msgpack (the C unpacker allows 1024 levels)."""
    return b"\x91" * depth + b"\xc0"


def control(kind: int, **fields: bytes) -> bytes:
    """A control frame whose map values are given as raw msgpack (so they can be hostile)."""
    body = bytes([0x80 | len(fields)]) + b"".join(msgpack.packb(k) + v for k, v in fields.items())
    return frame(kind, body)


DEEP_CASES = {
    "HELLO name": ("server", control(HELLO, version=packb(1), codec=packb("msgpack"), name=deep(1020))),
    "HELLO version": ("server", control(HELLO, version=deep(1020), codec=packb("msgpack"))),
    "BYE code (handshake)": ("server", control(BYE, code=deep(1020), reason=packb("x"))),
    "BYE code (open)": ("server", HELLO_FRAME + control(BYE, code=deep(1005), reason=packb("x"))),
    "REJECT reason (at a client)": ("client", control(REJECT, code=packb("full"), reason=deep(1020))),
}


def test_deeply_nested_control_fields_close_with_a_reason(reliability: Reliability) -> None:
    # Under 4 KiB and legal msgpack, but str()/repr() of a 1000-deep list exceeds Python's recursion limit.
    outcomes: dict[str, str] = {}
    for name, (role, hostile) in DEEP_CASES.items():
        end = Driven(role)
        try:
            end.feed(hostile)
        except RecursionError:
            outcomes[name] = "RecursionError raised"
        else:
            outcomes[name] = f"closed: {end.events[-1].code}" if end.conn.closed else "still open"
    raised = sorted(name for name, what in outcomes.items() if what == "RecursionError raised")
    reliability.record(
        "Hostile input (in memory)",
        "Deeply nested values in control frames (HELLO, BYE, REJECT)",
        tried=f"{len(DEEP_CASES)} control frames whose fields are lists nested 1005-1020 deep (< 4 KiB each)",
        outcome=f"BUG: RecursionError escaped receive_data() for {len(raised)}/{len(DEEP_CASES)} "
        f"({', '.join(raised)})"
        if raised
        else "closed with a reason each time",
        outcomes=outcomes,
    )
    assert not raised, outcomes
    assert all(what.startswith("closed:") for what in outcomes.values()), outcomes
