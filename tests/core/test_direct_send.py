"""Sends written from the caller's thread (``IOThread.send_now``) keep every guarantee of the queued path.

A ``send()`` goes straight from the user's thread to the socket when the I/O thread is not busy, nothing
is queued before it and the connection is open with nothing older unwritten; otherwise it is queued for
the I/O thread as before.  Both paths must count and record the frame in the session the same way (for
resumes) and keep the order of one thread's sends, whichever path each took.  And ``get()`` on an empty
inbox releases the GIL for a moment, so a caller polling it with no sleep lets the I/O thread deliver.

White-box where it must be: ``_last_send`` is reset so that the next send may take the direct path (it
is taken only after a quiet moment, ``DIRECT_SEND_GAP``), and the I/O thread's lock is held to force the
queued path.
"""

from __future__ import annotations

from typing import Any

import pytest

import sprocket.endpoint
from sprocket import Servo, Sprocket
from sprocket.testing import LagProxy
from tests.conftest import collect, seqs_until_disconnected, wait_until

pytestmark = pytest.mark.timeout(60)


def seqs(packets: list[Any]) -> list[int]:
    return [p["seq"] for p in packets]


def test_one_threads_sends_keep_their_order_across_both_paths(pair: tuple[Servo, Sprocket]) -> None:
    # Every third send may go direct while earlier ones may still wait in the outbox (the I/O thread
    # drains it concurrently); a direct send that overtook them would arrive out of order.
    servo, client = pair
    io = client._io
    n = 6000
    for i in range(n):
        if i % 3 == 0:
            io._last_send = 0.0
        client.send(seq=i)
    assert seqs(collect(servo, n, timeout=20)) == list(range(n))
    (handle,) = servo.clients
    for i in range(n):  # the same, the other way
        if i % 3 == 0:
            handle._io._last_send = 0.0
        handle.send(seq=i)
    assert seqs(collect(client, n, timeout=20)) == list(range(n))


def test_direct_sends_are_counted_and_recorded_in_the_session(pair: tuple[Servo, Sprocket]) -> None:
    servo, client = pair
    io = client._io
    session = io.session
    assert session is not None
    sent_before, out_before = session.sent, io.stats["packets_out"]
    direct = 0
    for i in range(200):
        wait_until(lambda: not io.outbox, 5, "the outbox to drain")
        io._last_send = 0.0
        woken = io._wake_pending
        client.send(seq=i)
        direct += not io.outbox and io._wake_pending == woken  # went straight out: nothing queued, no wake
    assert direct > 0, "no send took the direct path"
    assert seqs(collect(servo, 200)) == list(range(200))
    # Counted and kept for replay exactly as sends from the I/O thread are: 200 frames, until acknowledged.
    assert session.sent - sent_before == 200
    assert io.stats["packets_out"] - out_before == 200
    assert len(session.frames) == session.sent - session.base


def test_a_queued_send_is_not_overtaken_by_a_later_direct_one(pair: tuple[Servo, Sprocket]) -> None:
    servo, client = pair
    io = client._io
    with io.lock:  # the I/O thread is "busy": these are queued
        for i in range(50):
            client.send(seq=i)
        queued = len(io.outbox)
    assert queued == 50
    io._last_send = 0.0
    client.send(seq=50)  # the outbox may not be drained yet: this one must wait its turn
    assert seqs(collect(servo, 51)) == list(range(51))


def test_direct_sends_are_replayed_after_a_drop(proxied_pair: tuple[Servo, LagProxy, Sprocket]) -> None:
    # Frames written from the user's thread just before a cut are in the replay buffer like any other:
    # after the resume each side has every packet exactly once, in order.
    servo, proxy, client = proxied_pair
    got: list[int] = []
    for round_ in range(3):
        for i in range(100):
            client._io._last_send = 0.0
            client.send(seq=round_ * 100 + i)
        proxy.disconnect_all()
        wait_until(lambda: client.reconnecting or client.connected, 5, "the drop or the resume")
        wait_until(lambda: client.connected, 10, "the resume")
    for i in range(300, 310):
        client.send(seq=i)

    def all_in() -> bool:
        got.extend(seqs([p for p in servo.get() if "seq" in p]))
        return len(got) >= 310

    wait_until(all_in, 15, "every packet after the resumes")
    assert got == list(range(310))


def test_get_releases_the_gil_when_polled_busily_and_nothing_came(
    pair: tuple[Servo, Sprocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    servo, client = pair
    calls: list[float] = []
    now = [100.0]
    monkeypatch.setattr(sprocket.endpoint, "_release_gil", calls.append)
    monkeypatch.setattr(sprocket.endpoint, "_clock", lambda: now[0])
    assert client.get() == []
    assert calls == []  # the first empty poll: maybe a game loop's, which polls once a frame
    now[0] += 0.016
    assert client.get() == []
    assert calls == []  # a frame later: still not busy polling
    now[0] += 1e-6
    with client._io.lock:  # the I/O thread busy (idle, get() reads the socket itself: test_busy_poll.py)
        assert client.get() == []
    assert calls == [0]  # polled again at once: let the I/O thread have the GIL
    calls.clear()
    servo.sendall(seq=2)
    wait_until(lambda: len(client._io.inbox) == 1, 5, "the packet to wait in the inbox")
    now[0] += 1e-6
    assert seqs(client.get()) == [2]
    assert calls == []  # not when it returns packets


def test_direct_and_queued_writes_never_interleave(pair: tuple[Servo, Sprocket]) -> None:
    # Big frames, half of them allowed to go direct: the socket's buffer fills, the I/O thread writes
    # leftovers and queued frames while the user's thread tries to write its own.  Were they not serialised
    # by the lock (and a direct write refused while older bytes wait), a frame would land inside another.
    servo, client = pair
    io = client._io
    n = 3000
    blob = "x" * 4000
    got: list[int] = []
    for i in range(n):
        if i % 2:
            io._last_send = 0.0
        client.send(seq=i, blob=blob)
        if i % 100 == 0:
            got.extend(seqs(servo.get()))

    def done() -> bool:
        got.extend(seqs(servo.get()))
        return len(got) >= n or not servo.clients

    wait_until(done, 30, "every packet")
    assert got == list(range(n))
    assert client.connected, client.error


def test_a_run_of_queued_sends_stops_at_a_frame_over_the_peers_limit(no_leaks: None) -> None:
    # Queued sends to one client are drained as a run (Connection.send_payloads): one over the limit the
    # client announced ends the connection with code "limit" there, as send_data does for a single one;
    # the frames before it are delivered, none after it.
    with Servo("127.0.0.1", 0) as servo, Sprocket("127.0.0.1", servo.port, max_packet_size=1024) as client:
        client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and servo.clients, 5, "the client to join")
        (handle,) = servo.clients
        with servo._io.lock:  # the I/O thread is "busy": all of these are queued, then drained together
            for i in range(10):
                handle.send(seq=i)
            handle.send(seq=10, blob="x" * 2000)
            for i in range(11, 20):
                handle.send(seq=i)
        got, end = seqs_until_disconnected(client, "the client to be disconnected")
        assert got == list(range(10))
        assert end.code == "limit", end
