"""Beginner-proof hooks: a misspelled or wrongly shaped hook method is an error that names it.

Used by :class:`~sprocket.game.NetworkedGame` and :class:`~sprocket.game.GameServer` when they are
subclassed.  Pure: inspects classes, never runs them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping

from sprocket.errors import SprocketError

__all__ = ["HookError", "check_hooks"]


class HookError(SprocketError, TypeError):
    """A subclass defines a hook with an unknown name or the wrong parameters."""


def check_hooks(
    cls: type, hooks: Mapping[str, tuple[str, ...]], prefixes: tuple[str, ...] = ("on_",)
) -> None:
    """Check ``cls``'s own methods against the known ``hooks`` (name -> parameter names, without self).

    Raises:
        HookError: a method starting with one of ``prefixes`` is not a known hook (with a "did you mean"
            suggestion), or a known hook does not accept the parameters it will be called with.
    """
    for name, value in vars(cls).items():
        if not callable(value) and not isinstance(value, (staticmethod, classmethod)):
            continue
        if name in hooks:
            _check_signature(cls, name, value, hooks[name])
        elif name.startswith(prefixes) and not name.startswith("__"):
            close = difflib.get_close_matches(name, list(hooks), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known hooks: {', '.join(sorted(hooks))}"
            raise HookError(f"{cls.__name__}.{name} is not a hook {cls.__mro__[1].__name__} calls{hint}")


def _check_signature(cls: type, name: str, func: object, params: tuple[str, ...]) -> None:
    if isinstance(func, (staticmethod, classmethod)):
        raise HookError(f"{cls.__name__}.{name} must be a plain method taking (self, {', '.join(params)})")
    try:
        sig = inspect.signature(func)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    try:
        sig.bind(None, *params)
    except TypeError:
        wanted = ", ".join(("self", *params))
        raise HookError(
            f"{cls.__name__}.{name}{sig} has the wrong parameters: it is called as {name}({wanted})"
        ) from None
