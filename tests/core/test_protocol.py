"""The wire protocol, in memory: exact bytes, a fake clock, no sockets."""

from __future__ import annotations

import struct

import msgpack
import pytest

from sprocket.codec import MsgpackCodec, PickleCodec
from sprocket.protocol import (
    BYE,
    DATA,
    HANDSHAKE_FRAME_LIMIT,
    HELLO,
    PING,
    PONG,
    PROTOCOL_VERSION,
    WELCOME,
    Closed,
    Connection,
    HelloReceived,
    Received,
    Welcomed,
    data_frame,
    frame,
    password_proof,
)
from sprocket.settings import Settings

pytestmark = pytest.mark.timeout(30)

NONCE = bytes(range(16))


def make_pair(now: float = 100.0, **kw: object) -> tuple[Connection, Connection]:
    server_kw = {k[7:]: v for k, v in kw.items() if k.startswith("server_")}
    client_kw = {k[7:]: v for k, v in kw.items() if k.startswith("client_")}
    server = Connection("server", now, Settings(**server_kw), nonce=NONCE)  # type: ignore[arg-type]
    client = Connection("client", now, Settings(**client_kw))  # type: ignore[arg-type]
    return server, client


def pump(a: Connection, b: Connection, now: float, chunk: int | None = None) -> None:
    """Move bytes both ways until quiet; optionally in chunks of ``chunk`` bytes."""
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                if chunk:
                    for i in range(0, len(data), chunk):
                        dst.receive_data(data[i : i + chunk], now)
                else:
                    dst.receive_data(data, now)
        if not moved:
            return


def handshake(server: Connection, client: Connection, now: float = 100.0, client_id: int = 7) -> None:
    pump(server, client, now)
    events = server.events()
    assert isinstance(events[0], HelloReceived)
    server.accept(client_id, now)
    pump(server, client, now)
    assert client.events() == [Welcomed(client_id)]


def test_server_speaks_first_with_a_challenge() -> None:
    server, _ = make_pair()
    data = server.data_to_send()
    (length,) = struct.unpack(">I", data[:4])
    assert length == len(data) - 4
    assert data[4] == 0x01
    body = msgpack.unpackb(data[5:])
    assert body == {"sprocket": PROTOCOL_VERSION, "nonce": NONCE}


def test_handshake_then_data_both_ways() -> None:
    server, client = make_pair(client_name="alice")
    pump(server, client, 100.0)
    (hello,) = server.events()
    assert hello == HelloReceived(name="alice", app=None, session=True)  # reconnect=True by default
    server.accept(7, 100.0)
    pump(server, client, 100.05)
    assert client.events() == [Welcomed(7)]
    assert client.is_open and server.is_open
    up, down = MsgpackCodec().encode({"x": 1}), MsgpackCodec().encode({"y": (2, 3)})
    client.send_data(data_frame(up))
    server.send_data(data_frame(down))
    pump(server, client, 100.1)
    assert [e[:2] for e in server.events()] == [({"x": 1}, len(up))]  # (fields, size) of a Received
    assert [e[:2] for e in client.events()] == [({"y": (2, 3)}, len(down))]


def test_frames_split_at_every_boundary_are_reassembled() -> None:
    server, client = make_pair()
    handshake(server, client)
    codec = MsgpackCodec()
    for i in range(5):
        client.send_data(data_frame(codec.encode({"i": i, "pad": "x" * i})))
    pump(server, client, 100.0, chunk=1)  # one byte at a time
    assert [e.fields["i"] for e in server.events() if isinstance(e, Received)] == [0, 1, 2, 3, 4]


def test_frame_larger_than_the_limit_closes_without_allocating() -> None:
    server, client = make_pair(server_max_packet_size=4000)
    handshake(server, client)
    server.receive_data(struct.pack(">I", 2**32 - 1), 100.0)  # only the header: nothing allocated
    (closed,) = server.events()
    assert isinstance(closed, Closed) and closed.code == "protocol" and not closed.by_peer
    assert "max_packet_size" in closed.reason
    assert len(server._buffer) == 0
    # The peer is told why in a goodbye.
    assert server.data_to_send()[4] == BYE


def test_empty_frame_and_unknown_type_are_protocol_errors() -> None:
    for junk in (struct.pack(">I", 0), frame(0x7F, b"zz")):
        server, client = make_pair()
        handshake(server, client)
        server.receive_data(junk, 100.0)
        (closed,) = server.events()
        assert closed.code == "protocol"


def test_data_before_the_handshake_is_a_protocol_error() -> None:
    server, _ = make_pair()
    server.receive_data(data_frame(b"\x80"), 100.0)
    (closed,) = server.events()
    assert closed.code == "protocol" and "DATA" in closed.reason


def test_a_second_hello_is_a_protocol_error() -> None:
    server, client = make_pair()
    pump(server, client, 100.0)
    server.events()
    server.accept(1, 100.0)
    hello = frame(HELLO, msgpack.packb({"version": PROTOCOL_VERSION, "codec": "msgpack"}))
    server.receive_data(hello, 100.0)
    (closed,) = server.events()
    assert closed.code == "protocol" and "HELLO" in closed.reason


def test_handshake_frames_are_limited_in_size() -> None:
    server, _ = make_pair()
    server.receive_data(struct.pack(">I", HANDSHAKE_FRAME_LIMIT + 10), 100.0)
    (closed,) = server.events()
    assert closed.code == "protocol" and "handshake" in closed.reason


def test_undecodable_data_closes_with_a_reason() -> None:
    server, client = make_pair()
    handshake(server, client)
    server.receive_data(data_frame(b"\xc1"), 100.0)  # 0xc1 is never valid msgpack
    (closed,) = server.events()
    assert closed.code == "protocol" and "undecodable" in closed.reason


@pytest.mark.parametrize(
    ("server_kw", "client_kw", "code"),
    [
        ({"password": "secret"}, {"password": "wrong"}, "password"),
        ({"password": "secret"}, {}, "password"),
        ({"app": "pong-1.0"}, {"app": "pong-2.0"}, "app"),
        ({"codec": PickleCodec()}, {}, "codec"),
    ],
)
def test_rejections_reach_the_client_with_a_reason(
    server_kw: dict[str, object], client_kw: dict[str, object], code: str
) -> None:
    kw = {f"server_{k}": v for k, v in server_kw.items()} | {f"client_{k}": v for k, v in client_kw.items()}
    server, client = make_pair(**kw)
    pump(server, client, 100.0)
    (server_closed,) = server.events()
    (client_closed,) = client.events()
    assert server_closed.code == code and not server_closed.by_peer
    assert client_closed.code == code and client_closed.by_peer
    assert client_closed.reason and server.closed and client.closed


def test_right_password_is_accepted_and_never_sent_in_clear() -> None:
    server, client = make_pair(server_password="secret", client_password="secret")
    server_bytes = server.data_to_send()
    client.receive_data(server_bytes, 100.0)
    hello = client.data_to_send()
    assert b"secret" not in hello
    assert password_proof("secret", NONCE) in hello
    server.receive_data(hello, 100.0)
    assert isinstance(server.events()[0], HelloReceived)


def test_heartbeats_measure_rtt_and_clock_offset() -> None:
    # The server's clock reads 1000 s ahead of the client's; each leg of the trip takes 0.05 s.
    server = Connection("server", 1100.0, Settings(ping_interval=1.0), nonce=NONCE)
    client = Connection("client", 100.0, Settings(ping_interval=1.0))
    t = 100.0

    def leg(src: Connection, dst: Connection, dst_clock_ahead: float) -> None:
        dst.receive_data(src.data_to_send(), t + dst_clock_ahead)

    leg(server, client, 0.0)
    t += 0.05
    leg(client, server, 1000.0)
    server.events()
    server.accept(1, t + 1000.0)
    t += 0.05
    leg(server, client, 0.0)
    assert client.events() == [Welcomed(1)]
    for _ in range(5):
        t += 1.0
        client.tick(t)
        assert client.has_data_to_send()  # a PING
        t += 0.05
        leg(client, server, 1000.0)
        t += 0.05
        leg(server, client, 0.0)
    assert client.rtt == pytest.approx(0.1, abs=1e-9)
    assert client.clock_offset == pytest.approx(1000.0, abs=1e-6)


def test_ping_is_answered_with_pong_echoing_the_time() -> None:
    server, client = make_pair()
    handshake(server, client)
    server.receive_data(frame(PING, struct.pack(">d", 42.5)), 101.0)
    out = server.data_to_send()
    assert out[4] == PONG
    assert struct.unpack(">dd", out[5:]) == (42.5, 101.0)


def test_silent_peer_times_out() -> None:
    server, client = make_pair(server_timeout=3.0)
    handshake(server, client)
    server.tick(102.9)
    assert server.is_open
    server.tick(103.1)
    (closed,) = server.events()
    assert closed.code == "timeout" and server.closed


def test_keep_alive_suspends_the_timeout_while_we_chose_not_to_read() -> None:
    server, client = make_pair(server_timeout=3.0)
    handshake(server, client)
    server.keep_alive(105.0)
    server.tick(107.0)
    assert server.is_open


def test_handshake_timeout() -> None:
    server, _ = make_pair(server_handshake_timeout=2.0)
    server.tick(101.9)
    assert not server.closed
    server.tick(102.0)
    (closed,) = server.events()
    assert closed.code == "timeout" and "handshake" in closed.reason


def test_goodbye_carries_the_reason_to_the_peer() -> None:
    server, client = make_pair()
    handshake(server, client)
    server.close("shutdown", "the server is shutting down")
    pump(server, client, 100.0)
    (closed,) = client.events()
    assert closed == Closed("shutdown", "the server is shutting down", True)


def test_eof_without_goodbye_is_lost() -> None:
    server, client = make_pair()
    handshake(server, client)
    server.receive_data(b"", 100.0)
    (closed,) = server.events()
    assert closed.code == "lost" and closed.by_peer


def test_welcome_tells_the_client_the_server_limits() -> None:
    server, client = make_pair(server_max_packet_size=5000)
    handshake(server, client)
    assert client.peer_max_packet_size == 5000


def test_nothing_is_sent_on_a_closed_connection() -> None:
    server, client = make_pair()
    handshake(server, client)
    client.close()
    client.data_to_send()
    assert client.send_data(data_frame(b"\x80")) is False
    assert client.data_to_send() == b""


def test_welcome_frame_layout() -> None:
    server, client = make_pair()
    pump(server, client, 100.0)
    server.events()
    server.accept(3, 100.0)
    out = server.data_to_send()
    assert out[4] == WELCOME
    assert msgpack.unpackb(out[5:])["id"] == 3
    assert DATA == 0x05


def test_frames_pipelined_after_hello_wait_for_the_servers_decision() -> None:
    server, _ = make_pair()
    server.data_to_send()
    hello = frame(HELLO, msgpack.packb({"version": PROTOCOL_VERSION, "codec": "msgpack"}))
    server.receive_data(hello + data_frame(MsgpackCodec().encode({"early": 1})), 100.0)
    assert [type(e) for e in server.events()] == [HelloReceived]  # the DATA waits
    server.accept(1, 100.0)
    (event,) = server.events()
    assert isinstance(event, Received) and (event.fields, event.size) == ({"early": 1}, 8)


def test_junk_pipelined_after_hello_is_judged_after_the_decision() -> None:
    server, _ = make_pair()
    hello = frame(HELLO, msgpack.packb({"version": PROTOCOL_VERSION, "codec": "msgpack"}))
    server.receive_data(hello + data_frame(b"\xc1"), 100.0)
    assert [type(e) for e in server.events()] == [HelloReceived]
    server.accept(1, 100.0)
    (closed,) = server.events()
    assert closed.code == "protocol"
