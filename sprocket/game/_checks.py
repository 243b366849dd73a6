"""Argument checks shared by the game layer: every failure names the argument and the value it got.

A value of the wrong type raises :class:`~sprocket.errors.InvalidType` (an
:class:`~sprocket.errors.InvalidArgument` that is also a ``TypeError``, as Python's own type checks
are); a value of the right type that is out of range raises :class:`~sprocket.errors.InvalidArgument`
(also a ``ValueError``).  Both are in the SprocketError tree.

Pure: standard library and :mod:`sprocket.errors` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sprocket.errors import InvalidArgument, InvalidType

__all__ = ["InvalidType", "as_float", "check_callable", "check_count", "check_number", "describe"]


def describe(value: object) -> str:
    """``value`` for an error message: its repr (shortened) and, where the repr does not show it, its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, (bool, int, float, str, type(None))):
        return text
    return f"{text} (a {type(value).__name__})"


def as_float(value: int | float) -> float:
    """``value`` as a float, an int too large for one becoming infinity (instead of raising OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    finite: bool = True,
    what: str = "a number",
) -> float:
    """Return ``value`` as a float if it is a number within the bounds; otherwise raise naming ``name``.

    ``minimum``: the smallest allowed value; ``positive``: must be > 0; ``finite``: no infinities (NaN is
    never allowed).  ``what`` describes the expected value in the message ("a number of seconds").

    Raises:
        InvalidType: ``value`` is not an int or float (bools are refused too).
        InvalidArgument: it is NaN, infinite (with ``finite``), or out of bounds.
    """
    if not _is_number(value):
        raise InvalidType(f"{name} must be {what}, got {describe(value)}")
    number = float(value)  # type: ignore[arg-type]
    if number != number:
        raise InvalidArgument(f"{name} must be {what}, not NaN")
    if finite and math.isinf(number):
        raise InvalidArgument(f"{name} must be finite, got {value!r}")
    if positive and not number > 0:
        raise InvalidArgument(f"{name} must be > 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise InvalidArgument(f"{name} must be >= {minimum:g}, got {value!r}")
    return number


def check_count(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int of at least ``minimum``; otherwise raise naming ``name``.

    Raises:
        InvalidType: ``value`` is not an int (bools are refused too).
        InvalidArgument: it is below ``minimum``.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidType(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise InvalidArgument(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_callable(value: Any, name: str, *, optional: bool = False) -> Callable[..., Any] | None:
    """Return ``value`` if it is callable (or None, when ``optional``); otherwise raise naming ``name``.

    Raises:
        InvalidType: ``value`` is not callable.
    """
    if value is None and optional:
        return None
    if not callable(value):
        raise InvalidType(f"{name} must be a function, got {describe(value)}")
    return value  # type: ignore[no-any-return]
