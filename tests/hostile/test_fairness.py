"""Round two, fairness: one client's flood must not slow everyone (issue 10, item 7).

A raw attacker (tests/hostile/attack.py, built from docs/PROTOCOL.md) writes as fast as its socket takes
bytes, from a thread of this process (``send`` releases the GIL); the server is an echo server in a child
process; an honest Sprocket echoes every 50 ms.  The properties asserted are that every honest echo comes
back and the honest client is never dropped; the waits are recorded against the issue's targets.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.hostile.attack import DATA as DATA_FRAME
from tests.hostile.attack import EchoProbe, Wire, data_frame, empty_containers_body, frame, server_child
from tests.hostile.conftest import Reliability

pytestmark = pytest.mark.timeout(120)

AREA = "Round two: fairness"
FLOOD_SECONDS = 3.0
TINY = data_frame({"a": 0})  # 9 bytes on the wire
COSTLY_ITEMS = 19_000  # empty sets and tuples per packet: just inside the 20,000 extension values budget


def flood_with_honest_client(chunk: bytes, seconds: float, **servo: Any) -> dict[str, Any]:
    """Pump ``chunk`` (whole frames) from one attacker for ``seconds`` while an honest client echoes."""
    with server_child(**servo) as server, EchoProbe(server.port) as honest:
        attacker = Wire(server.port)
        kind, _ = attacker.handshake(name="attacker")
        assert kind == 3, "the attacker could not join"
        calm_from = time.monotonic()
        threading.Event().wait(1.0)  # the yardstick: a second of honest echoes before the flood
        calm = honest.figures(since=calm_from)
        stop = threading.Event()
        written: list[int] = []
        pump = threading.Thread(
            target=lambda: written.append(attacker.pump(chunk, stop, time.monotonic() + seconds)),
            name="attacker-pump",
            daemon=True,
        )
        started = time.monotonic()
        pump.start()
        pump.join(seconds + 15)
        stop.set()
        pumped_for = time.monotonic() - started
        figures = honest.figures(since=started)  # the waits during the flood (late ones count as waiting)
        honest.stop(10.0)
        attacker.wait_closed(0.5)
        result = {
            "figures": figures,
            "calm": calm,
            "unanswered": len(honest.missing()),
            "disconnected": honest.disconnected,
            "errors": honest.errors,
            "written": written[0] if written else 0,
            "seconds": pumped_for,
            "bye": attacker.goodbye(),
            "attacker_closed": attacker.closed,
            "attacker_closed_after": (attacker.closed_at - started) if attacker.closed_at else None,
            "left": server.left("attacker"),
        }
        attacker.close()
    return result


def check_honest(result: dict[str, Any]) -> None:
    assert not result["errors"], result["errors"]
    assert result["disconnected"] is None, f"the honest client was dropped: {result['disconnected']}"
    assert result["unanswered"] == 0, f"{result['unanswered']} honest echoes never came back"


def test_tiny_packet_flood_does_not_starve_an_honest_client(reliability: Reliability) -> None:
    chunk = TINY * 8192
    result = flood_with_honest_client(chunk, FLOOD_SECONDS)
    figures = result["figures"]
    rate = result["written"] / len(TINY) / result["seconds"]
    reliability.record(
        AREA,
        "Tiny-packet flood from one client",
        tried=f"9-byte DATA frames as fast as one socket takes them for {FLOOD_SECONDS:g} s "
        f"({rate:,.0f} packets/s written); an honest client echoing every 50 ms",
        outcome=f"honest echo p50 {figures['p50_ms']:.1f} ms, max {figures['max_ms']:.0f} ms "
        f"(targets: p50 < 20 ms, max < 250 ms; calm p50 {result['calm']['p50_ms']:.1f} ms); "
        f"{result['unanswered']} unanswered",
        packets_per_s=rate,
        honest_p50_ms=figures["p50_ms"],
        honest_max_ms=figures["max_ms"],
    )
    check_honest(result)


def test_packet_rate_limit_disconnects_the_flooder(reliability: Reliability) -> None:
    limit = 1000
    chunk = TINY * 8192
    result = flood_with_honest_client(chunk, FLOOD_SECONDS, max_packets_per_second=limit)
    bye = result["bye"]
    after = result["attacker_closed_after"]
    reliability.record(
        AREA,
        "Tiny-packet flood against max_packets_per_second",
        tried=f"Servo(max_packets_per_second={limit}); 9-byte DATA frames as fast as possible; "
        "an honest client echoing every 50 ms (20 packets/s)",
        outcome=f"server: {result['left'][0] if result['left'] else 'the attacker did NOT leave'}; "
        f"attacker's socket read {bye}"
        + (f" after {after * 1000:.0f} ms" if after is not None else "")
        + f"; honest: {result['unanswered']} unanswered, p50 {result['figures']['p50_ms']:.1f} ms",
        attacker_disconnect_ms=None if after is None else after * 1000,
    )
    check_honest(result)
    # The server's Left event is the account that counts (a BYE read by a socket still writing can be
    # lost to a reset); a BYE that did arrive must say the same.
    left = result["left"]
    assert [e["code"] for e in left] == ["limit"], f"the flooder's leave: {left}"
    assert "per second" in left[0]["reason"], left[0]
    assert bye is None or bye["code"] == "limit", bye


def test_costly_valid_packets_do_not_starve_an_honest_client(reliability: Reliability) -> None:
    body = empty_containers_body(COSTLY_ITEMS, "mixed")
    chunk = frame(DATA_FRAME, body)
    result = flood_with_honest_client(chunk, FLOOD_SECONDS)
    figures = result["figures"]
    rate = result["written"] / result["seconds"] / (1 << 20)
    reliability.record(
        AREA,
        "CPU-costly valid packets from one client",
        tried=f"{len(body) // 1024} KiB DATA frames of {COSTLY_ITEMS:,} empty sets and tuples, as fast as "
        f"the socket takes them for {FLOOD_SECONDS:g} s ({rate:.1f} MiB/s written); an honest client "
        "echoing every 50 ms",
        outcome=f"honest echo p50 {figures['p50_ms']:.1f} ms (target < 50 ms; calm "
        f"{result['calm']['p50_ms']:.1f} ms), max {figures['max_ms']:.0f} ms; "
        f"{result['unanswered']} unanswered"
        + (f"; attacker closed with {result['bye']}" if result["bye"] else ""),
        mib_per_s=rate,
        honest_p50_ms=figures["p50_ms"],
        honest_max_ms=figures["max_ms"],
    )
    check_honest(result)
    # The packets are valid and inside every documented budget: the attacker is slowed, never thrown out.
    assert result["bye"] is None or result["bye"]["code"] != "protocol", result["bye"]
    assert all(e["code"] != "protocol" for e in result["left"]), result["left"]
