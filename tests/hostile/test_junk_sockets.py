"""Junk over real sockets at a running Servo, while an honest player keeps playing.

Every attacker is a plain TCP socket on 127.0.0.1 writing hand-made bytes.  What a user would see: the
honest player's packets and the server's echoes keep arriving in order, the attackers are disconnected
with a reason, and the server's I/O thread is still alive at the end.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from sprocket import Disconnected, Left, Packet, Servo, Sprocket
from sprocket.protocol import BATCH, BYE, CHALLENGE, DATA, HELLO, PING, PONG, PROTOCOL_VERSION, WELCOME, frame
from tests.conftest import collect, wait_until
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import CLOSE_CODES, LegitGame, RawPeer, hello_body, packet_frame

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def servo() -> Iterator[Servo]:
    # max_pending_per_ip: the junk peers all come from 127.0.0.1, standing for many addresses.
    server = Servo(
        "127.0.0.1", 0, ping_interval=0.1, timeout=1.0, handshake_timeout=0.5, max_packet_size=64 * 1024,
        max_pending_per_ip=10_000,
    )  # fmt: skip
    yield server
    server.close()


class Evil:
    """Unpickling this runs code: it creates the file named by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def tls_client_hello() -> bytes:
    # The first bytes a TLS client sends (a record header and the start of a ClientHello).
    return bytes.fromhex("16030100c4010000c00303") + os.urandom(32) + b"\x00" * 64


def _hello(peer: RawPeer) -> None:
    peer.handshake()


def _junk(data: bytes, handshake_first: bool = False) -> Callable[[RawPeer], None]:
    def attack(peer: RawPeer) -> None:
        if handshake_first:
            peer.handshake()
        peer.send(data)

    return attack


rng = random.Random(6)
ATTACKS: dict[str, Callable[[RawPeer], None]] = {
    "HTTP request": _junk(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    "TLS ClientHello at a plain server": _junk(tls_client_hello()),
    "4 KiB of random bytes": _junk(bytes(rng.getrandbits(8) for _ in range(4096))),
    "length 0": _junk(struct.pack(">I", 0)),
    "length 2^32-1": _junk(struct.pack(">I", 2**32 - 1) + b"x" * 100),
    "unknown frame type 0x42": _junk(frame(0x42, b"hi")),
    "DATA before the handshake": _junk(packet_frame(x=1)),
    "WELCOME sent by a client": _junk(frame(WELCOME, msgpack.packb({"id": 1, "time": 0.0}))),
    "HELLO that is not msgpack": _junk(frame(HELLO, b"\xc1\xc1\xc1")),
    "HELLO with a wrong version": _junk(frame(HELLO, hello_body(version=99))),
    "HELLO twice": _junk(frame(HELLO, hello_body()) * 2),
    "malformed PING": _junk(frame(PING, b"\x01\x02")),
    "after the handshake: unknown type": _junk(frame(0xEE, b""), handshake_first=True),
    "after the handshake: HELLO again": _junk(frame(HELLO, hello_body()), handshake_first=True),
    "after the handshake: frame over max_packet_size": _junk(
        struct.pack(">IB", 64 * 1024 + 2, DATA) + b"\x80" * 1000, handshake_first=True
    ),
    "after the handshake: undecodable DATA": _junk(frame(DATA, b"\xc1"), handshake_first=True),
    "after the handshake: DATA that is a list": _junk(frame(DATA, b"\x92\x01\x02"), handshake_first=True),
    "after the handshake: DATA with int keys": _junk(frame(DATA, b"\x81\x01\x02"), handshake_first=True),
    "after the handshake: malformed PONG": _junk(frame(PONG, b"\x00"), handshake_first=True),
    "after the handshake: BATCH of ints": _junk(frame(BATCH, b"\x92\x01\x02"), handshake_first=True),
    "after the handshake: BATCH with a bytes key": _junk(
        frame(BATCH, b"\x92\x81\xa1x\x01\x81\xc4\x01x\x01"), handshake_first=True
    ),
    "after the handshake: BATCH with bytes after it": _junk(
        frame(BATCH, b"\x91\x81\xa1x\x01\x81\xa1x\x01"), handshake_first=True
    ),
    "after the handshake: BATCH over 4095 bytes": _junk(
        frame(BATCH, b"\xdc\x10\x00" + b"\x80" * 4096), handshake_first=True
    ),
    "after the handshake: 1000 random frames": _junk(
        b"".join(frame(rng.randrange(256), rng.randbytes(rng.randrange(50))) for _ in range(1000)),
        handshake_first=True,
    ),
}


def test_junk_disconnects_only_the_junk_peer(no_leaks: None, servo: Servo, reliability: Reliability) -> None:
    told: dict[str, str | None] = {}
    rounds = 0
    with LegitGame(servo, rate=100) as game:
        # Keep attacking, round after round, until the honest player has played for a while.
        while rounds < 3 or (game.sent < 150 and rounds < 200):
            rounds += 1
            for name, attack in ATTACKS.items():
                with RawPeer(servo.port) as peer:
                    attack(peer)
                    assert peer.read_until_closed(5), f"{name}: the server did not hang up"
                    bye = peer.goodbye()
                    assert told.setdefault(name, bye and bye["code"]) == (bye and bye["code"])
                assert servo._io.thread.is_alive()
        game.finish()
    game.assert_unharmed()
    assert all(code in CLOSE_CODES for code in told.values()), told
    # Attackers that got as far as being admitted leave with the reason they were told; no one else left.
    attackers = [client for client in game.joined if client.name != "legit"]
    assert {left.client for left in game.left} == set(attackers)
    assert {left.code for left in game.left} <= set(told.values())
    codes: dict[str, int] = {}
    for code in told.values():
        codes[str(code)] = codes.get(str(code), 0) + 1
    reliability.record(
        "Hostile input (sockets)",
        "Junk over TCP at a live server (HTTP, TLS, random bytes, bad lengths, bad frames...)",
        tried=f"{len(ATTACKS)} kinds of junk x {rounds} rounds = {len(ATTACKS) * rounds} sockets, one at a "
        f"time, {sum(1 for n in ATTACKS if 'after' in n)} kinds after a valid handshake; an honest client "
        "exchanging at 100 Hz throughout",
        outcome=f"every junk peer disconnected with a reason (kinds of junk per code: {codes}); honest "
        f"client: {game.sent} packets "
        f"and {len(game.echoes)} echoes, all in order, never disconnected; I/O thread alive",
        attacks=len(ATTACKS) * rounds,
        told=told,
        honest_packets=game.sent,
    )


def test_many_junk_peers_at_once(no_leaks: None, servo: Servo, reliability: Reliability) -> None:
    attacks = list(ATTACKS.values()) * 5
    waves = closed = with_reason = 0
    with LegitGame(servo) as game:
        while waves < 2 or (game.sent < 60 and waves < 50):
            waves += 1
            peers = [RawPeer(servo.port) for _ in attacks]
            try:
                for peer, attack in zip(peers, attacks, strict=True):
                    attack(peer)
                closed += sum(peer.read_until_closed(5) for peer in peers)
                with_reason += sum(peer.goodbye() is not None for peer in peers)
            finally:
                for peer in peers:
                    peer.close()
        game.finish()
    game.assert_unharmed()
    assert closed == with_reason == waves * len(attacks)
    assert servo._io.thread.is_alive()
    reliability.record(
        "Hostile input (sockets)",
        "Many junk peers connected at the same time",
        tried=f"{waves} waves of {len(attacks)} sockets open together, each sending one of the junk kinds "
        "above",
        outcome=f"{closed}/{waves * len(attacks)} closed by the server, {with_reason} with a reason; honest "
        f"client unaffected ({game.sent} packets and echoes in order)",
        peers=waves * len(attacks),
    )


def test_pickle_payload_runs_nothing(
    no_leaks: None, servo: Servo, tmp_path: Path, reliability: Reliability
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"x": Evil(marker)})
    with LegitGame(servo) as game, RawPeer(servo.port) as evil:
        evil.handshake()
        evil.send_frame(DATA, payload)
        assert evil.read_until_closed(5)
        game.wait_left(1)
        game.finish()
    bye = evil.goodbye()
    assert bye is not None and bye["code"] == "protocol" and "undecodable" in bye["reason"]
    assert not marker.exists()
    game.assert_unharmed()
    assert [left.code for left in game.left] == ["protocol"]
    # The same bytes at a server that opted in to pickle do run: the payload was real.
    with Servo("127.0.0.1", 0, codec="pickle") as trusting, RawPeer(trusting.port) as evil:
        evil.handshake(codec="pickle")
        evil.send_frame(DATA, payload)
        wait_until(marker.exists, 5, "the control: pickle codec unpickles the payload")
    reliability.record(
        "Hostile input (sockets)",
        "Pickle payload that runs code, sent raw to a default (msgpack) server",
        tried=f"a {len(payload)} B pickle whose __reduce__ writes a file, after a valid handshake",
        outcome="nothing ran (file absent); sender disconnected: protocol, 'undecodable payload'; "
        "control: the same bytes at a codec='pickle' server do write the file",
    )


def test_truncated_frame_then_hangup_is_a_loss_not_a_packet(servo: Servo) -> None:
    with LegitGame(servo) as game, RawPeer(servo.port) as peer:
        peer.handshake()
        whole = packet_frame(seq=1, pad="x" * 500)
        peer.send(whole[:-10])
        peer.sock.shutdown(2)
        game.wait_left(1)
        game.finish()
    (left,) = game.left
    assert left.code == "lost"
    game.assert_unharmed()


def test_ping_flood_without_reading_is_dropped(no_leaks: None, reliability: Reliability) -> None:
    # PINGs oblige the server to answer; an attacker that never reads the PONGs fills its own queue.
    with (
        Servo("127.0.0.1", 0, ping_interval=0.1, timeout=1.0, max_send_queue=64 * 1024) as servo,
        LegitGame(servo) as game,
        RawPeer(servo.port, rcvbuf=4096) as peer,
    ):
        peer.handshake()
        burst = frame(PING, struct.pack(">d", 1.0)) * 10_000
        sent = 0
        while sent < 400 and not any(left.code == "send_queue_full" for left in game.left):
            if not peer.send(burst):
                break
            sent += 1
        game.wait_left(1)
        game.finish()
        peak = max(len(p.out) for p in servo._io.peers.values()) if servo._io.peers else 0
    assert [left.code for left in game.left] == ["send_queue_full"]
    game.assert_unharmed()
    reliability.record(
        "Hostile input (sockets)",
        "PING flood from a peer that never reads the PONGs",
        tried=f"{sent} x 10,000 PINGs ({sent * 130} KB) with a 4 KiB receive window, max_send_queue 64 KiB",
        outcome="dropped with send_queue_full; honest client unaffected",
        bursts=sent,
        peak_queue_after=peak,
    )


def test_forged_pongs_cannot_poison_rtt(servo: Servo, reliability: Reliability) -> None:
    with RawPeer(servo.port) as peer:
        connected_at = time.monotonic()
        peer.handshake()
        wait_until(lambda: servo.get() is not None and servo.clients, 5, "the join")
        client = servo.clients[0]
        peer.send_frame(PONG, struct.pack(">dd", math.nan, 0.0))  # an answer to a ping never sent
        peer.send_frame(PONG, struct.pack(">dd", -1e9, 0.0))  # "sent" 31 years ago
        peer.send_frame(PING, struct.pack(">d", 0.0))
        peer.read_frame(PONG)  # the server has handled everything above by now
        rtt = client.rtt
        age = time.monotonic() - connected_at
    reliability.record(
        "Hostile input (sockets)",
        "Forged PONG frames (NaN, an echo of a time never sent)",
        tried="2 PONGs after a valid handshake, answering no PING",
        outcome=f"server-side client.rtt became {rtt!r}" + ("" if rtt is None or rtt <= age else " (BUG)"),
    )
    assert rtt is None or (math.isfinite(rtt) and 0 <= rtt <= age)


@pytest.mark.parametrize("how", ["client.send", "servo.sendall"])
def test_a_packet_over_a_clients_announced_limit_disconnects_only_that_client(servo: Servo, how: str) -> None:
    # errors.py: "A remote peer's misbehaviour never raises in your thread".  A client may announce a
    # smaller max_packet_size than the server's (any limit >= 1024 is valid); a packet over it must not
    # raise in the game's thread, and must not vanish silently either: that one client is told why and
    # disconnected (code "limit"), everyone else receives the packet and carries on.
    small = Sprocket("127.0.0.1", servo.port, name="small", max_packet_size=1024, timeout=5.0)
    big = Sprocket("127.0.0.1", servo.port, name="big", timeout=5.0)
    try:
        small.wait_connected(5)
        big.wait_connected(5)
        wait_until(lambda: servo.get() is not None and len(servo.clients) == 2, 5, "both clients to join")
        by_name = {client.name: client for client in servo.clients}
        blob = b"x" * 4096  # under the server's 64 KiB limit, over the small client's 1 KiB
        if how == "client.send":
            by_name["small"].send(blob=blob)
            by_name["big"].send(blob=blob)
        else:
            servo.sendall(blob=blob)
        seen: list[Any] = []
        wait_until(
            lambda: seen.extend(small.events()) or any(isinstance(e, Disconnected) for e in seen),
            5,
            "the small client to be disconnected",
        )
        assert not [e for e in seen if isinstance(e, Packet)], "the oversize packet reached it anyway"
        (gone,) = [e for e in seen if isinstance(e, Disconnected)]
        assert gone.code == "limit", gone
        assert "max_packet_size" in gone.reason and "1024" in gone.reason, gone
        left = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
        assert [(e.client, e.code) for e in left] == [(by_name["small"], "limit")]
        assert "1024" in left[0].reason
        assert collect(big, 1) == [{"blob": blob}]
        servo.sendall(after="that")  # the server and the other client carry on
        assert collect(big, 1) == [{"after": "that"}]
        assert big.connected and [c.name for c in servo.clients] == ["big"]
    finally:
        small.close()
        big.close()


def test_a_legal_but_maximum_size_packet_passes(servo: Servo) -> None:
    with RawPeer(servo.port) as peer:
        peer.handshake()
        blob = b"x" * (64 * 1024 - 16)
        peer.send_packet(blob=blob)
        (got,) = collect(servo, 1)
        assert got["blob"] == blob


def test_a_bye_with_junk_fields_is_still_a_goodbye(servo: Servo) -> None:
    with RawPeer(servo.port) as peer:
        peer.handshake()
        peer.send_frame(BYE, msgpack.packb({"code": 12345, "reason": ["not", "text"] * 300}))
        events = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
    (left,) = events
    assert left.code == "protocol" and "malformed BYE" in left.reason  # nested fields are refused


def test_a_bye_cannot_claim_a_code_it_has_no_right_to(servo: Servo) -> None:
    with RawPeer(servo.port) as peer:
        peer.handshake()
        peer.send_frame(BYE, msgpack.packb({"code": "12345", "reason": "x" * 4000}))
        events = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
    (left,) = events
    assert left.code == "closed" and len(left.reason) <= 500  # unknown codes become "closed"; bounded


def test_deeply_nested_hello_is_refused_with_a_reason_not_an_internal_error(
    servo: Servo, caplog: pytest.LogCaptureFixture, reliability: Reliability
) -> None:
    # A 1 KiB HELLO whose "name" is a list nested 1020 deep: legal msgpack, under the handshake limit.
    body = b"\x83" + msgpack.packb("version") + msgpack.packb(PROTOCOL_VERSION)
    body += (
        msgpack.packb("codec") + msgpack.packb("msgpack") + msgpack.packb("name") + b"\x91" * 1020 + b"\xc0"
    )
    caplog.set_level("ERROR", logger="sprocket")
    attempts = 20
    with LegitGame(servo) as game:
        told = []
        for _ in range(attempts):
            with RawPeer(servo.port) as peer:
                peer.read_frame(CHALLENGE)
                peer.send_frame(HELLO, body)
                assert peer.read_until_closed(5)
                told.append(peer.goodbye())
        game.finish()
    game.assert_unharmed()
    tracebacks = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    reliability.record(
        "Hostile input (sockets)",
        "HELLO whose name is a list nested 1020 deep (1 KiB)",
        tried=f"{attempts} connections, each sending that HELLO",
        outcome=f"server closed each connection; reasons sent: {sorted({str(t) for t in told})}; "
        f"{len(tracebacks)} ERROR tracebacks logged by sprocket"
        + (" (BUG: internal error, no reason given)" if tracebacks or None in told else ""),
        tracebacks=len(tracebacks),
    )
    assert all(t is not None for t in told), "the peer should be told why (a REJECT or BYE)"
    assert not tracebacks, "hostile input must not reach the internal-error path"


def test_a_huge_bye_is_refused_before_it_is_read(servo: Servo) -> None:
    # Control frames are small maps decoded without the DATA budgets: a big BYE of empty maps would cost
    # the server tens of milliseconds and ~70 MiB to refuse, so it is refused from its header.
    with RawPeer(servo.port) as peer:
        peer.handshake()
        peer.sock.sendall((60_000).to_bytes(4, "big") + bytes([BYE]) + b"\x80" * 4096)  # < max_packet_size
        events = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
    (left,) = events
    assert left.code == "protocol" and "control frame" in left.reason
