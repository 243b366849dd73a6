"""Checking a client's input before the game rule sees it: plain data, finite numbers, declared fields.

Inputs come from the network, so a :class:`~sprocket.game.GameServer` runs :func:`input_problem` on each
one before queueing it.  Two layers:

* Always: the value is plain data — None, bools, ints and floats that are finite and within
  ``±max_number``, str and bytes of at most ``max_string`` characters/bytes, and lists, tuples, sets and
  dicts of those nested at most ``max_depth`` deep with at most ``max_items`` values in all.  Values of
  types registered with :func:`sprocket.register` are checked through their fields (dataclasses, objects
  with a ``__dict__``) or items (sequences such as ``pygame.Vector2``).
* With a declared schema (``input_schema`` on the server): the input is a dict whose keys are declared
  fields (fields may be left out; undeclared ones are refused) and whose values fit their declarations:

  ======================  ====================================================================
  declaration             the value must be
  ======================  ====================================================================
  ``(low, high)``         a number (int or float, not a bool) from ``low`` to ``high`` inclusive
  ``float``               a number (int or float, not a bool)
  ``int``                 an int (not a bool)
  ``bool``                a bool
  ``str``                 a str
  ``{"a", "b", ...}``     one of those values (a set or frozenset of choices)
  ======================  ====================================================================

Pure: no sockets, threads, clocks or pygame.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sprocket.errors import InvalidArgument

from ._checks import InvalidType, as_float, check_count, check_number, describe

__all__ = ["InputLimits", "InputSchema", "check_schema", "input_problem"]

#: A declared input schema: field name -> ``(low, high)``, ``float``, ``int``, ``bool``, ``str`` or a set
#: of allowed values.
InputSchema = Mapping[str, Any]

_SCALARS = (float, int, bool, str)


@dataclass(frozen=True)
class InputLimits:
    """The size limits every input is held to, whatever the schema (see the module docs).

    Raises ``InvalidArgument`` (``InvalidType``, also a ``TypeError``, for a wrong type) if a limit is
    not an int >= 1 (``max_number``: a number > 0).
    """

    max_number: float = 2.0**53
    max_items: int = 64
    max_depth: int = 4
    max_string: int = 256

    def __post_init__(self) -> None:
        check_number(self.max_number, "max_input_number", positive=True, finite=False)
        check_count(self.max_items, "max_input_items")
        check_count(self.max_depth, "max_input_depth")
        check_count(self.max_string, "max_input_string")


def check_schema(schema: object) -> dict[str, Any] | None:
    """Return ``schema`` as a dict if it is a valid input schema (or None); otherwise raise naming the field.

    Raises:
        InvalidType: ``schema`` is not a mapping of str to declarations, or a declaration is not one of
            the forms in the module docs (also a ``TypeError``).
        InvalidArgument: a ``(low, high)`` range is empty or not finite numbers.
    """
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        raise InvalidType(f"input_schema must be a dict of field name -> declaration, got {describe(schema)}")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if not isinstance(name, str):
            raise InvalidType(f"input_schema field names must be str, got {describe(name)}")
        where = f"input_schema[{name!r}]"
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise InvalidType(f"{where} must be (low, high), got {describe(spec)}")
            low = check_number(spec[0], f"{where} low")
            high = check_number(spec[1], f"{where} high")
            if low > high:
                raise InvalidArgument(f"{where}: low {spec[0]!r} is above high {spec[1]!r}")
            out[name] = (low, high)
        elif isinstance(spec, (set, frozenset)):
            if not spec:
                raise InvalidArgument(f"{where}: a set of allowed values must not be empty")
            out[name] = frozenset(spec)
        elif spec in _SCALARS:
            out[name] = spec
        else:
            raise InvalidType(
                f"{where} must be (low, high), float, int, bool, str or a set of allowed values, "
                f"got {describe(spec)}"
            )
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Walk:
    """One walk over an input, counting values against ``max_items``."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.items = 0

    def check(self, value: object, where: str, depth: int) -> str | None:
        self.items += 1
        limits = self.limits
        if self.items > limits.max_items:
            return f"more than {limits.max_items} values in one input"
        if value is None or isinstance(value, (bool, Enum)):
            return None
        if isinstance(value, (int, float)):
            number = as_float(value)
            if not math.isfinite(number):
                return f"{where} must be finite, got {_short(value)}"
            if abs(number) > limits.max_number:
                return f"{where} must be within ±{limits.max_number:g}, got {_short(value)}"
            return None
        if isinstance(value, (str, bytes, bytearray)):
            if len(value) > limits.max_string:
                return f"{where} is {len(value)} long, over the limit of {limits.max_string}"
            return None
        if depth >= limits.max_depth:
            return f"{where} is nested more than {limits.max_depth} deep"
        if isinstance(value, Mapping):
            if len(value) > limits.max_items:
                return f"{where} holds {len(value)} entries, over the limit of {limits.max_items}"
            for key, item in value.items():
                problem = self.check(key, f"{where} key", depth + 1)
                if problem is None:
                    problem = self.check(item, f"{where}[{_short(key)}]", depth + 1)
                if problem is not None:
                    return problem
            return None
        fields = _fields_of(value)
        if fields is not None:
            return self.check(fields, where, depth)  # a registered dataclass or object: its fields
        try:
            size = len(value)  # type: ignore[arg-type]
            items = list(value) if size <= limits.max_items else None  # type: ignore[call-overload]
        except Exception:
            return f"{where} is a {type(value).__name__}, which is not plain data"
        if items is None:
            return f"{where} holds {size} items, over the limit of {limits.max_items}"
        for index, item in enumerate(items):
            problem = self.check(item, f"{where}[{index}]", depth + 1)
            if problem is not None:
                return problem
        return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fields_of(value: object) -> dict[str, Any] | None:
    """The data a registered object travels as (dataclass fields, ``__slots__``, ``to_dict()`` or its
    ``__dict__``), or None for anything else (plain containers and scalars included)."""
    if isinstance(value, (list, tuple, set, frozenset, str, bytes, Mapping)):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            data = to_dict()
        except Exception:
            return None
        return data if isinstance(data, dict) else None
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
    if slots:
        return {name: getattr(value, name, None) for name in slots if not name.startswith("__")}
    fields = getattr(value, "__dict__", None)
    return fields if isinstance(fields, dict) else None


def _field_problem(name: str, spec: Any, value: object) -> str | None:
    if isinstance(spec, tuple):
        low, high = spec
        if not _is_number(value):
            return f"{name} must be a number from {low:g} to {high:g}, got {describe(value)}"
        # A hair of tolerance: a normalised vector or a sum of floats may land a rounding error outside.
        slack = 1e-9 * max(1.0, abs(low), abs(high))
        if not low - slack <= value <= high + slack:  # type: ignore[operator]
            return f"{name} must be from {low:g} to {high:g}, got {_short(value)}"
    elif isinstance(spec, frozenset):
        try:
            allowed = value in spec
        except TypeError:  # unhashable
            allowed = False
        if not allowed:
            return f"{name} must be one of {sorted(map(repr, spec))}, got {_short(value)}"
    elif spec is float:
        if not _is_number(value):
            return f"{name} must be a number, got {describe(value)}"
    elif spec is int:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name} must be an int, got {describe(value)}"
    elif not isinstance(value, spec):
        return f"{name} must be a {spec.__name__}, got {describe(value)}"
    return None


def input_problem(value: object, schema: Mapping[str, Any] | None, limits: InputLimits) -> str | None:
    """Why ``value`` is not an acceptable input, in words; None if it is.

    ``schema``: a schema checked by :func:`check_schema`, or None for the plain-data checks only.
    Never raises, whatever ``value`` is.
    """
    try:
        problem = _Walk(limits).check(value, "the input", 0)
        if problem is not None or schema is None:
            return problem
        if not isinstance(value, dict):
            return f"the input must be a dict of {', '.join(sorted(schema))}, got {describe(value)}"
        for key, item in value.items():
            spec = schema.get(key) if isinstance(key, str) else None
            if spec is None:
                return f"the input has a field {_short(key)} the server does not declare"
            problem = _field_problem(key, spec, item)
            if problem is not None:
                return problem
        return None
    except Exception as exc:  # a registered type whose methods raise: refuse it, never crash the server
        return f"the input could not be checked ({type(exc).__name__}: {exc})"
