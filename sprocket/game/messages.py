"""The game layer's own messages, carried as ordinary packets over sprocket.

Every game-layer packet has the reserved field ``"_g"`` naming its kind; packets without it belong to the
user and are handed to ``on_packet`` untouched.  docs/PROTOCOL.md ("Game layer") documents each kind.
This module only names things; it does no I/O and imports neither pygame nor sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GAME_FIELD", "PlayerDropped", "PlayerJoined", "PlayerLeft", "PlayerResumed"]

GAME_FIELD = "_g"

# server -> client
HELLO = "hello"  # {"rate", "snap", "id": your client id, "players": [[id, name]...], "away": [id...]}
SNAPSHOT = "snap"  # {"w": snapshot wire form, "ack": last input seq applied for you, "you": entity id | None}
JOIN = "join"  # {"id": client id, "name": name}
LEAVE = "leave"  # {"id": client id, "name": name, "reason": why}
DROP = "drop"  # {"id": client id, "name": name, "reason": why, "grace": seconds its seat is held}
BACK = "back"  # {"id": client id, "name": name}: a dropped player resumed (same id, same entity)
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


@dataclass(frozen=True)
class PlayerDropped:
    """Client side: another player's connection dropped, and the server holds their seat (their id and
    entity) for ``grace`` seconds while they reconnect; what ``on_player_drop(player)`` receives.

    Their entity stays in the world, still (it gets no input while they are away).  What follows is
    :class:`PlayerResumed` (they are back) or :class:`PlayerLeft` (the grace period ended).
    """

    id: int
    name: str | None
    reason: str
    grace: float


@dataclass(frozen=True)
class PlayerResumed:
    """Client side: a dropped player is back within the grace period, with the same id and entity; what
    ``on_player_resume(player)`` receives."""

    id: int
    name: str | None
