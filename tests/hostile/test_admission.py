"""Who gets in: passwords, app ids, max_clients, kicks, identities assigned by the server, and TLS."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import trustme

from sprocket import ConnectionFailed, Disconnected, Left, Rejected, Servo, Sprocket
from sprocket.protocol import CHALLENGE, HELLO, password_proof
from tests.conftest import collect, wait_until
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import RawPeer, hello_body

pytestmark = pytest.mark.timeout(60)


def joined(servo: Servo, count: int) -> None:
    wait_until(lambda: servo.get() is not None and len(servo.clients) >= count, 5, f"{count} clients")


def refusal(**kw: Any) -> Rejected:
    """Connect with ``kw`` and return the Rejected the client raises."""
    s = Sprocket("127.0.0.1", **kw)
    try:
        with pytest.raises(Rejected) as info:
            s.wait_connected(5)
        assert not s.connected and s.error == info.value.reason
        (event,) = s.events()
        assert event == Disconnected(info.value.reason, info.value.code, rejected=True)
        return info.value
    finally:
        s.close()


def test_password_and_app_are_checked(no_leaks: None, reliability: Reliability) -> None:
    with Servo("127.0.0.1", 0, password="hunter2", app="hockey-1.0") as servo:
        port = servo.port
        cases = {
            "wrong password": refusal(port=port, password="hunter3", app="hockey-1.0"),
            "no password": refusal(port=port, app="hockey-1.0"),
            "other app": refusal(port=port, password="hunter2", app="hockey-2.0"),
            "no app": refusal(port=port, password="hunter2"),
            "other codec": refusal(port=port, password="hunter2", app="hockey-1.0", codec="pickle"),
        }
        ok = Sprocket("127.0.0.1", port, password="hunter2", app="hockey-1.0").wait_connected(5)
        joined(servo, 1)
        ok.close()
    codes = {name: exc.code for name, exc in cases.items()}
    assert codes == {
        "wrong password": "password", "no password": "password", "other app": "app", "no app": "app",
        "other codec": "codec",
    }  # fmt: skip
    assert "wrong password" in cases["wrong password"].reason
    assert "needs a password" in cases["no password"].reason
    assert "hockey-1.0" in cases["other app"].reason and "hockey-2.0" in cases["other app"].reason
    reliability.record(
        "Who gets in",
        "Wrong or missing password, app id or codec",
        tried="5 clients with a wrong password, no password, another app, no app, another codec",
        outcome="each raised Rejected from wait_connected() with code and reason "
        + "; ".join(f"{c.code}: {c.reason!r}" for c in cases.values())
        + "; the right credentials got in",
    )


def test_a_captured_password_proof_cannot_be_replayed(reliability: Reliability) -> None:
    with (
        Servo("127.0.0.1", 0, password="hunter2") as servo,
        RawPeer(servo.port) as eve,
        RawPeer(servo.port) as bob,
    ):
        # Bob logs in properly; Eve replays the exact proof Bob sent on her own connection.
        bob_nonce = msgpack.unpackb(bob.read_frame(CHALLENGE))["nonce"]
        proof = password_proof("hunter2", bob_nonce)
        eve.read_frame(CHALLENGE)
        eve.send_frame(HELLO, hello_body(auth=proof))
        bob.send_frame(HELLO, hello_body(auth=proof))
        assert eve.read_until_closed(5)
        assert bob.read_until_closed(0.3) is False  # Bob is in and stays in
        joined(servo, 1)
    assert eve.goodbye() == {"code": "password", "reason": "wrong password"}
    reliability.record(
        "Who gets in",
        "Replaying another connection's password proof",
        tried="the HMAC proof valid for one connection's nonce, sent on a second connection",
        outcome="second connection rejected: password, 'wrong password' (each connection has its own nonce)",
    )


def test_max_clients_and_kick(no_leaks: None, reliability: Reliability) -> None:
    with Servo("127.0.0.1", 0, max_clients=3) as servo:
        players = [Sprocket("127.0.0.1", servo.port, name=f"p{i}").wait_connected(5) for i in range(3)]
        joined(servo, 3)
        full = refusal(port=servo.port)
        assert full.code == "full" and "full" in full.reason and "3" in full.reason
        victim = next(c for c in servo.clients if c.name == "p0")
        victim.kick("camping in the goal")
        gone = wait_until(lambda: [e for e in players[0].events() if isinstance(e, Disconnected)], 5, "kick")
        assert gone == [Disconnected("camping in the goal", "kicked")]
        assert players[0].error == "camping in the goal" and not players[0].connected
        left = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
        assert [(e.client, e.code) for e in left] == [(victim, "kicked")]
        # The kicked player's slot is free again; a newcomer gets a new id.
        newcomer = Sprocket("127.0.0.1", servo.port).wait_connected(5)
        assert newcomer.id not in {p.id for p in players}
        for p in [*players, newcomer]:
            p.close()
    reliability.record(
        "Who gets in",
        "max_clients and kick",
        tried="4th client at max_clients=3; then kick('camping in the goal') and a newcomer",
        outcome=f"4th rejected: full, {full.reason!r}; kicked client got Disconnected(kicked) with the "
        "server's words, the server a Left(kicked); the freed slot went to a newcomer with a fresh id",
    )


def test_a_client_cannot_pose_as_another(no_leaks: None, reliability: Reliability) -> None:
    with Servo("127.0.0.1", 0) as servo:
        alice = Sprocket("127.0.0.1", servo.port, name="alice").wait_connected(5)
        mallory = Sprocket("127.0.0.1", servo.port, name="alice").wait_connected(5)  # same name, on purpose
        joined(servo, 2)
        by_name = {c.id: c for c in servo.clients}
        alice_client = by_name[alice.id]
        mallory.send(sender=alice_client.id, id=alice.id, client_id=alice.id, name="alice", text="gg")
        with RawPeer(servo.port) as raw:
            # A hand-made HELLO claiming an id, then a packet claiming to come from alice.
            raw.read_frame(CHALLENGE)
            raw.send_frame(HELLO, hello_body(id=alice.id, client_id=alice.id, name="alice"))
            raw_id = msgpack.unpackb(raw.read_frame(0x03))["id"]
            raw.send_packet(sender=alice.id, id=alice.id, text="gg")
            got = collect(servo, 2)
    assert len({alice.id, mallory.id, raw_id}) == 3  # ids come from the server, never from the client
    for packet in got:
        assert packet.sender is not alice_client and packet.sender.id != alice.id
        assert packet["sender"] == alice.id  # the forged field is just data
    assert sorted(p.sender.id for p in got) == sorted([mallory.id, raw_id])
    alice.close()
    mallory.close()
    reliability.record(
        "Who gets in",
        "Posing as another client",
        tried="a second client named 'alice'; packets with fields sender/id/client_id set to alice's id; "
        "a raw HELLO carrying id/client_id",
        outcome="ids assigned by the server (3 distinct); packet.sender was always the real connection; "
        "the forged fields arrived as plain data",
    )


# -- TLS -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_servo(ca: trustme.CA) -> Iterator[Servo]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    servo = Servo("127.0.0.1", 0, ssl_context=server_ctx, handshake_timeout=1.0, ping_interval=0.2)
    yield servo
    servo.close()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_tls_carries_packets_both_ways(tls_servo: Servo, ca: trustme.CA, reliability: Reliability) -> None:
    s = Sprocket(
        "127.0.0.1", tls_servo.port, ssl_context=trusting(ca), server_hostname="localhost"
    ).wait_connected(5)
    assert isinstance(s._io.peer.sock, ssl.SSLSocket)  # type: ignore[union-attr]
    big = b"z" * (512 * 1024)
    for i in range(200):
        s.send(seq=i)
    s.send(big=big)
    got = collect(tls_servo, 201)
    assert [p["seq"] for p in got[:200]] == list(range(200)) and got[200]["big"] == big
    for i in range(200):
        tls_servo.sendall(seq=i)
    tls_servo.sendall(big=big)
    back = collect(s, 201)
    assert [p["seq"] for p in back[:200]] == list(range(200)) and back[200]["big"] == big
    s.close()
    reliability.record(
        "Who gets in",
        "TLS (ssl_context on both ends, certificate from a test CA)",
        tried="200 small packets and one 512 KiB packet each way over TLS",
        outcome="all arrived in order, intact",
    )


@pytest.mark.parametrize(
    ("who", "words"),
    [("untrusting", "certificate verify failed"), ("wrong hostname", "Hostname mismatch|match")],
)
def test_tls_client_that_cannot_verify_the_server_fails_clearly(
    tls_servo: Servo, ca: trustme.CA, who: str, words: str, reliability: Reliability
) -> None:
    if who == "untrusting":
        s = Sprocket("127.0.0.1", tls_servo.port, ssl_context=ssl.create_default_context(), connect_timeout=3)
    else:
        s = Sprocket(
            "127.0.0.1", tls_servo.port, ssl_context=trusting(ca), server_hostname="evil.example",
            connect_timeout=3,
        )  # fmt: skip
    with pytest.raises(ConnectionFailed) as info:
        s.wait_connected(5)
    s.close()
    assert any(w in info.value.reason for w in words.split("|")), info.value.reason
    assert "TLS" in info.value.reason
    # ...and the server keeps serving the clients that can.
    ok = Sprocket("127.0.0.1", tls_servo.port, ssl_context=trusting(ca), server_hostname="localhost")
    ok.wait_connected(5).close()
    reliability.record(
        "Who gets in",
        f"TLS client that cannot verify the server ({who})",
        tried="a client without the CA" if who == "untrusting" else "server_hostname='evil.example'",
        outcome=f"{type(info.value).__name__}: {info.value.reason!r}; the server kept serving",
    )


def test_plain_client_at_a_tls_server_fails_cleanly(
    tls_servo: Servo, ca: trustme.CA, reliability: Reliability
) -> None:
    plain = Sprocket("127.0.0.1", tls_servo.port, connect_timeout=1.0)
    with pytest.raises(ConnectionFailed) as info:
        plain.wait_connected(5)
    plain.close()
    wait_until(lambda: not tls_servo._io.peers, 5, "the server to drop the plain socket")
    ok = Sprocket("127.0.0.1", tls_servo.port, ssl_context=trusting(ca), server_hostname="localhost")
    ok.wait_connected(5).close()
    reliability.record(
        "Who gets in",
        "Plain (non-TLS) client at a TLS server",
        tried="Sprocket without ssl_context, connect_timeout 1 s",
        outcome=f"{type(info.value).__name__}: {info.value.reason!r}; the server dropped the socket after "
        "its handshake timeout and kept serving TLS clients",
    )


def test_tls_client_at_a_plain_server_fails_cleanly(ca: trustme.CA, reliability: Reliability) -> None:
    with Servo("127.0.0.1", 0) as plain_servo:
        s = Sprocket("127.0.0.1", plain_servo.port, ssl_context=trusting(ca), server_hostname="localhost")
        with pytest.raises(ConnectionFailed) as info:
            s.wait_connected(5)
        s.close()
        Sprocket("127.0.0.1", plain_servo.port).wait_connected(5).close()
    assert "TLS" in info.value.reason
    reliability.record(
        "Who gets in",
        "TLS client at a plain server",
        tried="Sprocket with ssl_context against a Servo without",
        outcome=f"{type(info.value).__name__}: {info.value.reason!r}; the server kept serving",
    )
