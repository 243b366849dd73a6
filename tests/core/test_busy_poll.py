"""A loop polling ``get()`` busily reads the socket itself (``IOThread.read_now``) and loses nothing.

When ``get()`` finds nothing and was polled again at once (within ``BUSY_POLL_GAP``), it reads the
Sprocket's socket from the user's thread if the I/O thread is idle in ``select()`` (its lock is free),
through the I/O thread's own read path.  The two readers are serialised by the lock, so every packet
arrives once and in order whichever thread read it; anything more than packets read that way (a drop)
wakes the I/O thread, whose ``select()`` timeout was computed before.

White-box where it must be: the peer's socket is taken out of the I/O thread's selector (under its lock)
so that only the busy ``get()`` can read it, and ``HOUSEKEEPING_INTERVAL`` is raised so that only a
wake-up can end the I/O thread's ``select()``.
"""

from __future__ import annotations

import select
import time
from typing import Any

import pytest

import sprocket.endpoint
import sprocket.iothread
from sprocket import Servo, Sprocket
from sprocket.testing import LagProxy
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def seqs(packets: list[Any]) -> list[int]:
    return [p["seq"] for p in packets if "seq" in p]


def busy_collect(client: Sprocket, count: int, timeout: float = 20.0) -> list[int]:
    """Poll ``client.get()`` with no sleep at all until ``count`` packets came (or ``timeout``)."""
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(seqs(client.get()))
    return got


def hide_from_io_thread(client: Sprocket) -> None:
    """Take the client's socket out of its I/O thread's selector: only ``read_now`` can read it now."""
    io = client._io
    with io.lock:
        (peer,) = io.peers.values()
        io.selector.unregister(peer.sock)


def test_a_busy_get_reads_the_socket_itself_and_a_game_loops_get_does_not(
    pair: tuple[Servo, Sprocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    servo, client = pair
    hide_from_io_thread(client)
    (handle,) = servo.clients
    big = "x" * 100_000  # frames cut across reads (RECV_SIZE is 32 KiB)
    n = 600
    for i in range(n):
        if i % 50 == 25:
            handle.send(seq=i, blob=big)
        else:
            handle.send(seq=i)
    # A game loop polls once a frame: get() never reads the socket, so nothing can come.
    (peer,) = client._io.peers.values()
    readable, _, _ = select.select([peer.sock], [], [], 10)
    assert readable, "the packets did not reach the client's socket"
    now = [100.0]
    monkeypatch.setattr(sprocket.endpoint, "_clock", lambda: now[0])
    for _ in range(3):
        now[0] += 0.016
        assert client.get() == []
    monkeypatch.undo()
    assert busy_collect(client, n) == list(range(n))
    assert client.connected


def test_busy_polling_gets_every_packet_once_and_in_order_whichever_thread_read_it(
    pair: tuple[Servo, Sprocket],
) -> None:
    # Bursts and single packets while the client polls busily: reads race between the I/O thread and the
    # user's thread (the lock serialises them); a read outside the lock would cut frames in two.
    servo, client = pair
    (handle,) = servo.clients
    n = 20_000
    sent = 0
    got: list[int] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        if sent < n:
            burst = 1 if sent % 7 else 200
            for seq in range(sent, min(n, sent + burst)):
                handle.send(seq=seq, pad="y" * (seq % 300))
            sent = min(n, sent + burst)
        got.extend(seqs(client.get()))
    assert got == list(range(n))
    assert client.connected, client.error


def test_a_drop_read_by_a_busy_get_wakes_the_io_thread_to_reconnect(
    no_leaks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The busy get() reads the end of the connection: the drop schedules a reconnect attempt (a timer).
    # The I/O thread sits in a select() whose timeout it computed before (an hour, here): without a
    # wake-up it would never make the attempt.
    with (
        Servo("127.0.0.1", 0) as servo,
        LagProxy("127.0.0.1", servo.port).start() as proxy,
        Sprocket("127.0.0.1", proxy.port) as client,
    ):
        client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and servo.clients, 5, "the client to join")
        monkeypatch.setattr(sprocket.iothread, "HOUSEKEEPING_INTERVAL", 3600.0)
        io = client._io
        wait_until(lambda: io._next_housekeeping - time.monotonic() > 60, 5, "a long select() timeout")
        hide_from_io_thread(client)
        proxy.disconnect_all()
        deadline = time.monotonic() + 10
        while client.connected and time.monotonic() < deadline:
            client.get()
        assert not client.connected
        assert client.reconnecting
        wait_until(lambda: client.get() == [] and client.connected, 10, "the resume")
        (handle,) = servo.clients
        handle.send(seq=1)
        assert busy_collect(client, 1) == [1]


def test_a_busy_get_leaves_a_busy_io_thread_alone(
    pair: tuple[Servo, Sprocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The I/O thread holds its lock whenever it is not in select(): then get() only lets it have the GIL.
    _servo, client = pair
    calls: list[float] = []
    now = [100.0]
    monkeypatch.setattr(sprocket.endpoint, "_release_gil", calls.append)
    monkeypatch.setattr(sprocket.endpoint, "_clock", lambda: now[0])
    reads: list[bool] = []
    read_now = client._io.read_now
    monkeypatch.setattr(client._io, "read_now", lambda: reads.append(read_now()) or reads[-1])
    assert client.get() == []
    now[0] += 1e-6
    with client._io.lock:
        assert client.get() == []
    assert reads == [False]
    assert calls == [0]
    now[0] += 1e-6
    assert client.get() == []
    assert reads == [False, True]  # idle in select(): read here (its recv() released the GIL)
    assert calls == [0]


def test_endpoints_polled_in_turn_leave_the_reading_to_their_io_threads(
    no_leaks: None, servo: Servo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A host of client bots polls each Sprocket in turn: reading there would cost each packet the I/O
    # thread's (then useless) wake-up as well.  Only a loop polling one endpoint alone reads itself.
    with Sprocket("127.0.0.1", servo.port) as a, Sprocket("127.0.0.1", servo.port) as b:
        a.wait_connected(5)
        b.wait_connected(5)
        wait_until(lambda: servo.get() == [] and len(servo.clients) == 2, 5, "both clients to join")
        for client in (a, b):
            hide_from_io_thread(client)
        servo.sendall(seq=1)
        for client in (a, b):
            (peer,) = client._io.peers.values()
            readable, _, _ = select.select([peer.sock], [], [], 10)
            assert readable, "the packet did not reach the client's socket"
        now = [100.0]
        monkeypatch.setattr(sprocket.endpoint, "_clock", lambda: now[0])
        for _ in range(5):
            for client in (a, b):
                now[0] += 1e-6
                assert client.get() == []
        now[0] += 1e-6
        assert a.get() == []  # the last poll that found nothing was b's
        now[0] += 1e-6
        assert seqs(a.get()) == [1]  # a alone, polled again at once: read here


def test_a_bug_in_a_read_by_a_busy_get_drops_the_connection_instead_of_raising(
    pair: tuple[Servo, Sprocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the I/O thread's loop: logged, that connection dropped; get() raises only SprocketErrors.
    servo, client = pair
    hide_from_io_thread(client)
    (peer,) = client._io.peers.values()

    def broken(data: bytes, now: float) -> None:
        raise RuntimeError("planted")

    monkeypatch.setattr(peer.conn, "receive_data", broken)
    (handle,) = servo.clients
    handle.send(seq=1)
    deadline = time.monotonic() + 10
    while client.connected and time.monotonic() < deadline:
        client.get()
    assert not client.connected
