"""BATCH frames: a run of small queued packets travels as one frame and arrives as those packets, in order.

In memory (real Connection objects, a fake clock) for the rules, then once over real sockets for the path a
burst of ``send()`` calls takes.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprocket import Servo, Sprocket
from sprocket.codec import MAX_BATCH_BYTES, SMALL_FACTOR, MsgpackCodec
from sprocket.protocol import BATCH, DATA, Closed, Connection, Received, batch_frames
from sprocket.session import Session
from sprocket.settings import Settings
from sprocket.testing import wait_until
from tests.core.test_protocol import handshake, make_pair, pump

pytestmark = pytest.mark.timeout(60)

CODEC = MsgpackCodec()


def frames_of(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4], data[pos + 5 : pos + 4 + length]))
        pos += 4 + length
    assert pos == len(data)
    return out


def payloads(count: int, **extra: Any) -> list[bytes]:
    return [CODEC.encode({"n": i, **extra}) for i in range(count)]


def received(conn: Connection) -> list[Received]:
    events = conn.events()
    assert all(isinstance(e, Received) for e in events), events
    return events  # type: ignore[return-value]


def test_both_ends_say_they_take_batches_in_the_handshake() -> None:
    server, client = make_pair()
    handshake(server, client)
    assert server.peer_batches and client.peer_batches


def test_a_burst_arrives_as_its_packets_in_order_in_few_frames() -> None:
    server, client = make_pair()
    handshake(server, client)
    sent = payloads(600, pad="x" * 10)
    assert client.send_payloads(sent) == 600
    wire = client.data_to_send()
    frames = frames_of(wire)
    assert {kind for kind, _ in frames} == {BATCH}
    assert len(frames) == -(-sum(map(len, sent)) // (MAX_BATCH_BYTES - 3))  # full frames, then the rest
    assert all(len(body) <= MAX_BATCH_BYTES for _, body in frames)
    server.receive_data(wire, 100.0)
    got = received(server)
    assert [e.fields for e in got] == [{"n": i, "pad": "x" * 10} for i in range(600)]
    # Each packet's size is its share of its frame's body; together they cover every byte.
    per_frame = [len(body) for _, body in frames]
    assert sum(e.size for e in got) >= sum(per_frame) - 0
    assert all(e.cost == SMALL_FACTOR * e.size for e in got)
    assert {e.size for e in got} <= {-(-size // count) for size, count in _counts(frames)}


def _counts(frames: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    return [(len(body), len(msgpack.unpackb(body))) for _, body in frames]


def test_one_packet_alone_is_a_data_frame() -> None:
    server, client = make_pair()
    handshake(server, client)
    assert client.send_payloads(payloads(1)) == 1
    assert [kind for kind, _ in frames_of(client.data_to_send())] == [DATA]


def test_no_batches_to_an_end_that_did_not_ask_for_them() -> None:
    # Another implementation (or a hand-written client) that never says "batch" gets DATA frames only.
    server, client = make_pair()
    client.batches = False
    handshake(server, client)
    assert not server.peer_batches
    assert server.send_payloads(payloads(50)) == 50
    assert {kind for kind, _ in frames_of(server.data_to_send())} == {DATA}


def test_a_batch_to_an_end_that_did_not_ask_for_it_is_a_protocol_error() -> None:
    server, client = make_pair()
    server.batches = False
    handshake(server, client)
    assert not client.peer_batches
    client.peer_batches = True  # a peer that ignores what the server said
    client.send_payloads(payloads(5))
    server.receive_data(client.data_to_send(), 100.0)
    (closed,) = server.events()
    assert isinstance(closed, Closed) and closed.code == "protocol" and "unexpected BATCH" in closed.reason


def test_the_pickle_codec_never_batches() -> None:
    server, client = make_pair(server_codec="pickle", client_codec="pickle")
    handshake(server, client)
    assert not server.peer_batches and not client.peer_batches
    client.send_payloads([client.codec.encode({"n": i}) for i in range(20)])
    assert {kind for kind, _ in frames_of(client.data_to_send())} == {DATA}


def test_a_batch_respects_a_small_max_packet_size_of_the_peer() -> None:
    server, client = make_pair(server_max_packet_size=1024)
    handshake(server, client)
    client.send_payloads(payloads(500))
    frames = frames_of(client.data_to_send())
    assert len(frames) > 1 and all(len(body) <= 1024 for _, body in frames)
    server.receive_data(b"".join(struct.pack(">IB", len(b) + 1, k) + b for k, b in frames), 100.0)
    assert [e.fields["n"] for e in received(server)] == list(range(500))


def test_a_batch_counts_as_one_frame_in_a_session_and_as_its_packets_against_the_rate() -> None:
    server = Connection("server", 100.0, Settings(max_packets_per_second=100), nonce=bytes(16))
    client = Connection("client", 100.0, Settings())
    pump(server, client, 100.0)
    assert server.events()[0].session  # type: ignore[attr-defined]
    server.accept(7, 100.0, Session(bytes(16), bytes(32), grace=30.0, limit=1 << 20))
    pump(server, client, 100.0)
    client.events()
    client.send_payloads(payloads(60))
    server.receive_data(client.data_to_send(), 100.0)
    assert len(received(server)) == 60
    assert client.session is not None and server.session is not None
    assert client.session.sent == server.session.received == 1  # one BATCH frame
    client.send_payloads(payloads(60))  # 120 packets within the second: over the rate of 100
    server.receive_data(client.data_to_send(), 100.0)
    (closed,) = server.events()
    assert isinstance(closed, Closed) and closed.code == "limit"


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=80),
    limit=st.integers(1024, MAX_BATCH_BYTES),
)
def test_batch_frames_keep_every_payload_in_order_within_the_limit(sizes: list[int], limit: int) -> None:
    sent = [CODEC.encode({"b": b"x" * max(0, size - 6)}) for size in sizes]
    sent = [p for p in sent if len(p) <= limit]
    if not sent:
        return
    out: list[bytes] = []
    for data in batch_frames(sent, limit):
        ((kind, body),) = frames_of(data)
        if kind == BATCH:
            assert len(body) <= limit
            packets = CODEC.decode_batch(body)
            assert len(packets) >= 2
            out.extend(CODEC.encode(p) for p in packets)
        else:
            assert kind == DATA
            out.append(body)
    assert out == sent


def test_a_burst_of_sends_over_sockets_arrives_whole_and_in_order() -> None:
    # The real path: send() calls faster than the I/O thread drains them are merged into BATCH frames.
    with Servo(port=0) as servo, Sprocket("127.0.0.1", servo.port) as client:
        client.wait_connected(5)
        for i in range(20_000):
            client.send(n=i)
        got: list[Any] = []
        wait_until(lambda: got.extend(servo.get()) or len(got) >= 20_000, timeout=20)
        assert [p.n for p in got] == list(range(20_000))
        assert all(p.sender is servo.clients[0] for p in got)
        # Batched: a DATA frame of {"n": i} takes 9 to 11 bytes (10.9 on average); in BATCH frames about 6.
        assert client.stats["bytes_out"] < 20_000 * 9
        # and back: a burst from the server to the client
        for i in range(20_000):
            servo.clients[0].send(m=i)
        back: list[Any] = []
        wait_until(lambda: back.extend(client.get()) or len(back) >= 20_000, timeout=20)
        assert [p.m for p in back] == list(range(20_000))
        assert client.stats["bytes_in"] < 20_000 * 9
