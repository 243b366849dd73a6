"""A client that writes its HELLO and its first packets in one go, over a real socket.

docs/PROTOCOL.md, Handshake step 4 (Pipelining): frames sent right after HELLO are not lost and not
misread; after WELCOME they are processed as OPEN-state frames, so DATA is delivered *after* the new
client's join event; after REJECT they are discarded.  The reference client never pipelines (it waits for
WELCOME), so only a hand-written peer can check this.  The frames below are built from the document
alone (struct and plain msgpack), not from sprocket's own encoder.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import msgpack
import pytest

from sprocket import Joined, Left, Packet, Servo
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)

# Frame types, from the table in docs/PROTOCOL.md.
CHALLENGE, HELLO, WELCOME, REJECT, DATA, BYE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x08


def frame(kind: int, body: bytes) -> bytes:
    """``length: uint32 BE`` (type byte + body), ``type: u8``, body."""
    return struct.pack(">IB", len(body) + 1, kind) + body


def hello(name: str, codec: str = "msgpack") -> bytes:
    body = {"version": 1, "codec": codec, "app": None, "name": name, "auth": None, "max_packet_size": 1 << 20}
    return frame(HELLO, msgpack.packb(body, use_bin_type=True))


def data(**fields: Any) -> bytes:
    return frame(DATA, msgpack.packb(fields, use_bin_type=True))


def bye() -> bytes:
    return frame(BYE, msgpack.packb({"code": "closed", "reason": "closed"}))


class Wire:
    """A raw TCP peer that reads whole frames with a deadline."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.eof = False

    def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next frame as (type, body), or None if the server closed the connection first."""
        deadline = time.monotonic() + timeout
        while len(self.buffer) < 5 or len(self.buffer) < 4 + struct.unpack_from(">I", self.buffer)[0]:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError("no complete frame from the server in time") from None
            if not chunk:
                self.eof = True
                return None
            self.buffer += chunk
        (length,) = struct.unpack_from(">I", self.buffer)
        kind, body = self.buffer[4], self.buffer[5 : 4 + length]
        self.buffer = self.buffer[4 + length :]
        return kind, body

    def read_challenge(self) -> None:
        got = self.read_frame()
        assert got is not None and got[0] == CHALLENGE, got
        assert isinstance(msgpack.unpackb(got[1])["nonce"], bytes)

    def close(self) -> None:
        self.sock.close()


def drain_events(servo: Servo, count: int, timeout: float = 5.0) -> list[Any]:
    """Call ``servo.events()`` until ``count`` items came (whatever the number of calls)."""
    items: list[Any] = []
    wait_until(lambda: items.extend(servo.events()) or len(items) >= count, timeout, f"{count} events")
    return items


def test_packets_written_with_the_hello_come_after_the_join(servo: Servo) -> None:
    wire = Wire(servo.port)
    try:
        wire.read_challenge()
        wire.sock.sendall(hello("pipelined") + data(n=1) + data(n=2))  # one write: HELLO and DATA together
        items = drain_events(servo, 3)
        assert [type(i) for i in items] == [Joined, Packet, Packet], items
        joined, first, second = items
        assert joined.client.name == "pipelined"
        assert (first.n, second.n) == (1, 2)
        assert first.sender is joined.client and second.sender is joined.client
        welcome = wire.read_frame()
        assert welcome is not None and welcome[0] == WELCOME
        assert msgpack.unpackb(welcome[1])["id"] == joined.client.id
    finally:
        wire.close()


def test_hello_data_and_bye_in_one_write_give_join_packet_leave(servo: Servo) -> None:
    wire = Wire(servo.port)
    try:
        wire.read_challenge()
        wire.sock.sendall(hello("brief") + data(last="words") + bye())
        items = drain_events(servo, 3)
        assert [type(i) for i in items] == [Joined, Packet, Left], items
        assert items[1].last == "words" and items[1].sender is items[0].client is items[2].client
        assert items[2].code == "closed"
    finally:
        wire.close()


def test_on_join_runs_before_get_returns_the_pipelined_packet(servo: Servo) -> None:
    returned: list[Packet] = []
    log: list[tuple[str, Any]] = []

    def on_join(client: Any) -> None:
        # Nothing from this client may have been handed out before its join.
        log.append(("join", [p for p in returned if p.sender is client]))

    servo.on_join = on_join
    wire = Wire(servo.port)
    try:
        wire.read_challenge()
        wire.sock.sendall(hello("callbacks") + data(n=1))

        def packet_returned() -> bool:
            got = servo.get()
            returned.extend(got)
            log.extend(("packet", p.n) for p in got)
            return bool(returned)

        wait_until(packet_returned, 5, "the pipelined packet")
        assert log == [("join", []), ("packet", 1)]
        assert returned[0].sender in servo.clients
    finally:
        wire.close()


def test_packets_behind_a_rejected_hello_are_discarded(servo: Servo) -> None:
    wire = Wire(servo.port)
    try:
        wire.read_challenge()
        wire.sock.sendall(hello("wrong codec", codec="pickle") + data(n=1))
        reply = wire.read_frame()
        assert reply is not None and reply[0] == REJECT
        assert msgpack.unpackb(reply[1])["code"] == "codec"
        assert wire.read_frame() is None  # the server closes after REJECT
    finally:
        wire.close()
    # A real client that comes afterwards is the first thing the servo reports: nothing leaked through.
    wire = Wire(servo.port)
    try:
        wire.read_challenge()
        wire.sock.sendall(hello("next") + data(n=2))
        items = drain_events(servo, 2)
        assert [type(i) for i in items] == [Joined, Packet] and items[1].n == 2, items
        assert items[0].client.id == 1  # the rejected connection was never admitted
    finally:
        wire.close()
