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

from sprocket import Packet, Sprocket
from sprocket.errors import InvalidArgument, ProtocolError

from ._checks import InvalidType, describe
from .messages import (
    GAME_FIELD,
    L_CREATE,
    L_ERROR,
    L_EXIT,
    L_GO,
    L_JOIN,
    L_LIST,
    L_LOBBY,
    L_OUT,
    L_QUICK,
    L_ROOM,
    L_ROOMS,
    L_SEAT,
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
        pending: the request awaiting its answer (``"quick"``, ``"create"``, ``"join?"``, ``"exit"``,
            ``"seat"``), or None.
        nodes: the nodes of the server's cluster, as ``(host, port)`` (empty for a server alone).
        node: the id of the cluster node we are connected to, or None.
        moves: how many times the lobby moved the connection to another node of the cluster.

    In a cluster (:mod:`sprocket.game.cluster`) a room may be on another node: the answer to a request is
    then ``go`` (that node's address and a seat reservation), and the lobby moves the connection there
    by itself (a new Sprocket with the same options; the old one is closed) and takes the reserved seat;
    the game hears only :class:`RoomJoined` (or :class:`LobbyRefused`), as on one server.  A request made
    while the connection is down (its node was killed) goes to another node of :attr:`nodes`, a fresh
    connection, so ``quick_join`` from ``on_drop`` re-seats a player on the surviving nodes.

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
        self.nodes: list[tuple[str, int]] = []
        self.node: str | None = None
        self.moves = 0
        self._go: tuple[str, int, str, dict[str, Any]] | None = None  # where the server sent us
        self._hide_connect = False  # the next Connected is the move's, not news for the game
        self._asked: tuple[str, dict[str, Any]] | None = None  # the last matchmaking request, for a retry
        self._tries = 0

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
        if kind in (L_QUICK, L_CREATE, L_JOIN):
            self._asked, self._tries = (kind, fields), 0
        sprocket = self._client.sprocket
        if not sprocket.connected and kind != L_EXIT:
            other = self._other_node(sprocket)
            if other is not None:  # our node is unreachable: ask another node of the cluster
                self._move(other[0], other[1], kind, fields)
                return
        sprocket.send(**{GAME_FIELD: kind, **fields})
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
            self._cluster(packet)
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
            if "nodes" in packet:
                self._cluster(packet)
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
        if kind == L_GO:
            host, port, ticket = packet.get("host"), packet.get("port"), packet.get("ticket")
            if not (isinstance(host, str) and 0 < len(host) <= 255 and type(port) is int and 0 < port < 65536
                    and isinstance(ticket, str) and len(ticket) <= 300):  # fmt: skip
                raise ProtocolError("a 'go' message whose 'host', 'port' or 'ticket' is of the wrong type")
            self._go = (host, port, L_SEAT, {"ticket": ticket})
            return None
        if kind == L_ERROR:
            request, error, reason = packet.get("request"), packet.get("error"), packet.get("reason", "")
            if not all(isinstance(v, str) for v in (request, error, reason)):
                raise ProtocolError("a 'lerr' message whose 'request', 'error' or 'reason' is not a str")
            self.refused = LobbyRefused(str(request)[:20], str(error)[:40], str(reason)[:500])
            if self.pending == request:
                self.pending = None
            return self.refused
        return None

    def _cluster(self, packet: Packet) -> None:
        nodes, node = packet.get("nodes"), packet.get("node")
        if nodes is None:
            self.nodes, self.node = [], None
            return
        if not isinstance(nodes, list) or len(nodes) > MAX_LISTED:
            raise ProtocolError("a 'lobby' message whose 'nodes' is not a list")
        parsed = []
        for entry in nodes:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                    and len(entry[0]) <= 255 and type(entry[1]) is int and 0 < entry[1] < 65536):  # fmt: skip
                raise ProtocolError(f"a 'lobby' message whose node {describe(entry)} is not [host, port]")
            parsed.append((entry[0], entry[1]))
        self.nodes = parsed
        self.node = node[:40] if isinstance(node, str) else None

    def _other_node(self, sprocket: Sprocket) -> tuple[str, int] | None:
        here = (sprocket.host, sprocket.port)
        others = [n for n in self.nodes if n != here]
        if not others:
            return None
        return others[self.moves % len(others)]

    def _retry_elsewhere(self) -> bool:
        """The node we were moving to cannot be reached (GameClient.poll calls this on a Disconnected):
        ask another node of the cluster the same request instead; True if we did (the Disconnected is then
        not news for the game).  Each node is tried at most once per request."""
        if not self._hide_connect or self._asked is None or self._tries >= len(self.nodes):
            return False
        other = self._other_node(self._client.sprocket)
        if other is None:
            return False
        self._tries += 1
        kind, fields = self._asked
        self._move(other[0], other[1], kind, fields)
        return True

    def _follow(self) -> None:
        """Go where a ``go`` message sent us (GameClient.poll calls this)."""
        if self._go is not None:
            host, port, kind, fields = self._go
            self._go = None
            self._move(host, port, kind, fields)

    def _move(self, host: str, port: int, kind: str, fields: dict[str, Any]) -> None:
        """Connect to another node of the cluster (a fresh connection, the same options) and send the
        request there; the old connection is closed."""
        client = self._client
        old = client.sprocket
        st = old.settings
        new = Sprocket(
            host, port, name=st.name, password=st.password, app=st.app, codec=st.codec,
            max_packet_size=st.max_packet_size, ping_interval=st.ping_interval, timeout=st.timeout,
            connect_timeout=st.handshake_timeout, close_timeout=st.close_timeout,
            max_send_queue=st.max_send_queue, max_inbox_bytes=st.max_inbox_bytes,
            ssl_context=st.ssl_context, server_hostname=st.server_hostname, reconnect=st.reconnect,
            resume_buffer=st.resume_buffer, on_connect=old.on_connect, on_disconnect=old.on_disconnect,
            on_drop=old.on_drop, on_resume=old.on_resume,
        )  # fmt: skip
        old.close(reason="moved to another node of the cluster")
        client.sprocket = new
        client._forget_session()
        client._welcomed = False
        client._dropped_at = None
        self.moves += 1
        self.available = False
        self.room = None
        self._hide_connect = True
        new.send(**{GAME_FIELD: kind, **fields})  # sent once the connection is up
        self.pending = kind
        client._moving = True

    def _reset(self) -> None:
        """The connection ended or the session was lost: a fresh join starts in the lobby."""
        self.room = None
        self.pending = None
        self.available = False
        self._hide_connect = False

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
