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
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

from sprocket.errors import InvalidArgument, SprocketError

from ._checks import InvalidType, as_float, check_count, check_number, describe
from .entity import MAX_QUANTA, Entity, EntityError, FieldKinds, entity_type, field_kinds

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
    "wire_base_tick",
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
    # The same test as the bulk one below (the value types of _FAST_KINDS, floats finite, quantized ones
    # within MAX_QUANTA steps), entity by entity: a float field holds a finite float or an int within a
    # float's range.
    kinds = field_kinds(cls)
    scalars = kinds.scalars.items()
    quantized = kinds.quantized
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
                step = quantized.get(name)
                if step is not None and abs(value) > step * MAX_QUANTA:  # too many steps for the wire
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
    kinds = field_kinds(cls)
    for name, expected in kinds.scalars.items():
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
            step = kinds.quantized.get(name)
            if step is not None and values and max(map(abs, values)) > step * MAX_QUANTA:
                return False
    return True


def encode_snapshot(
    new: Snapshot, base: Snapshot | None, *, compact: bool = False, exact: Collection[int] = ()
) -> Any:
    """Encode ``new`` as plain values: a delta against ``base``, or a full snapshot if ``base`` is None.

    The receiver must decode it with the same ``base`` (named by tick in the wire form).  With
    ``compact=False`` the result is the verbose form, a dict with field names; with ``compact=True`` it
    is the compact form, a list with field positions, change masks and quantized ints (what
    :class:`~sprocket.game.GameServer` sends; see the module docs and docs/PROTOCOL.md).
    Field values are passed through as they are, so they must be something the network codec can send
    (quantized fields: finite numbers, see :func:`~sprocket.game.quantized`).  ``exact``: ids of entities
    whose blended quantized fields (not the ``snap=True`` ones) travel as they are, floats, in the compact
    form, unless the value is on its grid (then its steps decode to the very same float and are sent):
    the server sends each client the entity it controls so, and the client's prediction starts from the
    server's very position.
    Raises ``InvalidType`` (an :class:`~sprocket.errors.InvalidArgument` and a ``TypeError``) if ``new``
    or ``base`` is not a :class:`Snapshot`; ``InvalidArgument`` (a ``ValueError``) if, in the compact
    form, a quantized field or the time holds a value that is not a finite number.
    """
    if not isinstance(new, Snapshot):
        raise InvalidType(f"new must be a Snapshot, got {describe(new)}")
    if base is not None and not isinstance(base, Snapshot):
        raise InvalidType(f"base must be a Snapshot or None, got {describe(base)}")
    if compact:
        try:
            return _encode_compact(new, base, exact)
        except (TypeError, ValueError, OverflowError) as exc:  # round() of a NaN, a str in a quantized field
            raise InvalidArgument(f"snapshot {new.tick} cannot be encoded compactly: {exc}") from exc
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


# -- the compact form -----------------------------------------------------------------------------------

# Positions in the compact form's list (trailing empty lists are left out; see the module docs).
_C_TICK, _C_BASE, _C_TIME, _C_CHANGE, _C_JUMP, _C_GONE, _C_TYPES, _C_SPAWN = range(8)
#: How many items a compact snapshot list holds (trailing empty lists are left out).
COMPACT_MIN_ITEMS, COMPACT_MAX_ITEMS = _C_CHANGE, _C_SPAWN + 1
#: Snapshot times travel in the compact form as whole numbers of these (milliseconds).
TIME_UNITS_PER_SECOND = 1000

# Value checks of the compact decoder, by field: what the field's annotation (and quantization) asks for.
_ANY, _FLOAT, _INT, _BOOL, _STR, _QUANT = range(6)
_PLAN_ATTR = "_sprocket_wire_plan"
_MAX_CACHED_MASKS = 256


@dataclass(frozen=True, eq=False)
class _Plan:
    """How one entity class travels in the compact form (computed once per class)."""

    cls: type[Entity]
    kinds: FieldKinds
    names: tuple[str, ...]
    checks: tuple[int, ...]  # _ANY ... _QUANT per field
    steps: tuple[float | None, ...]
    blended: frozenset[str] = frozenset()  # the quantized fields an exact entity sends as floats
    masks: dict[int, tuple[tuple[int, str, int, Any], ...]] = field(default_factory=dict)

    def fields_of(self, mask: int) -> tuple[tuple[int, str, int, Any], ...]:
        """``(index, name, check, step)`` of each field a change mask names, lowest bit first (cached)."""
        fields = self.masks.get(mask)
        if fields is None:
            fields = tuple(
                (i, name, self.checks[i], self.steps[i]) for i, name in enumerate(self.names) if mask >> i & 1
            )
            if len(self.masks) < _MAX_CACHED_MASKS:  # a hostile server's many masks cost no memory
                self.masks[mask] = fields
        return fields


def _plan(cls: type[Entity]) -> _Plan:
    plan = cls.__dict__.get(_PLAN_ATTR)
    if plan is None:
        kinds = field_kinds(cls)
        codes = {float: _FLOAT, int: _INT, bool: _BOOL, str: _STR}
        checks = tuple(
            _QUANT if step is not None else codes.get(kinds.scalars.get(name), _ANY)  # type: ignore[arg-type]
            for name, step in zip(kinds.names, kinds.steps, strict=True)
        )
        plan = _Plan(cls, kinds, kinds.names, checks, kinds.steps, frozenset(kinds.floats))
        setattr(cls, _PLAN_ATTR, plan)
    return cast(_Plan, plan)


def _time_units(time: float) -> int:
    return round(time * TIME_UNITS_PER_SECOND)


def _encode_compact(new: Snapshot, base: Snapshot | None, exact: Collection[int]) -> list[Any]:
    old: Mapping[int, Entity] = base.entities if base is not None else {}
    change: list[Any] = []
    spawn: list[list[Any]] = []
    gone: list[int] = []
    types: list[list[Any]] = []
    type_index: dict[type[Entity], int] = {}
    for eid, entity in new.entities.items():
        prev = old.get(eid)
        cls = type(entity)
        if prev is not None and type(prev) is cls:
            if prev is entity:
                continue
            plan = _plan(cls)
            before = prev.__dict__
            after = entity.__dict__
            mask = 0
            values: list[Any] = []
            bit = 1
            exactly = eid in exact
            for name, step in zip(plan.names, plan.steps, strict=True):
                value = after[name]
                old_value = before[name]
                if value is not old_value and value != old_value:
                    if step is None:
                        values.append(value)
                        mask |= bit
                    elif exactly and name in plan.blended and round(value / step) * step != value:
                        values.append(float(value))  # off its grid: the value itself, not steps
                        mask |= bit
                    else:
                        steps = round(value / step) - round(old_value / step)
                        if steps:
                            values.append(steps)
                            mask |= bit
                bit <<= 1
            if mask:
                change.append(eid)
                change.append(mask)
                change.extend(values)
            continue
        if prev is not None:
            gone.append(eid)  # the id now names a different kind of thing: replace it
        plan = _plan(cls)
        index = type_index.get(cls)
        if index is None:
            index = type_index[cls] = len(types)
            types.append([cls.type_name, list(plan.names), list(plan.steps)])  # fresh: the caller owns it
        d = entity.__dict__
        row: list[Any] = [eid, index]
        exactly = eid in exact
        for name, step in zip(plan.names, plan.steps, strict=True):
            value = d[name]
            if step is None:
                row.append(value)
            elif exactly and name in plan.blended and round(value / step) * step != value:
                row.append(float(value))  # off its grid (on it, the steps decode to this very float)
            else:
                row.append(round(value / step))
        spawn.append(row)
    gone.extend(eid for eid in old if eid not in new.entities)
    units = _time_units(new.time)
    wire: list[Any] = [new.tick, None, units]
    if base is not None:
        wire[_C_BASE] = new.tick - base.tick
        wire[_C_TIME] = units - _time_units(base.time)
    wire += [change, sorted(new.jumps), gone, types, spawn]
    while len(wire) > _C_CHANGE and not wire[-1]:
        wire.pop()
    return wire


def _without_gone(
    base_entities: Mapping[int, Entity], gone: Any, spawning: int, tick: int, max_entities: int | None
) -> tuple[dict[int, Entity], set[int]]:
    """The base's entities less those ``gone`` lists (each must be there), and the ids removed; raises
    SnapshotError if one is not, or if what is left plus ``spawning`` new ones is over ``max_entities``."""
    entities: dict[int, Entity] = dict(base_entities)
    removed: set[int] = set()
    for item in gone:
        eid = _entity_id(item, "gone")
        if eid not in entities:
            raise SnapshotError(f"gone: entity {eid} is not in the base snapshot")
        del entities[eid]
        removed.add(eid)
    if max_entities is not None and len(entities) + spawning > max_entities:
        raise SnapshotError(
            f"snapshot {tick} holds {len(entities) + spawning} entities, over the limit of {max_entities}"
        )
    return entities, removed


def _compact_list(wire: list[Any] | tuple[Any, ...], index: int, what: str) -> list[Any] | tuple[Any, ...]:
    if index >= len(wire):
        return ()
    value = wire[index]
    if not isinstance(value, (list, tuple)):
        raise SnapshotError(f"snapshot {what} must be a list, got {type(value).__name__}")
    return value


def _compact_value(plan: _Plan, index: int, value: Any, base_value: Any, where: str) -> Any:
    """Check one field value of the compact form; return it as the entity holds it."""
    check = plan.checks[index]
    if check == _QUANT:
        step = plan.steps[index]
        assert step is not None
        if type(value) is float:  # sent exactly (the entity this client controls)
            problem = field_problem(plan.cls, plan.names[index], float, value)
            if problem is not None:
                raise SnapshotError(f"{where}: {problem}")
            return value
        if not _is_int(value):
            raise SnapshotError(
                f"{where}: {plan.cls.type_name}.{plan.names[index]} is quantized and must be an int "
                f"(steps) or a float (exact), got {type(value).__name__}"
            )
        if base_value is not None:
            value += round(base_value / step)
        if abs(value) > MAX_QUANTA:
            raise SnapshotError(f"{where}: {plan.cls.type_name}.{plan.names[index]} is out of range")
        return value * step
    if check == _FLOAT:
        if type(value) is float and value - value == 0.0:  # the common case: a finite float
            return value
        problem = field_problem(plan.cls, plan.names[index], float, value)
        if problem is not None:
            raise SnapshotError(f"{where}: {problem}")
        return float(value)
    if check != _ANY:
        problem = field_problem(plan.cls, plan.names[index], plan.kinds.scalars[plan.names[index]], value)
        if problem is not None:
            raise SnapshotError(f"{where}: {problem}")
    return value


def _compact_types(wire: list[Any] | tuple[Any, ...]) -> list[_Plan]:
    plans: list[_Plan] = []
    for item in _compact_list(wire, _C_TYPES, "types"):
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise SnapshotError("types: each entry must be [type_name, [field names], [steps]]")
        name = item[0]
        if not isinstance(name, str):
            raise SnapshotError(f"types: a type name must be a str, got {type(name).__name__}")
        try:
            cls = entity_type(name)
        except EntityError as exc:
            raise SnapshotError(f"types: {exc}") from None
        plan = _plan(cls)
        try:
            same = list(item[1]) == list(plan.names) and list(item[2]) == list(plan.steps)
        except Exception:  # not lists, or values whose comparison fails: a mismatch
            same = False
        if not same:
            raise SnapshotError(
                f"types: the server's {name} is {_describe_schema(item)}, this client's is "
                f"{_describe_schema([name, plan.names, plan.steps])} "
                "(do both ends run the same version of the game?)"
            )
        plans.append(plan)
    return plans


def _describe_schema(item: Any) -> str:
    try:
        fields = [
            f"{n}/{s:g}" if isinstance(s, (int, float)) and not isinstance(s, bool) else str(n)
            for n, s in zip(item[1], item[2], strict=False)
        ]
        text = f"({', '.join(fields)})"
    except Exception:  # a hostile schema: say so rather than fail describing it
        text = "malformed"
    return text if len(text) <= 200 else text[:197] + "..."


def _make_entity(plan: _Plan, values: dict[str, Any], where: str) -> Entity:
    # Every field is there: a plain dataclass needs no __init__ (which would only copy them in).
    if plan.kinds.plain:
        entity = object.__new__(plan.cls)
        entity.__dict__ = values
        return entity
    return _build(plan.cls, values, where)


def _decode_compact(
    wire: list[Any] | tuple[Any, ...], base: Snapshot | None, max_entities: int | None
) -> Snapshot:
    if not COMPACT_MIN_ITEMS <= len(wire) <= COMPACT_MAX_ITEMS:
        raise SnapshotError(
            f"a compact snapshot is a list of {COMPACT_MIN_ITEMS} to {COMPACT_MAX_ITEMS} items, "
            f"got {len(wire)}"
        )
    tick, back, units = wire[_C_TICK], wire[_C_BASE], wire[_C_TIME]
    if not _is_int(tick):
        raise SnapshotError(f"snapshot tick must be an int, got {type(tick).__name__}")
    if not _is_int(units):
        raise SnapshotError(f"snapshot time must be an int (milliseconds), got {type(units).__name__}")
    base_entities: Mapping[int, Entity]
    if back is None:
        base_entities = {}
    elif not _is_int(back):
        raise SnapshotError(f"snapshot base must be an int or None, got {type(back).__name__}")
    else:
        base_tick = tick - back
        if base is None:
            raise SnapshotError(f"snapshot {tick} is a delta against tick {base_tick}, but no base was given")
        if base.tick != base_tick:
            raise SnapshotError(
                f"snapshot {tick} is a delta against tick {base_tick}, but the base given is tick {base.tick}"
            )
        base_entities = base.entities
        units += _time_units(base.time)
    try:
        time = units / TIME_UNITS_PER_SECOND
    except OverflowError:
        time = math.inf
    if not math.isfinite(time):
        raise SnapshotError(f"snapshot {tick}: its time is out of range")

    spawns = _compact_list(wire, _C_SPAWN, "spawns")
    if max_entities is not None and len(spawns) > max_entities:
        raise SnapshotError(
            f"snapshot {tick} spawns {len(spawns)} entities, over the limit of {max_entities}"
        )
    plans = _compact_types(wire)
    entities, removed = _without_gone(
        base_entities, _compact_list(wire, _C_GONE, "gone"), len(spawns), tick, max_entities
    )

    for item in spawns:
        if not isinstance(item, (list, tuple)) or len(item) < 2:
            raise SnapshotError("spawn: each entry must be [id, type index, field values...]")
        eid = _entity_id(item[0], "spawn")
        where = f"spawn of entity {eid}"
        if eid in entities:
            raise SnapshotError(f"{where}: the id is already in use")
        index = item[1]
        if not _is_int(index) or not 0 <= index < len(plans):
            raise SnapshotError(f"{where}: type index {index!r} is not in the snapshot's types")
        plan = plans[index]
        if len(item) != 2 + len(plan.names):
            raise SnapshotError(
                f"{where}: a {plan.cls.type_name} has {len(plan.names)} fields, got {len(item) - 2} values"
            )
        values = {
            name: _compact_value(plan, i, value, None, where)
            for i, (name, value) in enumerate(zip(plan.names, item[2:], strict=True))
        }
        entities[eid] = _make_entity(plan, values, where)

    change = _compact_list(wire, _C_CHANGE, "changes")
    changed: set[int] = set()
    at, end = 0, len(change)
    while at < end:
        # The hot loop of a client (every moving entity of every snapshot): the common cases inline.
        if at + 2 > end:
            raise SnapshotError("change: each entry must be id, mask, then one value per bit of the mask")
        eid = change[at]
        mask = change[at + 1]
        if type(eid) is not int:
            eid = _entity_id(eid, "change")
        old = base_entities.get(eid)
        if old is None or eid in removed:
            raise SnapshotError(f"change of entity {eid}: the entity is not in the base snapshot")
        if eid in changed:
            raise SnapshotError(f"change of entity {eid}: the entity is changed twice")
        changed.add(eid)
        cls = type(old)
        plan = _plan(cls)
        if type(mask) is not int or mask <= 0 or mask.bit_length() > len(plan.names):
            raise SnapshotError(f"change of entity {eid}: {mask!r} is not a change mask of a {cls.type_name}")
        at += 2
        fields = plan.fields_of(mask)
        if at + len(fields) > end:
            raise SnapshotError(
                f"change of entity {eid}: the mask names {len(fields)} fields, but fewer values follow"
            )
        before = old.__dict__
        values = before.copy()
        for index, name, check, step in fields:
            value = change[at]
            at += 1
            if check == _FLOAT and type(value) is float and value - value == 0.0:
                values[name] = value
            elif check == _QUANT and type(value) is int:
                steps = value + round(before[name] / step)
                if not -MAX_QUANTA <= steps <= MAX_QUANTA:
                    raise SnapshotError(f"change of entity {eid}: {cls.type_name}.{name} is out of range")
                values[name] = steps * step
            else:
                values[name] = _compact_value(plan, index, value, before[name], f"change of entity {eid}")
        if plan.kinds.plain:
            entity = object.__new__(cls)
            entity.__dict__ = values
            entities[eid] = entity
        else:
            entities[eid] = _build(cls, values, f"change of entity {eid}")

    jumps: set[int] = set()
    for item in _compact_list(wire, _C_JUMP, "jumps"):
        eid = _entity_id(item, "jump")
        if eid not in entities:
            raise SnapshotError(f"jump: entity {eid} is not in the snapshot")
        jumps.add(eid)
    return Snapshot(tick, time, entities, frozenset(jumps))


def wire_base_tick(wire: object) -> object:
    """The tick a snapshot's wire form (either form) is a delta against: None for a full snapshot.

    Reads without checking: whatever is not an int here makes :func:`decode_snapshot` refuse the wire.
    Never raises.
    """
    try:
        if isinstance(wire, (list, tuple)):
            if len(wire) < 2 or wire[_C_BASE] is None:
                return None
            tick, back = wire[_C_TICK], wire[_C_BASE]
            return tick - back if _is_int(tick) and _is_int(back) else back
        if isinstance(wire, Mapping):
            return wire.get("base")
    except Exception:  # a hostile Mapping implementation; decoding will refuse it
        return None
    return None


# -- the verbose form -----------------------------------------------------------------------------------


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
        step = field_kinds(cls).quantized.get(name)
        if step is not None and abs(number) > step * MAX_QUANTA:
            return f"{cls.type_name}.{name} is {number!r}, too large for its quantization step {step!r}"
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
    wire: Mapping[str, Any] | list[Any] | tuple[Any, ...],
    base: Snapshot | None,
    *,
    max_entities: int | None = None,
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
    if isinstance(wire, (list, tuple)):
        try:
            return _decode_compact(wire, base, max_entities)
        except SnapshotError:
            raise
        except Exception as exc:  # a value whose arithmetic or comparison fails in a way not foreseen
            raise SnapshotError(f"malformed compact snapshot: {type(exc).__name__}: {exc}") from exc
    if not isinstance(wire, Mapping):
        raise SnapshotError(f"snapshot must be a dict or a list, got {type(wire).__name__}")
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
    entities, removed = _without_gone(base_entities, _entries(wire, "gone"), len(spawns), tick, max_entities)

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
        entities[eid] = _make_entity(_plan(cls), values, where)

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
