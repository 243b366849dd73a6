"""Close codes: one enum, what each side may claim, and how the client words each one (in memory)."""

from __future__ import annotations

import math

import msgpack
import pytest

from sprocket import CloseCode
from sprocket.protocol import BYE, WELCOME, Closed, Connection, data_frame, frame
from sprocket.settings import Settings

from .test_protocol import NONCE, handshake, make_pair, pump

pytestmark = pytest.mark.timeout(30)


def closed_event(conn: Connection) -> Closed:
    events = [e for e in conn.events() if isinstance(e, Closed)]
    assert len(events) == 1, events
    return events[0]


def test_a_packet_over_the_peers_limit_closes_with_limit_and_is_not_a_rejection() -> None:
    server, client = make_pair(client_max_packet_size=1024)
    handshake(server, client)
    assert server.peer_max_packet_size == 1024
    assert server.send_data(data_frame(b"\x81\xa1x\xc5" + (2000).to_bytes(2, "big") + bytes(2000))) is False
    mine = closed_event(server)
    assert mine.code is CloseCode.LIMIT and not mine.by_peer and not mine.rejected
    assert "over your max_packet_size (1024)" in mine.reason
    pump(server, client, 100.0)
    theirs = closed_event(client)
    # A BYE "limit" mid-session is a goodbye, not a refusal of the handshake (it used to be worded so).
    assert theirs.code is CloseCode.LIMIT and theirs.by_peer and not theirs.rejected


def test_a_packet_within_the_peers_limit_is_queued() -> None:
    server, client = make_pair(client_max_packet_size=1024)
    handshake(server, client)
    assert server.send_data(data_frame(msgpack.packb({"x": 1}))) is True
    assert not server.closed


def test_a_client_cannot_claim_it_was_kicked() -> None:
    server, client = make_pair()
    handshake(server, client)
    server.receive_data(
        frame(BYE, msgpack.packb({"code": "kicked", "reason": "i was kicked, honest"})), 101.0
    )
    assert closed_event(server).code is CloseCode.CLOSED


@pytest.mark.parametrize("code", ["kicked", "shutdown", "timeout", "limit", "protocol"])
def test_a_server_may_say_its_codes(code: str) -> None:
    server, client = make_pair()
    handshake(server, client)
    client.receive_data(frame(BYE, msgpack.packb({"code": code, "reason": "because"})), 101.0)
    event = closed_event(client)
    assert event.code == code and event.reason == "because"


@pytest.mark.parametrize("code", ["lost", "refused", "password", "made-up", 7])
def test_codes_nobody_may_say_in_a_goodbye_read_as_closed(code: object) -> None:
    server, client = make_pair()
    handshake(server, client)
    client.receive_data(frame(BYE, msgpack.packb({"code": code, "reason": "r"})), 101.0)
    assert closed_event(client).code is CloseCode.CLOSED


@pytest.mark.parametrize(
    "change",
    [
        {"time": math.nan},
        {"time": math.inf},
        {"time": "noon"},
        {"ping_interval": math.nan},
        {"ping_interval": 0.0},
        {"ping_interval": -1.0},
        {"max_packet_size": 10},
        {"id": 2**64 - 1},
        {"id": 1.5},
        {"id": None},
    ],
)
def test_a_welcome_with_unusable_values_is_a_protocol_error(change: dict[str, object]) -> None:
    client = Connection("client", 100.0, Settings())
    client.receive_data(frame(0x01, msgpack.packb({"sprocket": 1, "nonce": NONCE})), 100.0)
    client.data_to_send()
    welcome = {"id": 3, "time": 5.0, "ping_interval": 1.0, "timeout": 10.0, "max_packet_size": 4096}
    welcome.update(change)
    client.receive_data(frame(WELCOME, msgpack.packb(welcome)), 100.1)
    event = closed_event(client)
    assert event.code is CloseCode.PROTOCOL and event.reason == "malformed WELCOME frame"
    assert math.isfinite(client.clock_offset)


def test_close_codes_are_strings_that_read_as_their_word() -> None:
    assert CloseCode.LIMIT == "limit" and f"{CloseCode.LIMIT}" == "limit" and str(CloseCode.BUSY) == "busy"
    refusals = {c.value for c in CloseCode if c.is_refusal}
    assert refusals == {
        "password",
        "full",
        "codec",
        "app",
        "version",
        "busy",
        "limit",
        "session_lost",
        "rejected",
    }


def test_reject_takes_only_a_refusal() -> None:
    from sprocket import InvalidArgument

    server, client = make_pair()
    pump(server, client, 100.0)
    server.events()
    with pytest.raises(InvalidArgument, match="refusal"):
        server.reject(CloseCode.KICKED, "no")
