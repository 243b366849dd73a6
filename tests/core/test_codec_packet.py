"""Packet and codec, in memory: value types survive, hostile bytes only ever raise DecodeError."""

from __future__ import annotations

import dataclasses
import enum
import pickle
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sprocket
from sprocket import DecodeError, Packet, RegistrationError, UnsendableValue
from sprocket.codec import MAX_EXT_DEPTH, MsgpackCodec, PickleCodec, get_codec

pytestmark = pytest.mark.timeout(60)

codec = MsgpackCodec()


@sprocket.register
@dataclasses.dataclass
class Point:
    x: float
    y: float


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Score(typing.NamedTuple):
    player: str
    points: int


sprocket.register(Color)
sprocket.register(Score)


class Hooked:
    def __init__(self, hp: int) -> None:
        self.hp = hp

    def to_dict(self) -> dict[str, int]:
        return {"hp": self.hp}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> Hooked:
        return cls(data["hp"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hooked) and other.hp == self.hp


sprocket.register(Hooked, name="hooked")


# -- Packet ------------------------------------------------------------------------------------------------


def test_packet_as_in_the_readme() -> None:
    p = Packet(x=3, y=2, id="Player 1")
    assert (p.x, p.y) == (3, 2)
    assert p.id == "Player 1"
    assert p["x"] == 3 and "y" in p and len(p) == 3
    assert list(p) == ["x", "y", "id"]
    assert dict(p) == {"x": 3, "y": 2, "id": "Player 1"}
    assert p.get("missing", 9) == 9
    assert p == {"x": 3, "y": 2, "id": "Player 1"} and p == Packet(x=3, y=2, id="Player 1")
    assert repr(p) == "Packet(x=3, y=2, id='Player 1')"
    assert p.sender is None


def test_fields_that_clash_with_packet_names_stay_reachable() -> None:
    p = Packet(keys=1, sender="mallory", get=2)
    assert p["keys"] == 1 and p["get"] == 2 and p["sender"] == "mallory"
    assert p.sender is None  # a field can never pose as the sender
    assert callable(p.keys)


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(TypeError, match="strings"):
        Packet({1: "a"})
    p = Packet()
    with pytest.raises(TypeError):
        p[2] = "b"  # type: ignore[index]


def test_missing_attribute_names_the_fields() -> None:
    with pytest.raises(AttributeError, match=r"'x', 'y'|x, y"):
        _ = Packet(x=1, y=2).z


def test_packet_attribute_assignment_and_pickling() -> None:
    p = Packet(x=1)
    p.y = 2
    assert p == {"x": 1, "y": 2}
    assert pickle.loads(pickle.dumps(p)) == p


# -- codec --------------------------------------------------------------------------------------------------


def test_value_types_survive_the_round_trip() -> None:
    value = {
        "tuple": (1, (2, 3)),
        "list": [1, [2, 3]],
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "bytes": b"\x00\xff",
        "big": 2**80,
        "float": 1.5,
        "none": None,
        "bool": True,
        "nested": {1: "int keys are fine inside fields", "t": (Point(1.0, 2.0),)},
        "dataclass": Point(1.5, -2.0),
        "enum": Color.BLUE,
        "namedtuple": Score("amy", 3),
        "hooked": Hooked(40),
    }
    back = codec.decode(codec.encode(value))
    assert back == value
    assert type(back["tuple"]) is tuple and type(back["set"]) is set
    assert type(back["namedtuple"]) is Score and type(back["enum"]) is Color


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5), children, max_size=4)
    | st.frozensets(st.integers(), max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_like, max_size=6))
def test_any_plain_value_round_trips(fields: dict[str, object]) -> None:
    assert codec.decode(codec.encode(fields)) == fields


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    try:
        result = codec.decode(data)
    except DecodeError:
        return
    assert isinstance(result, dict) and all(isinstance(k, str) for k in result)


def test_unsendable_value_names_field_and_type() -> None:
    with pytest.raises(UnsendableValue, match=r"field 'who'.*object.*convert it to plain data"):
        codec.encode({"ok": 1, "who": object()})
    assert isinstance(UnsendableValue("x"), TypeError)


class Plain:
    """A class of the user's own that register() cannot convert without help."""


@dataclasses.dataclass
class Unregistered:
    a: int


@pytest.mark.parametrize(
    ("value", "advice"),
    [
        (Plain(), r"sprocket.register\(Plain, to_dict=..., from_dict=...\)"),  # register() alone would fail
        (Unregistered(1), r"sprocket.register\(Unregistered\) on both ends"),
        (complex(1, 2), "convert it to plain data"),  # registering a built-in would fail: not advised
        (lambda: 1, "convert it to plain data"),
    ],
)
def test_the_advice_for_an_unsendable_value_is_one_that_works(value: object, advice: str) -> None:
    with pytest.raises(UnsendableValue, match=advice):
        codec.encode({"v": value})


def test_unregistered_type_from_the_peer_is_a_decode_error() -> None:
    @dataclasses.dataclass
    class Secret:
        a: int

    sprocket.register(Secret, name="secret-only-here")
    data = codec.encode({"s": Secret(1)})
    from sprocket import codec as codec_module

    del codec_module._by_name["secret-only-here"]
    del codec_module._by_type[Secret]
    with pytest.raises(DecodeError, match="unregistered type 'secret-only-here'"):
        codec.decode(data)


def test_deeply_nested_extension_values_are_refused() -> None:
    value: object = 1
    for _ in range(MAX_EXT_DEPTH + 5):
        value = (value,)
    data = codec.encode({"deep": value})
    with pytest.raises(DecodeError):
        codec.decode(data)


def test_deep_plain_nesting_is_refused() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"\x81\xa1a" + b"\x91" * 100_000 + b"\xc0")


def test_a_pickle_payload_does_not_run_with_the_default_codec() -> None:
    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    with pytest.raises(DecodeError):
        codec.decode(pickle.dumps({"x": Boom()}))


def test_register_refuses_what_it_cannot_convert() -> None:
    with pytest.raises(RegistrationError, match="dataclass, NamedTuple or Enum"):
        sprocket.register(type("Plain", (), {}))
    with pytest.raises(RegistrationError):
        sprocket.register(42)  # type: ignore[arg-type]


def test_pickle_codec_is_opt_in_and_sends_anything_picklable() -> None:
    pc = get_codec("pickle")
    assert isinstance(pc, PickleCodec)
    assert pc.decode(pc.encode({"c": complex(1, 2)})) == {"c": complex(1, 2)}
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("json")


def test_non_map_payloads_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="map of fields"):
        codec.decode(b"\x93\x01\x02\x03")
    with pytest.raises(DecodeError, match="strings"):
        codec.decode(b"\x81\x01\x02")
