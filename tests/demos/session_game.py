"""A game module for ``python -m sprocket.game.session`` in tests: Sprocket Hockey whose server writes
each seat it gives ("<side> <name>", one a line) to the file named by $SPROCKET_TEST_SEATS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from demos.hockey import HockeyBot, HockeyServer
from sprocket import Client

Bot = HockeyBot


class Server(HockeyServer):
    """HockeyServer that records who got which side."""

    def on_join(self, client: Client) -> None:
        super().on_join(client)
        side = next((s for s, c in self.sides.items() if c is client), None)
        with Path(os.environ["SPROCKET_TEST_SEATS"]).open("a") as seats:
            seats.write(f"{side} {client.name}\n")


def __getattr__(name: str) -> Any:
    if name == "Game":  # the window part needs pygame: imported on first use, as in demos.hockey
        from demos.hockey.game import HockeyGame

        return HockeyGame
    raise AttributeError(name)
