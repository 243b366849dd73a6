"""Every exception the library raises is a SprocketError (the README's promise, checked at every raise site).

The check reads the source: a ``raise`` that names a built-in exception class is a bug, except for the
attribute protocol (``AttributeError`` from ``__getattr__``/``__setattr__``/``__delattr__``, which Python
itself relies on), and ``SystemExit``/``KeyboardInterrupt`` from command-line entry points and signal
handlers.  Re-raising a caught exception
(``raise``, ``raise exc``) and helpers that build a tree exception are fine.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

import sprocket

PACKAGE = Path(sprocket.__file__).parent
ATTRIBUTE_PROTOCOL = {"__getattr__", "__setattr__", "__delattr__"}


def _builtin_exception(name: str) -> bool:
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, BaseException)


def _raised_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "builtins"
    ):
        return target.attr  # raise builtins.ValueError(...)
    return None


def offending_raises(source: str) -> list[tuple[int, str]]:
    """(line, exception name) of every raise of a built-in exception not allowed by the rule above."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                name = _raised_name(child.exc)
                if name is not None and _builtin_exception(name):
                    allowed = (name == "AttributeError" and function in ATTRIBUTE_PROTOCOL) or name in (
                        "SystemExit",
                        "KeyboardInterrupt",
                    )
                    if not allowed:
                        found.append((child.lineno, name))
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def test_the_check_finds_a_planted_builtin_raise() -> None:
    planted = "def f(x):\n    if x:\n        raise ValueError('no')\n    raise\n"
    assert offending_raises(planted) == [(3, "ValueError")]
    protocol = "class P:\n    def __getattr__(self, n):\n        raise AttributeError(n)\n"
    assert offending_raises(protocol) == []
    elsewhere = "def g():\n    raise AttributeError('x')\n"
    assert offending_raises(elsewhere) == [(2, "AttributeError")]
    spelled = (
        "import builtins\n"
        "def h(e):\n"
        "    try:\n"
        "        pass\n"
        "    except OSError as e:\n"
        "        raise e\n"  # a caught exception: fine
        "    raise builtins.RuntimeError\n"  # flagged
    )
    assert offending_raises(spelled) == [(7, "RuntimeError")]


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE.parent))
)
def test_every_raise_site_is_in_the_tree(path: Path) -> None:
    bad = offending_raises(path.read_text(encoding="utf-8"))
    assert not bad, f"{path.name} raises built-in exceptions outside the SprocketError tree at: {bad}"
