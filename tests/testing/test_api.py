"""sprocket.testing's public surface: documented names, errors in the SprocketError tree, light imports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import sprocket
import sprocket.testing
from sprocket.testing import Harness, LagProxy, RelayedConnection, plugin

pytestmark = pytest.mark.timeout(60)


def test_every_exported_name_and_public_method_has_a_docstring() -> None:
    for name in sprocket.testing.__all__:
        value = getattr(sprocket.testing, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"sprocket.testing.{name} has no docstring"
    for cls in (Harness, LagProxy, RelayedConnection):
        for name, member in vars(cls).items():
            if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"
    for name in plugin.__all__:
        assert inspect.getdoc(getattr(plugin, name)), f"fixture {name} has no docstring"


def test_the_kits_errors_are_sprocket_errors_and_assertion_errors() -> None:
    for error in (sprocket.testing.WaitTimeout, sprocket.testing.LeakedThreads):
        assert issubclass(error, sprocket.SprocketError) and issubclass(error, AssertionError)


@pytest.mark.parametrize("module", ["sprocket.testing", "sprocket.testing.plugin", "sprocket.netsim"])
def test_importing_the_kit_loads_neither_pygame_nor_the_game_layer(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m == 'pygame' or m.startswith('sprocket.game')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
