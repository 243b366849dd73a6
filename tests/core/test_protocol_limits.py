"""Per-connection limits of the protocol, in memory with a fake clock: packet rate, slow frames, names."""

from __future__ import annotations

import msgpack
import pytest

from sprocket import CloseCode
from sprocket.protocol import HELLO, Closed, Connection, HelloReceived, data_frame, frame

from .test_protocol import handshake, make_pair, pump

pytestmark = pytest.mark.timeout(30)

PAYLOAD = data_frame(msgpack.packb({"x": 1}))


def closes(conn: Connection) -> list[Closed]:
    return [e for e in conn.events() if isinstance(e, Closed)]


def test_packets_within_the_rate_pass_and_a_burst_over_it_closes_with_limit() -> None:
    server, client = make_pair(server_max_packet_size=4096, server_max_packets_per_second=10.0)
    handshake(server, client)
    t = 100.0
    for _ in range(30):  # 30 packets over 3 s: within 10/s
        t += 0.1
        server.receive_data(PAYLOAD, t)
    assert not server.closed
    t += 1.0  # a quiet second refills the bucket: one second's worth may come in a burst...
    server.receive_data(PAYLOAD * 10, t)
    assert not server.closed
    server.receive_data(PAYLOAD, t)  # ...but not one more
    (closed,) = closes(server)
    assert closed.code is CloseCode.LIMIT and "10 packets per second" in closed.reason
    assert len([e for e in server.events() if not isinstance(e, Closed)]) == 0


def test_no_rate_limit_by_default() -> None:
    server, client = make_pair()
    handshake(server, client)
    server.receive_data(PAYLOAD * 10_000, 100.0)
    assert not server.closed


def test_a_frame_must_finish_arriving_within_the_timeout() -> None:
    server, client = make_pair(server_timeout=3.0, server_ping_interval=1.0)
    handshake(server, client)
    big = data_frame(msgpack.packb({"x": "a" * 1000}))
    server.receive_data(big[:10], 100.0)
    for n, t in enumerate((101.0, 102.0, 102.9)):  # a byte a second: never silent, never finished
        server.receive_data(big[10 + n : 11 + n], t)
        server.tick(t)
        assert not server.closed
    server.tick(103.0)
    (closed,) = closes(server)
    assert closed.code is CloseCode.TIMEOUT and "took longer than 3 s" in closed.reason


def test_a_steady_stream_of_frames_never_trips_the_frame_deadline() -> None:
    # Reads that always end mid-frame are fine as long as frames keep completing.
    server, client = make_pair(server_timeout=3.0)
    handshake(server, client)
    # Each read finishes one frame and starts the next, so the buffer is never empty for 10 s.
    t = 100.0
    server.receive_data(PAYLOAD[:3], t)
    for _ in range(200):
        t += 0.05
        server.receive_data(PAYLOAD[3:] + PAYLOAD[:3], t)
        server.tick(t)
        assert server.buffered == 3
    assert not server.closed


def test_not_reading_on_purpose_defers_the_frame_deadline() -> None:
    server, client = make_pair(server_timeout=3.0, server_ping_interval=1.0)
    handshake(server, client)
    server.data_to_send()
    server.receive_data(PAYLOAD[:-1], 100.0)
    for t in range(101, 110):  # we stopped reading (back-pressure): not the peer's fault
        server.keep_alive(float(t))
        server.tick(float(t))
        assert not server.closed
        assert server.data_to_send()[4] == 0x06  # we keep pinging, so the peer does not time us out
    server.receive_data(PAYLOAD[-1:], 110.0)
    assert not server.closed and server.buffered == 0


def test_hello_names_keep_printable_characters_only() -> None:
    server, client = make_pair(client_name="ok")
    pump(server, client, 100.0)
    server.events()
    server2, _ = make_pair()
    server2.data_to_send()
    hello = {
        "version": 1,
        "codec": "msgpack",
        "app": None,
        "name": "ev\nil\x1b[31m\x00 name\u202e" + "x" * 100,
    }
    server2.receive_data(frame(HELLO, msgpack.packb(hello)), 100.0)
    (event,) = server2.events()
    assert isinstance(event, HelloReceived)
    assert event.name is not None and event.name.startswith("evil[31m name") and event.name.isprintable()
    assert len(event.name) == 64


def test_control_frames_stay_small_once_open() -> None:
    # Only DATA is decoded within the decode budgets, so only DATA may be large (review finding: a 1 MiB BYE
    # of empty maps cost 65-217 ms and ~70 MiB to refuse).
    server, client = make_pair()
    handshake(server, client)
    huge_bye = (
        ((1 << 20) + 1).to_bytes(4, "big") + b"\x08" + b"\xdd" + (1 << 20).to_bytes(4, "big") + b"\x80" * 16
    )
    server.receive_data(huge_bye, 101.0)
    (closed,) = closes(server)
    assert closed.code is CloseCode.PROTOCOL and "control frame" in closed.reason
    assert server.buffered == 0


def test_heartbeats_count_against_the_packet_rate() -> None:
    server, client = make_pair(server_max_packets_per_second=100.0)
    handshake(server, client)
    server.receive_data(frame(0x06, bytes(8)) * 500, 101.0)
    (closed,) = closes(server)
    assert closed.code is CloseCode.LIMIT
    assert len(server.data_to_send()) < 200 * 21  # it stopped answering PINGs when it closed


def test_a_rate_below_one_per_second_still_lets_a_packet_in() -> None:
    server, client = make_pair(server_max_packets_per_second=0.5)
    handshake(server, client)
    server.receive_data(PAYLOAD, 200.0)
    assert not server.closed
    server.receive_data(PAYLOAD, 200.1)
    assert closes(server)[0].code is CloseCode.LIMIT


def test_goodbye_reasons_keep_printable_characters_only() -> None:
    server, client = make_pair()
    handshake(server, client)
    client.receive_data(
        frame(0x08, msgpack.packb({"code": "closed", "reason": "bye\n\x1b[2J\x00now"})), 101.0
    )
    (closed,) = closes(client)
    assert closed.reason == "bye[2Jnow"
