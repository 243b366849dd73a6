"""The packages export what they promise, and every public name says what it is for."""

from __future__ import annotations

import inspect

import pytest

import sprocket
import sprocket.game

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("module", [sprocket, sprocket.game], ids=lambda m: m.__name__)
def test_every_exported_name_exists_and_has_a_docstring(module: object) -> None:
    for name in module.__all__:  # type: ignore[attr-defined]
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"  # type: ignore[attr-defined]


def test_every_exception_is_a_sprocket_error() -> None:
    errors = [v for v in vars(sprocket).values() if inspect.isclass(v) and issubclass(v, Exception)]
    errors += [sprocket.game.SnapshotError, sprocket.game.HookError, sprocket.game.entity.EntityError]
    assert len(errors) > 10
    for error in errors:
        assert issubclass(error, sprocket.SprocketError), error


def test_public_methods_of_the_main_classes_have_docstrings() -> None:
    from sprocket.game import GameServer, NetworkedGame

    for cls in (
        sprocket.Sprocket,
        sprocket.Servo,
        sprocket.Client,
        sprocket.Packet,
        GameServer,
        NetworkedGame,
    ):
        for name, member in vars(cls).items():
            if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"
