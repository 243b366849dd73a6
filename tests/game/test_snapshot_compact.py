"""The compact snapshot form (what GameServer sends) and quantized fields.

Pure: snapshots built in memory, encoded with ``encode_snapshot(..., compact=True)`` and decoded again.
What must hold: the compact form decodes to the same world as the verbose one (quantized fields rounded
to their step, times to the millisecond), a chain of deltas never drifts, unchanged and sub-step changes
cost nothing, and any malformed or hostile compact wire raises SnapshotError and nothing else.
"""

from __future__ import annotations

import math
import random
from typing import Any

import msgpack
import pytest

from sprocket.codec import get_codec
from sprocket.errors import InvalidArgument, InvalidType
from sprocket.game import (
    Entity,
    Predictor,
    Snapshot,
    SnapshotError,
    World,
    angle,
    decode_snapshot,
    encode_snapshot,
    quantized,
    round_quantized,
    snap,
)
from sprocket.game.snapshot import wire_base_tick

pytestmark = pytest.mark.timeout(60)

CODEC = get_codec("msgpack")


class Disc(Entity, type_name="test_compact.Disc"):
    x: float = quantized(0.1)
    y: float = quantized(0.1, 5.0)
    vx: float = quantized(0.02, snap=True)
    heading: float = angle()
    spin: float = 0.0
    hp: int = 100
    alive: bool = True
    name: str = "disc"
    tags: tuple[str, ...] = ()


class Flag(Entity, type_name="test_compact.Flag"):
    colour: str = "red"
    height: float = snap(1.0)


class Picky(Entity, type_name="test_compact.Picky"):
    hp: int = 0

    def __post_init__(self) -> None:
        if self.hp > 100:
            raise ValueError("hp over 100")


def grid(value: float, step: float) -> float:
    """What a quantized field arrives as."""
    return round(value / step) * step


def expected(entity: Entity) -> dict[str, Any]:
    """``entity``'s fields as the compact form delivers them."""
    d = entity.to_fields()
    if isinstance(entity, Disc):
        d["x"], d["y"], d["vx"] = grid(d["x"], 0.1), grid(d["y"], 0.1), grid(d["vx"], 0.02)
    return d


def same_world(decoded: Snapshot, original: Snapshot) -> None:
    assert decoded.tick == original.tick
    assert decoded.time == round(original.time * 1000) / 1000
    assert decoded.jumps == original.jumps
    assert set(decoded.entities) == set(original.entities)
    for eid, entity in original.entities.items():
        got = decoded.entities[eid]
        assert type(got) is type(entity)
        assert got.to_fields() == expected(entity), eid


def roundtrip(new: Snapshot, base_sent: Snapshot | None, base_held: Snapshot | None) -> Snapshot:
    """Encode against the server's base, pass through the codec, decode against the client's copy of it."""
    wire = CODEC.decode(CODEC.encode({"w": encode_snapshot(new, base_sent, compact=True)}))["w"]
    assert isinstance(wire, list)
    return decode_snapshot(wire, base_held)


def test_full_and_delta_snapshots_decode_to_the_same_world_rounded_to_the_declared_steps() -> None:
    world = World()
    a = world.spawn(Disc(x=1.23, y=4.56, vx=7.891, heading=350.0, tags=("a", "b")))
    b = world.spawn(Flag(colour="blue"))
    c = world.spawn(Picky(hp=5))
    first = world.snapshot(10, 100.0004)
    held = roundtrip(first, None, None)
    same_world(held, first)

    world[a].x += 0.26  # type: ignore[attr-defined]
    world[a].heading = 10.0  # type: ignore[attr-defined]
    world[a].name = "renamed"  # type: ignore[attr-defined]
    world.despawn(b)
    world.despawn(c)
    world.spawn(Disc(x=-3.0), id=b)  # the id now names another type: replaced
    d = world.spawn(Flag(height=2.5))
    world.teleport(d)
    second = world.snapshot(12, 100.0337)
    delta = roundtrip(second, first, held)
    same_world(delta, second)
    assert delta.entities[a].heading == 10.0  # type: ignore[attr-defined]


def test_a_chain_of_deltas_never_drifts_from_the_rounded_server_values() -> None:
    rng = random.Random(7)
    world = World()
    ids = [world.spawn(Disc(x=rng.uniform(-500, 500), y=rng.uniform(-500, 500))) for _ in range(10)]
    sent = world.snapshot(0, 5.0)
    held = roundtrip(sent, None, None)
    for tick in range(1, 300):
        for eid in ids:
            disc = world[eid]
            disc.x += rng.uniform(-3.0, 3.0)  # type: ignore[attr-defined]
            disc.vx = rng.uniform(-100.0, 100.0)  # type: ignore[attr-defined]
        new = world.snapshot(tick, 5.0 + tick / 60)
        held = roundtrip(new, sent, held)
        same_world(held, new)
        sent = new


def test_unchanged_fields_and_changes_under_half_a_step_are_not_sent() -> None:
    world = World()
    eid = world.spawn(Disc(x=10.0))
    other = world.spawn(Flag())
    base = world.snapshot(1, 0.0)
    world[eid].x = 10.04  # type: ignore[attr-defined]  # still 100 steps of 0.1
    assert encode_snapshot(world.snapshot(2, 0.05), base, compact=True) == [2, 1, 50]
    world[eid].x = 10.3  # type: ignore[attr-defined]
    world[other].height = 3.0  # type: ignore[attr-defined]
    # Disc: bit 0 (x), 3 steps more; Flag: bit 1 (height), as it is.
    assert encode_snapshot(world.snapshot(3, 0.1), base, compact=True) == [
        3,
        2,
        100,
        [eid, 1, 3, other, 2, 3.0],
    ]


def test_the_compact_delta_of_a_small_moving_world_is_a_fraction_of_the_verbose_one() -> None:
    world = World()
    ids = [world.spawn(Disc(x=100.0 * i, y=50.0)) for i in range(4)]
    base = world.snapshot(1000, 12345.0)
    for i, eid in enumerate(ids):
        world[eid].x += 7.3 * (i + 1)  # type: ignore[attr-defined]
        world[eid].y -= 1.3  # type: ignore[attr-defined]
    new = world.snapshot(1002, 12345.033)
    verbose = len(msgpack.packb(encode_snapshot(new, base)))
    compact = len(msgpack.packb(encode_snapshot(new, base, compact=True)))
    # 4 x (id, mask, two small ints) and a 7-byte head, against field names and float64s.
    assert compact <= 30 < verbose / 4, (compact, verbose)


def test_full_snapshots_name_each_type_once_with_its_fields_and_steps() -> None:
    world = World()
    for _ in range(3):
        world.spawn(Disc())
    wire = encode_snapshot(world.snapshot(1, 0.0), None, compact=True)
    types = wire[6]
    assert types == [["test_compact.Disc", ["x", "y", "vx", "heading", "spin", "hp", "alive", "name", "tags"],
                      [0.1, 0.1, 0.02, None, None, None, None, None, None]]]  # fmt: skip
    assert [row[:2] for row in wire[7]] == [[1, 0], [2, 0], [3, 0]]
    assert wire_base_tick(wire) is None
    assert wire_base_tick(encode_snapshot(world.snapshot(5, 0.1), world.snapshot(3, 0.0), compact=True)) == 3


def test_a_client_with_other_fields_or_steps_refuses_the_servers_types() -> None:
    world = World()
    world.spawn(Disc())
    wire = encode_snapshot(world.snapshot(1, 0.0), None, compact=True)
    wire[6][0][2][0] = 0.5  # the server's x has another step
    with pytest.raises(SnapshotError, match="same version"):
        decode_snapshot(wire, None)
    wire[6][0][1] = ["x", "y"]
    with pytest.raises(
        SnapshotError, match=r"is \(x/0.5, y/0.1\), this client's is \(x/0.1, y/0.1, vx/0.02, heading"
    ):
        decode_snapshot(wire, None)


def test_a_class_with_post_init_is_still_checked_when_built_from_the_compact_form() -> None:
    world = World()
    eid = world.spawn(Picky(hp=1))
    base = world.snapshot(1, 0.0)
    held = decode_snapshot(encode_snapshot(base, None, compact=True), None)
    world[eid].hp = 500  # type: ignore[attr-defined]
    wire = encode_snapshot(world.snapshot(2, 0.1), base, compact=True)
    with pytest.raises(SnapshotError, match="hp over 100"):
        decode_snapshot(wire, held)


def _base() -> tuple[Snapshot, Snapshot]:
    world = World()
    world.spawn(Disc(x=1.0))
    world.spawn(Flag())
    sent = world.snapshot(10, 1.0)
    return sent, decode_snapshot(encode_snapshot(sent, None, compact=True), None)


DISC = ["test_compact.Disc", ["x", "y", "vx", "heading", "spin", "hp", "alive", "name", "tags"],
        [0.1, 0.1, 0.02, None, None, None, None, None, None]]  # fmt: skip
ROW = [0, 0, 0, 0.0, 0.0, 1, True, "n", ()]


@pytest.mark.parametrize(
    ("wire", "delta", "fragment"),
    [
        ([1, None], False, "list of 3 to 8"),
        ([1, None, 0, [], [], [], [], [], []], False, "list of 3 to 8"),
        (["1", None, 0], False, "tick must be an int"),
        ([True, None, 0], False, "tick must be an int"),
        ([1, None, 0.5], False, "time must be an int"),
        ([1, None, 10**400], False, "time is out of range"),
        ([1, "2", 0], True, "base must be an int"),
        ([12, 1, 0], True, "against tick 11"),
        ([12, 2, 0], False, "no base was given"),
        ([12, 2, 0, {"a": 1}], True, "changes must be a list"),
        ([12, 2, 0, [1]], True, "each entry must be id, mask"),
        ([12, 2, 0, ["1", 1, 1]], True, "entity id must be an int"),
        ([12, 2, 0, [9, 1, 1]], True, "not in the base"),
        ([12, 2, 0, [1, 0]], True, "not a change mask"),
        ([12, 2, 0, [1, -1, 5]], True, "not a change mask"),
        ([12, 2, 0, [1, True, 5]], True, "not a change mask"),
        ([12, 2, 0, [1, 1 << 9, 5]], True, "not a change mask"),
        ([12, 2, 0, [1, 10**30, 5]], True, "not a change mask"),
        ([12, 2, 0, [1, 3, 5]], True, "fewer values follow"),
        ([12, 2, 0, [1, 1, 5, 1, 1, 5]], True, "changed twice"),
        ([12, 2, 0, [1, 1, "0.5"]], True, "must be an int (steps) or a float (exact)"),
        ([12, 2, 0, [1, 1, math.inf]], True, "must be finite"),
        ([12, 2, 0, [1, 1, True]], True, "must be an int"),
        ([12, 2, 0, [1, 1, 2**60]], True, "out of range"),
        ([12, 2, 0, [1, 16, math.nan]], True, "must be finite"),
        ([12, 2, 0, [1, 16, "1"]], True, "must be a number"),
        ([12, 2, 0, [1, 32, 1.5]], True, "must be an int"),
        ([12, 2, 0, [1, 64, 1]], True, "must be bool"),
        ([12, 2, 0, [1, 128, None]], True, "must be str"),
        ([12, 2, 0, [2, 1, 5]], True, "must be str"),
        ([12, 2, 0, [], "x"], True, "jumps must be a list"),
        ([12, 2, 0, [], [9]], True, "not in the snapshot"),
        ([12, 2, 0, [], [], [9]], True, "not in the base"),
        ([12, 2, 0, [], [], [None]], True, "entity id must be an int"),
        ([1, None, 0, [], [], [], [], [[1, 0, *ROW]]], False, "not in the snapshot's types"),
        ([1, None, 0, [], [], [], [DISC], [[1, 1, *ROW]]], False, "not in the snapshot's types"),
        ([1, None, 0, [], [], [], [DISC], [[1, 0, *ROW[:-1]]]], False, "has 9 fields, got 8"),
        ([1, None, 0, [], [], [], [DISC], [[1, 0, *ROW], [1, 0, *ROW]]], False, "already in use"),
        ([1, None, 0, [], [], [], [DISC], [[1]]], False, "each entry must be"),
        ([1, None, 0, [], [], [], [DISC], [[1, 0, None, *ROW[1:]]]], False, "must be an int"),
        ([1, None, 0, [], [], [], [DISC], [[1, 0, math.nan, *ROW[1:]]]], False, "must be finite"),
        ([1, None, 0, [], [], [], [["nope", [], []]], []], False, "unknown entity type"),
        ([1, None, 0, [], [], [], [[1, [], []]], []], False, "type name must be a str"),
        ([1, None, 0, [], [], [], [["test_compact.Disc", 1, 2]], []], False, "same version"),
        ([1, None, 0, [], [], [], [["test_compact.Disc"]], []], False, "each entry must be"),
        ([1, None, 0, [], [], [], "t"], False, "types must be a list"),
        ([1, None, 0, [], [], [], [DISC], [[1, 0, *ROW]] * 6], False, "over the limit of 5"),
    ],
)
def test_malformed_compact_wires_are_refused_with_a_reason(wire: Any, delta: bool, fragment: str) -> None:
    _, held = _base()
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(wire, held if delta else None, max_entities=5)
    assert fragment in str(info.value)


JUNK: list[Any] = [None, True, -1, 0, 1, 2, 7, 2**63, -(2**70), 0.5, math.nan, math.inf, -1e308, "", "x",
                   "test_compact.Disc", b"\x00", [], [1], [[]], {}, {"a": 1}, (), [0, 0, 0]]  # fmt: skip


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.6:
            out[i] = _mutate(out[i], rng)
        elif choice < 0.8:
            del out[i]
        else:
            out.insert(i, rng.choice(JUNK))
        return out
    return rng.choice(JUNK)


def test_mutated_compact_wires_raise_snapshot_error_and_nothing_else() -> None:
    rng = random.Random(15)
    world = World()
    ids = [world.spawn(Disc(x=float(i))) for i in range(3)] + [world.spawn(Flag())]
    sent = world.snapshot(1, 1.0)
    full = encode_snapshot(sent, None, compact=True)
    held = decode_snapshot(full, None)
    for eid in ids[:3]:
        world[eid].x += 1.0  # type: ignore[attr-defined]
        world[eid].hp -= 1  # type: ignore[attr-defined]
    world.despawn(ids[3])
    world.spawn(Flag())
    world.teleport(ids[0])
    delta = encode_snapshot(world.snapshot(3, 1.05), sent, compact=True)
    outcomes = {"decoded": 0, "refused": 0}
    for i in range(4000):
        wire = _mutate(full if i % 2 else delta, rng)
        try:
            result = decode_snapshot(wire, held, max_entities=50)
        except SnapshotError:
            outcomes["refused"] += 1
        else:
            assert isinstance(result, Snapshot)
            assert len(result.entities) <= 50
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 1000 and outcomes["decoded"] > 10, outcomes


# -- quantized() -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: quantized(0), InvalidArgument),
        (lambda: quantized(-0.1), InvalidArgument),
        (lambda: quantized(math.nan), InvalidArgument),
        (lambda: quantized(math.inf), InvalidArgument),
        (lambda: quantized("0.1"), InvalidType),  # type: ignore[arg-type]
        (lambda: quantized(0.1, math.inf), InvalidArgument),
        (lambda: quantized(0.1, "0"), InvalidType),  # type: ignore[arg-type]
        (lambda: quantized(0.1, snap=1), InvalidType),  # type: ignore[arg-type]
    ],
)
def test_quantized_refuses_bad_steps_and_defaults(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()


def test_a_quantized_field_must_be_a_float() -> None:
    with pytest.raises(InvalidType, match="annotated float"):

        class Bad(Entity, type_name="test_compact.Bad"):
            n: int = quantized(1.0)  # type: ignore[assignment]


def test_a_quantized_value_too_large_for_its_step_is_invalid_on_the_server() -> None:
    world = World()
    eid = world.spawn(Disc())
    assert world.find_invalid() == []
    world[eid].x = 1e300  # type: ignore[attr-defined]
    assert [(i, name) for i, name, _ in world.find_invalid()] == [(eid, "x")]
    with pytest.raises(InvalidArgument):
        encode_snapshot(Snapshot(1, 0.0, {1: Disc(x=math.nan)}), None, compact=True)


def test_a_quantized_snap_field_is_discrete_and_a_plain_one_blends() -> None:
    from sprocket.game.entity import field_kinds

    kinds = field_kinds(Disc)
    assert "x" in kinds.floats and "vx" in kinds.discrete
    assert kinds.quantized == {"x": 0.1, "y": 0.1, "vx": 0.02}


def test_prediction_does_not_smooth_an_error_within_the_quantization_steps() -> None:
    def rule(disc: Disc, keys: Any, dt: float) -> Disc:
        disc.x += keys * dt
        return disc

    predictor: Predictor[Disc, float] = Predictor(rule, Disc(x=0.0), 1.0)
    predictor.apply(1.0)
    predictor.apply(1.0)
    # The server applied input 1 and sent x = 1.0 rounded: off by 0.04, within the 0.1 step.
    assert predictor.reconcile(Disc(x=1.04), 1) == pytest.approx(0.04)
    assert predictor.display.x == pytest.approx(2.04)  # no correction offset: shown where it is
    # Off by more than a step: a misprediction, smoothed as before (the offset keeps what was shown).
    predictor.apply(1.0)
    assert predictor.reconcile(Disc(x=2.5), 2) == pytest.approx(0.46)
    assert predictor.display.x == pytest.approx(3.04)


def test_entities_named_exact_travel_unrounded_and_the_others_still_in_steps() -> None:
    world = World()
    mine = world.spawn(Disc(x=10.04, vx=1.005))
    other = world.spawn(Disc(x=10.04, vx=1.005))
    first = world.snapshot(1, 0.0)
    full = encode_snapshot(first, None, compact=True, exact={mine})
    # x exactly; y (5.0 by default) is on its grid, so its steps, which decode to the very same float;
    # vx, a snap=True field, in steps of 0.02 all the same.
    assert [row[2:5] for row in full[7]] == [[10.04, 50, 50], [100, 50, 50]]
    held = decode_snapshot(full, None)
    assert held.entities[mine].to_fields() == {**first.entities[mine].to_fields(), "vx": grid(1.005, 0.02)}
    assert held.entities[other].x == grid(10.04, 0.1)  # type: ignore[attr-defined]
    world[mine].x = world[other].x = 12.34  # type: ignore[attr-defined]  # off the grid: a float
    second = world.snapshot(2, 0.1)
    delta = encode_snapshot(second, first, compact=True, exact={mine})
    assert delta[3] == [mine, 1, 12.34, other, 1, 23]
    decoded = decode_snapshot(delta, held)
    assert decoded.entities[mine].x == 12.34 and decoded.entities[other].x == grid(12.34, 0.1)  # type: ignore[attr-defined]
    assert world[mine].x == 12.34  # type: ignore[attr-defined]  # the live entities are never rounded
    world[mine].x = grid(12.5, 0.1)  # type: ignore[attr-defined]  # on the grid: steps, decoding to it exactly
    third = world.snapshot(3, 0.2)
    delta = encode_snapshot(third, second, compact=True, exact={mine})
    assert delta[3] == [mine, 1, 2]
    assert decode_snapshot(delta, decoded).entities[mine].x == grid(12.5, 0.1)  # type: ignore[attr-defined]


def test_round_quantized_rounds_in_place_and_leaves_what_is_not_a_finite_number() -> None:
    disc = Disc(x=0.26, y=math.nan, vx=-0.031)
    assert round_quantized(disc) is disc
    assert disc.x == grid(0.26, 0.1) and math.isnan(disc.y) and disc.vx == grid(-0.031, 0.02)
    flag = Flag(height=1.234)
    assert round_quantized(flag).height == 1.234  # nothing quantized: untouched
    with pytest.raises(InvalidType):
        round_quantized({"x": 1.0})  # type: ignore[type-var]
