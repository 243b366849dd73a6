"""Round two, admission: one address must not lock everyone out; names and goodbyes are the server's to
judge (issue 10, item 8 and the "Also" list).

Raw clients built from docs/PROTOCOL.md (tests/hostile/attack.py); the honest client of the half-open
test binds its source address to 127.0.0.2, so it is a different address from the flood's 127.0.0.1.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

import pytest

from sprocket import Joined, Left, Servo
from tests.conftest import wait_until
from tests.hostile.attack import BYE, CHALLENGE, REJECT, WELCOME, Wire, frame, pack, server_child
from tests.hostile.conftest import Reliability

pytestmark = pytest.mark.timeout(120)

AREA = "Round two: admission"
HALF_OPEN = 600


@pytest.mark.parametrize("servo", [{}, {"max_pending_per_ip": 64}], ids=["default", "max_pending_per_ip=64"])
def test_half_open_flood_from_one_address_does_not_lock_out_another(
    servo: dict[str, Any], reliability: Reliability
) -> None:
    with server_child(**servo) as server:
        flood = [Wire(server.port) for _ in range(HALF_OPEN)]  # from 127.0.0.1; they never send a HELLO
        first: dict[str, int] = {}
        for wire in flood:
            got = wire.next_frame(10.0)
            name = {CHALLENGE: "challenge", REJECT: "reject"}.get(got[0], str(got[0])) if got else "nothing"
            if got and got[0] == REJECT:
                name += ":" + str(wire.goodbye() and wire.goodbye()["code"])  # type: ignore[index]
            first[name] = first.get(name, 0) + 1
        started = time.monotonic()
        honest = Wire(server.port, source="127.0.0.2")
        kind, answer = honest.handshake(timeout=5.0, name="honest")
        took = time.monotonic() - started
        honest.close()
        for wire in flood:
            wire.close()
    settings = ", ".join(f"{k}={v}" for k, v in servo.items()) or "defaults"
    reliability.record(
        AREA,
        f"{HALF_OPEN} half-open sockets from one address ({settings})",
        tried=f"{HALF_OPEN} connections from 127.0.0.1 that never send a HELLO (first frames: {first}); "
        "then an honest raw client from 127.0.0.2",
        outcome=(
            f"the honest client joined in {took * 1000:.0f} ms (target: within 5 s)"
            if kind == WELCOME
            else f"the honest client was NOT let in: {answer}"
        ),
        join_ms=took * 1000 if kind == WELCOME else None,
        first_frames=first,
    )
    assert kind == WELCOME, f"the honest client from 127.0.0.2 was refused: {answer}"


def test_control_characters_are_removed_from_hello_names(reliability: Reliability) -> None:
    sent = "Mallory\n\x1b[31mRED\x00\x07end"
    with Servo("127.0.0.1", 0) as servo:
        wire = Wire(servo.port)
        kind, answer = wire.handshake(name=sent)
        assert kind == WELCOME, answer
        joined = wait_until(lambda: [e for e in servo.events() if isinstance(e, Joined)], 5, "the join")
        name = joined[0].client.name
        wire.close()
    controls = [c for c in name or "" if unicodedata.category(c) == "Cc"]
    reliability.record(
        "Round two: admission",
        "HELLO name with control characters",
        tried=f"HELLO name {sent!r}",
        outcome=f"client.name is {name!r}",
    )
    assert not controls, f"client.name keeps control characters: {name!r}"
    assert name and "Mallory" in name and "RED" in name  # the printable part survives


def test_a_client_cannot_claim_it_was_kicked(reliability: Reliability) -> None:
    with Servo("127.0.0.1", 0) as servo:
        wire = Wire(servo.port)
        kind, answer = wire.handshake(name="liar")
        assert kind == WELCOME, answer
        wire.send(frame(BYE, pack({"code": "kicked", "reason": "the admin kicked me, honest"})))
        left = wait_until(lambda: [e for e in servo.events() if isinstance(e, Left)], 5, "the leave")
        wire.close()
    reliability.record(
        "Round two: admission",
        "Client says goodbye with code 'kicked'",
        tried="BYE {code: kicked} from a joined raw client",
        outcome=f"the server's Left event says code {left[0].code!s} ({left[0].reason!r})",
    )
    assert left[0].code == "closed", left[0]
