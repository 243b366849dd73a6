"""Reconnect and resume over real sockets: a Servo, a Sprocket and a LagProxy between them that cuts,
stalls or refuses the link.  Properties, not timings: who was dropped and why, the same Client and id,
every packet delivered exactly once and in order, callbacks in order with packets."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from sprocket import (
    Connected,
    Disconnected,
    Dropped,
    Joined,
    Left,
    Packet,
    Reconnected,
    Reconnecting,
    Resumed,
    Servo,
    Sprocket,
)
from sprocket.protocol import Closed
from sprocket.testing import LagProxy
from tests.conftest import wait_until
from tests.core.raw_session import RawClient, copy_session

pytestmark = pytest.mark.timeout(90)

FAST = {"ping_interval": 0.2, "timeout": 3.0}

_opened: list[Any] = []


def track(thing: Any) -> Any:
    """Close ``thing`` (a Sprocket, LagProxy...) when the test ends, passed or failed."""
    _opened.append(thing)
    return thing


@pytest.fixture(autouse=True)
def _closing(no_leaks: None) -> Iterator[None]:
    # Set up after no_leaks, so torn down before it: a failing test does not leak into the next ones.
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
def servo() -> Iterator[Servo]:
    server = Servo("127.0.0.1", 0, handshake_timeout=3.0, **FAST)
    yield server
    server.close()


def reopen(proxy: LagProxy, servo: Servo) -> LagProxy:
    """A new relay listening where ``proxy`` listened (it is closed): the link comes back."""
    return track(LagProxy("127.0.0.1", servo.port, listen_port=proxy.port).start())  # type: ignore[no-any-return]


class Events:
    """Every non-packet record an endpoint hands out through ``events()``, and its packets' ``seq``."""

    def __init__(self, endpoint: Servo | Sprocket) -> None:
        self.endpoint = endpoint
        self.items: list[Any] = []
        self.seqs: list[int] = []

    def poll(self) -> list[Any]:
        for item in self.endpoint.events():
            if type(item) is Packet:
                if "seq" in item:
                    self.seqs.append(item["seq"])
            else:
                self.items.append(item)
        return self.items

    def names(self) -> list[str]:
        return [type(item).__name__ for item in self.items]

    def wait(self, kind: type, count: int = 1, timeout: float = 10.0) -> list[Any]:
        def enough() -> list[Any] | None:
            found = [item for item in self.poll() if isinstance(item, kind)]
            return found if len(found) >= count else None

        return wait_until(enough, timeout, f"{count} {kind.__name__}")  # type: ignore[no-any-return]


def join(servo: Servo, port: int, **kw: Any) -> tuple[Sprocket, Events, Events]:
    for key, value in FAST.items():
        kw.setdefault(key, value)
    client = track(Sprocket("127.0.0.1", port, **kw)).wait_connected(5)
    server_events, client_events = Events(servo), Events(client)
    server_events.wait(Joined)
    client_events.wait(Connected)
    return client, server_events, client_events


def test_two_cuts_while_1500_packets_flow_each_way(no_leaks: None, servo: Servo) -> None:
    n = 1500
    server_log: list[tuple[str, Any]] = []
    client_log: list[tuple[str, Any]] = []
    servo.on_join = lambda c: server_log.append(("join", c))
    servo.on_leave = lambda c, r: server_log.append(("leave", c))
    servo.on_drop = lambda c, r: server_log.append(("drop", c))
    servo.on_resume = lambda c: server_log.append(("resume", c))
    with LagProxy("127.0.0.1", servo.port) as proxy:
        client = track(Sprocket(
            "127.0.0.1", proxy.port,
            on_connect=lambda s: client_log.append(("connect", s.id)),
            on_disconnect=lambda s, r: client_log.append(("disconnect", r)),
            on_drop=lambda s, r: client_log.append(("drop", r)),
            on_resume=lambda s: client_log.append(("resume", s.id)),
            **FAST,
        )).wait_connected(5)  # fmt: skip
        first_id = client.id
        wait_until(lambda: servo.get() is not None and server_log, 5, "the join")
        handle = server_log[0][1]
        up = down = cuts = 0
        got_up: list[int] = []
        got_down: list[int] = []

        def step() -> bool:
            nonlocal up, down, cuts
            for _ in range(10):
                if up < n:
                    up += 1
                    client.send(seq=up)
                if down < n:
                    down += 1
                    handle.send(seq=down)  # kept while the client is away
            for packet in servo.get():
                assert packet.sender is handle
                got_up.append(packet["seq"])
                server_log.append(("packet", packet["seq"]))
            for packet in client.get():
                got_down.append(packet["seq"])
                client_log.append(("packet", packet["seq"]))
            resumed = sum(1 for what, _ in server_log if what == "resume")
            back = sum(1 for what, _ in client_log if what == "resume")
            if cuts < 2 and up >= (cuts + 1) * 500 and resumed == back == cuts and client.connected:
                proxy.disconnect_all()  # both sides see a reset
                cuts += 1
            return len(got_up) >= n and len(got_down) >= n

        wait_until(step, 60, "1500 packets each way")
        client.close()
    assert got_up == list(range(1, n + 1))  # exactly once, in order
    assert got_down == list(range(1, n + 1))
    assert [w for w, _ in server_log if w != "packet"] == ["join", "drop", "resume", "drop", "resume"]
    assert [w for w, _ in client_log if w != "packet"] == ["connect", "drop", "resume", "drop", "resume"]
    assert all(c is handle for w, c in server_log if w in ("join", "drop", "resume"))
    assert client.id == first_id == handle.id
    assert [s for w, s in client_log if w == "resume"] == [first_id, first_id]
    for log in (server_log, client_log):  # in order with packets: none between a drop and its resume
        names = [w for w, _ in log]
        for i, what in enumerate(names):
            if what == "drop":
                assert names[i + 1 : names.index("resume", i)].count("packet") == 0


def test_sends_both_ways_while_away_are_delivered_after_the_resume(no_leaks: None, servo: Servo) -> None:
    proxy = track(LagProxy("127.0.0.1", servo.port).start())
    client, server_events, client_events = join(servo, proxy.port)
    (joined,) = [e for e in server_events.items if isinstance(e, Joined)]
    handle = joined.client
    client.send(seq=1)
    handle.send(seq=1)
    wait_until(
        lambda: server_events.poll() and client_events.poll() and server_events.seqs and client_events.seqs
    )
    proxy.close()  # the link is down and stays down: attempts are refused
    try:
        (reconnecting,) = client_events.wait(Reconnecting)
        (dropped,) = server_events.wait(Dropped)
        assert reconnecting.code == dropped.code == "lost"
        assert client.reconnecting and not client.connected and client.id == handle.id
        assert client.error is not None and "reconnecting" in client.error
        assert handle in servo.clients and not handle.connected and dropped.client is handle
        for i in range(2, 52):
            client.send(seq=i)
            handle.send(seq=i)
        servo.sendall(seq=52)  # a broadcast is kept for the away client too
        client.send(seq=52)
        wait_until(lambda: "attempt" in (client.error or ""), 5, "a failed attempt")
        proxy = reopen(proxy, servo)
        client_events.wait(Reconnected)
        (resumed,) = server_events.wait(Resumed)
        assert resumed.client is handle and handle.connected and client.connected and not client.reconnecting
        assert client.error is None
        wait_until(
            lambda: (
                server_events.poll() is not None
                and client_events.poll() is not None
                and len(server_events.seqs) >= 52
                and len(client_events.seqs) >= 52
            ),
            10,
            "everything sent while away",
        )
        assert server_events.seqs == list(range(1, 53)) and client_events.seqs == list(range(1, 53))
        assert server_events.names() == ["Joined", "Dropped", "Resumed"]
        assert client_events.names() == ["Connected", "Reconnecting", "Reconnected"]
    finally:
        client.close()
        proxy.close()


def test_a_stall_longer_than_the_timeout_then_a_resume(no_leaks: None) -> None:
    quick = {"ping_interval": 0.1, "timeout": 0.5}
    with (
        Servo("127.0.0.1", 0, handshake_timeout=5.0, **quick) as servo,  # type: ignore[arg-type]
        LagProxy("127.0.0.1", servo.port) as proxy,
    ):
        client, server_events, client_events = join(servo, proxy.port, connect_timeout=5.0, **quick)
        handle = server_events.items[0].client
        proxy.stall(1.5)  # every byte held, on this connection and the next: both ends time out
        for i in range(1, 21):
            client.send(seq=i)
            handle.send(seq=i)
        (reconnecting,) = client_events.wait(Reconnecting)
        (dropped,) = server_events.wait(Dropped)
        assert reconnecting.code == "timeout" and dropped.code == "timeout"
        assert "nothing received" in reconnecting.reason
        client_events.wait(Reconnected)
        server_events.wait(Resumed)
        wait_until(
            lambda: (
                server_events.poll() is not None
                and client_events.poll() is not None
                and len(server_events.seqs) >= 20
                and len(client_events.seqs) >= 20
            ),
            10,
        )
        assert server_events.seqs == list(range(1, 21)) and client_events.seqs == list(range(1, 21))
        assert server_events.names() == ["Joined", "Dropped", "Resumed"]
        assert client.id == handle.id and handle in servo.clients
        client.close()


def test_grace_expiry_leaves_then_the_client_joins_afresh_with_a_new_id(no_leaks: None) -> None:
    with Servo("127.0.0.1", 0, grace=0.5, **FAST) as servo:  # type: ignore[arg-type]
        proxy = track(LagProxy("127.0.0.1", servo.port).start())
        client, server_events, client_events = join(servo, proxy.port)
        old_id = client.id
        handle = server_events.items[0].client
        proxy.close()
        try:
            client_events.wait(Reconnecting)
            (left,) = server_events.wait(Left, timeout=10)
            assert left.client is handle and left.code == "timeout"
            assert left.reason == "did not come back within the 0.5 s grace period"
            assert handle not in servo.clients
            handle.send(seq=1)  # to a client gone for good: dropped, never raises
            client.send(seq=1)  # kept for the resume, which will be refused: the client says so
            proxy = reopen(proxy, servo)
            (lost,) = client_events.wait(Disconnected)
            (_, fresh) = client_events.wait(Connected, 2)
            assert lost.code == "session_lost" and lost.rejected
            assert "could not resume" in lost.reason and "grace period" in lost.reason
            assert "joining again as a new client" in lost.reason
            assert "1 packet(s) sent while away may not have arrived" in lost.reason
            assert fresh.id != old_id and client.id == fresh.id and client.connected
            (_, rejoined) = server_events.wait(Joined, 2)
            assert rejoined.client is not handle and rejoined.client.id == fresh.id
            assert client_events.names() == ["Connected", "Reconnecting", "Disconnected", "Connected"]
            assert server_events.names() == ["Joined", "Dropped", "Left", "Joined"]
            # The fresh session is a real one: it resumes too.
            proxy.disconnect_all()
            client_events.wait(Reconnected)
            server_events.wait(Resumed)
            assert client.id == fresh.id
        finally:
            client.close()
            proxy.close()


def test_without_reconnect_a_drop_is_final(no_leaks: None, servo: Servo) -> None:
    with LagProxy("127.0.0.1", servo.port) as proxy:
        client, server_events, client_events = join(servo, proxy.port, reconnect=False)
        assert client._io.session is None  # it did not ask for one
        proxy.disconnect_all()
        (gone,) = client_events.wait(Disconnected)
        assert gone.code == "lost" and not gone.rejected
        (left,) = server_events.wait(Left)  # no seat held: the client will not come back
        assert left.code == "lost"
        wait_until(client._io.finished.is_set, 5, "the client to finish")
        wait_until(lambda: not client._io.thread.is_alive(), 5, "its thread to end")
        assert proxy.connections == []  # no new connection was ever attempted
        assert not client.reconnecting and not client.connected
        assert client_events.names() == ["Connected", "Disconnected"]
        assert server_events.names() == ["Joined", "Left"]
        client.close()


def test_a_servo_with_grace_0_gives_no_session(no_leaks: None) -> None:
    with Servo("127.0.0.1", 0, grace=0, **FAST) as servo, LagProxy("127.0.0.1", servo.port) as proxy:  # type: ignore[arg-type]
        client, server_events, client_events = join(servo, proxy.port)
        assert client._io.session is None
        proxy.disconnect_all()
        (gone,) = client_events.wait(Disconnected)
        (left,) = server_events.wait(Left)
        assert gone.code == left.code == "lost"
        wait_until(client._io.finished.is_set, 5, "the client to finish")
        assert proxy.connections == [] and client_events.names() == ["Connected", "Disconnected"]
        client.close()


def test_server_overflow_while_away_lets_the_seat_go_and_the_client_joins_afresh(no_leaks: None) -> None:
    limit = 64 * 1024
    with Servo("127.0.0.1", 0, resume_buffer=limit, **FAST) as servo:  # type: ignore[arg-type]
        proxy = track(LagProxy("127.0.0.1", servo.port).start())
        client, server_events, client_events = join(servo, proxy.port)
        handle = server_events.items[0].client
        proxy.close()
        try:
            server_events.wait(Dropped)
            for i in range(20):
                handle.send(seq=i, pad=b"x" * 4096)  # 80 KiB for an away client: more than it may keep
            # The seat stays held: only the client's resume request can tell whether it needs what was let go.
            assert server_events.names() == ["Joined", "Dropped"] and servo.clients == [handle]
            proxy = reopen(proxy, servo)
            (left,) = server_events.wait(Left)
            assert left.client is handle and left.code == "send_queue_full"
            assert left.reason.startswith("could not resume: ")  # decided by the resume, not before it
            assert f"more than {limit} bytes were queued" in left.reason and "resume_buffer" in left.reason
            (lost,) = client_events.wait(Disconnected)
            assert lost.code == "session_lost" and lost.rejected and "resume_buffer" in lost.reason
            (_, fresh) = client_events.wait(Connected, 2)
            assert fresh.id != handle.id
            server_events.wait(Joined, 2)
            assert server_events.names() == ["Joined", "Dropped", "Left", "Joined"]
        finally:
            client.close()
            proxy.close()


def test_client_overflow_while_away_is_refused_and_the_client_joins_afresh(
    no_leaks: None, servo: Servo
) -> None:
    limit = 64 * 1024
    proxy = track(LagProxy("127.0.0.1", servo.port).start())
    client, server_events, client_events = join(servo, proxy.port, resume_buffer=limit)
    handle = server_events.items[0].client
    proxy.close()
    try:
        client_events.wait(Reconnecting)
        server_events.wait(Dropped)
        for i in range(20):
            client.send(seq=i, pad=b"x" * 4096)  # more than the client may keep
        wait_until(lambda: client._io.session is not None and client._io.session.overflowed, 5)
        proxy = reopen(proxy, servo)
        (lost,) = client_events.wait(Disconnected)
        assert lost.code == "session_lost" and lost.rejected
        assert "resume_buffer" in lost.reason and "may not have arrived" in lost.reason
        (left,) = server_events.wait(Left)
        assert left.client is handle and "could not resume" in left.reason and "resume_buffer" in left.reason
        (_, fresh) = client_events.wait(Connected, 2)
        assert fresh.id != handle.id
    finally:
        client.close()
        proxy.close()


def test_resume_from_another_source_address(no_leaks: None, servo: Servo) -> None:
    events = Events(servo)
    with RawClient(servo.port, source="127.0.0.1", name="laptop") as wifi:
        wifi.until(lambda: wifi.welcomed, what="the WELCOME")
        session = wifi.conn.session
        assert session is not None
        (joined,) = events.wait(Joined)
        handle = joined.client
        assert (handle.ip, handle.port) == ("127.0.0.1", wifi.sock.getsockname()[1])
        wifi.send(seq=1)
        handle.send(seq=1)
        wifi.until(lambda: wifi.packets)
        wait_until(lambda: events.poll() is not None and events.seqs == [1], 5, "the first packet")
        wifi.reset()
    events.wait(Dropped)
    handle.send(seq=2)
    with RawClient(servo.port, source="127.0.0.2", session=session, name="laptop") as cable:
        cable.send(seq=2)
        cable.until(lambda: cable.welcomed, what="the resumed WELCOME")
        assert cable.welcomed == type(cable.welcomed)(handle.id, resumed=True)
        (resumed,) = events.wait(Resumed)
        assert resumed.client is handle and handle.connected
        assert (handle.ip, handle.port) == ("127.0.0.2", cable.sock.getsockname()[1])
        cable.until(lambda: [p["seq"] for p in cable.packets] == [2], what="the packet sent while away")
        wait_until(lambda: events.poll() is not None and events.seqs == [1, 2], 5, "both packets")
        assert events.names() == ["Joined", "Dropped", "Resumed"]


def test_resume_while_the_old_connection_is_half_open(no_leaks: None) -> None:
    # The server's timeout is long, the client's short: when the old connection's traffic is held, the
    # client gives up on it and reconnects while the server still thinks it is alive.
    with (
        Servo("127.0.0.1", 0, ping_interval=0.2, timeout=30.0) as servo,
        LagProxy("127.0.0.1", servo.port) as proxy,
    ):
        client, server_events, client_events = join(servo, proxy.port, ping_interval=0.1, timeout=0.5)
        handle = server_events.items[0].client
        (old,) = proxy.connections
        old.stall(60.0)  # this connection only, both ways, and nothing is closed: half-open
        for i in range(1, 11):
            client.send(seq=i)
            handle.send(seq=i)
        client_events.wait(Reconnecting)
        client_events.wait(Reconnected)
        (resumed,) = server_events.wait(Resumed)
        assert resumed.client is handle and handle.connected
        wait_until(
            lambda: (
                server_events.poll() is not None
                and client_events.poll() is not None
                and len(server_events.seqs) >= 10
                and len(client_events.seqs) >= 10
            ),
            10,
        )
        assert server_events.seqs == list(range(1, 11)) and client_events.seqs == list(range(1, 11))
        # The new connection won; the old one was closed by the server, and nobody left.
        wait_until(lambda: len(servo._io.peers) == 1, 5, "the old connection to be closed")
        assert not [e for e in server_events.items if isinstance(e, Left)]
        # The server never saw the old connection fail: it hears of the drop when the resume replaces it.
        assert server_events.names() == ["Joined", "Dropped", "Resumed"]
        assert "before this end noticed" in server_events.items[1].reason
        assert handle in servo.clients and len(servo.clients) == 1
        client.close()


def test_password_and_app_apply_to_resumes(no_leaks: None) -> None:
    with Servo("127.0.0.1", 0, password="pw", app="hockey", **FAST) as servo:  # type: ignore[arg-type]
        proxy = track(LagProxy("127.0.0.1", servo.port).start())
        client, server_events, client_events = join(servo, proxy.port, password="pw", app="hockey")
        handle = server_events.items[0].client
        proxy.close()
        try:
            client_events.wait(Reconnecting)
            server_events.wait(Dropped)
            session = client._io.session
            assert session is not None
            for settings, code in [
                ({"password": "wrong", "app": "hockey"}, "password"),
                ({"password": None, "app": "hockey"}, "password"),
                ({"password": "pw", "app": "chess"}, "app"),
            ]:
                with RawClient(servo.port, session=copy_session(session), **settings) as thief:
                    thief.until(lambda t=thief: t.closed, what="the refusal")  # type: ignore[misc]
                    closed = thief.closed
                    assert isinstance(closed, Closed) and closed.rejected and closed.code == code
            proxy = reopen(proxy, servo)
            client_events.wait(Reconnected)
            (resumed,) = server_events.wait(Resumed)
            assert resumed.client is handle and client.id == handle.id
        finally:
            client.close()
            proxy.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_tls_resume(ca: trustme.CA, no_leaks: None) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with (
        Servo("127.0.0.1", 0, ssl_context=server_ctx, **FAST) as servo,  # type: ignore[arg-type]
        LagProxy("127.0.0.1", servo.port) as proxy,
    ):
        client, server_events, client_events = join(
            servo, proxy.port, ssl_context=client_ctx, server_hostname="localhost"
        )
        handle = server_events.items[0].client
        for i in range(1, 11):
            client.send(seq=i)
            handle.send(seq=i)
        proxy.disconnect_all()
        for i in range(11, 21):
            client.send(seq=i)
            handle.send(seq=i)
        client_events.wait(Reconnected)
        server_events.wait(Resumed)
        assert isinstance(client._io.peer.sock, ssl.SSLSocket)  # type: ignore[union-attr]
        wait_until(
            lambda: (
                server_events.poll() is not None
                and client_events.poll() is not None
                and len(server_events.seqs) >= 20
                and len(client_events.seqs) >= 20
            ),
            10,
        )
        assert server_events.seqs == list(range(1, 21)) and client_events.seqs == list(range(1, 21))
        assert client.id == handle.id
        client.close()


def test_a_restarted_server_does_not_know_the_session(no_leaks: None) -> None:
    first = track(Servo("127.0.0.1", 0, **FAST))  # type: ignore[arg-type]
    proxy = track(LagProxy("127.0.0.1", first.port).start())
    second: Servo | None = None
    client, first_events, client_events = join(first, proxy.port)
    old_id = client.id
    try:
        proxy.close()  # the link drops: the client starts reconnecting...
        client_events.wait(Reconnecting)
        first_events.wait(Dropped)
        first.close()  # ...and the server it had is gone; another one takes its place behind the relay
        second = track(Servo("127.0.0.1", 0, **FAST))  # type: ignore[arg-type]
        second.get()
        second.get()
        second_events = Events(second)
        for _ in range(3):  # ids start again at 1 on a new server: make the fresh id differ from the old
            second._io.next_id += 1
        proxy = track(LagProxy("127.0.0.1", second.port, listen_port=proxy.port).start())
        (lost,) = client_events.wait(Disconnected)
        assert lost.code == "session_lost" and lost.rejected
        assert "does not know this session" in lost.reason
        (_, fresh) = client_events.wait(Connected, 2)
        (joined,) = second_events.wait(Joined)
        assert fresh.id == joined.client.id == client.id != old_id
    finally:
        client.close()
        proxy.close()
        first.close()
        if second is not None:
            second.close()


# -- what a review found: each of these failed before its fix ---------------------------------------------


def test_held_seats_are_capped_per_address(no_leaks: None) -> None:
    # A held seat costs no socket: without a cap one address could hold any number of them (and their
    # replay buffers), and fill max_clients for everyone else.
    with Servo("127.0.0.1", 0, max_held_sessions_per_ip=1, **FAST) as servo:  # type: ignore[arg-type]
        proxy = track(LagProxy("127.0.0.1", servo.port).start())
        first, server_events, _ = join(servo, proxy.port)
        second = track(Sprocket("127.0.0.1", proxy.port, **FAST)).wait_connected(5)  # type: ignore[arg-type]
        server_events.wait(Joined, 2)
        proxy.close()  # both drop; only one seat from 127.0.0.1 may be held
        (dropped,) = server_events.wait(Dropped)
        (left,) = server_events.wait(Left)
        assert left.client is not dropped.client and left.code == "lost"
        assert "its seat was not held" in left.reason and "from 127.0.0.1" in left.reason
        assert servo.clients == [dropped.client]
        first.close()
        second.close()


def test_a_resumed_client_replays_a_burst_without_breaking_the_packet_rate(no_leaks: None) -> None:
    # What a client sent while away is owed, not a flood: 60 packets replayed at once to a server that
    # allows 10 per second must not get it disconnected.
    with Servo("127.0.0.1", 0, max_packets_per_second=10, **FAST) as servo:  # type: ignore[arg-type]
        proxy = track(LagProxy("127.0.0.1", servo.port).start())
        client, server_events, client_events = join(servo, proxy.port)
        proxy.close()
        client_events.wait(Reconnecting)
        for seq in range(60):
            client.send(seq=seq)
        proxy = reopen(proxy, servo)
        client_events.wait(Reconnected)
        wait_until(lambda: (server_events.poll(), len(server_events.seqs) >= 60)[1], 10, "the replay")
        assert server_events.seqs == list(range(60))
        assert server_events.names() == ["Joined", "Dropped", "Resumed"]


def test_a_client_kicked_while_away_is_refused_and_stays_out(no_leaks: None, servo: Servo) -> None:
    proxy = track(LagProxy("127.0.0.1", servo.port).start())
    client, server_events, client_events = join(servo, proxy.port)
    proxy.close()
    (dropped,) = server_events.wait(Dropped)
    dropped.client.kick("cheating")
    (left,) = server_events.wait(Left)
    assert left.code == "kicked" and "cheating" in left.reason
    proxy = reopen(proxy, servo)
    (gone,) = client_events.wait(Disconnected)
    assert gone.rejected and gone.code == "rejected" and "cheating" in gone.reason
    wait_until(client._io.finished.is_set, 5, "the client to stop")
    assert client_events.names() == ["Connected", "Reconnecting", "Disconnected"]  # no fresh join
    assert server_events.names() == ["Joined", "Dropped", "Left"]


def test_a_packet_over_an_away_clients_limit_ends_its_session(no_leaks: None, servo: Servo) -> None:
    # On an open connection such a packet closes it with "limit"; kept for later it would break the resume.
    proxy = track(LagProxy("127.0.0.1", servo.port).start())
    _client, server_events, client_events = join(servo, proxy.port, max_packet_size=2048)
    proxy.close()
    (dropped,) = server_events.wait(Dropped)
    dropped.client.send(seq=1, pad=b"x" * 4000)
    (left,) = server_events.wait(Left)
    assert left.code == "limit" and "over its max_packet_size (2048)" in left.reason
    proxy = reopen(proxy, servo)
    (lost,) = client_events.wait(Disconnected)
    assert lost.code == "session_lost"
    client_events.wait(Connected, 2)  # it joins afresh, as after any lost session
