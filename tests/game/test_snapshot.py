"""World, Snapshot, the delta wire form, and SnapshotHistory."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sprocket.game.entity import Entity, angle
from sprocket.game.snapshot import (
    Snapshot,
    SnapshotError,
    SnapshotHistory,
    UnknownEntityError,
    World,
    decode_snapshot,
    encode_snapshot,
)

pytestmark = pytest.mark.timeout(60)


class Player(Entity, type_name="test_snapshot.Player"):
    x: float = 0.0
    y: float = 0.0
    heading: float = angle()
    score: int = 0
    name: str = ""
    alive: bool = True
    items: list[int] = dataclasses.field(default_factory=list)


class Rock(Entity, type_name="test_snapshot.Rock"):
    x: float = 0.0
    size: int = 1


class Picky(Entity, type_name="test_snapshot.Picky"):
    hp: int = 1

    def __post_init__(self) -> None:
        if self.hp > 100:
            raise RuntimeError("hp over 100")  # any exception: decode must turn it into SnapshotError


def assert_plain(value: Any) -> None:
    """Only msgpack-friendly plain values: dicts with str keys, lists, scalars."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)
    else:
        assert value is None or isinstance(value, (bool, int, float, str)), value


def over_msgpack(wire: dict[str, Any]) -> Any:
    # strict_map_key (the default) refuses int map keys: the wire must not have any.
    return msgpack.unpackb(msgpack.packb(wire), raw=False)


# -- World ----------------------------------------------------------------------------------------------


def test_world_spawns_with_increasing_ids_never_reused() -> None:
    world = World()
    a = world.spawn(Player())
    b = world.spawn(Rock())
    assert (a, b) == (1, 2)
    world.despawn(b)
    assert world.spawn(Rock()) == 3
    assert world.spawn(Rock(), id=10) == 10
    assert world.spawn(Rock(), id=4) == 4
    assert world.spawn(Rock()) == 5
    assert world.spawn(Rock()) == 6
    assert sorted(world) == [1, 3, 4, 5, 6, 10]
    assert len(world) == 6


def test_world_lookup() -> None:
    world = World()
    p = Player(x=1.0)
    pid = world.spawn(p)
    assert world[pid] is p and world.get(pid) is p
    assert pid in world and 99 not in world
    assert world.get(99) is None
    assert dict(world.items()) == {pid: p}
    with pytest.raises(UnknownEntityError) as info:
        world[99]
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    assert "99" in str(info.value)


def test_world_spawn_and_despawn_errors() -> None:
    world = World()
    world.spawn(Player(), id=1)
    with pytest.raises(ValueError):
        world.spawn(Player(), id=1)
    with pytest.raises(TypeError):
        world.spawn("player")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        world.spawn(Player(), id=True)
    with pytest.raises(UnknownEntityError):
        world.despawn(2)
    assert world.despawn(1) == Player()
    with pytest.raises(KeyError):
        world.despawn(1)


def test_snapshot_copies_entities() -> None:
    world = World()
    p = Player(x=1.0, items=[1])
    pid = world.spawn(p)
    snap = world.snapshot(tick=7, time=0.5)
    p.x = 2.0
    p.items.append(2)
    assert snap.tick == 7 and snap.time == 0.5
    assert snap.entities[pid] == Player(x=1.0, items=[1])
    with pytest.raises(TypeError):
        world.snapshot(1.5, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        world.snapshot(1, math.nan)


# -- encode / decode ----------------------------------------------------------------------------------


def make_world() -> tuple[World, int, int]:
    world = World()
    pid = world.spawn(Player(x=1.0, name="ann"))
    rid = world.spawn(Rock(x=5.0, size=3))
    return world, pid, rid


def test_full_snapshot_round_trip_over_msgpack() -> None:
    world, pid, rid = make_world()
    snap = world.snapshot(1, 0.05)
    wire = encode_snapshot(snap, None)
    assert_plain(wire)
    assert wire["base"] is None
    assert sorted(item[0] for item in wire["spawn"]) == [pid, rid]
    assert decode_snapshot(over_msgpack(wire), None) == snap


def test_delta_carries_only_changes() -> None:
    world, pid, rid = make_world()
    base = world.snapshot(1, 0.05)
    world[pid].x = 2.0  # type: ignore[attr-defined]
    world.despawn(rid)
    new_id = world.spawn(Rock(size=9))
    new = world.snapshot(2, 0.10)
    wire = encode_snapshot(new, base)
    assert_plain(wire)
    assert wire["base"] == 1
    assert wire["change"] == [[pid, {"x": 2.0}]]
    assert wire["gone"] == [rid]
    assert wire["spawn"] == [[new_id, "test_snapshot.Rock", {"x": 0.0, "size": 9}]]
    decoded = decode_snapshot(over_msgpack(wire), base)
    assert decoded == new
    assert decoded.entities[pid] is not base.entities[pid]  # rebuilt, not mutated in place
    assert base.entities[pid].x == 1.0  # type: ignore[attr-defined]


def test_unchanged_world_delta_is_tiny_and_shares_entities() -> None:
    world = World()
    for i in range(50):
        world.spawn(Player(x=float(i), name=f"p{i}"))
    base = world.snapshot(10, 1.0)
    new = world.snapshot(11, 1.05)
    wire = encode_snapshot(new, base)
    assert set(wire) == {"tick", "time", "base"}
    assert len(msgpack.packb(wire)) < 40
    assert len(msgpack.packb(encode_snapshot(new, None))) > 50 * 20
    decoded = decode_snapshot(wire, base)
    assert decoded == new
    assert all(decoded.entities[i] is base.entities[i] for i in base.entities)


def test_entity_replaced_by_another_type_is_gone_and_spawned() -> None:
    world = World()
    world.spawn(Player(x=1.0), id=5)
    base = world.snapshot(1, 0.0)
    world.despawn(5)
    world.spawn(Rock(x=1.0), id=5)
    new = world.snapshot(2, 0.1)
    wire = encode_snapshot(new, base)
    assert wire["gone"] == [5]
    assert wire["spawn"][0][:2] == [5, "test_snapshot.Rock"]
    assert decode_snapshot(wire, base) == new


def test_full_snapshot_ignores_a_given_base() -> None:
    world, _, _ = make_world()
    other = World().snapshot(99, 0.0)
    snap = world.snapshot(3, 0.1)
    assert decode_snapshot(encode_snapshot(snap, None), other) == snap


def test_decode_converts_int_floats_and_fills_defaults() -> None:
    wire = {"tick": 1, "time": 2, "base": None, "spawn": [[1, "test_snapshot.Player", {"x": 3}]]}
    snap = decode_snapshot(wire, None)
    assert snap.time == 2.0 and isinstance(snap.time, float)
    p = snap.entities[1]
    assert p == Player(x=3.0) and isinstance(p.x, float)  # type: ignore[attr-defined]


def test_encode_rejects_non_snapshots() -> None:
    with pytest.raises(TypeError):
        encode_snapshot({"tick": 1}, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_snapshot(World().snapshot(1, 0.0), {"tick": 0})  # type: ignore[arg-type]


BASE = Snapshot(5, 0.25, {1: Player(x=1.0), 2: Rock()})


@pytest.mark.parametrize(
    ("wire", "base", "fragment"),
    [
        ({"tick": 6, "time": 0.3, "base": 4}, BASE, "against tick 4"),
        ({"tick": 6, "time": 0.3, "base": 5}, None, "no base"),
        ({"tick": 6, "time": 0.3, "base": None, "spawn": [[3, "Martian", {}]]}, None, "unknown entity type"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"z": 1.0}]]}, BASE, "no field 'z'"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[3, {"x": 1.0}]]}, BASE, "not in the base"),
        ({"tick": 6, "time": 0.3, "base": 5, "gone": [3]}, BASE, "not in the base"),
        ({"tick": 6, "time": 0.3, "base": 5, "gone": [1], "change": [[1, {}]]}, BASE, "not in the base"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {}], [1, {}]]}, BASE, "changed twice"),
        ({"tick": 6, "time": 0.3, "base": 5, "spawn": [[1, "test_snapshot.Rock", {}]]}, BASE, "in use"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"x": "far"}]]}, BASE, "must be a number"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"x": math.inf}]]}, BASE, "finite"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"x": 10**400}]]}, BASE, "finite"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"x": True}]]}, BASE, "must be a number"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"score": 1.5}]]}, BASE, "must be an int"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"alive": 1}]]}, BASE, "must be bool"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {"name": 1}]]}, BASE, "must be str"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1, {1: 1}]]}, BASE, "no field 1"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": [[1]]}, BASE, "[id, fields]"),
        ({"tick": 6, "time": 0.3, "base": 5, "change": {"1": {}}}, BASE, "must be a list"),
        ({"tick": 6, "time": 0.3, "base": 5, "spawn": [[2.0, "test_snapshot.Rock", {}]]}, BASE, "id"),
        ({"tick": 6, "time": 0.3, "base": 5, "spawn": [[7, "test_snapshot.Rock", []]]}, BASE, "dict"),
        ({"tick": 6, "time": 0.3, "base": None, "spawn": [[7, ["x"], {}]]}, None, "type name"),
        (
            {"tick": 6, "time": 0.3, "base": None, "spawn": [[7, "test_snapshot.Picky", {"hp": 500}]]},
            None,
            "hp over 100",
        ),
        ({"tick": "6", "time": 0.3, "base": None}, None, "'tick'"),
        ({"tick": 6, "time": None, "base": None}, None, "'time'"),
        ({"tick": 6, "time": math.nan, "base": None}, None, "'time'"),
        ({"tick": 6, "time": 0.3, "base": "5"}, BASE, "'base'"),
        ([6, None, 0.3], None, "time must be an int"),  # a list is the compact form
        ("6", None, "must be a dict or a list"),
    ],
)
def test_decode_rejects_bad_wires(wire: Any, base: Snapshot | None, fragment: str) -> None:
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(wire, base)
    assert fragment in str(info.value)


# -- properties -----------------------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
players = st.builds(
    Player,
    x=finite,
    y=finite,
    heading=st.floats(0, 359.9),
    score=st.integers(-(2**40), 2**40),
    name=st.text(max_size=8),
    alive=st.booleans(),
    items=st.lists(st.integers(0, 100), max_size=3),
)
rocks = st.builds(Rock, x=finite, size=st.integers(0, 10))
entities = st.one_of(players, rocks)
entity_maps = st.dictionaries(st.integers(0, 40), entities, max_size=25)


def mutate(data: st.DataObject, before: dict[int, Entity]) -> dict[int, Entity]:
    """A plausible next world: some despawned, some fields changed, some spawned."""
    after: dict[int, Entity] = {}
    for eid, entity in before.items():
        action = data.draw(st.sampled_from(["keep", "keep", "change", "gone"]))
        if action == "gone":
            continue
        new = entity.copy()
        if action == "change":
            if isinstance(new, Player):
                new.x = data.draw(finite)
                if data.draw(st.booleans()):
                    new.score += 1
            elif isinstance(new, Rock):
                new.size = data.draw(st.integers(0, 10))
        after[eid] = new
    after.update(data.draw(st.dictionaries(st.integers(41, 60), entities, max_size=5)))
    return after


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), start=entity_maps, use_base=st.booleans(), independent=st.booleans())
def test_delta_round_trip(
    data: st.DataObject, start: dict[int, Entity], use_base: bool, independent: bool
) -> None:
    base = Snapshot(3, 0.15, start) if use_base else None
    following = data.draw(entity_maps) if independent else mutate(data, start)
    new = Snapshot(4, 0.2, following)
    wire = encode_snapshot(new, base)
    assert_plain(wire)
    assert decode_snapshot(over_msgpack(wire), base) == new
    assert decode_snapshot(wire, base) == new


@settings(max_examples=100, deadline=None)
@given(start=entity_maps)
def test_unchanged_delta_is_constant_size(start: dict[int, Entity]) -> None:
    base = Snapshot(1, 0.0, start)
    same = Snapshot(2, 0.05, {i: e.copy() for i, e in start.items()})
    wire = encode_snapshot(same, base)
    assert set(wire) == {"tick", "time", "base"}


# -- hostile wires ------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.sampled_from(["test_snapshot.Player", "test_snapshot.Rock", "test_snapshot.Picky", "x", "hp"]),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(-3, 3)), inner, max_size=4),
    ),
    max_leaves=20,
)
# Junk shaped like a wire — a valid header, entries of the right shape with junk inside — so the decoder
# gets past the outer checks (which plain junk exercises) into the entries.
type_names = st.sampled_from(["test_snapshot.Player", "test_snapshot.Rock", "test_snapshot.Picky", "?"])
ids = st.one_of(st.sampled_from([1, 2, 3]), junk)
field_names = st.sampled_from(["x", "y", "heading", "score", "name", "alive", "items", "size", "hp", "?"])
field_maps = st.one_of(st.dictionaries(field_names, st.one_of(scalars, junk), max_size=4), junk)
shaped = st.fixed_dictionaries(
    {"tick": st.integers(0, 10), "time": finite, "base": st.sampled_from([None, 5])},
    optional={
        "spawn": st.lists(st.one_of(st.tuples(ids, type_names, field_maps), junk), max_size=3),
        "change": st.lists(st.one_of(st.tuples(ids, field_maps), junk), max_size=3),
        "gone": st.lists(ids, max_size=2),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire=st.one_of(junk, shaped), with_base=st.booleans())
def test_hostile_wires_only_raise_snapshot_error(wire: Any, with_base: bool) -> None:
    try:
        result = decode_snapshot(wire, BASE if with_base else None)
    except SnapshotError:
        return
    assert isinstance(result, Snapshot)
    for entity in result.entities.values():
        assert isinstance(entity, Entity)


# -- SnapshotHistory --------------------------------------------------------------------------------


def test_history_keeps_recent_snapshots() -> None:
    history = SnapshotHistory(capacity=3)
    assert history.latest is None and len(history) == 0
    snaps = [Snapshot(t, t * 0.05, {}) for t in range(1, 6)]
    for s in snaps:
        history.add(s)
    assert len(history) == 3
    assert history.get(1) is None and history.get(2) is None
    assert history.get(3) is snaps[2] and 5 in history and 2 not in history
    assert history.latest is snaps[4]


def test_history_replaces_and_ignores_stale_adds() -> None:
    history = SnapshotHistory(capacity=2)
    history.add(Snapshot(10, 0.5, {}))
    history.add(Snapshot(11, 0.55, {}))
    replacement = Snapshot(11, 0.55, {1: Rock()})
    history.add(replacement)
    assert history.get(11) is replacement and history.latest is replacement
    history.add(Snapshot(3, 0.0, {}))  # older than everything held, and over capacity: evicted at once
    assert history.get(3) is None and history.latest is replacement
    assert history.get([1]) is None  # type: ignore[arg-type]
    history.clear()
    assert len(history) == 0 and history.latest is None


def test_history_validates() -> None:
    with pytest.raises(ValueError):
        SnapshotHistory(0)
    with pytest.raises(TypeError):
        SnapshotHistory(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SnapshotHistory().add({"tick": 1})  # type: ignore[arg-type]
