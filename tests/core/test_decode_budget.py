"""Decode budgets and the memory estimate, in memory: what one packet may ask of the decoder."""

from __future__ import annotations

import struct

import msgpack
import pytest

from sprocket import DecodeError
from sprocket.codec import (
    BYTES_FACTOR,
    CONTAINER_BYTES,
    COUNT_FROM,
    EXT_BIGINT,
    EXT_FROZENSET,
    EXT_SET,
    EXT_TUPLE,
    MAX_CONTAINERS,
    MAX_EQUAL_HASHES,
    MAX_EXT_VALUES,
    SMALL_FACTOR,
    MsgpackCodec,
    decode_value,
)

pytestmark = pytest.mark.timeout(30)

codec = MsgpackCodec()
FLOOD = (1 << 61) - 1  # k * FLOOD hashes to 0 for every k (CPython's int hash is modulo 2**61 - 1)


def field(value_bytes: bytes) -> bytes:
    """A packet {"v": <value>} from the raw msgpack bytes of the value."""
    return b"\x81\xa1v" + value_bytes


def big(n: int) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_BIGINT, str(n).encode())


def ext_of(code: int, items: list[object]) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, msgpack.packb(items)))


@pytest.mark.parametrize("code", [EXT_SET, EXT_FROZENSET])
def test_sets_of_colliding_keys_are_refused(code: int) -> None:
    flood = ext_of(code, [big(k * FLOOD) for k in range(1, 2001)])
    with pytest.raises(DecodeError, match="colliding hashes"):
        codec.decode(field(flood))


def test_a_map_of_colliding_keys_is_refused() -> None:
    body = (
        b"\xde"
        + struct.pack(">H", 2000)
        + b"".join(msgpack.packb(big(k * FLOOD)) + b"\x00" for k in range(1, 2001))
    )
    with pytest.raises(DecodeError, match="colliding hashes"):
        codec.decode(field(body))


def test_collisions_in_a_map_inside_a_tuple_are_found_too() -> None:
    # Maps with non-string keys nested in extension values are checked as well.
    inner = (
        b"\xde"
        + struct.pack(">H", 500)
        + b"".join(msgpack.packb(big(k * FLOOD)) + b"\x01" for k in range(1, 501))
    )
    tup = msgpack.packb(msgpack.ExtType(EXT_TUPLE, b"\x91" + inner))
    with pytest.raises(DecodeError, match="colliding hashes"):
        codec.decode(field(tup))


def test_a_few_equal_hashes_are_fine_and_honest_non_string_keys_decode() -> None:
    few = [big(k * FLOOD) for k in range(1, MAX_EQUAL_HASHES + 1)] + list(range(1, 101))
    assert len(codec.decode(field(ext_of(EXT_SET, few)))["v"]) == MAX_EQUAL_HASHES + 100
    ints = {i: str(i) for i in range(5000)}
    assert codec.decode(codec.encode({"v": ints}))["v"] == ints
    mixed = {(1, 2): "a", 3.5: "b", 7: {"deep": {1: 2}}}
    assert codec.decode(codec.encode({"v": mixed}))["v"] == mixed
    assert codec.decode(codec.encode({"v": {frozenset({1, 2}), frozenset({3})}}))["v"] == {
        frozenset({1, 2}),
        frozenset({3}),
    }


def test_unhashable_keys_are_a_decode_error() -> None:
    body = b"\x81" + msgpack.packb([1, 2]) + b"\x00"  # a map whose key is a list
    with pytest.raises(DecodeError):
        codec.decode(field(body))


def test_extension_values_are_budgeted() -> None:
    ok = b"\xdd" + struct.pack(">I", MAX_EXT_VALUES) + b"\xd4\x01\x90" * MAX_EXT_VALUES
    assert len(codec.decode(field(ok))["v"]) == MAX_EXT_VALUES
    over = b"\xdd" + struct.pack(">I", MAX_EXT_VALUES + 1) + b"\xd4\x01\x90" * (MAX_EXT_VALUES + 1)
    with pytest.raises(DecodeError, match="extension values"):
        codec.decode(field(over))


def test_containers_are_budgeted() -> None:
    # The packet's own map counts too.
    ok = b"\xdd" + struct.pack(">I", MAX_CONTAINERS - 2) + b"\x80" * (MAX_CONTAINERS - 2)
    assert len(codec.decode(field(ok))["v"]) == MAX_CONTAINERS - 2
    over = b"\xdd" + struct.pack(">I", MAX_CONTAINERS) + b"\x80" * MAX_CONTAINERS
    with pytest.raises(DecodeError, match="arrays and maps"):
        codec.decode(field(over))


def test_the_budget_is_per_packet() -> None:
    # Each decode starts afresh: many packets just under a budget are all fine.
    packet = field(b"\xdd" + struct.pack(">I", MAX_EXT_VALUES) + b"\xd4\x01\x90" * MAX_EXT_VALUES)
    for _ in range(3):
        codec.decode(packet)


def test_the_memory_estimate_counts_containers_of_large_payloads() -> None:
    empty_maps = field(b"\xdd" + struct.pack(">I", 5000) + b"\x80" * 5000)
    assert len(empty_maps) >= COUNT_FROM
    fields, cost = codec.decode_sized(empty_maps)
    assert len(fields["v"]) == 5000
    assert cost == BYTES_FACTOR * len(empty_maps) + CONTAINER_BYTES * (5000 + 2)
    text = field(msgpack.packb("x" * 5000))
    assert decode_value(text)[1] == BYTES_FACTOR * len(text) + CONTAINER_BYTES


def test_small_payloads_are_estimated_from_their_size() -> None:
    small = field(b"\xdc" + struct.pack(">H", 1000) + b"\x80" * 1000)
    assert len(small) < COUNT_FROM
    assert codec.decode_sized(small)[1] == SMALL_FACTOR * len(small)
    with_int_keys = codec.encode({"v": {1: 2, 3: 4}})  # decoded a second time, each map checked and counted
    assert codec.decode_sized(with_int_keys) == (
        {"v": {1: 2, 3: 4}},
        BYTES_FACTOR * len(with_int_keys) + 2 * CONTAINER_BYTES,
    )


def test_a_refused_packet_leaves_no_budget_spent_for_the_next() -> None:
    # Review finding: a packet over the extension budget left its count behind, so the next small packet
    # holding a single tuple was refused too (an attacker could get honest clients dropped).
    over = field(b"\xdd" + struct.pack(">I", MAX_EXT_VALUES + 1) + b"\xd4\x01\x90" * (MAX_EXT_VALUES + 1))
    with pytest.raises(DecodeError):
        codec.decode(over)
    assert codec.decode(codec.encode({"pos": (1, 2)})) == {"pos": (1, 2)}
    assert codec.decode(codec.encode({"big": list(range(3000)), "pos": (1, 2)}))["pos"] == (1, 2)
