"""Sprocket Hockey: a two-player air-hockey game on sprocket.  Play: ``sprocket play`` (or ``./play``).

Installed, this package is ``sprocket.demos.hockey``; in a clone it is also ``demos.hockey``.  Its images
and sounds are found beside the package either way: ``assets/`` at the clone's top, ``sprocket/assets``
in an install (both two levels above ``game.py``).

``Server``, ``Game`` and ``Bot`` are the names ``python -m sprocket.game.session`` looks for (and, for
``--rooms``, ``ROOM_TYPE``, ``ROOM_SEATS`` and ``APP``).
The window part (``Game``) needs pygame and is imported on first use, so the server runs headless.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame prints a banner on import otherwise

from .bot import HockeyBot
from .rooms import APP, ROOM_TYPE, SEATS
from .server import HockeyServer

Server = HockeyServer
Bot = HockeyBot
ROOM_SEATS = SEATS

__all__ = [
    "APP",
    "ROOM_SEATS",
    "ROOM_TYPE",
    "Bot",
    "Game",
    "HockeyBot",
    "HockeyGame",
    "HockeyServer",
    "Server",
]


def __getattr__(name: str) -> Any:
    if name in ("Game", "HockeyGame"):
        from .game import HockeyGame

        return HockeyGame
    raise AttributeError(name)
