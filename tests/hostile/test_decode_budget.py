"""Round two, decoding: one packet must not freeze a server or a client (issue 10, items 1 and 2).

Attacks built from docs/PROTOCOL.md by hand (tests/hostile/attack.py): a DATA frame of about 1 MiB holding
40,000 integers ``k * (2**61 - 1)`` (extension 5), which all hash to 0 in CPython, inside a set, a
frozenset or a map's keys; and a packet over the per-packet budget of containers and extension values.
The server runs in a child process, so its CPU stall is its own and the honest client's timing is real.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from sprocket import Disconnected, Sprocket
from tests.hostile.attack import (
    DATA,
    EchoProbe,
    HostileServer,
    Wire,
    empty_containers_body,
    frame,
    hash_flood_body,
    server_child,
)
from tests.hostile.conftest import Reliability

pytestmark = pytest.mark.timeout(120)

AREA = "Round two: decoding"
# What the reason of a refused packet should name: hashing/collisions or the budget it broke.
DECODE_REASON = re.compile(r"hash|collid|collision|budget|too many|containers|elements|keys", re.I)
OVER_BUDGET = 150_000  # empty arrays in one packet: over the documented 100,000 containers per packet


def attack_server(body: bytes, reliability: Reliability, attack: str, tried: str) -> dict[str, Any]:
    """Send ``body`` as one DATA frame to a server in a child process while an honest client echoes every
    50 ms; check the attacker alone is thrown out with ``protocol`` and every honest echo is answered."""
    with server_child() as server, EchoProbe(server.port) as honest:
        attacker = Wire(server.port)
        kind, _ = attacker.handshake(name="attacker")
        assert kind == 3, "the attacker could not even join"
        sent = time.monotonic()
        attacker.send(frame(DATA, body))
        closed = attacker.wait_closed(10.0)
        # Keep the honest client going a little after the attack, so a late stall shows too.
        end = time.monotonic() + 1.0
        while time.monotonic() < end and honest.disconnected is None:
            attacker.read_some(end)
        honest.stop(10.0)
        figures = honest.figures(since=sent)
        bye = attacker.goodbye()
        left = server.left("attacker")
        attacker.close()
    took = (attacker.closed_at - sent) if closed and attacker.closed_at else None
    reliability.record(
        AREA,
        attack,
        tried=tried + "; an honest client echoing every 50 ms",
        outcome=(
            f"attacker {'closed with ' + repr(bye) if closed else 'NOT disconnected within 10 s'}"
            + (f" after {took * 1000:.0f} ms" if took is not None else "")
            + f"; honest echoes: {figures['echoes']} sent, {figures['unanswered']} unanswered, "
            f"p50 {figures['p50_ms']:.1f} ms, max {figures['max_ms']:.0f} ms (target: max < 1000 ms)"
            + (f"; honest client dropped: {honest.disconnected}" if honest.disconnected else "")
        ),
        attacker_disconnect_ms=None if took is None else took * 1000,
        honest_p50_ms=figures["p50_ms"],
        honest_max_ms=figures["max_ms"],
        honest_unanswered=figures["unanswered"],
    )
    assert not honest.errors, honest.errors
    assert closed, "the attacker was not disconnected within 10 s of its packet"
    assert bye is not None and bye["code"] == "protocol", bye
    assert [e["code"] for e in left] == ["protocol"], left
    assert honest.disconnected is None, f"the honest client was dropped: {honest.disconnected}"
    assert figures["unanswered"] == 0, f"{figures['unanswered']} honest echoes never came back"
    return {"bye": bye, "figures": figures}


@pytest.mark.parametrize("shape", ["set", "frozenset", "map"])
def test_hash_flood_packet_is_refused_by_the_server(shape: str, reliability: Reliability) -> None:
    body = hash_flood_body(shape)
    keys = "38,000" if shape == "map" else "40,000"
    result = attack_server(
        body,
        reliability,
        f"Hash-flood packet ({shape}) to a server",
        f"one {len(body) // 1024} KiB DATA frame {{'a': {shape} of {keys} ints k*(2**61-1)}} (all hash to 0)",
    )
    assert DECODE_REASON.search(result["bye"]["reason"]), result["bye"]


def test_packet_over_the_container_budget_is_refused_by_the_server(reliability: Reliability) -> None:
    body = empty_containers_body(OVER_BUDGET, "arrays")
    attack_server(
        body,
        reliability,
        "Packet over the per-packet container budget, to a server",
        f"one {len(body) // 1024} KiB DATA frame holding {OVER_BUDGET:,} empty arrays (budget: 100,000)",
    )


def attack_client(body: bytes) -> dict[str, Any]:
    """A hostile server (raw socket) sends ``body`` as one DATA frame right after WELCOME; the user's loop
    calls ``events()`` at 60 Hz and times every frame.  Returns what it saw."""
    errors: list[BaseException] = []
    gaps: list[float] = []
    event: Disconnected | None = None
    with HostileServer([frame(DATA, body)]) as hostile:
        client = Sprocket("127.0.0.1", hostile.port, name="victim")
        try:
            tick = threading.Event()
            deadline = time.monotonic() + 10.0
            last = time.monotonic()
            while event is None and time.monotonic() < deadline:
                try:
                    for item in client.events():
                        if isinstance(item, Disconnected):
                            event = item
                except Exception as exc:  # an exception in the user's thread is the failure we look for
                    errors.append(exc)
                    break
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                tick.wait(max(0.0, 1 / 60 - (time.monotonic() - now)))  # the game's frame clock
        finally:
            client.close()
    assert not hostile.errors, hostile.errors
    return {"errors": errors, "max_gap": max(gaps, default=0.0), "frames": len(gaps), "event": event}


@pytest.mark.parametrize("shape", ["set", "map", "over-budget"])
def test_hostile_server_packet_does_not_freeze_the_client(shape: str, reliability: Reliability) -> None:
    if shape == "over-budget":
        body = empty_containers_body(OVER_BUDGET, "arrays")
        what = f"{OVER_BUDGET:,} empty arrays"
    else:
        body = hash_flood_body(shape)
        what = f"a {shape} of colliding ints"
    seen = attack_client(body)
    event = seen["event"]
    ended = f"disconnected: {event.code} ({event.reason[:120]})" if event else "NOT disconnected"
    reliability.record(
        AREA,
        f"Hostile server sends {what} to a Sprocket",
        tried=f"one {len(body) // 1024} KiB DATA frame right after WELCOME; the user's loop at 60 Hz",
        outcome=(
            f"{ended}; max frame gap {seen['max_gap'] * 1000:.0f} ms over {seen['frames']} frames "
            "(target < 250 ms); "
            f"{len(seen['errors'])} exceptions in the user's thread"
        ),
        max_frame_gap_ms=seen["max_gap"] * 1000,
    )
    assert not seen["errors"], seen["errors"]
    assert event is not None, "the client was not disconnected within 10 s"
    assert event.code == "protocol", event
    if shape != "over-budget":
        assert DECODE_REASON.search(event.reason), event.reason
