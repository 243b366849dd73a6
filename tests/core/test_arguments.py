"""Bad arguments to the public core API: a SprocketError naming the argument, raised in the caller's thread,
before any thread or socket is made."""

from __future__ import annotations

import math
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pytest

import sprocket
from sprocket import (
    ClosedError,
    EncodedPacket,
    InvalidArgument,
    InvalidType,
    Packet,
    PacketTooLarge,
    RegistrationError,
    Servo,
    Sprocket,
    SprocketError,
    UnsendableValue,
)

from ..conftest import collect, wait_until

pytestmark = pytest.mark.timeout(30)

BAD_OPTIONS: list[tuple[str, object, type[SprocketError]]] = [
    ("port", 99999, InvalidArgument),
    ("port", 65536, InvalidArgument),
    ("port", -1, InvalidArgument),
    ("port", "7777", InvalidType),
    ("port", 7777.0, InvalidType),
    ("port", True, InvalidType),
    ("ping_interval", math.nan, InvalidArgument),
    ("ping_interval", math.inf, InvalidArgument),
    ("ping_interval", 0, InvalidArgument),
    ("ping_interval", "1", InvalidType),
    ("timeout", -1.0, InvalidArgument),
    ("timeout", math.nan, InvalidArgument),
    ("close_timeout", -0.5, InvalidArgument),
    ("close_timeout", math.inf, InvalidArgument),
    ("max_packet_size", 100, InvalidArgument),
    ("max_packet_size", 2048.0, InvalidType),
    ("max_send_queue", 0, InvalidArgument),
    ("max_inbox_bytes", -5, InvalidArgument),
    ("codec", "json", InvalidArgument),
    ("password", 1234, InvalidType),
    ("app", b"hockey", InvalidType),
    ("ssl_context", "yes", InvalidType),
    ("resume_buffer", 1000, InvalidArgument),
    ("resume_buffer", 2.0**20, InvalidType),
]
CLIENT_ONLY: list[tuple[str, object, type[SprocketError]]] = [
    ("connect_timeout", math.nan, InvalidArgument),
    ("connect_timeout", -2, InvalidArgument),
    ("name", 42, InvalidType),
    ("server_hostname", 1, InvalidType),
    ("reconnect", "yes", InvalidType),
    ("reconnect", 1, InvalidType),
]
SERVER_ONLY: list[tuple[str, object, type[SprocketError]]] = [
    ("handshake_timeout", math.inf, InvalidArgument),
    ("max_pending", 0, InvalidArgument),
    ("max_clients", -1, InvalidArgument),
    ("max_clients", 2.5, InvalidType),
    ("max_pending_per_ip", 0, InvalidArgument),
    ("max_inbox_bytes_per_client", 0, InvalidArgument),
    ("max_incomplete_bytes", 1000, InvalidArgument),  # below max_packet_size: one frame could never arrive
    ("max_packets_per_second", math.nan, InvalidArgument),
    ("max_packets_per_second", 0, InvalidArgument),
    ("max_packets_per_second", "10", InvalidType),
    ("grace", -1, InvalidArgument),
    ("grace", math.nan, InvalidArgument),
    ("grace", "30", InvalidType),
    ("max_held_sessions", -1, InvalidArgument),
    ("max_held_sessions_per_ip", 1.5, InvalidType),
]


def raises_before_any_thread(make: Callable[[], Any], error: type[SprocketError], name: str) -> None:
    before = threading.active_count()
    with pytest.raises(error) as info:
        make()
    assert name in str(info.value), f"the message should name {name!r}: {info.value}"
    # In the tree, and the built-in it fits: except ValueError / TypeError keeps working.
    assert isinstance(info.value, SprocketError)
    assert isinstance(info.value, TypeError if error is InvalidType else ValueError)
    assert threading.active_count() == before


@pytest.mark.parametrize(("name", "value", "error"), BAD_OPTIONS + CLIENT_ONLY)
def test_sprocket_refuses_bad_options(name: str, value: object, error: type[SprocketError]) -> None:
    kwargs = {name: value} if name != "port" else {}
    port = value if name == "port" else 7777
    raises_before_any_thread(lambda: Sprocket("127.0.0.1", port, **kwargs), error, name)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "value", "error"), BAD_OPTIONS + SERVER_ONLY)
def test_servo_refuses_bad_options(name: str, value: object, error: type[SprocketError]) -> None:
    kwargs = {name: value}
    raises_before_any_thread(lambda: Servo("127.0.0.1", **kwargs), error, name)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [lambda: Sprocket(None), lambda: Servo(7777)])  # type: ignore[arg-type]
def test_host_must_be_a_string(make: Callable[[], Any]) -> None:
    raises_before_any_thread(make, InvalidType, "host")


def test_port_zero_and_the_top_port_are_fine() -> None:
    with Servo("127.0.0.1", 0) as servo:
        assert 0 < servo.port <= 65535
    s = Sprocket("127.0.0.1", 65535, connect_timeout=1.0)
    s.close()


def test_misuse_after_setup() -> None:
    with Servo("127.0.0.1", 0) as servo:
        s = Sprocket("127.0.0.1", servo.port)
        try:
            with pytest.raises(InvalidType, match="timeout"):
                s.wait_connected("soon")  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument, match="timeout"):
                s.wait_connected(math.nan)
            with pytest.raises(InvalidType, match="Packet or a mapping"):
                s.send_packet(42)  # type: ignore[arg-type]
            with pytest.raises(UnsendableValue, match="field 'f'"):
                s.send(f=object())
            with pytest.raises(PacketTooLarge):
                s.send(blob=bytes(2 << 20))
            with pytest.raises(InvalidType, match="mapping"):
                servo.encode(42)  # type: ignore[arg-type]
            with pytest.raises(InvalidType):
                servo.sendall_packet(42)  # type: ignore[arg-type]
        finally:
            s.close()
        with pytest.raises(ClosedError):
            s.send(x=1)
    with pytest.raises(ClosedError):
        servo.sendall(x=1)
    with pytest.raises(InvalidType, match="strings"):
        Packet({1: 2})
    with pytest.raises(RegistrationError):
        sprocket.register(42)  # type: ignore[arg-type]


def test_an_encoded_packet_is_sent_as_is_to_one_or_all() -> None:
    with Servo("127.0.0.1", 0) as servo:
        a = Sprocket("127.0.0.1", servo.port).wait_connected()
        b = Sprocket("127.0.0.1", servo.port).wait_connected()
        try:
            wait_until(lambda: servo.get() or len(servo.clients) == 2, 5, "two clients")
            encoded = servo.encode({"n": 1, "who": "all"})
            assert isinstance(encoded, EncodedPacket) and encoded.size == len(
                msgpack_body({"n": 1, "who": "all"})
            )
            servo.sendall_packet(encoded)
            first = next(c for c in servo.clients if c.id == a.id)
            first.send_packet(servo.encode(Packet(n=2, who="a")))
            assert [dict(p) for p in collect(a, 2)] == [{"n": 1, "who": "all"}, {"n": 2, "who": "a"}]
            assert [dict(p) for p in collect(b, 1)] == [{"n": 1, "who": "all"}]
            with pytest.raises(AttributeError):
                encoded.size = 3  # type: ignore[misc]
        finally:
            a.close()
            b.close()


def msgpack_body(fields: dict[str, Any]) -> bytes:
    return sprocket.codec.MsgpackCodec().encode(fields)


def test_a_tls_context_of_the_right_type_is_accepted() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with Servo("127.0.0.1", 0, ssl_context=context) as servo:
        assert servo.port


def test_a_sprocket_can_connect_from_a_chosen_address() -> None:
    with Servo("127.0.0.1", 0) as servo:
        s = Sprocket("127.0.0.1", servo.port, source_address=("127.0.0.2", 0)).wait_connected()
        try:
            wait_until(lambda: servo.get() is not None and servo.clients, 5, "the client to join")
            assert servo.clients[0].ip == "127.0.0.2"
        finally:
            s.close()
    for bad in ("127.0.0.2", ("127.0.0.2",), (2, 0)):
        with pytest.raises(InvalidType, match="source_address"):
            Sprocket("127.0.0.1", 7777, source_address=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="source_address port"):
        Sprocket("127.0.0.1", 7777, source_address=("127.0.0.2", 70000))


def test_a_sprocket_can_say_why_it_closes() -> None:
    with Servo("127.0.0.1", 0) as servo:
        s = Sprocket("127.0.0.1", servo.port).wait_connected()
        with pytest.raises(InvalidArgument, match="kicked"):
            s.close("kicked", "I kick myself")
        with pytest.raises(InvalidType, match="reason"):
            s.close(sprocket.CloseCode.PROTOCOL, 42)  # type: ignore[arg-type]
        assert s.connected
        s.close(sprocket.CloseCode.PROTOCOL, "the server sent a snapshot from the future")
        left = wait_until(lambda: [e for e in servo.events() if isinstance(e, sprocket.Left)], 5, "the leave")
        assert (left[0].code, left[0].reason) == ("protocol", "the server sent a snapshot from the future")


def test_a_mapping_with_a_non_string_key_is_refused_in_the_senders_thread() -> None:
    # Found by a newcomer: it used to go out, and the receiver had to drop the connection over it.
    with Servo("127.0.0.1", 0) as servo:
        s = Sprocket("127.0.0.1", servo.port).wait_connected()
        try:
            wait_until(lambda: (servo.get(), servo.clients)[1], 5, "the join")
            (client,) = servo.clients
            for send in (s.send_packet, servo.sendall_packet, client.send_packet, servo.encode):
                with pytest.raises(InvalidType, match="field names must be strings, got 1 \\(int\\)"):
                    send({1: "x"})  # type: ignore[operator]
            s.send(after=1)
            servo.sendall(after=2)
            (up,) = collect(servo, 1)
            (down,) = collect(s, 1)
            assert (up.after, down.after) == (1, 2) and s.connected and client.connected
        finally:
            s.close()
