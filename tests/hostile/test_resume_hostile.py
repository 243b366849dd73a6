"""Attacks on resumable sessions: forged, replayed and stale tokens, unknown and expired sessions,
malformed resume fields, a flood of resumes.  Each is a REJECT with code ``session_lost`` and a reason,
and the seat stays with its owner, who can still resume afterwards."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from sprocket import Dropped, Joined, Left, Packet, Resumed, Servo
from sprocket.protocol import CHALLENGE, HELLO, PROTOCOL_VERSION, Closed, Connection, frame
from sprocket.session import Session, resume_proof
from sprocket.settings import Settings
from tests.conftest import wait_until
from tests.core.raw_session import RawClient, copy_session
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import RawPeer

pytestmark = pytest.mark.timeout(90)

FAST = {"ping_interval": 0.2, "timeout": 3.0}

_opened: list[Any] = []


def track(thing: Any) -> Any:
    """Close ``thing`` when the test ends, passed or failed."""
    _opened.append(thing)
    return thing


@pytest.fixture(autouse=True)
def _closing(no_leaks: None) -> Iterator[None]:
    # Set up after no_leaks, so torn down before it: a failing test does not leak into the next ones.
    yield
    while _opened:
        _opened.pop().close()


class Seat:
    """A Servo with one client that joined with a session and then dropped: the seat the attacks want.

    ``owner`` is the session as the real client holds it; ``resume()`` brings the real client back.
    """

    def __init__(self, servo: Servo) -> None:
        self.servo = servo
        self.items: list[Any] = []
        self.got: list[int] = []
        first = track(RawClient(servo.port, name="owner"))
        first.until(lambda: first.welcomed, what="the WELCOME")
        assert first.conn.session is not None
        self.owner: Session = first.conn.session
        self.handle = self.wait(Joined).client
        first.send(seq=1)
        self.handle.send(seq=1)
        first.until(lambda: first.packets, what="the first packet")
        wait_until(lambda: self.poll() is not None and self.got == [1], 5, "the owner's first packet")
        first.reset()
        self.wait(Dropped)
        self.handle.send(seq=2)  # kept for the owner

    def poll(self) -> list[Any]:
        for item in self.servo.events():
            if type(item) is Packet:
                self.got.append(item["seq"])
            else:
                self.items.append(item)
        return self.items

    def wait(self, kind: type, count: int = 1) -> Any:
        def found() -> list[Any]:
            return [e for e in self.poll() if isinstance(e, kind)]

        wait_until(lambda: len(found()) >= count, 10, f"{count} {kind.__name__}")
        return found()[count - 1]

    def still_held(self) -> None:
        """The seat is still the owner's: in the client list, away, nobody left or resumed."""
        self.poll()
        assert self.handle in self.servo.clients and not self.handle.connected
        assert not [e for e in self.items if isinstance(e, (Left, Resumed))]

    def resume(self) -> RawClient:
        """The real owner comes back: resumed, the packet kept for it delivered, nothing lost."""
        back = track(RawClient(self.servo.port, session=self.owner, name="owner"))
        back.send(seq=2)
        back.until(lambda: back.welcomed or back.closed, what="the owner's resume")
        assert back.welcomed is not None and back.welcomed.resumed, back.closed
        assert self.wait(Resumed).client is self.handle and self.handle.connected
        back.until(lambda: [p["seq"] for p in back.packets] == [2], what="the packet kept for the owner")
        wait_until(lambda: self.poll() is not None and self.got == [1, 2], 5, "the owner's second packet")
        return back


@pytest.fixture
def servo() -> Iterator[Servo]:
    server = Servo("127.0.0.1", 0, handshake_timeout=3.0, **FAST)  # type: ignore[arg-type]
    yield server
    server.close()


def refused(port: int, session: Session, **settings: Any) -> Closed:
    """Resume ``session`` on a new connection; return how it was refused."""
    with RawClient(port, session=session, **settings) as thief:
        thief.until(lambda: thief.closed or thief.welcomed, what="an answer")
        closed = thief.closed
        assert closed is not None, f"a resume that should fail succeeded: {thief.events}"
        return closed


def hello_frame(data: bytes | bytearray) -> bytes:
    (length,) = struct.unpack_from(">I", data)
    assert data[4] == HELLO
    return bytes(data[: 4 + length])


def send_hello(port: int, hello: bytes) -> dict[str, Any] | None:
    """On a new raw connection: wait for the CHALLENGE, send ``hello`` as is; return the REJECT/BYE."""
    with RawPeer(port) as peer:
        peer.read_frame(CHALLENGE)
        peer.send(hello)
        assert peer.read_until_closed(5)
        return peer.goodbye()


def test_forged_token_is_refused_and_the_owner_still_resumes(
    no_leaks: None, servo: Servo, reliability: Reliability
) -> None:
    seat = Seat(servo)
    attempts = 20
    for _ in range(attempts):
        forged = copy_session(seat.owner)
        forged.token = os.urandom(32)  # anyone may know the session id; only the owner has the token
        closed = refused(servo.port, forged)
        assert closed.rejected and closed.code == "session_lost" and "token does not match" in closed.reason
    # A random proof on the wire (no token behind it at all).
    hello = frame(
        HELLO,
        msgpack.packb(
            {
                "version": PROTOCOL_VERSION, "codec": "msgpack", "app": None, "name": None, "auth": None,
                "max_packet_size": 65536, "session": True, "resume": seat.owner.id,
                "proof": os.urandom(32), "received": 0, "base": 0,
            },
            use_bin_type=True,
        ),
    )  # fmt: skip
    goodbye = send_hello(servo.port, hello)
    assert goodbye is not None and goodbye["code"] == "session_lost"
    seat.still_held()
    seat.resume().close()
    reliability.record(
        "Sessions",
        "Forged resume token",
        tried=f"{attempts} resumes of a held session with random tokens, and one HELLO with a random proof",
        outcome=f"each refused: session_lost ({closed.reason!r}); the seat stayed held and its owner resumed",
        attempts=attempts + 1,
    )


def test_replayed_hello_bytes_are_refused(no_leaks: None, servo: Servo, reliability: Reliability) -> None:
    seat = Seat(servo)
    # (a) The bytes of a real, successful resume, captured and sent again on a new connection later.
    with RawClient(servo.port, session=seat.owner, name="owner") as real:
        real.until(lambda: real.welcomed, what="a real resume")
        captured = hello_frame(real.written)
        assert seat.wait(Resumed).client is seat.handle
        real.until(lambda: real.packets, what="the kept packet")  # the ACK confirming the new token went out
        real.step()
        real.reset()
    seat.wait(Dropped, 2)
    seat.items.clear()
    goodbye = send_hello(servo.port, captured)
    assert goodbye is not None and goodbye["code"] == "session_lost"
    assert "token does not match" in goodbye["reason"]
    # (b) A HELLO made with the current token, but for another connection's CHALLENGE (as a
    # man-in-the-middle would relay it): the proof is bound to that nonce.
    elsewhere = Connection("server", 0.0, Settings(), nonce=os.urandom(16))
    victim = Connection("client", 0.0, Settings(), session=copy_session(seat.owner))
    victim.receive_data(elsewhere.data_to_send(), 0.0)
    relayed = hello_frame(victim.data_to_send())
    assert msgpack.unpackb(relayed[5:])["proof"] == resume_proof(seat.owner.token, elsewhere.nonce)
    goodbye = send_hello(servo.port, relayed)
    assert goodbye is not None and goodbye["code"] == "session_lost"
    seat.still_held()
    seat.got = [1]
    with RawClient(servo.port, session=seat.owner, name="owner") as back:
        back.until(lambda: back.welcomed, what="the owner's resume")
        assert back.welcomed is not None and back.welcomed.resumed
        assert seat.wait(Resumed).client is seat.handle
    reliability.record(
        "Sessions",
        "Replayed resume HELLO",
        tried="the bytes of a real resume HELLO sent again on a new connection; a HELLO with a valid token "
        "made for another connection's nonce",
        outcome=f"both refused: session_lost ({goodbye['reason']!r}); the owner resumed afterwards",
    )


def test_a_stale_token_is_refused_once_the_new_one_is_confirmed(
    no_leaks: None, servo: Servo, reliability: Reliability
) -> None:
    seat = Seat(servo)
    stale = copy_session(seat.owner)  # the token before the next rotation
    with RawClient(servo.port, session=seat.owner, name="owner") as real:
        real.until(lambda: real.welcomed, what="a real resume")
        assert seat.owner.token != stale.token  # rotated
        seat.wait(Resumed)
        real.until(lambda: real.packets, what="the kept packet")
        real.step()  # flush the ACK that confirms the new token
        session = seat.handle._session
        assert session is not None
        wait_until(lambda: session.previous_token is None, 5, "the server to drop the old token")
        real.reset()
    seat.wait(Dropped, 2)
    seat.items.clear()
    closed = refused(servo.port, stale)
    assert closed.rejected and closed.code == "session_lost" and "out of date" in closed.reason
    seat.still_held()
    with RawClient(servo.port, session=seat.owner, name="owner") as back:
        back.until(lambda: back.welcomed, what="the owner's resume")
        assert seat.wait(Resumed).client is seat.handle
    reliability.record(
        "Sessions",
        "Stale resume token (the one before a rotation)",
        tried="a resume with the token the owner held before its last resume, after it confirmed the new one",
        outcome=f"refused: session_lost ({closed.reason!r}); the owner resumed afterwards",
    )


def test_an_unconfirmed_rotation_keeps_the_previous_token_valid(no_leaks: None, servo: Servo) -> None:
    # If the WELCOME carrying the new token is lost, the owner only has the old one: it must still work.
    seat = Seat(servo)
    with RawClient(servo.port, session=copy_session(seat.owner), name="owner") as lost_welcome:
        wait_until(lambda: lost_welcome.step() is None and lost_welcome.written, 5, "the HELLO")
        seat.wait(Resumed)  # the server accepted and rotated; we never read its WELCOME
        lost_welcome.reset()
    seat.wait(Dropped, 2)
    seat.items.clear()
    seat.got = [1]
    seat.resume().close()  # with the token from before that resume


def test_unknown_session_is_refused(no_leaks: None, servo: Servo) -> None:
    seat = Seat(servo)
    unknown = copy_session(seat.owner)
    unknown.id = os.urandom(16)
    closed = refused(servo.port, unknown)
    assert closed.rejected and closed.code == "session_lost" and "does not know this session" in closed.reason
    seat.still_held()
    seat.resume().close()


def test_resume_after_the_grace_period_is_refused(no_leaks: None, reliability: Reliability) -> None:
    with Servo("127.0.0.1", 0, grace=0.3, **FAST) as servo:  # type: ignore[arg-type]
        seat = Seat(servo)
        left = seat.wait(Left)
        assert left.client is seat.handle and left.code == "timeout"
        closed = refused(servo.port, seat.owner)
        assert closed.rejected and closed.code == "session_lost"
        assert "the session ended" in closed.reason and "0.3 s grace period" in closed.reason
        assert seat.handle not in servo.clients
    reliability.record(
        "Sessions",
        "Resume after the grace period",
        tried="the real token, presented after a 0.3 s grace period ended",
        outcome=f"refused: session_lost ({closed.reason!r})",
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"resume": b"short"},
        {"resume": "text"},
        {"proof": b"short"},
        {"proof": None},
        {"received": -1},
        {"received": "0"},
        {"base": 1.5},
        {"base": None},
    ],
)
def test_malformed_resume_fields_are_refused(no_leaks: None, servo: Servo, fields: dict[str, Any]) -> None:
    seat = Seat(servo)
    body = {
        "version": PROTOCOL_VERSION, "codec": "msgpack", "app": None, "name": None, "auth": None,
        "max_packet_size": 65536, "session": True, "resume": seat.owner.id,
        "proof": resume_proof(seat.owner.token, b"x" * 16), "received": 0, "base": 0,
    }  # fmt: skip
    body.update(fields)
    goodbye = send_hello(servo.port, frame(HELLO, msgpack.packb(body, use_bin_type=True)))
    assert goodbye is not None and goodbye["code"] == "session_lost"
    assert "malformed resume" in goodbye["reason"]
    seat.still_held()
    seat.resume().close()


def test_a_resume_flood_from_one_address_is_bounded(reliability: Reliability) -> None:
    per_ip = 8
    with Servo(
        "127.0.0.1",
        0,
        max_pending_per_ip=per_ip,
        handshake_timeout=2.0,
        **FAST,  # type: ignore[arg-type]
    ) as servo:
        seat = Seat(servo)
        io = servo._io
        peak = 0
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, max(io.pending_per_ip.values(), default=0))
                stop.wait(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        attackers = 64
        codes: dict[str, int] = {}
        started = time.monotonic()
        peers = [RawPeer(servo.port) for _ in range(attackers)]
        try:
            for peer in peers:  # all connected at once, each sending a forged resume when challenged
                forged = copy_session(seat.owner)
                forged.token = os.urandom(32)
                try:
                    challenge = msgpack.unpackb(peer.read_frame(CHALLENGE, 3))
                except AssertionError:
                    pass  # refused before any challenge (busy)
                else:
                    proof = resume_proof(forged.token, challenge["nonce"])
                    hello = {
                        "version": PROTOCOL_VERSION, "codec": "msgpack", "app": None, "name": None,
                        "auth": None, "max_packet_size": 65536, "session": True, "resume": forged.id,
                        "proof": proof, "received": 0, "base": 0,
                    }  # fmt: skip
                    peer.send_frame(HELLO, msgpack.packb(hello, use_bin_type=True))
            for peer in peers:
                peer.read_until_closed(5)
                goodbye = peer.goodbye()
                code = goodbye["code"] if goodbye else "closed without a word"
                codes[code] = codes.get(code, 0) + 1
        finally:
            for peer in peers:
                peer.close()
            stop.set()
            watcher.join(2)
        took = time.monotonic() - started
        assert peak <= per_ip
        assert set(codes) <= {"session_lost", "busy", "closed without a word"} and codes.get("session_lost")
        assert sum(codes.values()) == attackers
        seat.still_held()
        seat.resume().close()
    reliability.record(
        "Sessions",
        "A flood of forged resumes from one address",
        tried=f"{attackers} connections at once from 127.0.0.1, each a resume of a held session with a "
        f"random token; max_pending_per_ip {per_ip}",
        outcome=f"every one refused ({codes}) in {took:.2f} s; at most {peak} handshakes pending from the "
        "address at a time; the owner resumed afterwards",
        attackers=attackers,
        pending_peak=peak,
        seconds=took,
        codes=codes,
    )


def test_time_from_the_link_back_to_the_first_packet(no_leaks: None, reliability: Reliability) -> None:
    # Measured, not asserted: how long a resume takes once the server is reachable again.
    from sprocket import Reconnected, Sprocket
    from sprocket.testing import LagProxy

    samples: list[float] = []
    with Servo("127.0.0.1", 0, **FAST) as servo:  # type: ignore[arg-type]
        proxy = track(LagProxy("127.0.0.1", servo.port).start())
        client = track(Sprocket("127.0.0.1", proxy.port, **FAST)).wait_connected(5)
        try:
            wait_until(lambda: servo.get() is not None and servo.clients, 5, "the join")
            handle = servo.clients[0]
            for i in range(10):
                proxy.close()
                wait_until(lambda: client.reconnecting, 5, "the drop")
                handle.send(seq=i)
                proxy = track(LagProxy("127.0.0.1", servo.port, listen_port=proxy.port).start())
                back = time.monotonic()
                got: list[Any] = []
                wait_until(
                    lambda got=got: got.extend(client.events()) or any(type(e) is Packet for e in got), 10
                )
                samples.append(time.monotonic() - back)
                assert any(isinstance(e, Reconnected) for e in got)
                assert [e["seq"] for e in got if type(e) is Packet] == [i]
        finally:
            client.close()
            proxy.close()
    samples.sort()
    reliability.record(
        "Sessions",
        "Time from the link coming back to the first packet delivered after the resume",
        tried="10 times: the relay closed (the client reconnecting with backoff), a packet sent to it, the "
        "relay reopened",
        outcome=f"median {samples[5] * 1000:.0f} ms, max {samples[-1] * 1000:.0f} ms (includes the client's "
        "backoff wait: up to 4 s by design)",
        median_ms=samples[5] * 1000,
        max_ms=samples[-1] * 1000,
    )
