"""Slow-loris and connection floods: sockets that hog the server without ever playing.

The server runs in this process (so its descriptors can be counted); flood sockets are opened by a child
process (tests/hostile/_child.py flood), so every descriptor here belongs to the server or its client.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from sprocket import Rejected, Servo, Sprocket
from sprocket.protocol import HELLO, frame
from tests.conftest import collect, open_fds, wait_until
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import RawPeer, child, hello_body, socket_fds, wait_all_closed

pytestmark = pytest.mark.timeout(60)

FLOOD = 300
# Every flood here comes from 127.0.0.1, standing for many addresses: lift the per-address limit (its own
# tests are in test_round_two) so these test the limits shared by all addresses.
PER_IP = 10_000


def round_trip(servo: Servo, player: Sprocket, count: int = 50) -> None:
    """The player sends ``count`` packets; the server gets them all, in order, and answers each."""
    for i in range(count):
        player.send(seq=i)
    got = collect(servo, count)
    assert [p["seq"] for p in got] == list(range(count))
    for p in got:
        p.sender.send(echo=p["seq"])
    assert [p["echo"] for p in collect(player, count)] == list(range(count))


def test_slow_loris_is_cut_off_and_cannot_hold_a_slot(no_leaks: None, reliability: Reliability) -> None:
    handshake_timeout = 1.0
    with Servo("127.0.0.1", 0, max_clients=1, handshake_timeout=handshake_timeout, timeout=2.0) as servo:
        opened = time.monotonic()
        idle = [RawPeer(servo.port) for _ in range(20)]  # connect and say nothing
        tricklers = [RawPeer(servo.port) for _ in range(20)]  # a valid HELLO, one byte every 0.1 s
        hello = frame(HELLO, hello_body(name="slow"))
        stop = threading.Event()

        def trickle() -> None:
            for i in range(len(hello)):
                if stop.is_set():
                    return
                for peer in tricklers:
                    peer.send(hello[i : i + 1])
                stop.wait(0.1)

        dripper = threading.Thread(target=trickle, name="hostile-trickle", daemon=True)
        dripper.start()
        try:
            # With all 40 hogging sockets connected, the one free slot still goes to an honest player.
            player = Sprocket("127.0.0.1", servo.port, name="legit").wait_connected(5)
            hogs_when_joined = len(servo._io.pending)
            round_trip(servo, player)
            with pytest.raises(Rejected, match="full"):
                Sprocket("127.0.0.1", servo.port, connect_timeout=3).wait_connected()
            closed = wait_all_closed(idle + tricklers, 10)
        finally:
            stop.set()
            dripper.join(5)
        assert len(closed) == 40
        told = {(peer.goodbye() or {}).get("code") for peer in idle + tricklers}
        held = [t - opened for t in closed.values()]
        assert hogs_when_joined > 0
        assert told == {"timeout"}
        assert min(held) >= handshake_timeout  # the deadline applied: nobody was cut off early
        assert player.connected
        player.close()
        for peer in idle + tricklers:
            peer.close()
    reliability.record(
        "Slow-loris and floods",
        "Slow-loris: silent sockets and 1-byte-per-0.1 s HELLOs",
        tried=f"20 silent + 20 trickling sockets, handshake_timeout {handshake_timeout:g} s, max_clients=1",
        outcome=f"all 40 closed with 'timeout' {min(held):.2f}-{max(held):.2f} s after connecting; "
        f"an honest client joined while {hogs_when_joined} were pending, took the only slot and "
        "exchanged 50 packets",
        held_s=[min(held), max(held)],
        pending_when_legit_joined=hogs_when_joined,
    )


def test_flood_of_idle_connections_leaves_the_server_responsive(reliability: Reliability) -> None:
    fds_before = open_fds()
    with Servo("127.0.0.1", 0, handshake_timeout=2.0, max_pending=512, max_pending_per_ip=PER_IP) as servo:
        fds_idle = open_fds()
        with child("flood", str(servo.port), str(FLOOD), "idle") as flood:
            report = json.loads(flood.wait_line("ready"))
            assert report["first"] == {"challenge": FLOOD}
            peak_sockets = socket_fds()
            start = time.monotonic()
            player = Sprocket("127.0.0.1", servo.port).wait_connected(5)
            pending_during = len(servo._io.pending)
            round_trip(servo, player, 100)
            during = time.monotonic() - start
            flood.tell("drain")  # read until the server hangs up on every flood socket
            drained = json.loads(flood.wait_line("drained", 20))
            flood.wait_line("done")
        assert drained["goodbyes"] == {"bye:timeout": FLOOD}
        player.close()
        wait_until(lambda: not servo._io.peers, 5, "every flood socket to be released")
        wait_until(lambda: open_fds() <= fds_idle, 5, f"server descriptors back ({open_fds()} > {fds_idle})")
    wait_until(lambda: open_fds() <= fds_before, 5, "descriptors back after close")
    assert pending_during > 0
    reliability.record(
        "Slow-loris and floods",
        f"Connection flood: {FLOOD} sockets opened at once and held silent",
        tried=f"{FLOOD} connections from a child process, max_pending 512, handshake_timeout 2 s",
        outcome=f"all {FLOOD} challenged and later closed with 'timeout'; an honest client joined and "
        f"exchanged 100 packets both ways in {during * 1000:.0f} ms while {pending_during} were pending; "
        f"server sockets peaked at {peak_sockets} and every descriptor came back",
        peak_socket_fds=peak_sockets,
        legit_round_trip_ms=during * 1000,
    )


@pytest.mark.parametrize(("mode", "code"), [("auth=secret", "full"), ("hello", "password")])
def test_flood_of_handshakes_is_refused_with_reasons(mode: str, code: str, reliability: Reliability) -> None:
    max_clients = 20
    fds_before = open_fds()
    with Servo(
        "127.0.0.1",
        0,
        password="secret",
        max_clients=max_clients,
        handshake_timeout=3.0,
        max_pending_per_ip=PER_IP,
    ) as servo:
        fds_idle = open_fds()
        with child("flood", str(servo.port), str(FLOOD), mode) as flood:
            report = json.loads(flood.wait_line("ready"))
            answers = report["answers"]
            if code == "full":
                assert answers == {"welcome": max_clients, "reject:full": FLOOD - max_clients}
                with pytest.raises(Rejected, match="full") as refused:
                    Sprocket("127.0.0.1", servo.port, password="secret").wait_connected(5)
                assert refused.value.code == "full"
            else:
                assert answers == {"reject:password": FLOOD}
                player = Sprocket("127.0.0.1", servo.port, password="secret").wait_connected(5)
                round_trip(servo, player)
                player.close()
            flood.tell("release")
            flood.wait_line("done")
        wait_until(lambda: servo.get() is not None and not servo._io.peers, 5, "flood sockets released")
        # Once the flood is gone the slots are free again.
        player = Sprocket("127.0.0.1", servo.port, password="secret").wait_connected(5)
        round_trip(servo, player)
        player.close()
        wait_until(lambda: not servo._io.peers and open_fds() <= fds_idle, 5, "server descriptors back")
    wait_until(lambda: open_fds() <= fds_before, 5, "descriptors back after close")
    reliability.record(
        "Slow-loris and floods",
        f"Handshake flood ({'right' if code == 'full' else 'no'} password) at max_clients={max_clients}",
        tried=f"{FLOOD} sockets from a child process each sending a HELLO "
        f"{'with' if code == 'full' else 'without'} the password",
        outcome=", ".join(f"{n} {a}" for a, n in sorted(answers.items()))
        + ("; an honest client was refused 'server full' too, then joined once the flood left"
           if code == "full" else "; an honest client with the password joined during the flood")
        + "; every descriptor came back",
        answers=answers,
    )  # fmt: skip


def test_connections_past_max_pending_are_refused_with_a_reason(reliability: Reliability) -> None:
    max_pending = 50
    with Servo(
        "127.0.0.1", 0, max_pending=max_pending, handshake_timeout=1.0, max_pending_per_ip=PER_IP
    ) as servo:
        with child("flood", str(servo.port), str(FLOOD), "idle") as flood:
            report = json.loads(flood.wait_line("ready"))
            refused = servo.stats["refused"]
            flood.tell("release")
            flood.wait_line("done")
        wait_until(lambda: not servo._io.peers, 5, "flood released")
        player = Sprocket("127.0.0.1", servo.port).wait_connected(5)  # room again
        round_trip(servo, player)
        # What an honest Sprocket sees when it arrives in the middle of such a flood.
        hogs = [RawPeer(servo.port) for _ in range(max_pending)]
        wait_until(lambda: len(servo._io.pending) >= max_pending, 5, "pending slots full")
        late = Sprocket("127.0.0.1", servo.port, connect_timeout=3)
        try:
            late.wait_connected()
            late_saw = "connected"
        except Rejected as exc:
            late_saw = f"Rejected({exc.code.value!r}): {exc.reason}"
        except Exception as exc:
            late_saw = f"{type(exc).__name__}: {exc}"
        late.close()
        player.close()
        for hog in hogs:
            hog.close()
    first = report["first"]
    reliability.record(
        "Slow-loris and floods",
        f"Connections past max_pending ({max_pending})",
        tried=f"{FLOOD} silent sockets at once from a child process",
        outcome=f"{first.get('challenge', 0)} challenged, {refused} refused: what they received: "
        f"{ {k: v for k, v in first.items() if k != 'challenge'} }; a Sprocket arriving then saw "
        f"{late_saw!r}" + ("" if first.get("reject:busy") else " (BUG: no reason given)"),
        first_frames=first,
        refused=refused,
    )
    assert refused == FLOOD - max_pending and first.get("challenge") == max_pending
    assert first.get("reject:busy") == refused, "refused sockets should be told why (REJECT busy)"
    assert late_saw.startswith("Rejected('busy')")
