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
from sprocket.protocol import Connection, Received, Welcomed, data_frame
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
    assert server.events() == [Received({"x": 3}, len(frame) - 5)]
    return frame


EXPECTED: dict[str, Callable[[], bytes]] = {
    "challenge": lambda: _Session().challenge,
    "data-x3": _data_x3,
    "hello": lambda: _Session().hello,
    "welcome": lambda: _Session().welcome,
    "ping": lambda: _Session().ping,
    "pong": lambda: _Session().pong,
    "bye-closed": lambda: _Session().bye,
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
    names = ["CHALLENGE", "HELLO", "WELCOME", "REJECT", "DATA", "PING", "PONG", "BYE"]
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
    ):
        assert f'| `"{kind}"` |' in doc, f"game message {kind!r} missing from PROTOCOL.md"
