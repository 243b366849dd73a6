"""The game layer's own messages, carried as ordinary packets over sprocket.

Every game-layer packet has the reserved field ``"_g"`` naming its kind; packets without it belong to the
user and are handed to ``on_packet`` untouched.  docs/PROTOCOL.md ("Game layer") documents each kind.
This module only names things; it does no I/O and imports neither pygame nor sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sprocket.errors import ProtocolError

__all__ = [
    "GAME_FIELD",
    "LobbyRefused",
    "PlayerDropped",
    "PlayerJoined",
    "PlayerLeft",
    "PlayerResumed",
    "RoomInfo",
    "RoomJoined",
    "RoomLeft",
    "RoomList",
]

GAME_FIELD = "_g"

# server -> client
HELLO = "hello"  # {"rate", "snap", "id": your client id, "players": [[id, name]...], "away": [id...]}
SNAPSHOT = "snap"  # {"w": snapshot wire form, "ack": last input seq applied for you, "you": entity id | None}
SNAP = "S"  # {"s": [w, ack, you] or [w, ack, you, in]}: "snap" by position (what GameServer sends)
JOIN = "join"  # {"id": client id, "name": name}
LEAVE = "leave"  # {"id": client id, "name": name, "reason": why}
DROP = "drop"  # {"id": client id, "name": name, "reason": why, "grace": seconds its seat is held}
BACK = "back"  # {"id": client id, "name": name}: a dropped player resumed (same id, same entity)
# client -> server
INPUT = "in"  # {"s": input sequence number, "i": the input value}
ACK = "ack"  # {"t": the newest snapshot tick received, or None to ask for a full snapshot}

# The lobby of a RoomServer (docs/PROTOCOL.md, "Lobby").  Client -> server requests:
L_LIST = "rooms?"  # {"type": a room type or nil}: list the public rooms
L_QUICK = "quick"  # {"type": room type}: join a public room of that type with a free seat, or create one
L_CREATE = "create"  # {"type", "private": bool, "name": str | nil}: open a room and enter it
L_JOIN = "join?"  # {"code": a join code}: enter the room with this code
L_EXIT = "exit"  # {}: leave the room, back to the lobby
L_SEAT = "seat"  # {"ticket": a seat reservation}: take the seat a cluster node reserved (docs/PROTOCOL.md)
LOBBY_REQUESTS = frozenset({L_LIST, L_QUICK, L_CREATE, L_JOIN, L_EXIT, L_SEAT})
# Server -> client replies:
L_LOBBY = "lobby"  # {"types": [[name, max players]...], "id": your client id}: you are in the lobby
L_ROOMS = "rooms"  # {"rooms": [room map...], "total": public rooms matching}: the listing asked for
L_ROOM = "room"  # {room map}: you are in this room now (the room's "hello" follows)
L_OUT = "out"  # {"code", "reason", "closed": bool}: you are back in the lobby (you left, or it closed)
L_ERROR = "lerr"  # {"request": the request's kind, "error": a word, "reason": a sentence}: refused
L_GO = "go"  # {"request", "host", "port", "code", "ticket"}: a cluster's room is on that node: go and "seat"
LOBBY_REPLIES = frozenset({L_LOBBY, L_ROOMS, L_ROOM, L_OUT, L_ERROR, L_GO})
#: The most characters a room's type, name or state string may have (longer ones are refused).
MAX_ROOM_TEXT = 32


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


@dataclass(frozen=True)
class RoomInfo:
    """One room of a :class:`~sprocket.game.RoomServer`, as listed to clients.

    ``code`` is its join code (5 letters), ``type`` its room type, ``name`` the name given when it was
    created (or None), ``players`` / ``max_players`` its seats taken / in all, ``state`` the string its
    game set (``room_state``, e.g. ``"lobby"`` or ``"playing"``; ``""`` if none), ``private`` whether it
    is left out of listings (only its code lets anyone in).
    """

    code: str
    type: str
    name: str | None
    players: int
    max_players: int
    state: str
    private: bool = False

    @property
    def full(self) -> bool:
        """True when every seat is taken."""
        return self.players >= self.max_players

    def to_wire(self) -> dict[str, Any]:
        """The room map of docs/PROTOCOL.md ("Lobby")."""
        return {"code": self.code, "type": self.type, "name": self.name, "players": self.players,
                "max": self.max_players, "state": self.state, "private": self.private}  # fmt: skip

    @classmethod
    def from_wire(cls, value: object) -> RoomInfo:
        """Read a room map; raises ``ProtocolError`` saying what does not fit docs/PROTOCOL.md."""
        if not isinstance(value, dict):
            raise ProtocolError(f"a room that is a {type(value).__name__}, not a map")
        text: dict[str, str | None] = {}
        for key in ("code", "type", "name", "state"):
            item = value.get(key)
            if key == "name" and item is None:
                text[key] = None
                continue
            if not isinstance(item, str) or len(item) > MAX_ROOM_TEXT:
                raise ProtocolError(
                    f"a room whose {key!r} is not a str of at most {MAX_ROOM_TEXT} characters"
                )
            text[key] = item
        counts = []
        for key in ("players", "max"):
            item = value.get(key)
            if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item < 1 << 31:
                raise ProtocolError(f"a room whose {key!r} is not a count")
            counts.append(item)
        private = value.get("private", False)
        if not isinstance(private, bool):
            raise ProtocolError("a room whose 'private' is not a bool")
        return cls(str(text["code"]), str(text["type"]), text["name"], counts[0], counts[1],
                   str(text["state"]), private)  # fmt: skip


@dataclass(frozen=True)
class RoomJoined:
    """Client side: we are in ``room`` now (a :class:`RoomInfo`); what ``on_room_joined(room)`` receives.

    The room's game starts for us as on a GameServer: ``on_player_join`` for everyone in it follows.
    """

    room: RoomInfo


@dataclass(frozen=True)
class RoomLeft:
    """Client side: we are back in the lobby; what ``on_room_left(left)`` receives.

    ``code`` is the room's, ``reason`` says why, ``closed`` is True when the room closed under us (its
    game failed) rather than us leaving or moving.
    """

    code: str
    reason: str
    closed: bool


@dataclass(frozen=True)
class RoomList:
    """Client side: the public rooms the server listed (``rooms``, fullest first, at most 200 of ``total``);
    what ``on_room_list(rooms)`` receives."""

    rooms: tuple[RoomInfo, ...]
    total: int


@dataclass(frozen=True)
class LobbyRefused:
    """Client side: the server refused a lobby request; what ``on_lobby_error(refusal)`` receives.

    ``request`` names the request (``"quick"``, ``"create"``, ``"join?"``, ``"exit"``, ``"rooms?"``),
    ``error`` is a word (``full``, ``no_room``, ``closed``, ``rate``, ``max_rooms``, ``unknown_type``,
    ``bad_request``, ``not_in_room``: docs/PROTOCOL.md) and ``reason`` a sentence to show.
    """

    request: str
    error: str
    reason: str
