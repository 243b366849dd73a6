"""Entities: the user's game state as small typed records, and the rules for blending two of them.

Subclass :class:`Entity` with plain typed fields that have defaults::

    class Ball(Entity):
        x: float = 0.0
        y: float = 0.0
        heading: float = angle()     # degrees; blends the short way round
        colour: str = "red"          # discrete: never blended
        score: int = 0               # discrete: switches when the newer snapshot is reached

The subclass becomes a dataclass automatically (do not add ``@dataclass`` yourself) and is registered
under its ``type_name`` (the class name unless you write ``class Ball(Entity, type_name="ball")``) so
snapshots can name it on the wire.

Blending rules (:func:`blend`, used by interpolation, called for every entity every frame):

* fields annotated exactly ``float`` blend linearly;
* :func:`angle` fields blend the short way round modulo their period, and the result is normalised into
  ``[0, period)``;
* every other field — ``int``, ``bool``, ``str``, ``float | None``, tuples, anything — and every
  :func:`snap` field is *discrete*: it keeps the older value until the newer snapshot is reached
  (``t >= 1``), then switches.  Switching at the end rather than half-way means a score, a colour or a
  "dead" flag is never shown before the server said it happened.

This module must never import pygame, touch sockets or threads, or read a clock.  Standard library only
(and :mod:`sprocket.errors` for its exceptions).
"""

from __future__ import annotations

import copy as _copy
import dataclasses
import math
import sys
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from sprocket.errors import InvalidArgument, SprocketError

from ._checks import InvalidType, check_number, describe

__all__ = [
    "Entity",
    "EntityError",
    "FieldKinds",
    "UnknownEntityTypeError",
    "angle",
    "blend",
    "entity_type",
    "entity_types",
    "extrapolate",
    "field_kinds",
    "quantized",
    "round_quantized",
    "snap",
]

T = TypeVar("T")
E = TypeVar("E", bound="Entity")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
elif sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10 has no dataclass_transform; it only matters to type checkers

    def dataclass_transform(**_kwargs: Any) -> Callable[[T], T]:
        return lambda cls: cls


class EntityError(SprocketError, ValueError):
    """An entity type or field name that does not exist, or a record that does not fit its entity type."""


class UnknownEntityTypeError(EntityError, KeyError):
    """:func:`entity_type` was asked for a name nothing registered.  Also a ``KeyError``."""

    def __str__(self) -> str:
        # KeyError.__str__ would show the message in quotes, as if it were a key.
        return str(self.args[0]) if self.args else ""


# Metadata keys on dataclass fields.  Namespaced so they do not clash with other libraries' metadata.
_KIND_KEY = "sprocket.kind"
_PERIOD_KEY = "sprocket.period"
_QUANTUM_KEY = "sprocket.quantum"

# Kinds of field, as far as blending is concerned.
_ANGLE = "angle"
_DISCRETE = "discrete"

# The scalar annotations whose values snapshot decoding checks.  Anything else is accepted as-is.
_SCALARS: dict[str, type] = {"float": float, "int": int, "bool": bool, "str": str}

# Field values of these types are deep-copied by Entity.copy(); everything else is shared.  Entity state
# is overwhelmingly immutable scalars, so copying just the mutable containers keeps copy() cheap.
_MUTABLE = (list, dict, set, bytearray)

# Attribute where each class caches its FieldKinds (looked up in the class's own __dict__ so a subclass
# never picks up its parent's).
_KINDS_ATTR = "_sprocket_field_kinds"

_REGISTRY: dict[str, type[Entity]] = {}


def angle(default: float = 0.0, *, period: float = 360.0) -> float:
    """A field that blends the short way round modulo ``period`` (360 for degrees, ``math.tau`` for radians).

    Use as a field default: ``heading: float = angle()``.  350 -> 10 blends through 0, not through 180.
    Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) if ``period`` is not a finite
    number > 0; ``InvalidType`` (also a ``TypeError``) if ``default`` or ``period`` is not a number.
    """
    check_number(default, "default", finite=False)
    check_number(period, "period", positive=True)
    return dataclasses.field(default=default, metadata={_KIND_KEY: _ANGLE, _PERIOD_KEY: period})


def snap(default: T) -> T:
    """A field that is never blended, even if it is a float: it switches to the newer value when reached.

    Use as a field default: ``radius: float = snap(8.0)``.  Mutable defaults (list, dict, set) are refused
    when the entity class is defined, with :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``);
    use an immutable value (a tuple) instead.
    """
    return dataclasses.field(default=default, metadata={_KIND_KEY: _DISCRETE})


#: The largest ``|value / step|`` a quantized field may hold (beyond it a float has no whole steps left).
MAX_QUANTA = 2**53


def quantized(step: float, default: float = 0.0, *, snap: bool = False) -> float:
    """A ``float`` field that travels as a whole number of ``step`` s: ``x: float = quantized(0.01)``.

    In the compact snapshot form (what :class:`~sprocket.game.GameServer` sends) the value is a small int:
    the number of steps, or in a delta the change in steps since the baseline, 1 byte on the wire for up
    to 127 steps instead of 9 for a float64.  Clients receive the value rounded to the step (a chain of
    deltas never drifts: each value is exactly the server's, rounded); the server's own entities are not
    rounded.  Two exceptions keep prediction exact: the server sends each client the entity it controls
    unrounded (its blended fields), and a ``predicted=True`` entity should call :func:`round_quantized`
    at the end of its ``simulate()``, so that it is on its grid on the server and in every client's
    re-simulation alike.  Pick a step nobody can see: a hundredth of a pixel for positions, say.
    The field blends linearly like any ``float`` field, unless ``snap=True``, which makes it discrete
    like :func:`snap` (and always sent in steps).  The field must be annotated ``float`` and hold a finite
    number with ``|value / step| <= 2**53``; both ends must declare the same step (the compact form names
    each spawned type's fields and steps, and a client refuses a snapshot whose types differ from its own).

    Raises ``InvalidType`` (an :class:`~sprocket.errors.InvalidArgument` and a ``TypeError``) if ``step``
    or ``default`` is not a number or ``snap`` not a bool; ``InvalidArgument`` (a ``ValueError``) if
    ``step`` is not a finite number > 0 or ``default`` is not finite.  A class whose quantized field is
    not annotated ``float`` raises ``InvalidType`` when it is defined.
    """
    step = check_number(step, "step", positive=True)
    check_number(default, "default")
    if not isinstance(snap, bool):
        raise InvalidType(f"snap must be a bool, got {describe(snap)}")
    metadata: dict[str, Any] = {_QUANTUM_KEY: step}
    if snap:
        metadata[_KIND_KEY] = _DISCRETE
    return dataclasses.field(default=float(default), metadata=metadata)


@dataclasses.dataclass(frozen=True)
class FieldKinds:
    """How each field of an entity class is blended and checked; see :func:`field_kinds`.

    ``names``: every field in declaration order.  ``floats``: fields blended linearly.  ``angles``:
    ``(name, period)`` pairs blended the short way round.  ``discrete``: fields that switch at ``t >= 1``.
    ``scalars``: for fields annotated ``float``, ``int``, ``bool`` or ``str`` (and all angle fields, which
    are ``float``), that type — snapshot decoding checks values against it.  ``name_set``: ``names`` as a
    frozenset, for fast membership tests.  ``steps``: parallel to ``names``, each field's
    :func:`quantized` step, or None.  ``quantized``: name -> step of the quantized fields.  ``plain``: True
    if the class has neither its own ``__init__`` nor a ``__post_init__``, so an instance can be made from
    a complete field dict without calling ``__init__`` (snapshot decoding does, when it has every field).
    """

    names: tuple[str, ...]
    name_set: frozenset[str]
    floats: tuple[str, ...]
    angles: tuple[tuple[str, float], ...]
    discrete: tuple[str, ...]
    scalars: Mapping[str, type]
    steps: tuple[float | None, ...] = ()
    quantized: Mapping[str, float] = dataclasses.field(default_factory=dict)
    plain: bool = False


# angle() and snap() are deliberately not listed as field specifiers: type checkers then see them as
# plain default values (they are typed to return one), which is right — PEP 681 would otherwise treat
# `angle()` without an explicit `default=` as a field with no default.
@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
@dataclasses.dataclass
class Entity:
    """Base class for game entity state.  Subclasses become dataclasses and are registered by type name.

    Every field must have a default (``x: float = 0.0``, or ``field(default_factory=...)``): snapshots
    and :meth:`from_fields` fill missing fields from defaults.  Field names must not clash with
    ``Entity``'s own attributes (``type_name``, ``copy``, ``to_fields``, ``from_fields``).  Field values
    that travel in snapshots must be msgpack-friendly (numbers, str, bool, None, lists, dicts with str
    keys, or whatever else the network codec supports).

    Class keyword ``type_name`` names the type on the wire (default: the class name).  Defining a class
    with a name already registered replaces the old class — what reloading a module or a test wants.

    Class keyword ``predicted=True`` opts the type into **world prediction** (rollback): the class must
    define ``simulate(self, world, dt)``, which advances this entity one fixed step of ``dt`` seconds as
    a pure function of the ``world`` (a ``Mapping[int, Entity]`` of every entity, this one included),
    mutating ``self`` in place (its return value is yours: the server may use it, clients ignore it).
    The server calls it from its own ``simulate(dt)`` (``GameServer.simulate_predicted`` runs every
    predicted entity in id order); clients re-run it from each snapshot up to their predicted present,
    so such entities are drawn in the present, where your own predicted entity is, instead of in the
    past.  Subclasses inherit the setting (``predicted=False`` turns it off).  The class attribute
    :attr:`predicted` tells.

    Raises ``InvalidType`` (an :class:`~sprocket.errors.InvalidArgument` and a ``TypeError``) at class
    definition for a field without a default, an ``init=False`` field, a reserved field name or a
    ``type_name`` that is not a non-empty str, ``predicted`` that is not a bool, or a predicted class
    without a ``simulate(self, world, dt)`` method; ``InvalidArgument`` (a ``ValueError``) for a field
    default that dataclasses refuses (a mutable one: a list, dict or set).
    """

    #: The name this class is registered and sent under.
    type_name: ClassVar[str] = "Entity"
    #: True for types the clients predict with world prediction (class keyword ``predicted=True``).
    predicted: ClassVar[bool] = False

    def __init_subclass__(
        cls, /, type_name: str | None = None, predicted: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if predicted is not None:
            if not isinstance(predicted, bool):
                raise InvalidType(
                    f"predicted of {cls.__qualname__} must be a bool, got {describe(predicted)}"
                )
            cls.predicted = predicted
        if cls.predicted and not callable(getattr(cls, "simulate", None)):
            raise InvalidType(
                f"{cls.__qualname__} is predicted=True but has no simulate(self, world, dt) method: clients "
                "re-run it to predict the entity (the server calls it from its simulate())"
            )
        name = cls.__name__ if type_name is None else type_name
        if not isinstance(name, str) or not name:
            raise InvalidType(
                f"type_name of {cls.__qualname__} must be a non-empty str, got {describe(name)}"
            )
        cls.type_name = name
        # A class with its own __init__ keeps it (dataclass() leaves it alone); decoding must then call it.
        cls._sprocket_own_init = "__init__" in cls.__dict__  # type: ignore[attr-defined]
        try:
            dataclasses.dataclass(cls)  # modifies cls in place (no slots=True, which would make a new class)
        except TypeError as exc:  # e.g. "non-default argument 'y' follows default argument"
            raise InvalidType(
                f"{cls.__qualname__}: {exc} (every entity field needs a default: snapshots fill missing "
                "fields from defaults)"
            ) from exc
        except ValueError as exc:  # e.g. "mutable default <class 'list'> for field items is not allowed"
            raise InvalidArgument(f"{cls.__qualname__}: {exc}") from exc
        for f in dataclasses.fields(cls):
            where = f"{cls.__qualname__}.{f.name}"
            if hasattr(Entity, f.name):
                raise InvalidType(f"{where}: field name {f.name!r} is reserved by Entity; rename the field")
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidType(f"{where} needs a default (snapshots fill missing fields from defaults)")
            if not f.init:
                raise InvalidType(f"{where}: init=False fields are not supported in entities")
        if any(_QUANTUM_KEY in f.metadata for f in dataclasses.fields(cls)):
            field_kinds(cls)  # a quantized field that is not a float fails now, not in the first snapshot
        _REGISTRY[name] = cls

    def to_fields(self) -> dict[str, Any]:
        """Return a new dict of field name -> value (values are shared, not copied)."""
        d = self.__dict__
        return {name: d[name] for name in field_kinds(type(self)).names}

    @classmethod
    def from_fields(cls: type[E], fields: Mapping[str, Any]) -> E:
        """Build an instance from a field-name -> value mapping; missing fields take their defaults.

        Raises ``EntityError`` (a ``ValueError``) naming the field and the entity type for an unknown or
        non-str field name, ``InvalidType`` (an ``InvalidArgument`` and a ``TypeError``) if ``fields`` is
        not a mapping.  Values are not type-checked here
        (snapshot decoding checks the scalar ones).
        """
        if not isinstance(fields, Mapping):
            raise InvalidType(
                f"fields of {cls.type_name}.from_fields() must be a mapping, got {describe(fields)}"
            )
        kinds = field_kinds(cls)
        for key in fields:
            if not isinstance(key, str) or key not in kinds.name_set:
                raise EntityError(
                    f"entity type {cls.type_name!r} has no field {key!r}; its fields are: "
                    f"{', '.join(kinds.names) or '(none)'}"
                )
        return cls(**fields)

    def copy(self: E) -> E:
        """Return an independent copy: list/dict/set/bytearray values are deep-copied, others shared."""
        new = object.__new__(type(self))
        d = self.__dict__.copy()
        for key, value in d.items():
            if isinstance(value, _MUTABLE):
                d[key] = _copy.deepcopy(value)
        new.__dict__ = d
        return new


def _resolve_annotations(cls: type[Entity]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:
        # A forward reference that cannot be resolved (a class defined inside a function, say) must not
        # make the entity unusable; fall back to the raw annotations, matched by name below.
        return {}


def field_kinds(cls: type[Entity]) -> FieldKinds:
    """Return how ``cls``'s fields blend (computed once per class, then cached on the class).

    Raises ``InvalidType`` (an ``InvalidArgument`` and a ``TypeError``) if ``cls`` is not an
    :class:`Entity` subclass.
    """
    kinds = cls.__dict__.get(_KINDS_ATTR)
    if kinds is not None:
        return cast(FieldKinds, kinds)
    if not (isinstance(cls, type) and issubclass(cls, Entity)):
        raise InvalidType(f"cls must be an Entity subclass, got {describe(cls)}")
    hints = _resolve_annotations(cls)
    names: list[str] = []
    floats: list[str] = []
    angles: list[tuple[str, float]] = []
    discrete: list[str] = []
    scalars: dict[str, type] = {}
    steps: list[float | None] = []
    quanta: dict[str, float] = {}
    for f in dataclasses.fields(cls):
        names.append(f.name)
        annotation = hints.get(f.name, f.type)
        if isinstance(annotation, str):  # unresolved string annotation: recognise the builtin names
            annotation = _SCALARS.get(annotation.strip(), annotation)
        if annotation in (float, int, bool, str):
            scalars[f.name] = annotation
        step = f.metadata.get(_QUANTUM_KEY)
        steps.append(step)
        if step is not None:
            if annotation is not float:
                raise InvalidType(
                    f"{cls.__qualname__}.{f.name}: a quantized() field must be annotated float, "
                    f"not {getattr(annotation, '__name__', annotation)!s}"
                )
            quanta[f.name] = step
        kind = f.metadata.get(_KIND_KEY)
        if kind == _ANGLE:
            angles.append((f.name, float(f.metadata[_PERIOD_KEY])))
            scalars[f.name] = float
        elif kind is None and annotation is float:
            floats.append(f.name)
        else:
            discrete.append(f.name)
    plain = not cls.__dict__.get("_sprocket_own_init", False) and not hasattr(cls, "__post_init__")
    kinds = FieldKinds(
        tuple(names), frozenset(names), tuple(floats), tuple(angles), tuple(discrete), scalars,
        tuple(steps), quanta, plain,
    )  # fmt: skip
    setattr(cls, _KINDS_ATTR, kinds)
    return kinds


def round_quantized(entity: E) -> E:
    """Round every :func:`quantized` field of ``entity`` to its step, in place; return ``entity``.

    Call it at the end of a predicted entity's ``simulate()`` to keep the entity on its grid at every tick,
    on the server and in every client's re-simulation alike: world prediction then computes exactly the
    server's numbers even where the physics is chaotic (a puck pushed by a mallet).  Values that are not
    finite numbers are left as they are (the server's checks report them).  Raises ``InvalidType`` (an
    :class:`~sprocket.errors.InvalidArgument` and a ``TypeError``) if ``entity`` is not an :class:`Entity`.
    """
    if not isinstance(entity, Entity):
        raise InvalidType(f"entity must be an Entity, got {describe(entity)}")
    quanta = _kinds_fast(type(entity)).quantized
    if quanta:
        _round_into(entity.__dict__, quanta)
    return entity


def _round_into(d: dict[str, Any], quanta: Mapping[str, float]) -> None:
    for name, step in quanta.items():
        value = d.get(name)
        if type(value) is float or type(value) is int:
            try:
                d[name] = round(value / step) * step
            except (ValueError, OverflowError):  # NaN, infinity: left for the checks to report
                pass


def entity_type(name: str) -> type[Entity]:
    """Return the entity class registered under ``name``.

    Raises :class:`UnknownEntityTypeError` (a ``ValueError`` and a ``KeyError``) listing the registered
    names if there is none — usually the module defining the class was not imported on this side.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name from a hostile peer
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise UnknownEntityTypeError(
            f"unknown entity type {name!r}; registered types are: {known} "
            "(is the module that defines it imported on both sides?)"
        ) from None


def entity_types() -> dict[str, type[Entity]]:
    """Return a copy of the registry: type name -> entity class."""
    return dict(_REGISTRY)


def _make(cls: type[E], values: dict[str, Any]) -> E:
    # Bypasses __init__ on purpose: values come from existing instances of the same class, so they are
    # already valid, and blend runs ~100 times per frame.
    new = object.__new__(cls)
    new.__dict__ = values
    return new


def _kinds_fast(cls: type[Entity]) -> FieldKinds:
    kinds = cls.__dict__.get(_KINDS_ATTR)
    return kinds if kinds is not None else field_kinds(cls)


def blend(a: E, b: E, t: float) -> E:
    """Return a new entity between ``a`` (``t = 0``) and ``b`` (``t = 1``).

    ``t`` is clamped to ``[0, 1]``.  Float fields blend linearly, angle fields the short way round
    (normalised into ``[0, period)``); discrete fields take ``a``'s value for ``t < 1`` and ``b``'s at
    ``t >= 1``.  The result shares non-float values with the inputs: treat it as read-only (use
    :meth:`Entity.copy` to own it).  Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``)
    if ``a`` and ``b`` are not the same type or ``t`` is NaN.
    """
    cls = type(a)
    if type(b) is not cls:
        raise InvalidArgument(f"a and b must be the same type; cannot blend {describe(a)} with {describe(b)}")
    if t >= 1.0:
        return _make(cls, b.__dict__.copy())
    if t <= 0.0:
        return _make(cls, a.__dict__.copy())
    if t != t:
        raise InvalidArgument("t must be a number from 0 to 1, not NaN")
    kinds = _kinds_fast(cls)
    da = a.__dict__
    db = b.__dict__
    out = da.copy()
    _lerp_into(out, kinds, da, db, t)
    return _make(cls, out)


def _lerp_into(
    out: dict[str, Any], kinds: FieldKinds, da: dict[str, Any], db: dict[str, Any], t: float
) -> None:
    # Float fields move linearly from a (t = 0) to b (t = 1) and beyond; angles take the short way round.
    for name in kinds.floats:
        va = da[name]
        out[name] = va + (db[name] - va) * t
    for name, period in kinds.angles:
        va = da[name]
        delta = (db[name] - va) % period
        if delta > period * 0.5:
            delta -= period
        out[name] = (va + delta * t) % period


def extrapolate(a: E, b: E, t: float) -> E:
    """Continue the motion from ``a`` (``t = 0``) through ``b`` (``t = 1``) to ``t`` (meant for ``t > 1``).

    Float fields continue linearly, angle fields continue the short-way motion (normalised into
    ``[0, period)``); discrete fields hold ``b``'s value.  The caller bounds how far it extrapolates.
    The result shares non-float values with ``b``: treat it as read-only.
    Raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``) if the types differ or ``t`` is not
    finite.
    """
    cls = type(a)
    if type(b) is not cls:
        raise InvalidArgument(
            f"a and b must be the same type; cannot extrapolate {describe(a)} to {describe(b)}"
        )
    if not math.isfinite(t):
        raise InvalidArgument(f"t must be finite, got {t!r}")
    kinds = _kinds_fast(cls)
    da = a.__dict__
    db = b.__dict__
    out = db.copy()
    _lerp_into(out, kinds, da, db, t)
    return _make(cls, out)
