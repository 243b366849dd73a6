"""Broadcasts written from the caller's thread (``IOThread.broadcast_now``) keep every guarantee of the
queued path.

``Servo.sendall()`` goes straight from the user's thread to the sockets when the I/O thread is not busy,
nothing is queued before it, no session is away and every target is in the plain state (open, the frame
within its limit, nothing queued in its Connection, room in its write buffer); otherwise the whole
broadcast is queued for the I/O thread as before.  Both paths must count and record the frame in every
session the same way (for resumes), keep the order of one thread's sends and broadcasts whichever path
each took, and leave a frame over one client's limit to the I/O thread, which ends that connection.

White-box where it must be: ``_last_broadcast`` is reset so that the next broadcast may take the direct
path (it is taken only after a quiet moment, ``DIRECT_SEND_GAP``), and the I/O thread's lock is held to
force the queued path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sprocket import Servo, Sprocket
from sprocket.testing import LagProxy
from tests.conftest import collect, seqs_until_disconnected, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def trio(no_leaks: None) -> Iterator[tuple[Servo, list[Sprocket]]]:
    with (
        Servo("127.0.0.1", 0) as servo,
        Sprocket("127.0.0.1", servo.port) as one,
        Sprocket("127.0.0.1", servo.port) as two,
    ):
        for client in (one, two):
            client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and len(servo.clients) == 2, 5, "the clients to join")
        yield servo, [one, two]


def seqs(packets: list[Any]) -> list[int]:
    return [p["seq"] for p in packets]


def test_direct_broadcasts_are_counted_and_recorded_in_every_session(
    trio: tuple[Servo, list[Sprocket]],
) -> None:
    servo, clients = trio
    io = servo._io
    sessions = [handle._peer.conn.session for handle in servo.clients]
    assert all(s is not None for s in sessions)
    sent_before = [s.sent for s in sessions]
    out_before = io.stats["packets_out"]
    direct = 0
    for i in range(100):
        wait_until(lambda: not io.outbox, 5, "the outbox to drain")
        io._last_broadcast = 0.0
        woken = io._wake_pending
        servo.sendall(seq=i)
        direct += not io.outbox and io._wake_pending == woken  # went straight out: nothing queued, no wake
    assert direct > 0, "no broadcast took the direct path"
    for client in clients:
        assert seqs(collect(client, 100)) == list(range(100))
    # Counted and kept for replay exactly as broadcasts from the I/O thread are: 100 frames per client.
    assert [s.sent - before for s, before in zip(sessions, sent_before, strict=True)] == [100, 100]
    assert io.stats["packets_out"] - out_before == 200
    assert all(len(s.frames) == s.sent - s.base for s in sessions)


def test_sends_and_broadcasts_keep_their_order_across_both_paths(trio: tuple[Servo, list[Sprocket]]) -> None:
    # Single sends and broadcasts, some forced into the queue (the lock held), some allowed to go direct
    # while older items may still wait in the outbox: a direct one that overtook them would arrive early.
    servo, clients = trio
    io = servo._io
    by_id = {handle.id: handle for handle in servo.clients}
    handles = [by_id[client.id] for client in clients]  # in the order of `clients`, not of joining
    n = 3000
    for i in range(n):
        if i % 7 == 0:
            with io.lock:
                servo.sendall(seq=i)
        elif i % 3 == 0:
            handles[i % 2].send(seq=i)
            io._last_send = 0.0
        else:
            io._last_broadcast = 0.0
            servo.sendall(seq=i)
    for client, handle in zip(clients, handles, strict=True):
        expected = [i for i in range(n) if i % 7 == 0 or i % 3 or handles[i % 2] is handle]
        assert seqs(collect(client, len(expected), timeout=20)) == expected


def test_direct_and_queued_writes_never_interleave(no_leaks: None) -> None:
    # Big frames, half of them allowed to go direct, to clients that stop reading while their small inbox
    # is full: the sockets' buffers fill, sends are partial, the I/O thread writes leftovers while the
    # user's thread broadcasts more.  A direct write while older bytes wait, or a leftover lost, would put
    # a frame inside another (a protocol error) or lose one.
    with (
        Servo("127.0.0.1", 0) as servo,
        Sprocket("127.0.0.1", servo.port, max_inbox_bytes=64 * 1024) as one,
        Sprocket("127.0.0.1", servo.port, max_inbox_bytes=64 * 1024) as two,
    ):
        clients = [one, two]
        for client in clients:
            client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and len(servo.clients) == 2, 5, "the clients to join")
        _interleave(servo, clients)


def _interleave(servo: Servo, clients: list[Sprocket]) -> None:
    io = servo._io
    n = 1000
    blob = "x" * 20000
    got: list[list[int]] = [[], []]

    def caught_up(count: int) -> bool:
        for client, seen in zip(clients, got, strict=True):
            seen.extend(seqs(client.get()))
        return all(len(seen) >= count for seen in got) or not all(c.connected for c in clients)

    direct = 0
    for i in range(n):
        if i % 2:
            wait_until(lambda: not io.outbox, 5, "the outbox to drain")  # else it would be queued anyway
            io._last_broadcast = 0.0
        servo.sendall(seq=i, blob=blob)
        direct += not io.outbox
        if i % 250 == 249:  # 5 MB each: more than the sockets and inboxes hold, less than max_send_queue
            wait_until(lambda i=i: caught_up(i + 1), 20, "the clients to keep up")
    wait_until(lambda: caught_up(n), 20, "every packet")
    assert got == [list(range(n)), list(range(n))], [c.error for c in clients]
    assert direct > 0, "no broadcast took the direct path"


def test_a_broadcast_over_one_clients_limit_ends_only_that_connection(no_leaks: None) -> None:
    # The direct path checks every target first: a frame over the limit one client announced leaves the
    # broadcast to the I/O thread, which ends that connection with code "limit"; the other gets it.
    with (
        Servo("127.0.0.1", 0) as servo,
        Sprocket("127.0.0.1", servo.port, max_packet_size=1024) as small,
        Sprocket("127.0.0.1", servo.port) as big,
    ):
        for client in (small, big):
            client.wait_connected(5)
        wait_until(lambda: servo.get() == [] and len(servo.clients) == 2, 5, "the clients to join")
        for i in range(5):
            servo._io._last_broadcast = 0.0
            servo.sendall(seq=i)
        servo._io._last_broadcast = 0.0
        servo.sendall(seq=5, blob="x" * 2000)
        assert seqs(collect(big, 6)) == list(range(6))
        got, end = seqs_until_disconnected(small, "the small client to be disconnected")
        assert got == list(range(5))
        assert end.code == "limit", end


def test_direct_broadcasts_are_replayed_after_a_drop(proxied_pair: tuple[Servo, LagProxy, Sprocket]) -> None:
    # Broadcasts written from the user's thread just before a cut are in the replay buffer like any other
    # (and those made while the client is away are kept for it): after the resume the client has every
    # packet exactly once, in order.
    servo, proxy, client = proxied_pair
    got: list[int] = []

    def take() -> None:
        got.extend(seqs([p for p in client.get() if "seq" in p]))

    for round_ in range(3):
        for i in range(100):
            servo._io._last_broadcast = 0.0
            servo.sendall(seq=round_ * 100 + i)
        proxy.disconnect_all()
        wait_until(lambda: client.reconnecting or client.connected, 5, "the drop or the resume")
        servo.sendall(seq=round_ * 100 + 100 - 1000)  # made while (maybe) away: kept, delivered
        wait_until(lambda: client.connected, 10, "the resume")
        take()
    for i in range(300, 310):
        servo.sendall(seq=i)

    def all_in() -> bool:
        take()
        return len(got) >= 313

    wait_until(all_in, 15, "every packet after the resumes")
    expected: list[int] = []
    for round_ in range(3):
        expected += [*range(round_ * 100, round_ * 100 + 100), round_ * 100 + 100 - 1000]
    assert got == expected + list(range(300, 310))
