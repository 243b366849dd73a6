"""Sessions in memory: the counting, acknowledging and replay rules of :class:`sprocket.session.Session`,
and the resume handshake between two :class:`~sprocket.protocol.Connection` objects, byte by byte, with
an injected clock.  No sockets: what the I/O threads do around a resume (check the proof, rotate the
token, hold sends while away) is played here by :func:`server_resume` and :class:`Link`, as
``sprocket.server`` and ``sprocket.client`` do it."""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sprocket.codec import MsgpackCodec
from sprocket.codes import CloseCode
from sprocket.protocol import (
    ACK,
    CHALLENGE,
    DATA,
    HELLO,
    PING,
    PROTOCOL_VERSION,
    REJECT,
    WELCOME,
    Closed,
    Connection,
    HelloReceived,
    Received,
    ResumeRequest,
    Welcomed,
    data_frame,
    frame,
)
from sprocket.session import (
    ACK_BYTES,
    ACK_BYTES_MAX,
    ACK_EVERY,
    ENTRY_COST,
    SESSION_ID_SIZE,
    TOKEN_SIZE,
    Session,
    ack_bytes_for,
    new_session_id,
    new_token,
    pack_count,
    resume_proof,
    unpack_count,
)
from sprocket.settings import Settings

pytestmark = pytest.mark.timeout(60)

CODEC = MsgpackCodec()
SID = bytes(range(16))
TOKEN = bytes(range(100, 132))
NONCE1 = b"n" * 16
NONCE2 = b"m" * 16
LIMIT = 1 << 20


def packet(i: int, pad: int = 0) -> bytes:
    return data_frame(CODEC.encode({"i": i, "pad": "x" * pad} if pad else {"i": i}))


def frames_of(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4], bytes(data[pos + 5 : pos + 4 + length])))
        pos += 4 + length
    assert pos == len(data), "a partial frame"
    return out


def kinds(data: bytes) -> list[int]:
    return [kind for kind, _ in frames_of(data)]


# -- Session: counting, acknowledging, replaying, overflowing -----------------------------------------------


def test_ids_and_tokens_are_random_and_sized() -> None:
    assert len(new_session_id()) == SESSION_ID_SIZE and len(new_token()) == TOKEN_SIZE
    assert len({new_token() for _ in range(100)}) == 100
    assert len({new_session_id() for _ in range(100)}) == 100


def test_proof_is_an_hmac_of_the_nonce_bound_to_the_token() -> None:
    proof = resume_proof(TOKEN, NONCE1)
    assert len(proof) == 32 and proof == resume_proof(TOKEN, NONCE1)
    assert proof != resume_proof(TOKEN, NONCE2)  # a proof seen on the wire is useless on another connection
    assert proof != resume_proof(new_token(), NONCE1)
    assert TOKEN not in proof


def test_count_bodies_are_eight_bytes_big_endian() -> None:
    assert pack_count(1) == b"\x00" * 7 + b"\x01"
    assert unpack_count(pack_count(2**64 - 1)) == 2**64 - 1
    for bad in (b"", b"\x00" * 7, b"\x00" * 9):
        assert unpack_count(bad) is None


def test_record_counts_and_keeps_until_acknowledged() -> None:
    s = Session(SID, TOKEN, grace=30.0, limit=LIMIT)
    frames = [packet(i) for i in range(1, 6)]
    for f in frames:
        s.record(f)
    # What a frame costs to keep: its bytes and a fixed ENTRY_COST for the slot and the object.
    assert (s.sent, s.base, s.held) == (5, 0, sum(len(f) + ENTRY_COST for f in frames))
    assert s.acknowledge(2) and (s.peer_acked, s.base) == (2, 2)
    assert list(s.frames) == frames[2:] and s.held == sum(len(f) + ENTRY_COST for f in frames[2:])
    assert s.acknowledge(2)  # the same count again: harmless
    assert not s.acknowledge(1)  # below what was acknowledged: impossible, nothing changes
    assert not s.acknowledge(6)  # above what was sent: impossible, nothing changes
    assert (s.peer_acked, s.base, list(s.frames)) == (2, 2, frames[2:])
    assert s.acknowledge(5) and not s.frames and s.held == 0 and not s.overflowed


def test_replay_gives_exactly_the_frames_after_the_peers_count() -> None:
    s = Session(SID, TOKEN, grace=30.0, limit=LIMIT)
    frames = [packet(i) for i in range(1, 11)]
    for f in frames:
        s.record(f)
    s.acknowledge(3)
    for received in range(3, 11):
        assert s.can_replay(received)
    assert not s.can_replay(2)  # let go already: it cannot be replayed
    assert not s.can_replay(11)  # more than was sent
    assert s.replay(6) == frames[6:]  # frames 7..10: off by one either way loses or repeats one
    assert s.peer_acked == 6 and s.base == 6
    assert s.replay(10) == [] and s.held == 0


def test_overflow_lets_the_oldest_go_and_refuses_a_resume_that_needs_them() -> None:
    f = packet(0, pad=100)
    cost = len(f) + ENTRY_COST
    s = Session(SID, TOKEN, grace=30.0, limit=cost * 4)
    for _ in range(4):
        s.record(f)
    assert s.base == 0 and not s.overflowed and s.held == cost * 4
    s.record(f)  # one more than fits
    assert (s.sent, s.base, s.held, len(s.frames)) == (5, 1, cost * 4, 4)
    assert s.overflowed  # frame 1 was never acknowledged
    assert not s.can_replay(0) and s.can_replay(1)  # unless the peer turns out to have received it
    s.acknowledge(1)
    assert not s.overflowed


def test_received_counts_and_ack_due_after_ack_every_frames_or_ack_bytes() -> None:
    s = Session(SID, TOKEN, grace=30.0, limit=LIMIT)
    s.received = ACK_EVERY - 1
    assert not s.ack_due()
    s.received += 1
    assert s.ack_due()
    assert s.take_ack() == ACK_EVERY and not s.ack_due() and s.acked_out == ACK_EVERY
    s.unacked_bytes = ACK_BYTES
    assert s.ack_due()
    s.take_ack()
    assert s.unacked_bytes == 0 and not s.ack_due()


# -- Connections: the handshake that opens a session, and the resume ----------------------------------------


def settings(**kw: Any) -> Settings:
    kw.setdefault("ping_interval", 1.0)
    kw.setdefault("timeout", 10.0)
    return Settings(**kw)


def pump(a: Connection, b: Connection, now: float) -> None:
    for _ in range(50):
        moved = False
        for src, dst in ((a, b), (b, a)):
            out = src.data_to_send()
            if out:
                moved = True
                dst.receive_data(out, now)
        if not moved:
            return


def open_session(now: float = 100.0, **kw: Any) -> tuple[Connection, Connection, Session, Session]:
    """A server and a client Connection, OPEN, with a session; returns (server, client, their sessions)."""
    server = Connection("server", now, settings(**kw), nonce=NONCE1)
    client = Connection("client", now, settings(**kw))
    pump(server, client, now)
    (hello,) = server.events()
    assert hello == HelloReceived(name=None, app=None, session=True, resume=None)
    ours = Session(SID, TOKEN, grace=30.0, limit=server.settings.resume_buffer or LIMIT)
    server.accept(7, now, ours)
    pump(server, client, now)
    assert client.events() == [Welcomed(7)]
    theirs = client.session
    assert theirs is not None and theirs is not ours
    assert (theirs.id, theirs.token, theirs.grace) == (SID, TOKEN, 30.0)
    return server, client, ours, theirs


def server_resume(conn: Connection, session: Session, request: ResumeRequest, now: float) -> str:
    """What _ServerIO does with a resume request: "" and accepted, or the refusal's reason."""
    proven = None
    for token in (session.token, session.previous_token):
        if token is not None and hmac.compare_digest(resume_proof(token, conn.nonce), request.proof):
            proven = token
    if request.session_id != session.id or proven is None:
        conn.reject(CloseCode.SESSION_LOST, "bad token")
        return "bad token"
    if not session.can_replay(request.received) or request.base > session.received:
        conn.reject(CloseCode.SESSION_LOST, "cannot replay")
        return "cannot replay"
    session.previous_token = proven
    session.token = new_token()
    conn.accept(7, now, session, request.received)
    return ""


def received(conn: Connection) -> list[int]:
    return [e.fields["i"] for e in conn.events() if isinstance(e, Received)]


def test_welcome_carries_the_session_when_asked_and_nothing_when_not() -> None:
    server = Connection("server", 0.0, settings(), nonce=NONCE1)
    client = Connection("client", 0.0, settings())
    client.receive_data(server.data_to_send(), 0.0)
    (hello_kind, hello_body) = frames_of(client.data_to_send())[0]
    assert hello_kind == HELLO and msgpack.unpackb(hello_body)["session"] is True
    assert "resume" not in msgpack.unpackb(hello_body)

    # A client that did not ask (reconnect=False) sends no session field and gets none.
    server = Connection("server", 0.0, settings(), nonce=NONCE1)
    client = Connection("client", 0.0, settings(reconnect=False))
    client.receive_data(server.data_to_send(), 0.0)
    hello = client.data_to_send()
    assert "session" not in msgpack.unpackb(frames_of(hello)[0][1])
    server.receive_data(hello, 0.0)
    (event,) = server.events()
    assert isinstance(event, HelloReceived) and not event.session and event.resume is None
    server.accept(3, 0.0)  # the I/O layer gives no session to a client that did not ask
    welcome = server.data_to_send()
    body = msgpack.unpackb(frames_of(welcome)[0][1])
    assert frames_of(welcome)[0][0] == WELCOME
    assert not {"session", "token", "grace", "resumed", "received"} & set(body)
    client.receive_data(welcome, 0.0)
    assert client.events() == [Welcomed(3)] and client.session is None and server.session is None


def test_a_client_that_did_not_ask_ignores_offered_session_fields() -> None:
    server = Connection("server", 0.0, settings(), nonce=NONCE1)
    client = Connection("client", 0.0, settings(reconnect=False))
    pump(server, client, 0.0)
    server.events()
    server.accept(3, 0.0, Session(SID, TOKEN, grace=30.0, limit=LIMIT))
    pump(server, client, 0.0)
    assert client.events() == [Welcomed(3)] and client.session is None


@pytest.mark.parametrize(
    "fields",
    [
        {"session": b"short", "token": TOKEN, "grace": 30.0},
        {"session": SID, "token": b"short", "grace": 30.0},
        {"session": SID, "token": TOKEN, "grace": -1.0},
        {"session": SID, "token": TOKEN, "grace": float("nan")},
        {"session": SID, "token": TOKEN, "grace": "30"},
        {"session": SID},
    ],
)
def test_unusable_session_fields_in_a_welcome_mean_no_session_not_a_broken_connection(
    fields: dict[str, Any],
) -> None:
    server = Connection("server", 0.0, settings(), nonce=NONCE1)
    client = Connection("client", 0.0, settings())
    client.receive_data(server.data_to_send(), 0.0)
    client.data_to_send()
    welcome = {"id": 5, "time": 0.0, "ping_interval": 1.0, "timeout": 10.0, "max_packet_size": 65536}
    client.receive_data(frame(WELCOME, msgpack.packb({**welcome, **fields}, use_bin_type=True)), 0.0)
    assert client.events() == [Welcomed(5)] and client.is_open and client.session is None


def test_data_is_counted_both_ways_and_ack_follows_ack_every_frames() -> None:
    server, client, ours, theirs = open_session()
    for i in range(1, ACK_EVERY):
        client.send_data(packet(i))
    server.receive_data(client.data_to_send(), 100.0)
    assert ours.received == ACK_EVERY - 1 and theirs.sent == ACK_EVERY - 1
    assert server.data_to_send() == b""  # not yet due
    client.send_data(packet(ACK_EVERY))
    server.receive_data(client.data_to_send(), 100.0)
    out = server.data_to_send()
    assert frames_of(out) == [(ACK, pack_count(ACK_EVERY))]  # one ACK, after the parse, not per frame
    client.receive_data(out, 100.0)
    assert theirs.peer_acked == ACK_EVERY and not theirs.frames and theirs.held == 0


@pytest.mark.parametrize("buffer", [64 * 1024, 512 * 1024, 1 << 20])
def test_ack_follows_ack_bytes_of_payload(buffer: int) -> None:
    server, client, ours, _theirs = open_session(max_packet_size=64 * 1024, resume_buffer=buffer)
    threshold = ours.ack_bytes
    assert threshold == max(ACK_BYTES, buffer // 4)
    for i in range(1, 8):
        client.send_data(packet(i, pad=threshold // 8))
    server.receive_data(client.data_to_send(), 100.0)
    assert server.data_to_send() == b""
    client.send_data(packet(8, pad=threshold // 8))
    server.receive_data(client.data_to_send(), 100.0)
    assert frames_of(server.data_to_send()) == [(ACK, pack_count(8))]


@pytest.mark.parametrize(
    ("announced", "expected"),
    [
        (64 * 1024, ACK_BYTES),
        (1 << 20, ACK_BYTES_MAX),
        (512 * 1024, 128 * 1024),
        (8 << 20, ACK_BYTES_MAX),
        (None, ACK_BYTES),  # a peer that announces nothing (an older one)
        ("1048576", ACK_BYTES),
        (True, ACK_BYTES),
        (-5, ACK_BYTES),
    ],
)
def test_each_end_acknowledges_after_a_quarter_of_the_senders_announced_buffer(
    announced: object, expected: int
) -> None:
    assert ack_bytes_for(announced) == expected


@pytest.mark.parametrize(("server_buffer", "client_buffer"), [(64 * 1024, 1 << 20), (1 << 20, 512 * 1024)])
def test_the_hello_and_the_welcome_announce_each_ends_buffer(server_buffer: int, client_buffer: int) -> None:
    # The client's HELLO sets the server's threshold, the server's WELCOME (the session's limit) the client's.
    server = Connection("server", 100.0, settings(), nonce=NONCE1)
    client = Connection("client", 100.0, settings(resume_buffer=client_buffer))
    pump(server, client, 100.0)
    server.events()
    ours = Session(SID, TOKEN, grace=30.0, limit=server_buffer)
    server.accept(7, 100.0, ours)
    pump(server, client, 100.0)
    theirs = client.session
    assert theirs is not None
    assert ours.ack_bytes == ack_bytes_for(client_buffer)
    assert theirs.ack_bytes == ack_bytes_for(server_buffer)


def test_a_hello_without_a_buffer_gets_the_old_threshold() -> None:
    server = Connection("server", 100.0, settings(), nonce=NONCE1)
    server.data_to_send()
    hello = {
        "version": PROTOCOL_VERSION, "codec": "msgpack", "app": None, "name": None, "auth": None,
        "max_packet_size": 1 << 20, "session": True,
    }  # fmt: skip
    body = msgpack.packb(hello)
    server.receive_data(struct.pack(">IB", len(body) + 1, HELLO) + body, 100.0)
    server.events()
    ours = Session(SID, TOKEN, grace=30.0, limit=LIMIT)
    server.accept(7, 100.0, ours)
    assert ours.ack_bytes == ACK_BYTES


def test_heartbeat_carries_an_ack_of_what_trickled_in_and_no_ack_when_nothing_did() -> None:
    server, client, _ours, theirs = open_session()
    server.tick(101.0)  # the first heartbeat: nothing received, so only a PING
    assert kinds(server.data_to_send()) == [PING]
    client.send_data(packet(1))
    client.send_data(packet(2))
    server.receive_data(client.data_to_send(), 101.5)
    assert server.data_to_send() == b""
    server.tick(102.0)
    out = server.data_to_send()
    assert frames_of(out)[0] == (ACK, pack_count(2)) and kinds(out) == [ACK, PING]
    client.receive_data(out, 102.0)
    assert theirs.peer_acked == 2 and not theirs.frames
    server.tick(103.0)
    assert kinds(server.data_to_send()) == [PING]  # nothing new: no ACK


def resume_pair(
    theirs: Session, now: float, nonce: bytes = NONCE2, **kw: Any
) -> tuple[Connection, Connection, bytes]:
    """A new server Connection and a client Connection resuming ``theirs``; returns them and the HELLO."""
    server = Connection("server", now, settings(**kw), nonce=nonce)
    client = Connection("client", now, settings(**kw), session=theirs)
    client.receive_data(server.data_to_send(), now)
    hello = client.data_to_send()
    return server, client, hello


def test_resume_handshake_byte_by_byte() -> None:
    server, client, ours, theirs = open_session()
    for i in range(1, 4):
        client.send_data(packet(i))
        server.send_data(packet(100 + i))
    pump(server, client, 100.0)
    assert received(server) == [1, 2, 3] and received(client) == [101, 102, 103]
    # In flight when the link is cut: both lost on the wire, both kept in the sessions.
    client.send_data(packet(4))
    server.send_data(packet(104))
    client.data_to_send()
    server.data_to_send()
    server.lost("reset")
    client.lost("reset")
    # While away: the I/O layers keep what is sent in the sessions.
    theirs.record(packet(5))
    ours.record(packet(105))
    ours.record(packet(106))

    new_server, new_client, hello = resume_pair(theirs, 101.0)
    ((kind, body),) = frames_of(hello)
    fields = msgpack.unpackb(body)
    assert kind == HELLO
    assert fields["session"] is True and fields["resume"] == SID
    assert fields["proof"] == resume_proof(TOKEN, NONCE2)
    assert fields["received"] == 3 and fields["base"] == theirs.base and fields["sent"] == theirs.sent
    assert TOKEN not in hello  # the token itself never travels again
    new_server.receive_data(hello, 101.0)
    (event,) = new_server.events()
    assert event == HelloReceived(
        name=None,
        app=None,
        session=True,
        resume=ResumeRequest(SID, fields["proof"], 3, theirs.base, theirs.sent),
    )
    assert server_resume(new_server, ours, event.resume, 101.0) == ""  # type: ignore[arg-type]
    new_token_ = ours.token
    assert new_token_ != TOKEN and ours.previous_token == TOKEN
    out = new_server.data_to_send()
    parsed = frames_of(out)
    assert [k for k, _ in parsed] == [WELCOME, DATA, DATA, DATA]
    welcome = msgpack.unpackb(parsed[0][1])
    assert welcome["resumed"] is True and welcome["session"] == SID and welcome["id"] == 7
    assert welcome["received"] == 3 and welcome["token"] == new_token_ and welcome["grace"] == 30.0
    assert [CODEC.decode(b)["i"] for _, b in parsed[1:]] == [104, 105, 106]  # from received + 1, once
    new_client.receive_data(out, 101.0)
    events = new_client.events()
    assert events[0] == Welcomed(7, resumed=True)
    assert [e.fields["i"] for e in events[1:] if isinstance(e, Received)] == [104, 105, 106]
    assert theirs.token == new_token_ and new_client.session is theirs
    back = new_client.data_to_send()
    parsed = frames_of(back)
    assert [k for k, _ in parsed] == [DATA, DATA, ACK]  # the replay, then the ACK that confirms the token
    assert [CODEC.decode(b)["i"] for _, b in parsed[:2]] == [4, 5]
    assert parsed[2][1] == pack_count(3)  # sent while handling the WELCOME, before the replay behind it
    new_server.receive_data(back, 101.0)
    assert received(new_server) == [4, 5]
    assert ours.previous_token is None  # the client confirmed the new token: the old one is dead now
    assert ours.peer_acked == 3 and len(ours.frames) == 3  # the replay is held until acknowledged
    new_client.tick(102.0)  # the heartbeat acknowledges it
    new_server.receive_data(new_client.data_to_send(), 102.0)
    assert ours.peer_acked == 6 and not ours.frames
    # And it carries on as before.
    new_client.send_data(packet(6))
    pump(new_server, new_client, 101.0)
    assert received(new_server) == [6] and (ours.received, theirs.sent) == (6, 6)


def test_old_token_stops_working_once_the_client_acks_but_not_before() -> None:
    server, client, ours, theirs = open_session()
    client.lost("reset")
    server.lost("reset")
    old = theirs.token
    # Resume 1: the WELCOME (with the new token) is lost on the wire.
    s1, _c1, hello = resume_pair(theirs, 101.0, nonce=b"a" * 16)
    s1.receive_data(hello, 101.0)
    (event,) = s1.events()
    assert server_resume(s1, ours, event.resume, 101.0) == ""
    s1.data_to_send()
    s1.lost("reset")
    assert theirs.token == old and ours.previous_token == old
    # Resume 2 with the old token still works: the client never got the new one.
    s2, c2, hello = resume_pair(theirs, 102.0, nonce=b"b" * 16)
    s2.receive_data(hello, 102.0)
    (event,) = s2.events()
    assert server_resume(s2, ours, event.resume, 102.0) == ""
    pump(s2, c2, 102.0)
    assert theirs.token == ours.token != old and ours.previous_token is None
    # A third connection presenting the old token is refused now.
    stale = Session(SID, old, grace=30.0, limit=LIMIT)
    s3, c3, hello = resume_pair(stale, 103.0, nonce=b"c" * 16)
    s3.receive_data(hello, 103.0)
    (event,) = s3.events()
    assert server_resume(s3, ours, event.resume, 103.0) == "bad token"
    c3.receive_data(s3.data_to_send(), 103.0)
    (closed,) = c3.events()
    assert isinstance(closed, Closed) and closed.rejected and closed.code == "session_lost"


def resume_hello(**fields: Any) -> bytes:
    base = {
        "version": PROTOCOL_VERSION, "codec": "msgpack", "app": None, "name": None, "auth": None,
        "max_packet_size": 65536, "session": True,
        "resume": SID, "proof": b"p" * 32, "received": 0, "base": 0, "sent": 0,
    }  # fmt: skip
    base.update(fields)
    return frame(HELLO, msgpack.packb({k: v for k, v in base.items() if v is not ...}, use_bin_type=True))


@pytest.mark.parametrize(
    "fields",
    [
        {"resume": b"short"},
        {"resume": "a string" * 2},
        {"resume": 12},
        {"proof": b"p" * 31},
        {"proof": ...},
        {"proof": "p" * 32},
        {"received": -1},
        {"received": 1.0},
        {"received": True},
        {"received": ...},
        {"base": -5},
        {"base": "0"},
        {"base": ...},
        {"sent": -1},
        {"sent": 1.0},
        {"sent": ...},
        {"base": 2, "sent": 1},  # it cannot have let go of more than it sent
    ],
)
def test_malformed_resume_fields_are_refused_with_session_lost(fields: dict[str, Any]) -> None:
    server = Connection("server", 0.0, settings(), nonce=NONCE1)
    server.data_to_send()
    server.receive_data(resume_hello(**fields), 0.0)
    (closed,) = server.events()
    assert (
        isinstance(closed, Closed) and closed.code == "session_lost" and "malformed resume" in closed.reason
    )
    ((kind, body),) = frames_of(server.data_to_send())
    assert kind == REJECT and msgpack.unpackb(body)["code"] == "session_lost"


def test_a_well_formed_resume_request_reaches_the_server() -> None:
    assert resume_hello()[4] == HELLO
    server = Connection("server", 0.0, settings(), nonce=NONCE1)
    server.receive_data(resume_hello(received=2**63), 0.0)
    (event,) = server.events()
    assert isinstance(event, HelloReceived) and event.resume == ResumeRequest(SID, b"p" * 32, 2**63, 0, 0)


def test_a_client_rejects_a_resumed_welcome_it_cannot_honour() -> None:
    _, _, _, theirs = open_session()
    theirs.record(packet(1))
    good = {"id": 7, "time": 0.0, "resumed": True, "session": SID, "token": b"t" * 32, "received": 0}
    for bad, words in [
        ({"session": b"x" * 16}, "does not resume"),
        ({"resumed": False}, "does not resume"),
        ({"token": b"short"}, "bad token"),
        ({"received": "0"}, "received count"),
        ({"received": 2}, "the server says it received 2"),  # more than was sent
    ]:
        client = Connection("client", 0.0, settings(), session=theirs)
        client.receive_data(frame(CHALLENGE, msgpack.packb({"sprocket": 1, "nonce": NONCE1})), 0.0)
        client.data_to_send()
        client.receive_data(frame(WELCOME, msgpack.packb({**good, **bad}, use_bin_type=True)), 0.0)
        (closed,) = client.events()
        assert isinstance(closed, Closed) and closed.code == "protocol" and words in closed.reason
        assert theirs.token != b"t" * 32


def test_a_resume_refused_when_the_buffer_overflowed_while_away() -> None:
    server, client, ours, theirs = open_session()
    server.lost("reset")
    client.lost("reset")
    f = packet(0, pad=1000)
    small = Session(SID, TOKEN, grace=30.0, limit=len(f) * 2)
    for _ in range(3):
        small.record(f)
    assert small.overflowed and not small.can_replay(theirs.received)
    s2, _c2, hello = resume_pair(theirs, 101.0)
    s2.receive_data(hello, 101.0)
    (event,) = s2.events()
    assert server_resume(s2, small, event.resume, 101.0) == "cannot replay"
    # The other way: the client let go of frames the server never received (its base is past them).
    theirs.base = theirs.sent = 5
    theirs.frames.clear()
    s3, _c3, hello = resume_pair(theirs, 102.0)
    s3.receive_data(hello, 102.0)
    (event,) = s3.events()
    assert event.resume.base == 5  # type: ignore[union-attr]
    assert server_resume(s3, ours, event.resume, 102.0) == "cannot replay"  # type: ignore[arg-type]


# -- random interleavings and cuts: exactly once, in order --------------------------------------------------


@dataclass
class Link:
    """Both ends of one session across any number of connections, with the bytes on the wire visible."""

    now: float = 100.0
    ours: Session | None = None  # server side
    theirs: Session | None = None  # client side
    server: Connection | None = None
    client: Connection | None = None
    up: bytearray = field(default_factory=bytearray)  # client -> server, in flight
    down: bytearray = field(default_factory=bytearray)
    next_up: int = 1
    next_down: int = 1
    got_up: list[int] = field(default_factory=list)  # what the server received
    got_down: list[int] = field(default_factory=list)
    resumes: int = 0
    connections: int = 0

    def start(self) -> None:
        self.server = Connection("server", self.now, settings(), nonce=self._nonce())
        self.client = Connection("client", self.now, settings(), session=self.theirs)

    def _nonce(self) -> bytes:
        self.connections += 1
        return self.connections.to_bytes(16, "big")

    def send_up(self, pad: int) -> None:
        f = packet(self.next_up, pad)
        self.next_up += 1
        assert self.client is not None
        if self.client.is_open:
            assert self.client.send_data(f)
        else:  # connecting, or reconnecting: kept for the session (the client's route())
            assert self.theirs is not None, "sent before the first WELCOME: not part of this model"
            self.theirs.record(f)

    def send_down(self, pad: int) -> None:
        f = packet(self.next_down, pad)
        self.next_down += 1
        assert self.server is not None and self.ours is not None
        if self.server.is_open:
            assert self.server.send_data(f)
        else:  # away: kept for the session (the server's route())
            self.ours.record(f)

    def collect(self) -> None:
        assert self.server is not None and self.client is not None
        self.up += self.client.data_to_send()
        self.down += self.server.data_to_send()
        for event in self.server.events():
            if isinstance(event, Received):
                self.got_up.append(event.fields["i"])
            elif isinstance(event, HelloReceived):
                if event.resume is None:
                    assert self.ours is None
                    self.ours = Session(SID, TOKEN, grace=30.0, limit=LIMIT)
                    self.server.accept(7, self.now, self.ours)
                else:
                    assert self.ours is not None
                    assert server_resume(self.server, self.ours, event.resume, self.now) == ""
                    self.resumes += 1
            else:
                assert isinstance(event, Closed), event
        for event in self.client.events():
            if isinstance(event, Received):
                self.got_down.append(event.fields["i"])
            elif isinstance(event, Welcomed):
                if self.theirs is None:
                    self.theirs = self.client.session
                assert self.client.session is self.theirs
            else:
                assert isinstance(event, Closed), event
        self.up += self.client.data_to_send()
        self.down += self.server.data_to_send()

    def deliver(self, up: int, down: int) -> None:
        """Deliver up to ``up`` / ``down`` bytes of what is in flight (partial frames included)."""
        assert self.server is not None and self.client is not None
        self.collect()
        if up and self.up and not self.server.closed:
            chunk = bytes(self.up[:up])
            del self.up[:up]
            self.server.receive_data(chunk, self.now)
        if down and self.down and not self.client.closed:
            chunk = bytes(self.down[:down])
            del self.down[:down]
            self.client.receive_data(chunk, self.now)
        self.collect()
        if self.server.closed or self.client.closed:
            raise AssertionError(
                f"a connection closed: {self.server.close_reason} / {self.client.close_reason}"
            )

    def tick(self, seconds: float) -> None:
        assert self.server is not None and self.client is not None
        self.now += seconds
        self.server.tick(self.now)
        self.client.tick(self.now)
        self.collect()
        if self.server.closed or self.client.closed:  # a timeout: the client reconnects
            self.cut()

    def cut(self) -> None:
        """The link drops: whatever is in flight is lost, both ends see a reset; reconnect at once."""
        assert self.server is not None and self.client is not None
        self.collect()
        self.up.clear()
        self.down.clear()
        self.server.lost("reset")
        self.client.lost("reset")
        self.collect()
        self.up.clear()
        self.down.clear()
        if self.theirs is None:  # cut before the first WELCOME: a fresh join is another story
            self.ours = None
            self.next_up = self.next_down = 1
            self.got_up.clear()
            self.got_down.clear()
        self.start()

    def settle(self) -> None:
        for _ in range(10_000):
            self.deliver(1 << 30, 1 << 30)
            if not self.up and not self.down:
                assert self.server is not None and self.client is not None
                if not (self.server.has_data_to_send() or self.client.has_data_to_send()):
                    return
        raise AssertionError("the link never settled")


operations = st.lists(
    st.one_of(
        st.tuples(st.just("up"), st.integers(0, 2000)),
        st.tuples(st.just("down"), st.integers(0, 2000)),
        st.tuples(st.just("deliver"), st.integers(0, 3000), st.integers(0, 3000)),
        st.tuples(st.just("tick"), st.floats(0.0, 2.0)),
        st.tuples(st.just("cut")),
    ),
    max_size=60,
)


@hypothesis_settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(ops=operations)
def test_random_interleavings_and_cuts_deliver_everything_once_in_order(ops: list[tuple[Any, ...]]) -> None:
    link = Link()
    link.start()
    link.settle()  # the handshake
    assert link.theirs is not None and link.client is not None and link.client.is_open
    for op in ops:
        if op[0] == "up":
            link.send_up(op[1])
        elif op[0] == "down":
            link.send_down(op[1])
        elif op[0] == "deliver":
            link.deliver(op[1], op[2])
        elif op[0] == "tick":
            link.tick(op[1])
        else:
            link.cut()
    link.settle()
    assert link.client is not None and link.server is not None
    assert link.client.is_open and link.server.is_open
    assert link.got_up == list(range(1, link.next_up))
    assert link.got_down == list(range(1, link.next_down))
