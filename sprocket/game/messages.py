"""The game layer's own messages, carried as ordinary packets over sprocket.

Every game-layer packet has the reserved field ``"_g"`` naming its kind; packets without it belong to the
user and are handed to ``on_packet`` untouched.  docs/PROTOCOL.md ("Game layer") documents each kind.
This module only names things; it does no I/O and imports neither pygame nor sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GAME_FIELD", "PlayerJoined", "PlayerLeft"]

GAME_FIELD = "_g"

# server -> client
HELLO = (
    "hello"  # {"rate": tick rate, "snap": snapshot rate, "id": your client id, "players": [[id, name]...]}
)
SNAPSHOT = "snap"  # {"w": snapshot wire form, "ack": last input seq applied for you, "you": entity id | None}
JOIN = "join"  # {"id": client id, "name": name}
LEAVE = "leave"  # {"id": client id, "name": name, "reason": why}
# client -> server
INPUT = "in"  # {"s": input sequence number, "i": the input value}
ACK = "ack"  # {"t": the newest snapshot tick received, or None to ask for a full snapshot}


@dataclass(frozen=True)
class PlayerJoined:
    """Client side: another player (or you) joined the game; what ``on_player_join(player)`` receives.

    ``id`` is their client id on the server (the ``Client.id`` the server's ``on_join`` saw), ``name`` their
    player name.
    """

    id: int
    name: str | None


@dataclass(frozen=True)
class PlayerLeft:
    """Client side: a player left the game; what ``on_player_leave(player)`` receives.

    ``id`` and ``name`` as in :class:`PlayerJoined`; ``reason`` says why (closed, timed out, kicked...).
    """

    id: int
    name: str | None
    reason: str
