"""Beginner-proof hooks: a misspelled or wrongly shaped hook method is an error that names it.

Used by :class:`~sprocket.game.NetworkedGame`, :class:`~sprocket.game.GameBot` and
:class:`~sprocket.game.GameServer` when they are subclassed.  Pure: inspects classes, never runs them.

The rules, checked on each method a subclass defines itself (names starting with ``_`` are left alone):

* a hook (``update``, ``on_packet``...) must accept the arguments it is called with;
* a name starting with ``on_`` must be a hook of that class: ``on_`` is the hooks' prefix, and sprocket
  would never call any other ``on_`` method;
* a name that is one slip of the keyboard away from a hook is an error too: ``updte``, ``draww``,
  ``inputs``, ``simulat``, ``decid``, ``Update``, ``onjoin``.  One slip is a letter left out, one letter
  too many, two neighbouring letters swapped, or a letter replaced by its neighbour on the keyboard (the
  first letter kept); capitals and underscores are ignored.  Names that start with a hook's name and an
  underscore are your own helpers and always fine: ``update_score``, ``draw_hud``, ``input_state``.

A method of your own that trips the check (a bot's ``decode``, say) is declared with :func:`not_a_hook`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from sprocket.errors import SprocketError

__all__ = ["HookError", "check_hooks", "not_a_hook", "resembles"]

F = TypeVar("F")

_MARK = "__sprocket_not_a_hook__"

# Neighbouring letters on a QWERTY keyboard (rows staggered by a quarter and a half key).
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_STAGGER = (0.0, 0.25, 0.75)
_KEYS = {ch: (row, col + _STAGGER[row]) for row, keys in enumerate(_ROWS) for col, ch in enumerate(keys)}


class HookError(SprocketError, TypeError):
    """A subclass defines a hook with the wrong parameters, an unknown ``on_*`` method, or a method whose
    name is a near-miss of a hook (it would never be called).

    The message names the method and the hook it resembles.  If the method is your own and not meant to
    be a hook, decorate it with :func:`sprocket.game.not_a_hook`.
    """


def not_a_hook(method: F) -> F:
    """Declare a method your own, not a hook: the near-miss check leaves it alone.

    Use it on a method whose name happens to resemble a hook, or on your own ``on_*`` method::

        class MyBot(GameBot):
            @not_a_hook
            def decode(self, message): ...     # one key away from the decide hook

    It works on plain methods, static methods and class methods (put it above ``@staticmethod``).  A
    subclass that overrides the method inherits the declaration.  It cannot stop a real hook from being
    called: on a method named exactly like a hook it raises :class:`HookError` when the class is defined.
    """
    target = method.__func__ if isinstance(method, (staticmethod, classmethod)) else method
    setattr(target, _MARK, True)
    return method


def _marked(value: object) -> bool:
    target = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    return bool(getattr(target, _MARK, False))


def _neighbours(a: str, b: str) -> bool:
    ka, kb = _KEYS.get(a), _KEYS.get(b)
    if ka is None or kb is None:
        return False
    return abs(ka[0] - kb[0]) <= 1 and abs(ka[1] - kb[1]) <= 1


def _one_slip(a: str, b: str) -> bool:
    """True if typing ``b`` with one slip gives ``a``: a letter dropped, added, swapped or mistyped."""
    if a == b or not a or not b or a[0] != b[0]:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return _neighbours(a[diffs[0]], b[diffs[0]])
        if len(diffs) != 2:
            return False
        i, j = diffs
        return j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if len(long) - len(short) != 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _squash(name: str) -> str:
    return name.replace("_", "").lower()


def resembles(name: str, hook: str) -> bool:
    """True if the method name ``name`` looks like a misspelling of ``hook`` (see the module docs).

    ``name == hook`` is not a misspelling, and neither is a helper named after the hook
    (``hook + "_" + anything``, such as ``update_score`` for ``update``).
    """
    if name == hook or name.startswith(hook + "_"):
        return False
    a, b = _squash(name), _squash(hook)
    return a == b or _one_slip(a, b)


def _is_method(value: object) -> bool:
    return inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod))


def _opted_out(cls: type, name: str) -> bool:
    return any(_marked(vars(klass).get(name)) for klass in cls.__mro__)


def check_hooks(
    cls: type,
    hooks: Mapping[str, tuple[str, ...]],
    *,
    base: str,
    retired: Mapping[str, str] | None = None,
) -> None:
    """Check ``cls``'s own methods against the known ``hooks`` (name -> parameter names, without self).

    ``base`` names the class whose hooks they are (in messages); ``retired`` maps old hook names to a
    description of what replaced them.

    Raises:
        HookError: a known hook does not accept the parameters it will be called with (or is a static or
            class method, or is marked :func:`not_a_hook`); a method starting with ``on_`` is not a hook;
            a method's name is a near-miss of a hook (see the module docs).  The message names the method
            and the hook.
    """
    retired = retired or {}
    for name, value in vars(cls).items():
        if name in hooks:
            if _marked(value):
                raise HookError(
                    f"{cls.__name__}.{name} is a hook {base} calls; @not_a_hook cannot change that "
                    "(give your own method another name)"
                )
            if callable(value) or isinstance(value, (staticmethod, classmethod)):
                _check_signature(cls, name, value, hooks[name])
            continue
        if name.startswith("_") or not _is_method(value) or _opted_out(cls, name):
            continue
        where = f"{cls.__name__}.{name}"
        opt_out = (
            f"If {name} is a method of your own, not meant as a hook, decorate it with "
            "@sprocket.game.not_a_hook."
        )
        if name in retired:
            raise HookError(f"{where}: {base} no longer calls {name}; use {retired[name]} instead")
        like = _closest(name, hooks)
        if like is not None:
            raise HookError(
                f"{where} is not a hook {base} calls, so it would never run: did you mean "
                f"{_shape(like, hooks)}? {opt_out}"
            )
        if name.startswith("on_"):
            close = difflib.get_close_matches(name, list(hooks), n=1)
            known = f"its hooks are {', '.join(hooks)}."
            hint = f"did you mean {_shape(close[0], hooks)}?" if close else known
            raise HookError(f"{where} is not a hook {base} calls, so it would never run: {hint} {opt_out}")


def _closest(name: str, hooks: Mapping[str, tuple[str, ...]]) -> str | None:
    candidates = [hook for hook in hooks if resembles(name, hook)]
    if not candidates:
        return None
    return max(candidates, key=lambda hook: difflib.SequenceMatcher(None, name, hook).ratio())


def _shape(hook: str, hooks: Mapping[str, tuple[str, ...]]) -> str:
    return f"{hook}({', '.join(('self', *hooks[hook]))})"


def _check_signature(cls: type, name: str, func: Any, params: tuple[str, ...]) -> None:
    if isinstance(func, (staticmethod, classmethod)):
        raise HookError(f"{cls.__name__}.{name} must be a plain method taking (self, {', '.join(params)})")
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(None, *params)
    except TypeError:
        wanted = ", ".join(("self", *params))
        raise HookError(
            f"{cls.__name__}.{name}{sig} has the wrong parameters: it is called as {name}({wanted})"
        ) from None
