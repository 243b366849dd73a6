"""Many hockey matches on one server: the demo's RoomServer, its LAN announcement, and what a client does
once it finds itself in a lobby (a :class:`RoomPlan`).  Never imports pygame.

``./play --server`` and ``./play --host`` run :func:`hockey_rooms`; a window or a bot that connects to one
quick-joins a hockey room (or joins the room whose code it was given) by itself, and to a plain
``HockeyServer`` (``sprocket serve demos.hockey:HockeyServer``) it is in the one match at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sprocket import DEFAULT_PORT
from sprocket.errors import InvalidArgument
from sprocket.game import LobbyRefused, RoomLeft, RoomServer, RoomType, ServerStatus
from sprocket.game.lobby import Lobby

from .server import HockeyServer

__all__ = ["APP", "ROOM_TYPE", "SEATS", "RoomPlan", "hockey_rooms", "rooms_status"]

#: The app string of every part of the demo: a client of another game (or version) is turned away.
APP = "sprocket-hockey-1"
#: The room type name the demo's servers register, and clients quick-join.
ROOM_TYPE = "hockey"
#: Seats in a hockey room: a match is two players (watching is for a plain HockeyServer).
SEATS = 2
PLANS = ("quick", "join", "create")


def hockey_rooms(host: str = "0.0.0.0", port: int = DEFAULT_PORT, **options: Any) -> RoomServer:
    """A :class:`~sprocket.game.RoomServer` of two-seat ``"hockey"`` rooms (unstarted: call ``start()``
    or ``run()``), listening on ``host``:``port``; ``options`` go to the RoomServer (``max_rooms``,
    ``empty_timeout``...) and its Servo.

    Raises:
        ConnectionFailed: the port cannot be bound.
        InvalidArgument: a bad option.
    """
    options.setdefault("app", APP)
    return RoomServer({ROOM_TYPE: RoomType(HockeyServer, max_players=SEATS)}, host=host, port=port, **options)


def rooms_status(server: RoomServer) -> Callable[[], ServerStatus]:
    """An :class:`~sprocket.game.Announcer` status function for ``server``: its port, the demo's app, the
    players seated in its rooms, its connection limit and its open rooms.  Raises nothing."""
    max_clients = server.servo.settings.max_clients

    def status() -> ServerStatus:
        rooms = server.rooms()
        return ServerStatus(server.port, APP, sum(room.players for room in rooms), max_clients, len(rooms))

    return status


@dataclass
class RoomPlan:
    """What a window or a bot does in a RoomServer's lobby: ``"quick"`` (quick-join a hockey room, the
    default), ``"join"`` (the room whose ``code`` it was given) or ``"create"`` (a new room, ``private``
    or listed).  Pure: :meth:`step` looks at a :class:`~sprocket.game.lobby.Lobby` and sends at most
    one request; :meth:`refused` and :meth:`left` take the lobby's answers.

    :attr:`failure` says in words why the plan cannot go on (a refusal: full room, wrong code; the room
    closed), or None.  Against a plain HockeyServer the lobby never becomes available and the plan
    does nothing.  After a lost session the fresh connection starts in the lobby again, and the plan
    asks again; a quick plan whose room closed quick-joins another.

    Raises:
        InvalidArgument: an unknown ``kind``, or ``"join"`` without a ``code``.
    """

    kind: str = "quick"
    code: str | None = None
    private: bool = False
    room_type: str = ROOM_TYPE
    failure: str | None = None
    asked: int = 0  # requests sent
    _pending: bool = field(default=False, repr=False)  # asked, no answer yet

    def __post_init__(self) -> None:
        if self.kind not in PLANS:
            raise InvalidArgument(f"a room plan is one of {', '.join(PLANS)}, got {self.kind!r}")
        if self.kind == "join" and not self.code:
            raise InvalidArgument("a 'join' room plan needs the room's code")

    def step(self, lobby: Lobby) -> bool:
        """Send the plan's request if ``lobby`` is a RoomServer's, we are in no room, nothing is pending
        and the plan has not failed; True if it sent one.  Raises as the lobby's requests do
        (``ClosedError`` once the connection is closed)."""
        if not lobby.available:
            self._pending = False  # a fresh connection (the session was lost): ask again once it is up
            return False
        if lobby.room is not None:
            self._pending = False  # answered: in a room
            return False
        if self._pending or lobby.pending is not None or self.failure is not None:
            return False  # one request at a time; none once the plan failed
        if self.kind == "quick":
            lobby.quick_join(self.room_type)
        elif self.kind == "join":
            assert self.code is not None
            lobby.join(self.code)
        else:
            lobby.create(self.room_type, private=self.private)
        self._pending = True
        self.asked += 1
        return True

    def refused(self, refusal: LobbyRefused) -> None:
        """The server refused our request: the plan fails with its reason (shown to the player)."""
        self.failure = refusal.reason or refusal.error
        self._pending = False

    def left(self, left: RoomLeft) -> None:
        """We are back in the lobby: a quick plan joins another room at the next :meth:`step`; a plan for
        one room (by code, or the one we created) fails with the reason."""
        self._pending = False
        if self.kind != "quick":
            self.failure = left.reason or "the room closed"
