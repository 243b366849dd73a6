"""The room type of the cluster tests: two-player rooms of a trivial game (nodes load it by name)."""

from __future__ import annotations

from sprocket import Client
from sprocket.game import Entity, GameServer


class Token(Entity, type_name="cluster.Token"):
    x: float = 0.0


def rule(state: Token, inp: dict[str, float], dt: float) -> Token:
    state.x += inp.get("dx", 0.0)
    return state


class Duel(GameServer):
    """Two players, each a Token; a quiet room (few snapshots) so hundreds of clients stay cheap."""

    rule = staticmethod(rule)
    max_players = 2
    tick_rate = 20.0
    snapshot_rate = 2.0

    def on_join(self, client: Client) -> None:
        self.control(client, self.world.spawn(Token()))
        self.room_state = "playing" if len(self.players) >= 2 else "waiting"
