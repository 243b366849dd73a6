"""docs/PROTOCOL.md against the real code, so the specification cannot silently drift.

Every block marked ``<!-- wire-example: NAME -->`` in the document is a fenced block of hex bytes (text after
``#`` on a line is commentary); the bytes must equal what the reference implementation produces for the
situation the document describes.  The frame table must list every frame type with its byte value, and the
constants and extension codes quoted must be the code's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sprocket import protocol
from sprocket.codec import (
    EXT_BIGINT,
    EXT_FROZENSET,
    EXT_REGISTERED,
    EXT_SET,
    EXT_TUPLE,
    MAX_EXT_DEPTH,
    MsgpackCodec,
)
from sprocket.game import messages
from sprocket.game.discovery import (
    MAGIC,
    MAX_DATAGRAM,
    Announcement,
    decode_announcement,
    encode_announcement,
)
from sprocket.protocol import Connection, Received, Welcomed, data_frame
from sprocket.session import Session, resume_proof
from sprocket.settings import Settings

pytestmark = pytest.mark.timeout(30)

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
NONCE = bytes(range(16))

_EXAMPLE = re.compile(r"<!-- wire-example: ([a-z0-9-]+) -->\s*```[a-z]*\n(.*?)```", re.DOTALL)
_ESTIMATOR = re.compile(r"<!-- estimator-example -->\s*```[a-z]*\n(.*?)```", re.DOTALL)


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _hex_block(block: str) -> bytes:
    hex_text = " ".join(line.split("#", 1)[0] for line in block.splitlines())
    return bytes.fromhex(hex_text)


def _examples() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name, block in _EXAMPLE.findall(_doc()):
        assert name not in found, f"wire-example {name!r} appears twice in PROTOCOL.md"
        found[name] = _hex_block(block)
    return found


class _Session:
    """The handshake the document's examples describe, run through real Connection objects."""

    def __init__(self) -> None:
        self.server = Connection("server", 100.0, Settings(), nonce=NONCE)
        self.client = Connection("client", 100.0, Settings(password="hunter2", app="hockey 1", name="Ada"))
        self.challenge = self.server.data_to_send()
        self.client.receive_data(self.challenge, 100.0)
        self.hello = self.client.data_to_send()
        self.server.receive_data(self.hello, 100.25)
        assert [type(e).__name__ for e in self.server.events()] == ["HelloReceived"]
        self.server.accept(7, 100.5)
        self.welcome = self.server.data_to_send()
        self.client.receive_data(self.welcome, 100.75)
        assert self.client.events() == [Welcomed(7)]
        self.client.tick(101.75)  # one ping_interval (1.0 s) after the client opened
        self.ping = self.client.data_to_send()
        self.server.receive_data(self.ping, 101.5)
        self.pong = self.server.data_to_send()
        self.client.receive_data(self.pong, 101.8)
        self.client.close()
        self.bye = self.client.data_to_send()


SESSION_ID = bytes(range(0x10, 0x20))
TOKEN = bytes(range(0x20, 0x40))
NEW_TOKEN = bytes(range(0x40, 0x60))


class _Resume:
    """The session examples: a client named Ada joins with a session (id 10..1f, token 20..3f), receives 5
    DATA frames, sends 3 of which the server gets 2, the link drops, and it resumes on a new connection
    (the same nonce, for the example) where the server rotates the token to 40..5f."""

    def __init__(self) -> None:
        codec = MsgpackCodec()
        server = Connection("server", 100.0, Settings(), nonce=NONCE)
        client = Connection("client", 100.0, Settings(name="Ada"))
        client.receive_data(server.data_to_send(), 100.0)
        server.receive_data(client.data_to_send(), 100.25)
        server.events()
        self.session = Session(SESSION_ID, TOKEN, grace=30.0, limit=1 << 20)
        server.accept(7, 100.5, self.session)
        self.welcome = server.data_to_send()
        client.receive_data(self.welcome, 100.75)
        assert client.events() == [Welcomed(7)] and client.session is not None
        for n in range(1, 6):
            server.send_data(data_frame(codec.encode({"n": n})))
        client.receive_data(server.data_to_send(), 101.0)
        client.events()
        for n in range(1, 4):
            client.send_data(data_frame(codec.encode({"n": n})))
        server.receive_data(client.data_to_send()[:-5], 101.0)  # the third is lost in the drop
        server.events()
        # The link drops; the client resumes on a new connection.
        server2 = Connection("server", 102.0, Settings(), nonce=NONCE)
        client2 = Connection("client", 102.0, Settings(name="Ada"), session=client.session)
        client2.receive_data(server2.data_to_send(), 102.0)
        self.hello = client2.data_to_send()
        server2.receive_data(self.hello, 102.25)
        (hello,) = server2.events()
        assert hello.resume is not None and hello.resume.proof == resume_proof(TOKEN, NONCE)
        self.session.token = NEW_TOKEN  # the rotation the Servo does, with a fixed value for the example
        server2.accept(7, 102.5, self.session, hello.resume.received)
        self.resumed = server2.data_to_send()
        client2.receive_data(self.resumed, 102.75)
        assert client2.events() == [Welcomed(7, resumed=True)]
        after = client2.data_to_send()
        self.replay, self.ack = after[:-13], after[-13:]
        server2.receive_data(after, 103.0)
        (replayed,) = server2.events()
        assert isinstance(replayed, Received) and replayed.fields == {"n": 3}
        assert self.session.received == 3 and self.session.peer_acked == 5


def _data_x3() -> bytes:
    frame = data_frame(MsgpackCodec().encode({"x": 3}))
    # The example must also be what a receiver decodes back to {"x": 3}.
    server = Connection("server", 0.5, Settings(), nonce=NONCE)
    client = Connection("client", 0.5, Settings())
    client.receive_data(server.data_to_send(), 0.5)
    server.receive_data(client.data_to_send(), 0.5)
    server.events()
    server.accept(1, 0.5)
    server.receive_data(frame, 0.5)
    (event,) = server.events()
    assert isinstance(event, Received) and (event.fields, event.size) == ({"x": 3}, len(frame) - 5)
    return frame


EXPECTED: dict[str, Callable[[], bytes]] = {
    "challenge": lambda: _Session().challenge,
    "data-x3": _data_x3,
    "hello": lambda: _Session().hello,
    "welcome": lambda: _Session().welcome,
    "ping": lambda: _Session().ping,
    "pong": lambda: _Session().pong,
    "bye-closed": lambda: _Session().bye,
    "welcome-session": lambda: _Resume().welcome,
    "hello-resume": lambda: _Resume().hello,
    "welcome-resumed": lambda: _Resume().resumed,
    "replay-and-ack": lambda: _Resume().replay + _Resume().ack,
    "lan-announce": lambda: encode_announcement(
        Announcement("announce", "3f9a1c2b0d4e", 7777, "Ada's rink", "sprocket-hockey-1", 1, 1, 2)
    ),
    "lan-goodbye": lambda: encode_announcement(Announcement("goodbye", "3f9a1c2b0d4e", 7777)),
}


def test_every_wire_example_is_checked() -> None:
    assert set(_examples()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wire_example_matches_the_code(name: str) -> None:
    documented = _examples()[name]
    actual = EXPECTED[name]()
    assert documented.hex(" ") == actual.hex(" "), f"PROTOCOL.md example {name!r} is out of date"


def test_challenge_example_is_the_plain_frame_function() -> None:
    body = b"\x82\xa8sprocket\x01\xa5nonce\xc4\x10" + NONCE
    assert _examples()["challenge"] == protocol.frame(protocol.CHALLENGE, body)


def test_hello_example_carries_the_password_proof() -> None:
    assert protocol.password_proof("hunter2", NONCE) in _examples()["hello"]


def test_estimator_example_matches_the_code() -> None:
    match = _ESTIMATOR.search(_doc())
    assert match, "PROTOCOL.md lost its estimator example"
    values = {}
    for line in match.group(1).splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            key, value = (part.strip() for part in text.split("="))
            values[key] = float(value)
    client = _Session().client
    assert values == {
        "rtt": pytest.approx(client.rtt),
        "jitter": pytest.approx(client.jitter),
        "clock_offset": pytest.approx(client.clock_offset),
    }


def test_frame_table_lists_every_frame_type_with_its_byte() -> None:
    doc = _doc()
    names = ["CHALLENGE", "HELLO", "WELCOME", "REJECT", "DATA", "PING", "PONG", "BYE", "ACK", "BATCH"]
    assert {getattr(protocol, n): n for n in names} == protocol.FRAME_NAMES
    rows = dict(re.findall(r"^\| `0x([0-9a-f]{2})` \| `([A-Z]+)` \|", doc, re.MULTILINE))
    assert {int(byte, 16): name for byte, name in rows.items()} == protocol.FRAME_NAMES
    headings = "\n".join(line for line in doc.splitlines() if line.startswith("### "))
    for name in names:  # and each type has a section whose heading gives its byte
        assert f"{name} `0x{getattr(protocol, name):02x}`" in headings, f"no section for {name}"


def test_constants_and_extension_codes_are_the_code_values() -> None:
    doc = _doc()
    assert f"| `PROTOCOL_VERSION` | `{protocol.PROTOCOL_VERSION}` |" in doc
    assert f"| `HANDSHAKE_FRAME_LIMIT` | `{protocol.HANDSHAKE_FRAME_LIMIT}` |" in doc
    assert f"| `MAX_EXT_DEPTH` | `{MAX_EXT_DEPTH}` |" in doc
    for code, name in [
        (EXT_TUPLE, "tuple"),
        (EXT_SET, "set"),
        (EXT_FROZENSET, "frozenset"),
        (EXT_REGISTERED, "registered type"),
        (EXT_BIGINT, "big integer"),
    ]:
        assert f"| `{code}` | {name} |" in doc, f"extension type {code} ({name}) missing from PROTOCOL.md"


def test_game_messages_are_documented() -> None:
    doc = _doc()
    assert f'**`"{messages.GAME_FIELD}"`**' in doc
    for kind in (
        messages.HELLO,
        messages.JOIN,
        messages.LEAVE,
        messages.SNAPSHOT,
        messages.INPUT,
        messages.ACK,
        messages.DROP,
        messages.BACK,
    ):
        assert f'| `"{kind}"` |' in doc, f"game message {kind!r} missing from PROTOCOL.md"


_CLOSE_CODES = re.compile(r"<!-- close-codes -->\s*\n((?:\|.*\n)+)")
_BYE_CELLS = {"either side": "either", "server only": "server", "—": "never"}
_REJECT_CELLS = {"server": True, "—": False}


def _close_code_table() -> dict[str, tuple[str, str]]:
    """The close-code table of PROTOCOL.md: code -> (BYE cell, REJECT cell)."""
    match = _CLOSE_CODES.search(_doc())
    assert match, "PROTOCOL.md lost its <!-- close-codes --> table"
    lines = match.group(1).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["code", "meaning", "BYE", "REJECT"], header
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[2:]:  # after the header and the |---| line
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"close-code row does not have 4 cells: {line!r}"
        code = re.fullmatch(r"`([a-z_]+)`", cells[0])
        assert code, f"close-code row does not start with one `code`: {line!r}"
        assert code.group(1) not in rows, f"close code {code.group(1)!r} listed twice"
        rows[code.group(1)] = (cells[2], cells[3])
    return rows


def test_close_code_table_is_the_enum() -> None:
    from sprocket.codes import SERVER_ONLY, CloseCode

    rows = _close_code_table()
    assert list(rows) == [code.value for code in CloseCode], "the table must list every CloseCode, in order"
    for code in CloseCode:
        bye, reject = rows[code.value]
        assert bye in _BYE_CELLS, f"{code}: BYE cell {bye!r} is not one of {sorted(_BYE_CELLS)}"
        assert reject in _REJECT_CELLS, f"{code}: REJECT cell {reject!r} is not server or —"
        assert _REJECT_CELLS[reject] == code.is_refusal, f"{code}: REJECT column disagrees with is_refusal"
        expected = "either" if code.peer_may_say else "server" if code in SERVER_ONLY else "never"
        assert _BYE_CELLS[bye] == expected, f"{code}: BYE column says {bye!r}, the code says {expected}"


def _bye_read_as(code: str, sender: str) -> str:
    """The code a receiver reports for a BYE with ``code`` from ``sender``, through real Connections."""
    server = Connection("server", 0.0, Settings(), nonce=NONCE)
    client = Connection("client", 0.0, Settings())
    client.receive_data(server.data_to_send(), 0.0)
    server.receive_data(client.data_to_send(), 0.0)
    server.events()
    server.accept(1, 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    client.events()
    bye = protocol._control(protocol.BYE, {"code": code, "reason": "why"})
    receiver = client if sender == "server" else server
    receiver.receive_data(bye, 0.0)
    (closed,) = receiver.events()
    assert isinstance(closed, protocol.Closed) and closed.by_peer and not closed.rejected
    return closed.code.value


def test_close_code_table_bye_column_is_what_the_protocol_accepts() -> None:
    # The table's BYE column, checked against the receiving Connection itself, not only the enum.
    for code, (bye, _) in [*_close_code_table().items(), ("made-up", ("—", "—"))]:
        for sender in ("client", "server"):
            allowed = _BYE_CELLS[bye] == "either" or (_BYE_CELLS[bye] == "server" and sender == "server")
            want = code if allowed else "closed"
            assert _bye_read_as(code, sender) == want, f"a {sender}'s BYE {code!r}"


def test_reject_codes_outside_the_refusals_read_as_rejected() -> None:
    for code, (_, reject) in [*_close_code_table().items(), ("made-up", ("—", "—"))]:
        server = Connection("server", 0.0, Settings(), nonce=NONCE)
        client = Connection("client", 0.0, Settings())
        client.receive_data(server.data_to_send(), 0.0)
        client.data_to_send()
        client.receive_data(protocol._control(protocol.REJECT, {"code": code, "reason": "no"}), 0.0)
        (closed,) = client.events()
        assert isinstance(closed, protocol.Closed) and closed.rejected
        assert closed.code.value == (code if _REJECT_CELLS[reject] else "rejected"), code


def test_min_packet_limit_is_documented() -> None:
    from sprocket.settings import MIN_PACKET_LIMIT

    assert f"| `MIN_PACKET_LIMIT` | `{MIN_PACKET_LIMIT}` |" in _doc()


def test_limit_goodbye_is_the_documented_one() -> None:
    documented = re.search(r'BYE \{"code": "limit", "reason": "(a N-byte packet [^"]*)"\}', _doc())
    assert documented, "PROTOCOL.md lost the BYE `limit` reason"
    server = Connection("server", 0.0, Settings(), nonce=NONCE)
    client = Connection("client", 0.0, Settings(max_packet_size=1024))
    client.receive_data(server.data_to_send(), 0.0)
    server.receive_data(client.data_to_send(), 0.0)
    server.events()
    server.accept(1, 0.0)
    server.data_to_send()
    assert not server.send_data(data_frame(MsgpackCodec().encode({"x": bytes(2000)})))
    (closed,) = server.events()
    size = len(MsgpackCodec().encode({"x": bytes(2000)}))
    expected = documented.group(1).replace("N", str(size), 1).replace("(M)", "(1024)")
    assert (closed.code, closed.reason) == ("limit", expected)
    out = server.data_to_send()
    assert b"limit" in out and bytes(2000) not in out  # the BYE went out, the DATA frame did not


def test_lan_discovery_examples_decode_and_the_limits_are_the_code_values() -> None:
    examples = _examples()
    announce = decode_announcement(examples["lan-announce"])
    assert (announce.name, announce.port, announce.players, announce.max_players) == (
        "Ada's rink",
        7777,
        1,
        2,
    )
    assert decode_announcement(examples["lan-goodbye"]).kind == "goodbye"
    doc = _doc()
    assert f"at most **{MAX_DATAGRAM} bytes**" in doc and f"`{MAGIC.decode()}` (`MAGIC`)" in doc
