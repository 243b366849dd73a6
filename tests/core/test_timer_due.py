"""``Connection.due``: the I/O thread's housekeeping skips ``tick()`` for a connection until then, so it must
never be later than a timer (in memory, a fake clock).

Two server Connections are fed the same bytes at the same times: one is ticked at every step, the other
only once ``now >= due`` (as ``IOThread._housekeeping`` does).  Whatever the schedule (data, frames left
partial, silences, heartbeats faster or slower than the timeout), both must say the same bytes, raise the
same events and end in the same state, at the same moments.
"""

from __future__ import annotations

import random

import pytest

from sprocket.protocol import Connection, HelloReceived, data_frame
from sprocket.settings import Settings

pytestmark = pytest.mark.timeout(60)

NONCE = bytes(range(16))


def _frames(rng: random.Random, n: int) -> bytes:
    return b"".join(data_frame(b"\x81\xa1x" + bytes([rng.randrange(128)])) for _ in range(n))


@pytest.mark.parametrize("seed", range(40))
def test_ticking_only_when_due_changes_nothing(seed: int) -> None:
    rng = random.Random(seed)
    ping, timeout = rng.choice([(0.5, 3.0), (2.0, 1.0), (1.0, 1.0), (0.3, 0.8)])
    settings = Settings(ping_interval=ping, timeout=timeout, handshake_timeout=2.0)
    now = 100.0
    every = Connection("server", now, settings, nonce=NONCE)  # ticked at every step
    lazy = Connection("server", now, settings, nonce=NONCE)  # ticked only when due
    client = Connection("client", now, Settings(ping_interval=60.0, timeout=60.0))
    assert lazy.due <= now + settings.handshake_timeout

    def step(feed: bytes) -> None:
        if feed:
            every.receive_data(feed, now)
            lazy.receive_data(feed, now)
        every.tick(now)
        if now >= lazy.due:
            lazy.tick(now)
        said = every.data_to_send()
        assert lazy.data_to_send() == said, f"at {now - 100:.3f} s"
        assert lazy.events() == every.events()
        assert lazy.state == every.state
        if said and not client.closed:
            client.receive_data(said, now)

    # The handshake, maybe slow enough to time out.
    now += rng.choice([0.0, 0.5, 2.5])
    client.receive_data(every.data_to_send(), now)
    lazy.data_to_send()
    step(client.data_to_send())
    if every.closed:
        return
    if not every._deciding:
        return
    every.accept(7, now)
    lazy.accept(7, now)
    assert lazy.data_to_send() == every.data_to_send()
    pending = b""
    for _ in range(200):
        now += rng.choice([0.0, 0.01, 0.05, 0.2, 0.4, 0.9, 1.5])
        roll = rng.random()
        if pending and roll < 0.3:  # more of a frame left partial: maybe still not all of it
            cut = rng.randrange(1, len(pending) + 1)
            feed, pending = pending[:cut], pending[cut:]
        elif roll < 0.5:
            data = _frames(rng, rng.randint(1, 3))
            cut = rng.randrange(1, len(data)) if rng.random() < 0.4 else len(data)
            feed, pending = pending + data[:cut], data[cut:]
        else:
            feed = b""
        step(feed)
        if every.closed:
            break


def test_due_follows_each_timer() -> None:
    settings = Settings(ping_interval=2.0, timeout=1.0, handshake_timeout=5.0)
    conn = Connection("server", 100.0, settings, nonce=NONCE)
    assert conn.due == 105.0  # the handshake deadline
    client = Connection("client", 100.0)
    client.receive_data(conn.data_to_send(), 100.0)
    conn.receive_data(client.data_to_send(), 100.0)
    assert isinstance(conn.events()[0], HelloReceived)
    conn.accept(7, 100.0)
    assert conn.due == 100.0  # open: tick at once to set the heartbeat's time
    conn.tick(100.0)
    assert conn.due == 101.0  # the silence timeout (1 s) comes before the heartbeat (2 s)
    conn.receive_data(data_frame(b"\x80")[:3], 100.5)  # a frame left partial
    conn.tick(100.6)
    assert conn.due == 101.5
    conn.receive_data(data_frame(b"\x80")[3:], 100.7)
    conn.tick(100.8)
    assert conn.due == 101.7
