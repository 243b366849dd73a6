"""sprocket's pytest plugin: fixtures for testing your own networked game.

Installed with ``pip install "sprocket[test]"`` and loaded by pytest on its own (through the ``pytest11``
entry point named ``sprocket``; turn it off with ``pytest -p no:sprocket``).  Every fixture works on
127.0.0.1 with free ports, and everything a test starts through them is stopped when the test ends;
a sprocket thread still running afterwards fails the test (:class:`~sprocket.testing.LeakedThreads`).

Fixtures (each a function you call in the test):

* ``game_server(ServerClass, **options)`` -> a running GameServer subclass on a free port.
* ``game_bots(target, BotClass=GameBot, count=1, **options)`` -> bots in the game (each in a thread).
* ``game_clients(target, count=1, **options)`` -> headless GameClients your test drives.
* ``lag_proxy(target, lag=0.1, jitter=0.0)`` -> a LagProxy in front of ``target``.
* ``networked_game(GameClass, target, **options)`` -> a NetworkedGame under SDL's dummy drivers; step
  it with ``game.step()`` or :func:`~sprocket.testing.step_until`.  Only this fixture imports pygame.
* ``wait_until(condition, timeout, what)`` -> the :func:`~sprocket.testing.wait_until` function.
* ``sprocket_harness`` -> the :class:`~sprocket.testing.Harness` behind all of them.

``target`` is a port or anything with a ``port``: a server, or a proxy to play through a bad network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .harness import Harness
from .lag import LagProxy
from .waiting import wait_until as _wait_until

__all__ = [
    "game_bots",
    "game_clients",
    "game_server",
    "lag_proxy",
    "networked_game",
    "sprocket_harness",
    "wait_until",
]


@pytest.fixture
def sprocket_harness() -> Iterator[Harness]:
    """The test's :class:`~sprocket.testing.Harness`; everything it started is stopped at teardown."""
    harness = Harness()
    yield harness
    harness.close()


@pytest.fixture
def game_server(sprocket_harness: Harness) -> Callable[..., Any]:
    """Factory: ``game_server(ServerClass, **options)`` starts a GameServer subclass on 127.0.0.1.

    The server listens on a free port (``server.port``) and ticks in a background thread; options go
    to the class (``tick_rate``, ``rule``, Servo options such as ``timeout``).  Stopped after the test.
    """
    return sprocket_harness.start_server


@pytest.fixture
def game_bots(sprocket_harness: Harness) -> Callable[..., list[Any]]:
    """Factory: ``game_bots(target, BotClass=GameBot, count=1, names=None, wait=True, **options)``.

    Starts ``count`` bots connected to ``target`` (a server, a proxy or a port), each in its own thread,
    and by default returns once all of them are in the game.  Stopped after the test.
    """
    return sprocket_harness.connect_bots


@pytest.fixture
def game_clients(sprocket_harness: Harness) -> Callable[..., list[Any]]:
    """Factory: ``game_clients(target, count=1, rule=None, wait=True, **options)`` -> GameClients.

    Headless clients the test drives itself (``poll()``, ``send_input()``, ``entities()``).  By default
    returns once every connection is up.  Closed after the test.
    """
    return sprocket_harness.connect_clients


@pytest.fixture
def lag_proxy(sprocket_harness: Harness) -> Callable[..., LagProxy]:
    """Factory: ``lag_proxy(target, lag=0.1, jitter=0.0, seed=0)`` -> a started LagProxy.

    Connect bots, clients or games to ``proxy.port`` (or pass the proxy as their target) to put a
    simulated network between them and ``target``.  Closed after the test.
    """
    return sprocket_harness.lag_proxy


@pytest.fixture
def networked_game(sprocket_harness: Harness) -> Callable[..., Any]:
    """Factory: ``networked_game(GameClass, target, wait=True, **options)`` -> a NetworkedGame.

    Sets ``SDL_VIDEODRIVER``/``SDL_AUDIODRIVER`` to ``dummy`` when unset (no window, no sound device),
    opens the game and, by default, steps it until it is in the game.  Step it further with
    ``game.step()`` or :func:`sprocket.testing.step_until`.  Closed after the test.
    """
    return sprocket_harness.open_game


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """The function :func:`sprocket.testing.wait_until`: ``wait_until(condition, timeout, what)``."""
    return _wait_until
