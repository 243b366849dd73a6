"""Entity: automatic dataclasses, the type registry, field kinds, blend and extrapolate.

This module uses ``from __future__ import annotations`` on purpose: field annotations are then strings,
and field kinds must still be recognised.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from sprocket.game.entity import (
    Entity,
    EntityError,
    UnknownEntityTypeError,
    angle,
    blend,
    entity_type,
    entity_types,
    extrapolate,
    field_kinds,
    snap,
)

pytestmark = pytest.mark.timeout(60)


# Type names are unique per test module: the registry is global and pytest imports every module first.
class Player(Entity, type_name="test_entity.Player"):
    x: float = 0.0
    y: float = 0.0
    heading: float = angle()
    score: int = 0
    name: str = "anon"
    alive: bool = True
    radius: float = snap(8.0)
    spin: float = angle(0.0, period=math.tau)
    tags: list[str] = dataclasses.field(default_factory=list)
    maybe: float | None = None


class Plain(Entity):
    value: int = 1


def test_subclass_is_a_dataclass_with_defaults() -> None:
    p = Player(x=1.0, score=3)
    assert dataclasses.is_dataclass(p)
    assert (p.x, p.y, p.score, p.name, p.radius, p.tags) == (1.0, 0.0, 3, "anon", 8.0, [])
    assert p == Player(x=1.0, score=3)
    assert p != Player(x=2.0)
    assert "x=1.0" in repr(p)


def test_type_names_and_registry() -> None:
    assert Player.type_name == "test_entity.Player"
    assert Plain.type_name == "Plain"
    assert entity_type("test_entity.Player") is Player
    assert entity_type("Plain") is Plain
    assert entity_types()["Plain"] is Plain


def test_unknown_type_error_names_registered_types() -> None:
    with pytest.raises(UnknownEntityTypeError) as info:
        entity_type("Nope")
    message = str(info.value)
    assert "'Nope'" in message and "test_entity.Player" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    with pytest.raises(EntityError):
        entity_type(["unhashable"])  # type: ignore[arg-type]


def test_redefining_a_type_name_replaces_the_class() -> None:
    class Thing(Entity, type_name="test_entity.Thing"):
        a: int = 1

    class Thing2(Entity, type_name="test_entity.Thing"):
        b: int = 2

    assert entity_type("test_entity.Thing") is Thing2


def test_subclass_inherits_fields_and_metadata() -> None:
    class Boss(Player, type_name="test_entity.Boss"):
        rage: float = 0.0

    kinds = field_kinds(Boss)
    assert kinds.floats == ("x", "y", "rage")
    assert ("heading", 360.0) in kinds.angles
    assert Boss(rage=1.0).heading == 0.0
    assert entity_type("test_entity.Boss") is Boss
    assert entity_type("test_entity.Player") is Player


def test_field_kinds_classify_fields() -> None:
    kinds = field_kinds(Player)
    assert kinds.floats == ("x", "y")
    assert kinds.angles == (("heading", 360.0), ("spin", math.tau))
    assert kinds.discrete == ("score", "name", "alive", "radius", "tags", "maybe")
    assert kinds.scalars == {
        "x": float,
        "y": float,
        "heading": float,
        "score": int,
        "name": str,
        "alive": bool,
        "radius": float,
        "spin": float,
    }
    assert field_kinds(Player) is kinds  # cached


def test_unresolvable_annotations_still_work() -> None:
    class Local:
        pass

    class WithLocal(Entity, type_name="test_entity.WithLocal"):
        x: float = 0.0
        thing: Local | None = None  # a string annotation naming a local class: get_type_hints fails

    kinds = field_kinds(WithLocal)
    assert kinds.floats == ("x",)
    assert kinds.discrete == ("thing",)


@pytest.mark.parametrize(
    "body",
    [
        "x: float",  # no default
        "copy: int = 0",  # clashes with Entity.copy
        "type_name: str = 'a'",  # clashes with the class variable
        "x: int = dataclasses.field(default=0, init=False)",
    ],
)
def test_bad_field_declarations_are_rejected(body: str) -> None:
    with pytest.raises(TypeError):
        exec(f"class Bad(Entity, type_name='test_entity.Bad'):\n    {body}\n", globals(), {})


def test_bad_type_name_is_rejected() -> None:
    with pytest.raises(TypeError):

        class Bad(Entity, type_name=""):
            pass


def test_angle_and_snap_validate() -> None:
    with pytest.raises(ValueError):
        angle(period=0)
    with pytest.raises(ValueError):
        angle(period=math.inf)
    with pytest.raises(TypeError):
        angle("0")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # dataclasses refuses a mutable default

        class Bad(Entity, type_name="test_entity.BadSnap"):
            items: list[int] = snap([])


def test_to_fields_and_from_fields_round_trip() -> None:
    p = Player(x=1.5, heading=90.0, score=2, tags=["a"])
    fields = p.to_fields()
    assert list(fields) == [f.name for f in dataclasses.fields(Player)]
    assert Player.from_fields(fields) == p
    assert Player.from_fields({"y": 2.0}) == Player(y=2.0)  # missing fields take defaults


def test_from_fields_rejects_unknown_fields() -> None:
    with pytest.raises(EntityError) as info:
        Player.from_fields({"x": 1.0, "z": 2.0})
    assert "'z'" in str(info.value) and "test_entity.Player" in str(info.value)
    with pytest.raises(EntityError):
        Player.from_fields({1: 2.0})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        Player.from_fields([("x", 1.0)])  # type: ignore[arg-type]


def test_copy_is_independent() -> None:
    p = Player(x=1.0, tags=["a"])
    c = p.copy()
    assert c == p and c is not p
    c.x = 5.0
    c.tags.append("b")
    assert p.x == 1.0 and p.tags == ["a"]


# -- blend ----------------------------------------------------------------------------------------------


def test_blend_floats_linearly_and_discrete_switch_at_the_end() -> None:
    a = Player(x=0.0, y=10.0, score=1, name="a", alive=True, radius=8.0)
    b = Player(x=10.0, y=20.0, score=2, name="b", alive=False, radius=16.0)
    mid = blend(a, b, 0.5)
    assert (mid.x, mid.y) == (5.0, 15.0)
    assert (mid.score, mid.name, mid.alive, mid.radius) == (1, "a", True, 8.0)  # still a's
    almost = blend(a, b, 0.999)
    assert almost.score == 1
    end = blend(a, b, 1.0)
    assert end == b and end is not b
    assert blend(a, b, 0.0) == a


def test_blend_clamps_t() -> None:
    a = Player(x=0.0)
    b = Player(x=10.0, score=5)
    assert blend(a, b, -1.0) == a
    assert blend(a, b, 2.0) == b


def test_blend_leaves_inputs_alone() -> None:
    a = Player(x=0.0)
    b = Player(x=10.0)
    blend(a, b, 0.3).x = 99.0
    assert (a.x, b.x) == (0.0, 10.0)


def test_blend_of_equal_values_is_exact() -> None:
    a = Player(x=0.1, y=0.7)
    for t in (0.1, 0.3, 0.77):
        m = blend(a, a.copy(), t)
        assert (m.x, m.y) == (0.1, 0.7)


@pytest.mark.parametrize(
    ("start", "end", "t", "expected"),
    [
        (350.0, 10.0, 0.5, 0.0),  # through 0, not through 180
        (350.0, 10.0, 0.25, 355.0),
        (350.0, 10.0, 0.75, 5.0),
        (10.0, 350.0, 0.5, 0.0),
        (90.0, 180.0, 0.5, 135.0),
        (-10.0, 10.0, 0.5, 0.0),
        (0.0, 720.0 + 20.0, 0.5, 10.0),
    ],
)
def test_angles_blend_the_short_way(start: float, end: float, t: float, expected: float) -> None:
    m = blend(Player(heading=start), Player(heading=end), t)
    assert m.heading == pytest.approx(expected, abs=1e-9) or m.heading == pytest.approx(360.0 + expected)
    assert 0.0 <= m.heading < 360.0


def test_radian_angles_use_their_period() -> None:
    m = blend(Player(spin=math.tau - 0.1), Player(spin=0.1), 0.5)
    assert m.spin == pytest.approx(0.0, abs=1e-12) or m.spin == pytest.approx(math.tau)


def test_blend_requires_same_type_and_a_number() -> None:
    with pytest.raises(ValueError):
        blend(Player(), Plain(), 0.5)  # type: ignore[type-var]
    with pytest.raises(ValueError):
        blend(Player(), Player(), math.nan)


def test_extrapolate_continues_floats_and_holds_discrete() -> None:
    a = Player(x=0.0, heading=350.0, score=1)
    b = Player(x=10.0, heading=0.0, score=2)
    e = extrapolate(a, b, 1.5)
    assert e.x == 15.0
    assert e.heading == pytest.approx(5.0)
    assert e.score == 2
    with pytest.raises(ValueError):
        extrapolate(a, b, math.inf)
    with pytest.raises(ValueError):
        extrapolate(a, Plain(), 2.0)  # type: ignore[type-var]
