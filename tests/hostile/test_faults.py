"""Faults: processes killed mid-game, a network that goes silent, peers that stop reading, game loops
that stop calling get().  Real processes, real sockets, deadlines instead of sleeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sprocket import Disconnected, Dropped, Left, Packet, Reconnecting, Servo, Sprocket
from sprocket.codec import BYTES_FACTOR
from sprocket.iothread import RECV_SIZE
from sprocket.netsim import LagProxy
from tests.conftest import collect, wait_until
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import LegitGame, RawPeer, Sampler, child, pace, rss_bytes

pytestmark = pytest.mark.timeout(60)

PING, TIMEOUT = 0.1, 1.0
GRACE = 1.0  # a dropped client's seat is held this long (short, so the final leave comes within the test)


@pytest.fixture
def servo() -> Iterator[Servo]:
    server = Servo(
        "127.0.0.1", 0, ping_interval=PING, timeout=TIMEOUT, handshake_timeout=TIMEOUT, grace=GRACE
    )
    yield server
    server.close()


class SeeingDrops:
    """A Servo as LegitGame sees it, that also keeps the Dropped and Resumed records it hands out (the
    game's thread owns ``events()``; LegitGame itself keeps only joins and leaves)."""

    def __init__(self, servo: Servo) -> None:
        self.servo = servo
        self.port = servo.port
        self.dropped: list[Dropped] = []
        self.order: list[tuple[str, int]] = []  # (event name, client id) of every non-packet record

    def events(self) -> list[Any]:
        items = self.servo.events()
        for item in items:
            if type(item) is not Packet:
                self.order.append((type(item).__name__, item.client.id))
            if isinstance(item, Dropped):
                self.dropped.append(item)
        return items


def is_gap_free(seqs: list[int]) -> bool:
    return seqs == list(range(len(seqs)))


def test_client_process_killed_mid_game(no_leaks: None, servo: Servo, reliability: Reliability) -> None:
    # The killed client asked for a session (the default), so the server first holds its seat (Dropped),
    # and lets it go (Left, code timeout) only when the grace period ends without a resume.
    seeing = SeeingDrops(servo)
    with LegitGame(seeing) as game, child("client", str(servo.port), "60") as victim:
        victim_id = int(victim.wait_line("connected"))
        wait_until(lambda: len(game.others.get(victim_id, [])) >= 30, 5, "half a second of the victim's game")
        killed = time.monotonic()
        victim.kill()  # SIGKILL: no goodbye, no FIN from sprocket, just the kernel cleaning up
        wait_until(lambda: seeing.dropped, TIMEOUT + 5, "the drop")
        noticed = time.monotonic() - killed
        (left,) = game.wait_left(1, GRACE + TIMEOUT + 5)
        let_go = time.monotonic() - killed
        game.finish()
    (dropped,) = seeing.dropped
    assert dropped.client.id == victim_id and dropped.code in ("lost", "timeout")
    assert left.client is dropped.client and left.code == "timeout" and "grace period" in left.reason
    assert [e for e in seeing.order if e[1] == victim_id] == [
        ("Joined", victim_id), ("Dropped", victim_id), ("Left", victim_id)
    ]  # fmt: skip
    assert victim_id not in [c.id for c in servo.clients]
    assert is_gap_free(game.others[victim_id])  # everything it managed to send, in order
    game.assert_unharmed()
    reliability.record(
        "Faults",
        "Client process SIGKILLed mid-game",
        tried=f"a child process sending at 60 Hz killed after {len(game.others[victim_id])} packets; "
        f"heartbeat timeout {TIMEOUT:g} s, grace {GRACE:g} s",
        outcome=f"server reported the drop ({dropped.code}: {dropped.reason!r}) {noticed * 1000:.0f} ms "
        f"after the kill and the leave ({left.code}: {left.reason!r}) {let_go * 1000:.0f} ms after it; its "
        f"packets were a gap-free prefix; the other client carried on ({game.sent} packets)",
        noticed_ms=noticed * 1000,
        left_ms=let_go * 1000,
        code=dropped.code,
    )


def test_server_process_killed(no_leaks: None, reliability: Reliability) -> None:
    # Three players with reconnect=False end at once; a fourth (the default, reconnect=True) starts
    # getting its session back, says so, and keeps what it sends for the resume that will not come.
    with child("server", str(PING), str(TIMEOUT)) as server:
        port = int(server.wait_line("port"))
        players = [
            Sprocket("127.0.0.1", port, ping_interval=PING, timeout=TIMEOUT, reconnect=False)
            for _ in range(3)
        ]
        hopeful = Sprocket("127.0.0.1", port, ping_interval=PING, timeout=TIMEOUT)
        for p in [*players, hopeful]:
            p.wait_connected(5)
        for p in [*players, hopeful]:
            for i in range(20):
                p.send(seq=i)
        for p in [*players, hopeful]:
            assert [e["echo"] for e in collect(p, 20)] == list(range(20))
        hopeful_id = hopeful.id
        killed = time.monotonic()
        server.kill()
        seen: dict[int, Disconnected] = {}
        noticed: dict[int, float] = {}
        hopeful_saw: list[Any] = []

        def everyone_noticed() -> bool:
            for i, p in enumerate(players):
                for event in p.events():
                    if isinstance(event, Disconnected) and i not in seen:
                        seen[i], noticed[i] = event, time.monotonic() - killed
            hopeful_saw.extend(hopeful.events())
            return len(seen) == len(players) and bool(hopeful_saw)

        wait_until(everyone_noticed, TIMEOUT + 5, "every client to notice")
        for p in players:
            assert not p.connected and p.error and not p.reconnecting
            p.send(after="the end")  # never raises after the server is gone
            assert p.get() == []
            p.close()
        (reconnecting,) = hopeful_saw
        assert isinstance(reconnecting, Reconnecting) and reconnecting.code in ("lost", "timeout")
        assert hopeful.reconnecting and not hopeful.connected and hopeful.id == hopeful_id
        assert hopeful.error is not None and "reconnecting" in hopeful.error
        hopeful.send(meanwhile="kept for the resume")  # never raises while reconnecting
        assert hopeful.get() == []
        hopeful.close()  # ends the reconnecting at once (no_leaks: its thread exits)
        assert not hopeful.reconnecting
    codes = sorted({event.code for event in seen.values()})
    assert set(codes) <= {"lost", "timeout"}
    reliability.record(
        "Faults",
        "Server process SIGKILLed",
        tried=f"a child process running a Servo killed with 4 clients connected, 3 of them reconnect=False "
        f"(timeout {TIMEOUT:g} s)",
        outcome=f"the 3 reported Disconnected ({', '.join(codes)}: {seen[0].reason!r}) within "
        f"{max(noticed.values()) * 1000:.1f} ms; the 4th reported Reconnecting ({reconnecting.reason!r}); "
        "send()/get() afterwards did not raise",
        noticed_ms=max(noticed.values()) * 1000,
    )


def test_network_goes_silent_both_ends_time_out(
    no_leaks: None, servo: Servo, reliability: Reliability
) -> None:
    # A relay that holds every byte: the cable is "pulled" without either end being told.  Both ends time
    # out; the session lets the client try to come back (its attempts are held by the relay too), and the
    # server hold its seat for the grace period; then both give up.
    seeing = SeeingDrops(servo)
    with LagProxy("127.0.0.1", servo.port) as proxy, LegitGame(seeing) as game:
        cut = Sprocket(
            "127.0.0.1", proxy.port, name="cut", ping_interval=PING, timeout=TIMEOUT, connect_timeout=TIMEOUT
        )
        cut.wait_connected(5)
        cut_id = cut.id
        assert [type(e).__name__ for e in cut.events()] == ["Connected"]
        stalled = time.monotonic()
        proxy.stall(30.0)
        seen: list[Any] = []
        wait_until(lambda: seen.extend(cut.events()) or seen, 10, "the client to notice")
        noticed = time.monotonic()
        client_saw = noticed - stalled
        # Silence is measured from the last byte the client really received (a ping in flight may have
        # landed just before or after the stall began).
        silence = noticed - cut._io.peer.conn._last_received  # type: ignore[union-attr]
        assert cut.reconnecting and cut.error is not None and "reconnecting" in cut.error
        wait_until(lambda: seeing.dropped, 10, "the server to notice")
        server_saw = time.monotonic() - stalled
        (left,) = game.wait_left(1, GRACE + 10)
        wait_until(lambda: seen.extend(cut.events()) or len(seen) >= 2, GRACE + TIMEOUT + 10, "the give-up")
        gave_up = time.monotonic() - stalled
        game.finish()
        cut.close()
    reconnecting, gone = seen
    (dropped,) = seeing.dropped
    assert isinstance(reconnecting, Reconnecting) and reconnecting.code == "timeout"
    assert dropped.code == "timeout" and dropped.client.id == cut_id
    assert left.client is dropped.client and left.code == "timeout" and "grace period" in left.reason
    assert isinstance(gone, Disconnected) and gone.code == "timeout" and "grace period" in gone.reason
    assert silence >= TIMEOUT  # a lower bound: the timeout, not something else, ended it
    game.assert_unharmed()
    reliability.record(
        "Faults",
        "Network goes silent (every byte held by a relay, no FIN, no RST)",
        tried=f"sprocket.netsim.LagProxy.stall() on a connected client; timeout {TIMEOUT:g} s, "
        f"grace {GRACE:g} s",
        outcome=f"client: Reconnecting 'timeout' after {client_saw:.2f} s, gave up after {gave_up:.2f} s "
        f"({gone.reason!r}); server: Dropped 'timeout' after {server_saw:.2f} s, then Left "
        f"({left.reason!r}); a direct client carried on",
        client_s=client_saw,
        server_s=server_saw,
        client_gave_up_s=gave_up,
    )


def keep_up(reader: Sprocket, seqs: list[int], wanted: int) -> None:
    """Collect ``reader``'s broadcasts until it has ``wanted`` of them."""

    def enough() -> bool:
        seqs.extend(p["seq"] for p in reader.get())
        return len(seqs) >= wanted

    wait_until(enough, 10, "the readers to keep up")


def test_client_that_stops_reading_is_dropped_and_memory_stays_bounded(
    no_leaks: None, reliability: Reliability
) -> None:
    queue_limit = 1 << 20
    size, rounds, per_round = 32 * 1024, 150, 10
    blob = b"b" * size
    with Servo("127.0.0.1", 0, ping_interval=PING, timeout=5.0, max_send_queue=queue_limit) as servo:
        readers = [Sprocket("127.0.0.1", servo.port, ping_interval=PING, timeout=5.0) for _ in range(2)]
        for reader in readers:
            reader.wait_connected(5)
        stuck = RawPeer(servo.port, rcvbuf=4096)
        stuck_id = stuck.handshake()  # ...and it never reads again
        wait_until(lambda: servo.get() is not None and len(servo.clients) == 3, 5, "three clients")
        peer = next(p for p in servo._io.peers.values() if p.handle is not None and p.handle.id == stuck_id)
        got: list[list[int]] = [[], []]
        rss_start = rss_bytes()
        with Sampler(lambda: len(peer.out)) as queue, Sampler(rss_bytes, 0.02) as rss:
            for r in range(rounds):
                for i in range(per_round):
                    servo.sendall(seq=r * per_round + i, blob=blob)
                for reader, seqs in zip(readers, got, strict=True):
                    keep_up(reader, seqs, (r + 1) * per_round)
        left = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
        for reader in readers:
            reader.close()
        stuck.close()
    total = rounds * per_round
    assert [(e.client.id, e.code) for e in left] == [(stuck_id, "send_queue_full")]
    assert got == [list(range(total)), list(range(total))]
    assert queue.peak <= queue_limit + per_round * (size + 64)
    growth = rss.peak - rss_start
    reliability.record(
        "Faults",
        "A client that stops reading while the server broadcasts",
        tried=f"{total} broadcasts of {size // 1024} KiB ({total * size >> 20} MiB) to 2 readers and 1 raw "
        f"socket that never reads (4 KiB receive window); max_send_queue {queue_limit >> 20} MiB",
        outcome=f"the non-reader was dropped with send_queue_full; its queue peaked at "
        f"{queue.peak / 1024:.0f} KiB; server RSS grew at most {growth / 2**20:.1f} MiB; both readers "
        f"got all {total} broadcasts in order",
        queue_peak=queue.peak,
        rss_growth=growth,
    )


def test_paused_game_loops_are_not_kicked(no_leaks: None, reliability: Reliability) -> None:
    # Neither the server's nor the clients' game loop calls get() for 4 heartbeat timeouts, while all of
    # them keep sending; tiny inboxes make both ends stop reading.  Nobody times out, nothing is lost.
    timeout, pause = 0.5, 2.0
    with Servo(
        "127.0.0.1", 0, ping_interval=PING, timeout=timeout, handshake_timeout=timeout, max_inbox_bytes=4096
    ) as servo:
        players = [
            Sprocket(
                "127.0.0.1", servo.port, ping_interval=PING, timeout=timeout, max_inbox_bytes=2048
            ).wait_connected(5)
            for _ in range(2)
        ]
        wait_until(lambda: servo.get() is not None and len(servo.clients) == 2, 5, "two clients")
        sent = [0, 0]
        paused = {"server": False, "clients": False}
        pad = "p" * 200

        def tick(i: int) -> None:
            for n, p in enumerate(players):
                p.send(seq=sent[n], pad=pad)
                sent[n] += 1
            if i % 2 == 0:
                servo.sendall(b=i // 2, pad=pad)  # the server's 30 Hz broadcast
            paused["server"] |= servo._io.inbox.paused
            paused["clients"] |= all(p._io.inbox.paused for p in players)

        ticks = pace(pause, 60, tick)
        broadcasts = (ticks + 1) // 2
        assert all(p.connected for p in players) and len(servo.clients) == 2
        assert paused == {"server": True, "clients": True}
        # The game loops resume: everything sent during the pause arrives, in order, once.
        got = collect(servo, sum(sent), 10)
        by_client: dict[int, list[int]] = {}
        for packet in got:
            by_client.setdefault(packet.sender.id, []).append(packet["seq"])
        assert sorted(map(len, by_client.values())) == sorted(sent)
        assert all(is_gap_free(seqs) for seqs in by_client.values())
        for p in players:
            assert [q["b"] for q in collect(p, broadcasts, 10)] == list(range(broadcasts))
        assert not [e for e in servo.events() if isinstance(e, Left)]
        for p in players:
            assert not [e for e in p.events() if isinstance(e, Disconnected)]
            p.close()
    reliability.record(
        "Faults",
        "Game loops that stop calling get() (server and clients) while traffic continues",
        tried=f"{pause:g} s = {pause / timeout:g} heartbeat timeouts without get() on either side; 2 clients "
        f"at 60 Hz, server broadcasting at 30 Hz; max_inbox_bytes 4 KiB (server) / 2 KiB (clients)",
        outcome=f"both ends paused reading (back-pressure) yet nobody timed out; afterwards all {sum(sent)} "
        f"client packets and {broadcasts} broadcasts per client arrived in order, none dropped",
        packets=sum(sent),
        broadcasts=broadcasts,
    )


@pytest.mark.parametrize("burst_mib", [2, 48])
def test_server_that_never_calls_get_pushes_back_on_a_flooding_client(
    burst_mib: int, reliability: Reliability
) -> None:
    inbox_limit, queue_limit, size = 256 * 1024, 1 << 20, 16 * 1024
    pad = b"f" * size
    with Servo("127.0.0.1", 0, ping_interval=PING, timeout=TIMEOUT, max_inbox_bytes=inbox_limit) as servo:
        flooder = Sprocket(
            "127.0.0.1", servo.port, ping_interval=PING, timeout=TIMEOUT, max_send_queue=queue_limit
        ).wait_connected(5)
        io = servo._io
        sent = 0
        with Sampler(lambda: io.inbox.backlog) as inbox:
            while sent * size < burst_mib << 20 and flooder.connected:
                flooder.send(seq=sent, pad=pad)
                sent += 1
                if sent % 64 == 0:  # let the I/O threads run: the flood is as fast as they can go
                    wait_until(lambda: len(flooder._io.outbox) < 8, 10, "the client's I/O thread")
            wait_until(lambda: io.inbox.paused or not flooder.connected, 10, "the server to pause reading")
        paused = io.inbox.paused
        dropped = not flooder.connected
        events = flooder.events()
        # The server's game loop wakes up: whatever it gets is in order with no gaps.
        got: list[int] = []
        left: list[Left | Dropped] = []

        def drained() -> bool:
            for item in servo.events():
                if type(item) is Packet:
                    got.append(item["seq"])
                elif isinstance(item, (Left, Dropped)):
                    left.append(item)
            return len(got) == sent or bool(left)

        wait_until(drained, 10, "the server to drain")
        flooder.close()
    assert paused
    # What the inbox holds is counted as the codec estimates it costs in memory (BYTES_FACTOR x the wire).
    assert inbox.peak <= inbox_limit + BYTES_FACTOR * (RECV_SIZE + 2 * size)
    assert is_gap_free(got)
    disconnects = [e for e in events if isinstance(e, Disconnected)]
    if len(got) < sent:  # not everything arrived: the client must have said so
        assert [e.code for e in disconnects] == ["send_queue_full"]
        # Its goodbye could not get through its full queue, so the server saw the connection drop (and
        # holds its seat for the grace period: it cannot tell), or read the goodbye and let it go.
        assert [(type(e).__name__, e.code) for e in left] in (
            [("Dropped", "lost")], [("Left", "send_queue_full")]
        )  # fmt: skip
    else:
        assert not dropped and not disconnects
    reliability.record(
        "Faults",
        f"Inbound back-pressure: a server that never calls get(), a client trying to send {burst_mib} MiB",
        tried=f"{sent} packets of {size // 1024} KiB as fast as possible; server max_inbox_bytes "
        f"{inbox_limit >> 10} KiB, client max_send_queue {queue_limit >> 20} MiB",
        outcome=f"server paused reading; its inbox peaked at {inbox.peak >> 10} KiB; "
        + (
            f"client dropped itself with send_queue_full ({disconnects[0].reason!r}); the server got "
            f"{len(got)}/{sent} packets, a gap-free prefix"
            if len(got) < sent
            else f"client stayed connected and all {sent} packets arrived in order once get() resumed"
        ),
        sent=sent,
        delivered=len(got),
        inbox_peak=inbox.peak,
    )
