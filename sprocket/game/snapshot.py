"""Snapshots of the server's entities, and their compact delta wire form.

* :class:`World` — the server's entity store: spawn, despawn, look up, and take a :class:`Snapshot`.
* :class:`Snapshot` — an immutable picture of every entity at one tick.
* :func:`encode_snapshot` / :func:`decode_snapshot` — turn a snapshot into plain msgpack-friendly values
  as a *delta* against a snapshot the receiver already has (only changed fields, spawns and despawns),
  and back.  An unchanged world encodes to a handful of bytes.
* :class:`SnapshotHistory` — the last N snapshots by tick, to find delta baselines.

The wire form is a dict with str keys::

    {"tick": 42, "time": 1.4, "base": 40,                 # base: the tick this is a delta against, or None
     "spawn": [[id, "type_name", {"field": value, ...}], ...],   # every field of new entities
     "change": [[id, {"field": new_value, ...}], ...],            # changed fields of existing entities
     "gone": [id, ...],                                          # despawned entities
     "jump": [id, ...]}                       # entities that teleported since the previous snapshot

Empty lists are left out.  ``jump`` (added in issue 12; absent means none, so older snapshots decode as
before, and older clients ignore it as an unknown key) marks entities the server moved discontinuously
(:meth:`World.teleport`): clients show such a move as a jump, never blended, extrapolated or smoothed.
Decoding applies ``gone``, then ``spawn``, then ``change``, so an id whose
entity was replaced by one of another type appears in ``gone`` and ``spawn`` together.

Decoding trusts nothing: the dict comes from the network, so anything that does not fit — wrong types,
an unknown entity type or field, a delta against a base the receiver does not have — raises
:class:`SnapshotError` and never any other exception.  Values of fields annotated ``float`` (and angle
fields) must be finite numbers, ``int`` fields ints, ``bool`` fields bools, ``str`` fields strs; fields
with any other annotation are passed through unchecked.

This module must never import pygame, touch sockets or threads, or read a clock.  Standard library only
(and :mod:`sprocket.errors` for its exceptions).
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from sprocket.errors import InvalidArgument, SprocketError

from ._checks import InvalidType, as_float, check_count, check_number, describe
from .entity import Entity, EntityError, entity_type, field_kinds

__all__ = [
    "Snapshot",
    "SnapshotError",
    "SnapshotHistory",
    "UnknownEntityError",
    "World",
    "decode_snapshot",
    "encode_snapshot",
    "entity_problems",
    "field_problem",
    "snapshot_cost",
]

#: How many entities a client accepts in one snapshot unless told otherwise (GameClient.max_entities).
DEFAULT_MAX_ENTITIES = 5000


class SnapshotError(SprocketError, ValueError):
    """A snapshot wire dict that cannot be decoded (malformed, hostile, or against the wrong base)."""


class UnknownEntityError(SnapshotError, KeyError):
    """A :class:`World` lookup or despawn of an id that is not there.  Also a ``KeyError``."""

    def __str__(self) -> str:
        # KeyError.__str__ would show the message in quotes, as if it were a key.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Snapshot:
    """Every entity at one server tick: ``tick``, server ``time`` in seconds, ``entities`` (id -> entity),
    and ``jumps``: the ids of entities that teleported since the previous snapshot (see
    :meth:`World.teleport`; shown as a jump, never blended or smoothed across).

    Treat it as immutable, entities included: snapshots share unchanged entity objects with each other
    (that is what makes decoding deltas cheap).  :meth:`World.snapshot` copies the live entities.
    """

    tick: int
    time: float
    entities: Mapping[int, Entity]
    jumps: frozenset[int] = frozenset()


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class World(Mapping[int, Entity]):
    """The server's live entities by id.  A read-only ``Mapping[int, Entity]`` plus spawn/despawn.

    Entities are stored by reference: mutate them in place (``world[pid].x += 1``) and the next
    :meth:`snapshot` picks the change up.  Automatic ids count up from 1 and are never reused, so a
    client can never mistake a new entity for an old one that had the same id.
    """

    def __init__(self) -> None:
        self._entities: dict[int, Entity] = {}
        self._by_type: dict[type[Entity], dict[int, Entity]] = {}  # for the fast check in find_invalid()
        self._next_id = 1
        self._jumps: set[int] = set()  # teleported since the last snapshot()

    def teleport(self, id: int | Entity) -> None:
        """Mark the entity ``id`` (or that entity object) as having jumped: its next move is a teleport.

        Call it when you move an entity discontinuously (a respawn, a face-off after a goal).  The next
        :meth:`snapshot` carries the mark, and clients show the move as a jump instead of blending it
        over the snapshot interval (interpolation) or gliding to it (prediction's correction smoothing).
        Raises :class:`UnknownEntityError` (a ``ValueError`` and ``KeyError``) if there is no such entity.
        """
        if isinstance(id, Entity):
            found = next((eid for eid, entity in self._entities.items() if entity is id), None)
            if found is None:
                raise UnknownEntityError(f"{id!r} is not in the world")
            id = found
        if id not in self._entities:
            raise UnknownEntityError(f"no entity with id {id!r} to teleport")
        self._jumps.add(id)

    @property
    def teleported(self) -> frozenset[int]:
        """The ids marked by :meth:`teleport` since the last :meth:`snapshot`."""
        return frozenset(self._jumps)

    def spawn(self, entity: Entity, id: int | None = None) -> int:
        """Add ``entity`` under ``id`` (or the next free automatic id) and return the id.

        Raises ``InvalidType`` (an :class:`~sprocket.errors.InvalidArgument` and a ``TypeError``) if
        ``entity`` is not an :class:`Entity` or ``id`` not an int; ``InvalidArgument`` (a ``ValueError``)
        if ``id`` is already in use.
        """
        if not isinstance(entity, Entity):
            raise InvalidType(f"entity must be an Entity, got {describe(entity)}")
        if id is None:
            while self._next_id in self._entities:
                self._next_id += 1
            id = self._next_id
            self._next_id += 1
        elif not _is_int(id):
            raise InvalidType(f"id must be an int, got {describe(id)}")
        elif id in self._entities:
            raise InvalidArgument(f"id {id} is already in use (by {self._entities[id]!r})")
        self._entities[id] = entity
        self._by_type.setdefault(type(entity), {})[id] = entity
        return id

    def despawn(self, id: int) -> Entity:
        """Remove the entity ``id`` and return it.

        Raises :class:`UnknownEntityError` (a ``ValueError`` and ``KeyError``) if there is none.
        """
        try:
            entity = self._entities.pop(id)
        except (KeyError, TypeError):
            raise UnknownEntityError(f"no entity with id {id!r} to despawn") from None
        group = self._by_type[type(entity)]
        del group[id]
        if not group:
            del self._by_type[type(entity)]
        return entity

    def find_invalid(self) -> list[tuple[int, str, str]]:
        """Every entity field a snapshot cannot carry, as ``(entity id, field name, why)`` (empty if none).

        A ``float`` (or angle) field holding NaN, an infinity or a non-number, an ``int`` field holding a
        non-int, and so on: the values a client would refuse the whole snapshot for (see
        :func:`entity_problems`).  Fast when everything is fine (one pass in C per entity type and
        kind of field); the slow per-entity check runs only for a type that failed it.
        """
        found: list[tuple[int, str, str]] = []
        for cls, group in self._by_type.items():
            if not group or _group_is_valid(cls, group):
                continue
            for eid, entity in group.items():
                found.extend((eid, name, why) for name, why in entity_problems(entity))
        return found

    def __getitem__(self, id: int) -> Entity:
        """Return the entity ``id``; raises :class:`UnknownEntityError` (also a ``KeyError``) if absent."""
        try:
            return self._entities[id]
        except KeyError:
            raise UnknownEntityError(f"no entity with id {id!r}") from None

    def __contains__(self, id: object) -> bool:
        return id in self._entities

    def __iter__(self) -> Iterator[int]:
        return iter(self._entities)

    def __len__(self) -> int:
        return len(self._entities)

    def snapshot(self, tick: int, time: float) -> Snapshot:
        """Return a :class:`Snapshot` of copies of every entity, stamped ``tick`` and server ``time``.

        It carries the :meth:`teleport` marks made since the last call (of entities still there), and
        clears them.

        Raises ``InvalidType`` (also a ``TypeError``) if ``tick`` is not an int or ``time`` not a number,
        ``InvalidArgument`` (a ``ValueError``) if ``time`` is not finite.
        """
        if not _is_int(tick):
            raise InvalidType(f"tick must be an int, got {describe(tick)}")
        time = check_number(time, "time", what="a number of seconds")
        jumps = frozenset(i for i in self._jumps if i in self._entities)
        self._jumps.clear()
        return Snapshot(tick, time, {i: e.copy() for i, e in self._entities.items()}, jumps)


_FAST_KINDS: dict[type, frozenset[type]] = {
    float: frozenset({float, int}),
    int: frozenset({int}),
    bool: frozenset({bool}),
    str: frozenset({str}),
}


def _small_group_is_valid(cls: type[Entity], group: Mapping[int, Entity]) -> bool:
    # The same test as the bulk one below (the value types of _FAST_KINDS, floats finite), entity by
    # entity: a float field holds a finite float or an int within a float's range.
    scalars = field_kinds(cls).scalars.items()
    for entity in group.values():
        d = entity.__dict__
        for name, expected in scalars:
            try:
                value = d[name]
            except KeyError:  # a field deleted from an instance
                return False
            kind = type(value)
            if expected is float:
                if kind is float:
                    if value - value != 0.0:  # NaN or an infinity
                        return False
                elif kind is not int or not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                    return False
            elif kind is not expected:
                return False
    return True


# Groups of at most this many entities of one type are checked entity by entity (a world of a few
# entities, such as a two-player match: about 5 times faster there); larger ones field by field in C.
_SMALL_GROUP = 8
_FLOAT_MAX = sys.float_info.max


def _group_is_valid(cls: type[Entity], group: Mapping[int, Entity]) -> bool:
    # True if every scalar field of every entity in ``group`` (all of type ``cls``) fits its
    # annotation.  False sends the caller to the slow per-field check, which says what is wrong.
    if len(group) <= _SMALL_GROUP:
        return _small_group_is_valid(cls, group)
    # Done by kind of field in C: the set of value types, and for floats the sum (a NaN or an infinity
    # makes it non-finite; an overflow of the sum only sends us to the slow check).
    dicts = [entity.__dict__ for entity in group.values()]
    for name, expected in field_kinds(cls).scalars.items():
        try:
            values = list(map(operator.itemgetter(name), dicts))
        except KeyError:  # a field deleted from an instance
            return False
        if not set(map(type, values)) <= _FAST_KINDS[expected]:
            return False
        if expected is float:
            try:
                if not math.isfinite(sum(values)):
                    return False
            except OverflowError:  # an int too large for a float
                return False
    return True


def encode_snapshot(new: Snapshot, base: Snapshot | None) -> dict[str, Any]:
    """Encode ``new`` as plain values: a delta against ``base``, or a full snapshot if ``base`` is None.

    The receiver must decode it with the same ``base`` (it is named by tick in the ``"base"`` key).
    Field values are passed through as they are, so they must be something the network codec can send.
    Raises ``InvalidType`` (an :class:`~sprocket.errors.InvalidArgument` and a ``TypeError``) if ``new``
    or ``base`` is not a :class:`Snapshot`.
    """
    if not isinstance(new, Snapshot):
        raise InvalidType(f"new must be a Snapshot, got {describe(new)}")
    if base is not None and not isinstance(base, Snapshot):
        raise InvalidType(f"base must be a Snapshot or None, got {describe(base)}")
    old: Mapping[int, Entity] = base.entities if base is not None else {}
    spawn: list[list[Any]] = []
    change: list[list[Any]] = []
    gone: list[int] = []
    for eid, entity in new.entities.items():
        prev = old.get(eid)
        if prev is None:
            spawn.append([eid, entity.type_name, entity.to_fields()])
        elif type(prev) is not type(entity):
            # The id now names a different kind of thing: replace it rather than diff across types.
            gone.append(eid)
            spawn.append([eid, entity.type_name, entity.to_fields()])
        elif prev is not entity:
            before = prev.__dict__
            after = entity.__dict__
            changed = {}
            for name in field_kinds(type(entity)).names:
                value = after[name]
                old_value = before[name]
                if value is not old_value and value != old_value:
                    changed[name] = value
            if changed:
                change.append([eid, changed])
    gone.extend(eid for eid in old if eid not in new.entities)
    wire: dict[str, Any] = {
        "tick": new.tick,
        "time": new.time,
        "base": base.tick if base is not None else None,
    }
    if spawn:
        wire["spawn"] = spawn
    if change:
        wire["change"] = change
    if gone:
        wire["gone"] = gone
    if new.jumps:
        wire["jump"] = sorted(new.jumps)
    return wire


def _entries(wire: Mapping[str, Any], key: str) -> list[Any] | tuple[Any, ...]:
    value = wire.get(key, ())
    if not isinstance(value, (list, tuple)):
        raise SnapshotError(f"snapshot {key!r} must be a list, got {type(value).__name__}")
    return value


def _entity_id(value: object, where: str) -> int:
    if not _is_int(value):
        raise SnapshotError(f"{where}: entity id must be an int, got {type(value).__name__}")
    return value


def field_problem(cls: type[Entity], name: str, expected: type | None, value: object) -> str | None:
    """Why ``value`` cannot travel as field ``name`` (declared ``expected``) of a ``cls``; None if it can.

    The rules of the wire form: ``float`` (and angle) fields hold finite numbers (ints accepted), ``int``
    fields ints (not bools), ``bool`` fields bools, ``str`` fields strs; other fields are not checked.
    """
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{cls.type_name}.{name} must be a number, got {type(value).__name__}"
        number = as_float(value)
        if not math.isfinite(number):
            return f"{cls.type_name}.{name} must be finite, got {number!r}"
    elif expected is int:
        if not _is_int(value):
            return f"{cls.type_name}.{name} must be an int, got {type(value).__name__}"
    elif expected is not None and not isinstance(value, expected):
        return f"{cls.type_name}.{name} must be {expected.__name__}, got {type(value).__name__}"
    return None


def entity_problems(entity: Entity) -> list[tuple[str, str]]:
    """Every field of ``entity`` that a snapshot cannot carry, as ``(field name, why)`` pairs (empty if
    none): a ``float`` field that is NaN, infinite or not a number, an ``int`` field that is not an int,
    and so on (see :func:`field_problem`).  The receiver of such a snapshot would refuse all of it.
    """
    cls = type(entity)
    d = entity.__dict__
    out = []
    for name, expected in field_kinds(cls).scalars.items():
        problem = field_problem(cls, name, expected, d.get(name))
        if problem is not None:
            out.append((name, problem))
    return out


def _checked_fields(cls: type[Entity], fields: object, where: str) -> dict[str, Any]:
    """Validate a wire field dict against ``cls``; return it with numbers normalised to float."""
    if not isinstance(fields, Mapping):
        raise SnapshotError(f"{where}: fields must be a dict, got {type(fields).__name__}")
    kinds = field_kinds(cls)
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or name not in kinds.name_set:
            raise SnapshotError(f"{where}: entity type {cls.type_name!r} has no field {name!r}")
        expected = kinds.scalars.get(name)
        problem = field_problem(cls, name, expected, value)
        if problem is not None:
            raise SnapshotError(f"{where}: {problem}")
        if expected is float:
            value = float(value)
        out[name] = value
    return out


def _build(cls: type[Entity], values: dict[str, Any], where: str) -> Entity:
    try:
        return cls(**values)
    except Exception as exc:
        # The class's own __init__/__post_init__ saw values from the network; whatever it raised, the
        # caller must only ever see SnapshotError.
        raise SnapshotError(f"{where}: cannot build {cls.type_name}: {exc}") from exc


def decode_snapshot(
    wire: Mapping[str, Any], base: Snapshot | None, *, max_entities: int | None = None
) -> Snapshot:
    """Rebuild the :class:`Snapshot` that :func:`encode_snapshot` encoded, using the same ``base``.

    A full snapshot (``"base": None``) ignores ``base``.  Unchanged entities are shared with ``base``.
    Unknown top-level keys are ignored (room for additions).  Raises :class:`SnapshotError` — and nothing
    else, whatever ``wire`` holds — if the wire is a delta against a tick other than ``base.tick`` (or
    ``base`` is None), names an unknown entity type or field, changes or removes an entity that is not in
    the base, spawns an id twice, marks as jumped (``"jump"``) an id the snapshot does not hold, would
    hold more than ``max_entities`` entities (checked before any
    entity is built; None: no limit), or is malformed in any way.
    """
    if not isinstance(wire, Mapping):
        raise SnapshotError(f"snapshot must be a dict, got {type(wire).__name__}")
    try:
        tick = wire.get("tick")
        time = wire.get("time")
        base_tick = wire.get("base")
    except Exception as exc:  # a hostile Mapping implementation
        raise SnapshotError(f"unreadable snapshot: {exc}") from exc
    if not _is_int(tick):
        raise SnapshotError(f"snapshot 'tick' must be an int, got {type(tick).__name__}")
    if isinstance(time, bool) or not isinstance(time, (int, float)):
        raise SnapshotError(f"snapshot 'time' must be a number, got {type(time).__name__}")
    time = as_float(time)
    if not math.isfinite(time):
        raise SnapshotError(f"snapshot 'time' must be finite, got {time!r}")

    base_entities: Mapping[int, Entity]
    if base_tick is None:
        base_entities = {}
    elif not _is_int(base_tick):
        raise SnapshotError(f"snapshot 'base' must be an int or None, got {type(base_tick).__name__}")
    elif base is None:
        raise SnapshotError(f"snapshot {tick} is a delta against tick {base_tick}, but no base was given")
    elif base.tick != base_tick:
        raise SnapshotError(
            f"snapshot {tick} is a delta against tick {base_tick}, but the base given is tick {base.tick}"
        )
    else:
        base_entities = base.entities

    spawns = _entries(wire, "spawn")
    if max_entities is not None and len(spawns) > max_entities:
        raise SnapshotError(
            f"snapshot {tick} spawns {len(spawns)} entities, over the limit of {max_entities}"
        )
    entities: dict[int, Entity] = dict(base_entities)
    removed: set[int] = set()
    for item in _entries(wire, "gone"):
        eid = _entity_id(item, "gone")
        if eid not in entities:
            raise SnapshotError(f"gone: entity {eid} is not in the base snapshot")
        del entities[eid]
        removed.add(eid)
    if max_entities is not None and len(entities) + len(spawns) > max_entities:
        raise SnapshotError(
            f"snapshot {tick} holds {len(entities) + len(spawns)} entities, over the limit of {max_entities}"
        )

    for item in spawns:
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise SnapshotError("spawn: each entry must be [id, type_name, fields]")
        eid = _entity_id(item[0], "spawn")
        where = f"spawn of entity {eid}"
        if eid in entities:
            raise SnapshotError(f"{where}: the id is already in use")
        if not isinstance(item[1], str):
            raise SnapshotError(f"{where}: type name must be a str, got {type(item[1]).__name__}")
        try:
            cls = entity_type(item[1])
        except EntityError as exc:
            raise SnapshotError(f"{where}: {exc}") from None
        entities[eid] = _build(cls, _checked_fields(cls, item[2], where), where)

    changed: set[int] = set()
    for item in _entries(wire, "change"):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise SnapshotError("change: each entry must be [id, fields]")
        eid = _entity_id(item[0], "change")
        where = f"change of entity {eid}"
        if eid not in base_entities or eid in removed:
            raise SnapshotError(f"{where}: the entity is not in the base snapshot")
        if eid in changed:
            raise SnapshotError(f"{where}: the entity is changed twice")
        changed.add(eid)
        old = base_entities[eid]
        cls = type(old)
        values = old.to_fields()
        values.update(_checked_fields(cls, item[1], where))
        entities[eid] = _build(cls, values, where)

    jumps: set[int] = set()
    for item in _entries(wire, "jump"):
        eid = _entity_id(item, "jump")
        if eid not in entities:
            raise SnapshotError(f"jump: entity {eid} is not in the snapshot")
        jumps.add(eid)
    return Snapshot(tick, time, entities, frozenset(jumps))


class SnapshotHistory:
    """The most recent snapshots, by tick: delta baselines for a server or a client.

    ``SnapshotHistory(capacity=64, *, max_bytes=None)`` keeps at most ``capacity`` snapshots and, with
    ``max_bytes``, at most that many bytes of them by the cost each was added with (see :meth:`add`);
    the newest snapshot is always kept.  Adding a tick that is already held replaces it; when over
    either limit, the oldest ticks are evicted.
    Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) if ``capacity < 1`` or
    ``max_bytes < 1``; ``InvalidType`` (also a ``TypeError``) if either is not an int.
    """

    def __init__(self, capacity: int = 64, *, max_bytes: int | None = None) -> None:
        self.capacity = check_count(capacity, "capacity")
        self.max_bytes = None if max_bytes is None else check_count(max_bytes, "max_bytes")
        self._by_tick: dict[int, Snapshot] = {}
        self._costs: dict[int, int] = {}
        self._bytes = 0
        self._latest: Snapshot | None = None

    def add(self, snapshot: Snapshot, cost: int = 0) -> None:
        """Keep ``snapshot`` (replacing one with the same tick), evicting the oldest ticks if over a limit.

        ``cost``: what holding it costs, in bytes (an estimate; :func:`snapshot_cost` makes one), counted
        against ``max_bytes``.  Raises ``InvalidType`` (an ``InvalidArgument`` and a ``TypeError``) if
        ``snapshot`` is not a :class:`Snapshot` or ``cost`` not an int.
        """
        if not isinstance(snapshot, Snapshot):
            raise InvalidType(f"snapshot must be a Snapshot, got {describe(snapshot)}")
        cost = check_count(cost, "cost", minimum=0)
        tick = snapshot.tick
        self._bytes += cost - self._costs.get(tick, 0)
        self._by_tick[tick] = snapshot
        self._costs[tick] = cost
        if self._latest is None or tick >= self._latest.tick:
            self._latest = snapshot
        limit = self.max_bytes
        while len(self._by_tick) > 1 and (
            len(self._by_tick) > self.capacity or (limit is not None and self._bytes > limit)
        ):
            # Only the minimum tick is ever evicted, so the latest survives unless it is replaced.
            oldest = min(self._by_tick)
            del self._by_tick[oldest]
            self._bytes -= self._costs.pop(oldest)

    @property
    def bytes(self) -> int:
        """The summed cost of the snapshots held (0 when they were added without one)."""
        return self._bytes

    def get(self, tick: int) -> Snapshot | None:
        """Return the snapshot for ``tick``, or None if it was never added or has been evicted."""
        try:
            return self._by_tick.get(tick)
        except TypeError:  # unhashable tick (e.g. from a hostile ack); it is certainly not held
            return None

    @property
    def latest(self) -> Snapshot | None:
        """The snapshot with the highest tick, or None when empty."""
        return self._latest

    def __len__(self) -> int:
        return len(self._by_tick)

    def __contains__(self, tick: object) -> bool:
        return self.get(tick) is not None  # type: ignore[arg-type]

    def clear(self) -> None:
        """Forget every snapshot (e.g. after reconnecting)."""
        self._by_tick.clear()
        self._costs.clear()
        self._bytes = 0
        self._latest = None


#: The estimate :func:`snapshot_cost` charges per entity a snapshot holds (its slot in the mapping; the
#: entity objects themselves are mostly shared with the previous snapshot) and per byte of its wire form
#: (what was new in it).  Measured on CPython 3.11: ~30 bytes per held entity, ~2.5 per wire byte.
COST_PER_ENTITY = 32
COST_PER_WIRE_BYTE = 3


def snapshot_cost(snapshot: Snapshot, wire_size: int) -> int:
    """An estimate of the memory a decoded ``snapshot`` holds on to, from its entity count and the size of
    the packet it came in (``wire_size`` bytes): what :class:`SnapshotHistory` ``max_bytes`` counts."""
    return COST_PER_ENTITY * len(snapshot.entities) + COST_PER_WIRE_BYTE * max(0, int(wire_size))
