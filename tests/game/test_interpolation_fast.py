"""InterpolationBuffer.sample's one-pass blending gives exactly what blend() gives, frame after frame.

sample() blends every entity in one pass, without a call per entity; what it shows must still be
exactly what blend() shows.  Pure: snapshots built in memory, times given.
"""

from __future__ import annotations

import random

import pytest

from sprocket.game import Entity, InterpolationBuffer, Snapshot, angle, blend, snap

pytestmark = pytest.mark.timeout(30)


class Ship(Entity, type_name="test_interp_fast.Ship"):
    x: float = 0.0
    y: float = 0.0
    heading: float = angle()
    hp: int = 3
    tag: str = snap("a")


class Rock(Entity, type_name="test_interp_fast.Rock"):
    x: float = 0.0


def _world(rng: random.Random, tick: int, previous: Snapshot | None) -> Snapshot:
    entities: dict[int, Entity] = {}
    jumps = set()
    for eid in range(1, 30):
        old = previous.entities.get(eid) if previous else None
        roll = rng.random()
        if old is not None and roll < 0.3:
            entities[eid] = old  # unchanged: shared, as decode_snapshot shares it
        elif roll < 0.35:
            continue  # despawned (or never there)
        elif roll < 0.4:
            entities[eid] = Rock(x=rng.uniform(0, 100))  # may replace a Ship under the same id
        else:
            entities[eid] = Ship(x=rng.uniform(0, 100), y=rng.uniform(0, 100), heading=rng.uniform(0, 360),
                                 hp=rng.randrange(5), tag=rng.choice("ab"))  # fmt: skip
            if old is not None and roll > 0.95:
                jumps.add(eid)
    return Snapshot(tick, tick * 0.05, entities, frozenset(jumps))


def _expected(a: Snapshot, b: Snapshot, render: float) -> dict[int, dict[str, object]]:
    """What sample() returned before it blended in one pass: blend() or a copy, entity by entity."""
    t = (render - a.time) / (b.time - a.time)
    out = {}
    for eid, entity in a.entities.items():
        new = b.entities.get(eid)
        if new is entity or eid in b.jumps or type(new) is not type(entity):
            out[eid] = entity.to_fields()
        else:
            assert new is not None
            out[eid] = blend(entity, new, t).to_fields()
    return out


def test_sample_blends_exactly_as_blend_does_across_frames_and_pairs() -> None:
    rng = random.Random(12)
    buffer = InterpolationBuffer(delay=0.0)
    snaps = []
    previous = None
    for tick in range(1, 12):
        previous = _world(rng, tick, previous)
        snaps.append(previous)
        buffer.push(previous, previous.time)
    frames = 0
    for i in range(len(snaps) - 1):
        a, b = snaps[i], snaps[i + 1]
        for step in range(4):  # several frames per pair
            render = a.time + (b.time - a.time) * step / 4
            got = buffer.sample(render)
            assert list(got) == list(a.entities)  # same entities, same order
            assert {eid: e.to_fields() for eid, e in got.items()} == _expected(a, b, render)
            for eid, entity in got.items():
                assert type(entity) is type(a.entities[eid])
                assert entity is not a.entities[eid] and entity is not b.entities.get(eid)
            frames += 1
    assert frames == 40


def test_sampled_entities_are_new_objects_each_frame() -> None:
    a = Snapshot(1, 0.0, {1: Ship(x=0.0)})
    b = Snapshot(2, 0.1, {1: Ship(x=10.0)})
    buffer = InterpolationBuffer(delay=0.0)
    buffer.push(a, 0.0)
    buffer.push(b, 0.1)
    first = buffer.sample(0.05)[1]
    first.x = 99.0  # type: ignore[attr-defined]  # the caller scribbles on what it got
    second = buffer.sample(0.05)[1]
    assert second is not first and second.x == pytest.approx(5.0)  # type: ignore[attr-defined]
    assert a.entities[1].x == 0.0 and b.entities[1].x == 10.0  # type: ignore[attr-defined]
