"""Round two, memory: counted as what it costs, not what it weighed on the wire (issue 10, items 5 and 6).

The server is an echo server in a child process (tests/hostile/attack.py), so its RSS is its own; the
attackers are raw sockets built from docs/PROTOCOL.md.  Memory bounds are asserted; times are recorded.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.hostile.attack import (
    DATA,
    HEADER,
    MAX_PACKET,
    Wire,
    drain_all,
    empty_containers_body,
    frame,
    max_empty_maps_body,
    server_child,
)
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import Sampler

pytestmark = pytest.mark.timeout(120)

AREA = "Round two: memory"
MIB = 1 << 20
PARKED = 300
HELD_BACK = 64  # bytes of each max-size frame never sent (dripped one by one)
BATCH = 50  # handshakes at once: under the per-address limit of handshakes in progress (64)


def join_batch(port: int, count: int) -> list[Wire]:
    wires = [Wire(port) for _ in range(count)]
    for wire in wires:
        kind, answer = wire.handshake(name="parker")
        assert kind == 3, f"a parker could not join: {answer}"
    return wires


@pytest.mark.parametrize("parked", ["all but the last 64 bytes", "the header and 1 byte"])
def test_parked_partial_frames_cost_what_they_hold_and_are_cut_off(
    parked: str, reliability: Reliability
) -> None:
    timeout = 3.0
    sent = MAX_PACKET - HELD_BACK if parked.startswith("all") else 1
    partial = HEADER.pack(MAX_PACKET + 1) + bytes((DATA,)) + bytes(sent)
    with server_child(timeout=timeout, handshake_timeout=timeout) as server:
        baseline = server.rss()
        wires: list[Wire] = []
        started = time.monotonic()
        with Sampler(server.rss, interval=0.02) as rss:
            for _ in range(PARKED // BATCH):
                batch = join_batch(server.port, BATCH)
                for wire in batch:
                    wire.send(partial)  # False once the server has cut this one off
                wires += batch
            parked_at = time.monotonic()
            # One more byte of each frame every second (under `timeout`: the peers are never silent),
            # until the server reports every parker gone or the deadline passes.
            deadline = parked_at + 3 * timeout + 5
            while time.monotonic() < deadline and len(server.left("parker")) < len(wires):
                for wire in wires:
                    if not wire.closed:
                        wire.send(b"\0", timeout=0.5)
                drain_all(wires, 1.0)  # read goodbyes for a second: the drip's clock
            ended = time.monotonic()
        growth = rss.peak - baseline
        left = server.left("parker")
        codes: dict[str, int] = {}  # the server's own account: its Left events
        for event in left:
            codes[event["code"]] = codes.get(event["code"], 0) + 1
        if len(left) < len(wires):
            codes["still connected"] = len(wires) - len(left)
        told: dict[str, int] = {}  # what the raw sockets read
        for wire in wires:
            bye = wire.goodbye()
            key = bye["code"] if bye else ("no goodbye" if wire.closed else "still open")
            told[key] = told.get(key, 0) + 1
        gone_after = [e["at"] - parked_at for e in left]
        for wire in wires:
            wire.close()
    reliability.record(
        AREA,
        f"{PARKED} parked partial max-size frames ({parked})",
        tried=f"{PARKED} joined raw clients, each sent {parked} of a 1 MiB DATA frame, then 1 byte a "
        f"second; Servo(timeout={timeout:g})",
        outcome=f"server RSS grew {growth / MIB:.0f} MiB (limit asserted: < 64 MiB); server's Left codes "
        f"{codes}, sockets read {told}; "
        + (
            f"the last left {max(gone_after, default=0.0):.1f} s after parking ended"
            if len(left) == len(wires)
            else f"after {ended - parked_at:.0f} s of dripping"
        ),
        rss_growth_mib=growth / MIB,
        parking_s=parked_at - started,
        left_codes=codes,
    )
    problems = []
    if growth >= 64 * MIB:
        problems.append(f"server RSS grew {growth / MIB:.0f} MiB (bound: 64 MiB)")
    if set(codes) - {"timeout", "limit"}:
        problems.append(f"parked peers were not all cut off with timeout/limit: {codes}")
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("size", ["1 MiB", "90,000 maps"])
def test_empty_map_amplification_is_bounded_by_decoded_size(size: str, reliability: Reliability) -> None:
    get_every = 2.5  # the app calls get() every 5 s; 2.5 s keeps the point and halves the wait
    attack_seconds = 6.0
    abort_at = 512 * MIB  # already a failure: stop before the attack eats the machine
    body = max_empty_maps_body() if size == "1 MiB" else empty_containers_body(90_000, "maps")
    chunk = frame(DATA, body)
    with server_child(get_every=get_every) as server:
        baseline = server.rss()
        attacker = Wire(server.port)
        kind, answer = attacker.handshake(name="attacker")
        assert kind == 3, answer
        stop = threading.Event()

        def probe() -> int:
            value = server.rss()
            if value - baseline > abort_at:
                stop.set()
            return value

        with Sampler(probe, interval=0.01) as rss:
            written = attacker.pump(chunk, stop, time.monotonic() + attack_seconds)
        aborted = stop.is_set()
        attacker.wait_closed(0.2)
        bye = attacker.goodbye()
        attacker.close()
    growth = rss.peak - baseline
    reliability.record(
        AREA,
        f"Empty-map amplification ({size} packets)",
        tried=f"{len(body) // 1024} KiB DATA frames of empty maps, written as fast as taken for "
        f"{attack_seconds:g} s ({written / MIB:.0f} MiB in all); the server app calls get() every "
        f"{get_every:g} s",
        outcome=f"server RSS {'reached' if aborted else 'grew'} {growth / MIB:.0f} MiB above baseline"
        + (" (attack stopped there)" if aborted else "")
        + " (bound asserted: 256 MiB)"
        + (f"; attacker closed with {bye}" if bye else ""),
        rss_growth_mib=growth / MIB,
        written_mib=written / MIB,
    )
    assert growth < 256 * MIB, f"server RSS grew {growth / MIB:.0f} MiB above baseline (bound: 256 MiB)"
