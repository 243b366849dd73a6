"""Fuzzing the default codec: hostile bytes decode to plain data or raise DecodeError, nothing else."""

from __future__ import annotations

import collections
import dataclasses
import struct
import time
import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sprocket
from sprocket import DecodeError
from sprocket.codec import (
    EXT_BIGINT,
    EXT_FROZENSET,
    EXT_REGISTERED,
    EXT_SET,
    EXT_TUPLE,
    MAX_EXT_DEPTH,
    MsgpackCodec,
)
from tests.hostile.conftest import Reliability
from tests.hostile.helpers import FUZZ

pytestmark = pytest.mark.timeout(60)

codec = MsgpackCodec()
ONE_MIB = 1 << 20  # the default max_packet_size: the most a peer can hand the decoder at once


@dataclasses.dataclass
class Shot:
    x: float
    y: float


sprocket.register(Shot, name="hostile.Shot")

# What the codec documents it can produce from hostile bytes.
PLAIN = (type(None), bool, int, float, str, bytes, list, dict, tuple, set, frozenset, Shot)


def stray_types(value: Any, depth: int = 0) -> set[str]:
    """Names of types in a decoded value that the codec does not promise to produce."""
    if depth > 1100:
        return set()
    found = set() if isinstance(value, PLAIN) else {type(value).__qualname__}
    if isinstance(value, dict):
        for k, v in value.items():
            found |= stray_types(k, depth + 1) | stray_types(v, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            found |= stray_types(v, depth + 1)
    return found


def decode(data: bytes) -> str:
    """Decode hostile bytes: the only acceptable outcomes are a dict of str keys or DecodeError."""
    try:
        fields = codec.decode(data)
    except DecodeError:
        return "DecodeError"
    assert type(fields) is dict and all(type(k) is str for k in fields)
    return "decoded"


@dataclasses.dataclass(frozen=True)
class RawExt:
    """An extension value with any code -128..127 (msgpack.ExtType refuses the negative, reserved ones)."""

    code: int
    data: bytes


def ext(code: int, data: bytes) -> bytes:
    """Raw msgpack for an extension value, reserved codes included."""
    n = len(data)
    kind = struct.pack(">b", code)
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
    if n in fixed:
        return bytes([fixed[n]]) + kind + data
    if n < 1 << 8:
        return b"\xc7" + struct.pack(">B", n) + kind + data
    if n < 1 << 16:
        return b"\xc8" + struct.pack(">H", n) + kind + data
    return b"\xc9" + struct.pack(">I", n) + kind + data


def encode(value: Any) -> bytes:
    """msgpack for a value tree that may contain :class:`RawExt` anywhere."""
    if isinstance(value, RawExt):
        return ext(value.code, value.data)
    if isinstance(value, list):
        n = len(value)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        n = len(value)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(encode(k) + encode(v) for k, v in value.items())
    return msgpack.packb(value, use_bin_type=True)


def packet(value_bytes: bytes) -> bytes:
    """A one-field packet ``{"v": <value_bytes>}`` with the value given as raw msgpack."""
    return b"\x81\xa1v" + value_bytes


# -- strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=16),
    st.binary(max_size=16),
)  # fmt: skip
ext_codes = st.one_of(
    st.sampled_from([EXT_TUPLE, EXT_SET, EXT_FROZENSET, EXT_REGISTERED, EXT_BIGINT, -1]),
    st.integers(-128, 127),
)


map_keys = st.one_of(st.text(max_size=6), st.integers(-(2**63), 2**63), st.none())


def _wrap(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    ext_value = st.builds(lambda code, body: RawExt(code, encode(body)), ext_codes, inner)
    ext_junk = st.builds(RawExt, ext_codes, st.binary(max_size=16))
    registered = st.builds(
        lambda name, body: RawExt(EXT_REGISTERED, encode([name, body])),
        st.sampled_from(["hostile.Shot", "nope", "os.system", ""]),
        inner,
    )
    return st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(map_keys, inner, max_size=4),
        ext_value,
        ext_junk,
        registered,
    )


hostile_values = st.recursive(scalars, _wrap, max_leaves=16)
hostile_packets = st.one_of(
    st.dictionaries(st.text(max_size=8), hostile_values, max_size=5),
    hostile_values,
).map(encode)


# -- fuzz ------------------------------------------------------------------------------------------------


def test_random_bytes_decode_or_raise_decode_error(reliability: Reliability) -> None:
    seen: collections.Counter[str] = collections.Counter()

    @FUZZ
    @given(junk=st.binary(max_size=4096))
    def run(junk: bytes) -> None:
        seen[decode(junk)] += 1

    run()
    reliability.record(
        "Hostile input (in memory)",
        "Random bytes at the codec (MsgpackCodec.decode)",
        tried=f"{sum(seen.values())} random payloads of 0-4096 B",
        outcome=f"a dict or DecodeError every time: {dict(seen)}",
        outcomes=dict(seen),
    )


def test_hostile_structures_decode_or_raise_decode_error(reliability: Reliability) -> None:
    seen: collections.Counter[str] = collections.Counter()
    strays: collections.Counter[str] = collections.Counter()

    @FUZZ
    @given(payload=hostile_packets, mutate=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255))))
    def run(payload: bytes, mutate: list[tuple[int, int]]) -> None:
        corrupt = bytearray(payload)
        for pos, byte in mutate:
            if corrupt:
                corrupt[pos % len(corrupt)] = byte
        for data in (payload, bytes(corrupt)):
            outcome = decode(data)
            seen[outcome] += 1
            if outcome == "decoded":
                strays.update(stray_types(codec.decode(data)))

    run()
    reliability.record(
        "Hostile input (in memory)",
        "Hostile msgpack structures at the codec: every extension code, fake registered types, mutations",
        tried=f"{sum(seen.values())} payloads (valid msgpack with ext codes -128..127, tuples/sets of "
        "junk, registered names that do not exist, then randomly corrupted)",
        outcome=f"a dict or DecodeError every time: {dict(seen)}; undocumented value types produced: "
        f"{dict(strays) or 'none'}",
        outcomes=dict(seen),
        stray_types=dict(strays),
    )


# -- the classic shapes, one by one ----------------------------------------------------------------------

HEADERS = {
    "array32 of 2^32-1 items": b"\xdd\xff\xff\xff\xff",
    "map32 of 2^32-1 pairs": b"\xdf\xff\xff\xff\xff",
    "str32 of 4 GiB": b"\xdb\xff\xff\xff\xff" + b"abc",
    "bin32 of 4 GiB": b"\xc6\xff\xff\xff\xff" + b"abc",
    "ext32 of 4 GiB": b"\xc9\xff\xff\xff\xff\x01",
}


@pytest.mark.parametrize("name", list(HEADERS))
def test_lying_size_headers_fail_fast(name: str) -> None:
    # No 4 GiB allocation behind the error: the decoder never holds more than a small multiple of what
    # it was given (a size that does not depend on the machine's speed, unlike a CPU-time limit).
    for data in (HEADERS[name], packet(HEADERS[name])):
        tracemalloc.start()
        try:
            with pytest.raises(DecodeError):
                codec.decode(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024, f"{peak} bytes allocated to refuse {len(data)} bytes"


def test_nesting_limits() -> None:
    assert decode(packet(b"\x91" * 1000 + b"\xc0")) == "decoded"
    with pytest.raises(DecodeError):
        codec.decode(packet(b"\x91" * 5000 + b"\xc0"))  # msgpack's own stack limit
    tuple_in_tuple = msgpack.packb(None)
    for _ in range(MAX_EXT_DEPTH + 8):
        tuple_in_tuple = ext(EXT_TUPLE, b"\x91" + tuple_in_tuple)
    with pytest.raises(DecodeError, match="nested deeper"):
        codec.decode(packet(tuple_in_tuple))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (ext(EXT_REGISTERED, msgpack.packb(["os.system", ["rm -rf /"]])), "unregistered type 'os.system'"),
        (ext(EXT_REGISTERED, msgpack.packb(["hostile.Shot", {"z": 1}])), "could not rebuild"),
        (ext(EXT_REGISTERED, msgpack.packb("hostile.Shot")), "malformed registered"),
        (ext(EXT_BIGINT, b"9" * 5000), "too long"),
        (ext(EXT_BIGINT, "١٢".encode()), "undecodable"),
        (ext(EXT_SET, msgpack.packb([[1], [2]])), "unhashable"),
        (ext(EXT_TUPLE, msgpack.packb({"a": 1})), "malformed collection"),
        (ext(99, b"boom"), "unknown extension"),
        (b"\x81\x91\x01\x02", "unhashable"),  # a map whose key is a list
        (b"\xa2\xff\xfe", "utf-8"),  # invalid UTF-8 in a str
    ],
)
def test_malformed_values_name_the_problem(value: bytes, words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        codec.decode(packet(value))


@pytest.mark.parametrize("top", [b"\x01", b"\x90", b"\xa1x", b"\x81\x01\x02", b"\x81\xc0\x02"])
def test_a_packet_must_be_a_map_of_string_keys(top: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(top)


def test_registered_type_is_rebuilt_and_nothing_else_is() -> None:
    shot = ext(EXT_REGISTERED, msgpack.packb(["hostile.Shot", {"x": 1.0, "y": 2.0}]))
    assert codec.decode(packet(shot)) == {"v": Shot(1.0, 2.0)}


def test_timestamp_extension_yields_only_documented_types(reliability: Reliability) -> None:
    # Extension -1 is handled inside msgpack before sprocket's ext_hook is asked, so the codec produces a
    # msgpack.Timestamp: a type the codec's docstring does not list and game code does not expect.
    data = packet(ext(-1, struct.pack(">I", 1_700_000_000)))
    try:
        value = codec.decode(data)["v"]
        outcome = f"decoded to {type(value).__module__}.{type(value).__qualname__}"
    except DecodeError:
        value, outcome = None, "DecodeError"
    reliability.record(
        "Hostile input (in memory)",
        "msgpack timestamp extension (-1) in a packet",
        tried="a packet {'v': ExtType(-1, 4 bytes)}",
        outcome=outcome + (" (BUG: not a documented type)" if stray_types(value) else ""),
    )
    assert not stray_types(value)


def test_worst_case_decode_cost_of_one_max_size_packet(reliability: Reliability) -> None:
    # The most CPU a peer can buy with one packet of the default max_packet_size (1 MiB): measured, reported.
    count = (ONE_MIB - 16) // 3
    shapes = {
        "1 MiB of empty tuples (ext)": b"\xdd" + struct.pack(">I", count) + b"\xd4\x01\x90" * count,
        "1 MiB of one-digit big ints (ext)": b"\xdd" + struct.pack(">I", count) + b"\xd4\x05\x31" * count,
        "1 MiB of small ints": b"\xdd" + struct.pack(">I", ONE_MIB - 16) + b"\x01" * (ONE_MIB - 16),
        "1 MiB of empty maps": b"\xdd" + struct.pack(">I", ONE_MIB - 16) + b"\x80" * (ONE_MIB - 16),
        "1 MiB string": msgpack.packb("x" * (ONE_MIB - 16)),
    }
    lengths = {name: count if "(ext)" in name else ONE_MIB - 16 for name in shapes}
    # Over a decode budget (docs/PROTOCOL.md): refused part-way, which is what bounds their cost.
    refused = {
        "1 MiB of empty tuples (ext)": "extension values",
        "1 MiB of one-digit big ints (ext)": "extension values",
        "1 MiB of empty maps": "arrays and maps",
    }
    costs = {}
    for name, value in shapes.items():
        data = packet(value)
        assert len(data) <= ONE_MIB
        start = time.process_time()
        if name in refused:
            with pytest.raises(DecodeError, match=refused[name]):
                codec.decode(data)
        else:
            decoded = codec.decode(data)
            assert list(decoded) == ["v"] and len(decoded["v"]) == lengths[name], name  # all of it
        costs[name] = round(time.process_time() - start, 4)
    worst = max(costs, key=costs.__getitem__)
    reliability.record(
        "Hostile input (in memory)",
        "Decode cost of a maximum-size (1 MiB) packet",
        tried=", ".join(shapes),
        outcome=f"{', '.join(refused)} refused at a decode budget, the rest decoded; "
        f"worst: {worst} = {costs[worst] * 1000:.0f} ms CPU "
        f"(others: {', '.join(f'{v * 1000:.0f} ms' for k, v in costs.items() if k != worst)})",
        cpu_seconds=costs,
    )
