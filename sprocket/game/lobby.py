"""The client side of a RoomServer's lobby: list, create, join and leave rooms over one connection.

Every :class:`~sprocket.game.GameClient` has one, as ``client.lobby`` (``bot.lobby`` on a
:class:`~sprocket.game.GameBot`, ``game.net.lobby`` in a :class:`~sprocket.game.NetworkedGame`).  Requests
never block; the answers arrive through :meth:`GameClient.poll <sprocket.game.GameClient.poll>` as
:class:`RoomJoined`, :class:`RoomLeft`, :class:`RoomList` and :class:`LobbyRefused` items, which the
hooks ``on_room_joined(room)``, ``on_room_left(left)``, ``on_room_list(rooms)`` and
``on_lobby_error(refusal)`` receive, and in the attributes here (for plain scripts that poll).
docs/PROTOCOL.md ("Lobby") documents the messages.  This module never imports pygame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sprocket import Packet
from sprocket.errors import InvalidArgument, ProtocolError

from ._checks import InvalidType, describe
from .messages import (
    GAME_FIELD,
    L_CREATE,
    L_ERROR,
    L_EXIT,
    L_JOIN,
    L_LIST,
    L_LOBBY,
    L_OUT,
    L_QUICK,
    L_ROOM,
    L_ROOMS,
    MAX_ROOM_TEXT,
    LobbyRefused,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomList,
)

if TYPE_CHECKING:
    from .client import GameClient

__all__ = ["Lobby"]

#: The most rooms a listing may carry before the client refuses it as malformed.
MAX_LISTED = 1000


class Lobby:
    """Rooms, from the client side.  Made by :class:`~sprocket.game.GameClient`; use ``client.lobby``.

    Attributes (updated by ``poll()``):
        available: True once the server said it is a RoomServer (its lobby message arrived).
        types: room type name -> seats per room, as the server announced them.
        room: the :class:`RoomInfo` of the room we are in, or None (in the lobby).
        rooms: the last listing (:meth:`list_rooms`), fullest first.
        refused: the last :class:`LobbyRefused`, or None.
        pending: the request awaiting its answer (``"quick"``, ``"create"``, ``"join?"``, ``"exit"``), or
            None.

    While a request to enter or leave a room is pending, the game sends no inputs (``client.ready`` is
    false): what follows belongs to the next room.  Every request raises ``ClosedError`` if the
    Sprocket was closed, and ``InvalidArgument`` (``InvalidType``) for a bad argument; it is sent even
    while the connection is being resumed (the Sprocket keeps it).
    """

    def __init__(self, client: GameClient) -> None:
        self._client = client
        self.available = False
        self.types: dict[str, int] = {}
        self.room: RoomInfo | None = None
        self.rooms: list[RoomInfo] = []
        self.refused: LobbyRefused | None = None
        self.pending: str | None = None

    # -- requests ---------------------------------------------------------------------------------------

    def list_rooms(self, type: str | None = None) -> None:
        """Ask for the public rooms (of one room type, or all); the answer is a :class:`RoomList`."""
        self._send(L_LIST, type=_text(type, "type", optional=True))

    def quick_join(self, type: str) -> None:
        """Join a public room of ``type`` with a free seat (the fullest), or open one: join-or-create.

        The answer is a :class:`RoomJoined` (the room's game follows), or a :class:`LobbyRefused`.
        """
        self._send(L_QUICK, type=_text(type, "type"), moving=True)

    def create(self, type: str, *, private: bool = True, name: str | None = None) -> None:
        """Open a room of ``type`` and enter it.  A private room is never listed: share its
        ``room.code`` (5 letters).  ``name`` (at most 32 characters) is shown in listings."""
        if not isinstance(private, bool):
            raise InvalidType(f"private must be a bool, got {describe(private)}")
        name = _text(name, "name", optional=True)
        self._send(L_CREATE, type=_text(type, "type"), private=private, name=name, moving=True)

    def join(self, code: str) -> None:
        """Enter the room with this join code (any case; spaces and dashes are ignored).  A wrong code is
        refused (``no_room``, or ``closed``), and so are more than a few tries in a short time (``rate``)."""
        self._send(L_JOIN, code=_text(code, "code", limit=20), moving=True)

    def leave(self) -> None:
        """Leave the room, back to the lobby (the connection stays); the answer is a :class:`RoomLeft`."""
        self._send(L_EXIT, moving=True)

    def _send(self, kind: str, *, moving: bool = False, **fields: Any) -> None:
        self._client.sprocket.send(**{GAME_FIELD: kind, **fields})
        if moving:
            self.pending = kind
            self._client._moving = True  # no inputs until the answer: they would reach the wrong room

    # -- answers (called by GameClient.poll) ------------------------------------------------------------

    def _receive(self, kind: str, packet: Packet) -> Any:
        """Read one lobby message; return the item poll() hands the game (or None).  Raises
        ``ProtocolError`` if it does not fit docs/PROTOCOL.md."""
        if kind == L_LOBBY:
            types = packet.get("types")
            if not isinstance(types, list) or len(types) > MAX_LISTED:
                raise ProtocolError("a 'lobby' message whose 'types' is not a list")
            parsed: dict[str, int] = {}
            for entry in types:
                if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                        and len(entry[0]) <= MAX_ROOM_TEXT and type(entry[1]) is int):  # fmt: skip
                    raise ProtocolError(
                        f"a 'lobby' message whose room type {describe(entry)} is not [name, seats]"
                    )
                parsed[entry[0]] = entry[1]
            self.available, self.types, self.room = True, parsed, None
            return None
        if kind == L_ROOMS:
            rooms = packet.get("rooms")
            total = packet.get("total", 0)
            if not isinstance(rooms, list) or len(rooms) > MAX_LISTED or type(total) is not int:
                raise ProtocolError("a 'rooms' message whose 'rooms' is not a list of rooms")
            self.rooms = [RoomInfo.from_wire(room) for room in rooms]
            return RoomList(tuple(self.rooms), total)
        if kind == L_ROOM:
            self.room = RoomInfo.from_wire({key: packet[key] for key in packet})
            self.pending = None
            return RoomJoined(self.room)
        if kind == L_OUT:
            code, reason, closed = packet.get("code"), packet.get("reason", ""), packet.get("closed", False)
            if not isinstance(code, str) or not isinstance(reason, str) or not isinstance(closed, bool):
                raise ProtocolError(
                    "an 'out' message whose 'code', 'reason' or 'closed' is of the wrong type"
                )
            self.room = None
            if self.pending == L_EXIT:
                self.pending = None
            return RoomLeft(code[:MAX_ROOM_TEXT], reason[:500], closed)
        if kind == L_ERROR:
            request, error, reason = packet.get("request"), packet.get("error"), packet.get("reason", "")
            if not all(isinstance(v, str) for v in (request, error, reason)):
                raise ProtocolError("a 'lerr' message whose 'request', 'error' or 'reason' is not a str")
            self.refused = LobbyRefused(str(request)[:20], str(error)[:40], str(reason)[:500])
            if self.pending == request:
                self.pending = None
            return self.refused
        return None

    def _reset(self) -> None:
        """The connection ended or the session was lost: a fresh join starts in the lobby."""
        self.room = None
        self.pending = None
        self.available = False

    def __repr__(self) -> str:
        where = f"in room {self.room.code}" if self.room is not None else "in the lobby"
        return f"<Lobby {where}>"


def _text(value: object, name: str, *, optional: bool = False, limit: int = MAX_ROOM_TEXT) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidType(f"{name} must be a str, got {describe(value)}")
    if len(value) > limit:
        raise InvalidArgument(f"{name} must be at most {limit} characters, got {len(value)}")
    return value
