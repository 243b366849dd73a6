"""Rooms: many matches on one server, one listening port, one tick thread.

A :class:`RoomServer` owns one :class:`~sprocket.Servo`.  A client that connects is in the *lobby*: it can
list the public rooms, quick-join a room type (join a room of that type with a free seat, or create one),
create a room (public, or private with a short join code), join a room by its code, and leave its room
(back to the lobby, on the same connection).  docs/PROTOCOL.md ("Lobby") documents the messages.

Each room is an instance of a room type: a :class:`~sprocket.game.GameServer` subclass, unchanged.  The
room's server gets a :class:`RoomServo` instead of a Servo of its own: a stand-in fed by the RoomServer
with the events of that room's clients only (entering the room is a ``Joined``, leaving it a ``Left``,
drops and resumes within the grace period a ``Dropped`` / ``Resumed``, and their packets).  The RoomServer
steps every room on its own tick schedule in its one thread.  A hook of a room that raises closes that
room only: its players are told why and are back in the lobby.

This module never imports pygame.
"""

from __future__ import annotations

import collections
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sprocket import (
    DEFAULT_PORT,
    Client,
    CloseCode,
    Dropped,
    EncodedPacket,
    Joined,
    Left,
    Packet,
    Resumed,
    Servo,
)
from sprocket.errors import InvalidArgument, UsageError

from ._checks import InvalidType, check_count, check_number, describe
from .clock import TickSchedule
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
    L_SEAT,
    LOBBY_REQUESTS,
    RoomInfo,
)
from .server import GameServer, _is_late

if TYPE_CHECKING:
    from .cluster import Cluster

log = logging.getLogger("sprocket")

__all__ = ["CODE_ALPHABET", "CodeLimiter", "RoomServer", "RoomServo", "RoomTickStats", "RoomType", "new_code"]

#: Join codes are made of these letters: no I, L, O (read as 1 or 0), no digits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ"
#: Letters in a join code: 23**5 = 6.4 million codes.
CODE_LENGTH = 5
#: The longest room type name, room name and room state string (in characters).
MAX_NAME = 32
#: The most rooms one listing carries (the fullest first).
MAX_LISTED = 200
#: Codes of closed rooms remembered, so a late join hears "closed" and why, not "no such room".
CLOSED_KEPT = 256
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]*$")
_IDLE_WAIT = 1.0 / 60.0  # seconds the loop waits for lobby messages when no room is due sooner

# Lobby error words (the "error" field of an L_ERROR message; docs/PROTOCOL.md lists them).
FULL = "full"
NO_ROOM = "no_room"
CLOSED = "closed"
RATE = "rate"
MAX_ROOMS = "max_rooms"
UNKNOWN_TYPE = "unknown_type"
BAD_REQUEST = "bad_request"
NOT_IN_ROOM = "not_in_room"


def _rank(ordered: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of sorted values; 0.0 for none."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def new_code(taken: Iterable[str] | Callable[[str], bool] = ()) -> str:
    """A fresh join code: :data:`CODE_LENGTH` letters of :data:`CODE_ALPHABET`, from the ``secrets``
    module (not guessable from earlier codes), not in ``taken`` (a collection, or a predicate that says
    whether a code is taken).  Raises nothing."""
    is_taken = taken if callable(taken) else set(taken).__contains__
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not is_taken(code):
            return code


def normalize_code(value: object) -> str | None:
    """A join code as typed by a person (any case, spaces and dashes ignored) in its canonical form, or
    None if it cannot be one (wrong length or letters).  Raises nothing."""
    if not isinstance(value, str) or len(value) > 4 * CODE_LENGTH:
        return None
    code = value.upper().replace(" ", "").replace("-", "")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code


def check_name(value: object, what: str, *, optional: bool = True) -> str | None:
    """``value`` if it is a str of at most :data:`MAX_NAME` characters with no control characters (or
    None when ``optional``); else raises ``InvalidArgument`` (``InvalidType`` if not a str)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidType(f"{what} must be a str, got {describe(value)}")
    if len(value) > MAX_NAME or not _NAME_OK.match(value):
        raise InvalidArgument(f"{what} must be at most {MAX_NAME} characters without control characters, "
                              f"got {value[:40]!r}")  # fmt: skip
    return value


class CodeLimiter:
    """Counts join-by-code attempts per key (a connection, an IP address, the whole server): at most
    ``attempts`` within any ``window`` seconds.

    Pure (the clock is passed in).  With 5 attempts per 10 s, trying every code of
    :data:`CODE_ALPHABET` on one connection would take over 4 months.  At most ``max_keys`` keys are
    remembered (the least recently tried is forgotten beyond: memory stays bounded however many
    addresses try).

    Raises:
        InvalidArgument: ``attempts`` or ``max_keys`` is not an int >= 1, or ``window`` not a finite
            number > 0.
    """

    def __init__(self, attempts: int = 5, window: float = 10.0, *, max_keys: int = 4096) -> None:
        self.attempts = check_count(attempts, "code_attempts")
        self.window = check_number(window, "code_window", positive=True, what="a number of seconds")
        self.max_keys = check_count(max_keys, "max_keys")
        self._tries: collections.OrderedDict[Any, collections.deque[float]] = collections.OrderedDict()

    def wait(self, who: Any, now: float) -> float:
        """0.0 if an attempt by ``who`` at ``now`` would be allowed, else the seconds until one will be.
        Records nothing."""
        tries = self._tries.get(who)
        if tries is None:
            return 0.0
        while tries and now - tries[0] >= self.window:
            tries.popleft()
        if len(tries) >= self.attempts:
            return max(0.0, tries[0] + self.window - now)
        return 0.0

    def record(self, who: Any, now: float) -> None:
        """Count an attempt by ``who`` at ``now`` (whether or not :meth:`wait` allowed it)."""
        tries = self._tries.get(who)
        if tries is None:
            if len(self._tries) >= self.max_keys:
                self._tries.popitem(last=False)
            tries = self._tries[who] = collections.deque()
        else:
            self._tries.move_to_end(who)
        tries.append(now)

    def allow(self, who: Any, now: float) -> float:
        """Record an attempt by ``who`` at ``now``; 0.0 if allowed, else the seconds until the next one
        will be (the refused attempt is not counted)."""
        wait = self.wait(who, now)
        if wait <= 0.0:
            self.record(who, now)
        return wait

    def forget(self, who: Any) -> None:
        """Drop what is kept about ``who`` (it left)."""
        self._tries.pop(who, None)


@dataclass(frozen=True)
class RoomType:
    """A room type: the GameServer subclass each room of it runs, and its capacity.

    Args:
        server: the :class:`~sprocket.game.GameServer` subclass (unchanged: its rooms are made with
            ``server(servo=<a RoomServo>, **options)``).
        max_players: seats in one room (default: the class's ``max_players`` attribute, else 8).
        options: further keyword arguments for the server class.

    Raises:
        InvalidArgument: ``server`` is not a GameServer subclass (``InvalidType``), or ``max_players`` is
            not an int >= 1.
    """

    server: type[GameServer]
    max_players: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.server, type) and issubclass(self.server, GameServer)):
            raise InvalidType(f"a room type must be a GameServer subclass, got {describe(self.server)}")
        seats = self.max_players if self.max_players is not None else getattr(self.server, "max_players", 8)
        object.__setattr__(self, "max_players", check_count(seats, "max_players"))


class RoomServo(Servo):
    """The stand-in Servo of one room: what its :class:`~sprocket.game.GameServer` sees.

    It is fed by the :class:`RoomServer` (never by a socket): :meth:`events` returns the joins, packets,
    drops, resumes and leaves of this room's clients; :meth:`sendall` and :meth:`sendall_packet` reach
    this room's clients only; :meth:`encode`, :attr:`port` and :attr:`settings` are the real Servo's.
    :meth:`close` closes the room, not the server.  Not made by you: the RoomServer makes one per room.
    """

    def __init__(self, servo: Servo, code: str) -> None:  # no Servo.__init__: there is no socket here
        self._real = servo
        self.code = code
        self.settings = servo.settings
        self.codec = servo.codec
        self.max_packet_size = servo.max_packet_size
        self.host = servo.host
        self.port = servo.port
        self.clients = []
        self.on_join = self.on_leave = self.on_drop = self.on_resume = None
        self._queue: list[Any] = []
        self._closed = False

    def events(self) -> list[Any]:
        """Everything that happened in this room since the last call, in order.  Never blocks."""
        items, self._queue = self._queue, []
        return items

    def get(self) -> list[Packet]:
        """The packets among :meth:`events` (the others are dropped: rooms use ``events``)."""
        return [item for item in self.events() if type(item) is Packet]

    @property
    def stats(self) -> dict[str, int]:
        """The real Servo's counters (all rooms together)."""
        return self._real.stats

    def encode(self, fields: Mapping[str, Any] | Packet) -> EncodedPacket:
        """As :meth:`Servo.encode <sprocket.Servo.encode>`."""
        return self._real.encode(fields)

    def sendall(self, **fields: Any) -> None:
        """Send a packet to every client in this room (encoded once).  Raises as ``Servo.sendall``."""
        self.sendall_packet(self._real.encode(fields))

    def sendall_packet(
        self, packet: Packet | Mapping[str, Any] | EncodedPacket, exclude: Iterable[Client] | Client = ()
    ) -> None:
        """Send a packet to every client in this room except ``exclude``.  Raises as
        ``Servo.sendall_packet``."""
        encoded = packet if type(packet) is EncodedPacket else self._real.encode(packet)  # type: ignore[arg-type]
        excluded = {exclude} if isinstance(exclude, Client) else set(exclude)
        for client in list(self.clients):
            if client not in excluded:
                client.send_packet(encoded)

    def close(self) -> None:
        """Mark this room closed (the real Servo stays open).  Idempotent."""
        self._closed = True

    def __repr__(self) -> str:
        return f"<RoomServo {self.code} of port {self.port}: {len(self.clients)} clients>"


@dataclass(frozen=True)
class RoomTickStats:
    """One room's tick statistics at a moment (what :meth:`RoomServer.tick_stats` returns).

    ``ticks`` run so far; ``late_ticks`` begun more than one tick interval after their scheduled time
    (the loop was busy with other rooms, or the core with another process); ``skipped_ticks`` never run
    (the loop fell more than the room's ``max_catch_up`` ticks behind); ``tick_p50_ms``,
    ``tick_p99_ms`` and ``tick_max_ms``: the durations of the room's last ``samples`` ticks (at most
    600), in milliseconds (0.0 before any); ``tick_interval_ms``: one tick interval.
    """

    code: str
    type: str
    ticks: int
    late_ticks: int
    skipped_ticks: int
    tick_p50_ms: float
    tick_p99_ms: float
    tick_max_ms: float
    tick_interval_ms: float
    samples: int

    @property
    def late_percent(self) -> float:
        """Late and skipped ticks, in percent of the tick slots so far (0.0 before any)."""
        slots = self.ticks + self.skipped_ticks
        return 100.0 * (self.late_ticks + self.skipped_ticks) / slots if slots else 0.0


@dataclass
class _Room:
    code: str
    type: str
    name: str | None
    private: bool
    max_players: int
    servo: RoomServo
    server: GameServer
    schedule: TickSchedule
    created: float
    empty_since: float | None = None

    @property
    def members(self) -> list[Client]:
        return self.servo.clients

    def info(self) -> RoomInfo:
        state = getattr(self.server, "room_state", "")
        if not isinstance(state, str) or len(state) > MAX_NAME:
            state = ""  # length-checked: a game's state string that is not one is not shown
        return RoomInfo(self.code, self.type, self.name, len(self.members), self.max_players, state,
                        self.private)  # fmt: skip


class RoomServer:
    """Many rooms of one or more room types on one Servo: one listening port, one tick thread.

    Clients connect with a :class:`~sprocket.game.GameClient`, :class:`~sprocket.game.GameBot` or
    :class:`~sprocket.game.NetworkedGame` as to a GameServer, and are in the lobby until they join a room
    (``client.lobby.quick_join("hockey")``...; see :class:`~sprocket.game.lobby.Lobby`).

    Args:
        room_types: room type name -> a :class:`~sprocket.game.GameServer` subclass or a
            :class:`RoomType` (names: 1 to 32 characters).
        servo: a Servo to use; by default one is made from ``host``, ``port`` and ``servo_options``.
        max_rooms: rooms open at once (default 64); creating one more is refused (``max_rooms``).
        empty_timeout: seconds a room stays open with nobody in it (a player may come back; default 30).
        code_attempts, code_window: join-by-code attempts allowed per connection within ``code_window``
            seconds (default 5 per 10 s); more are refused (``rate``) without looking the code up.
        ip_code_attempts, ip_code_window: the same per client IP address, all its connections together
            (default 20 per 60 s): many connections from one address do not guess faster.
        total_code_attempts, total_code_window: the same for the whole server, every client together
            (default 120 per 60 s: 2 a second): no number of addresses guesses faster.  With the defaults,
            a room open for an hour is found by guessing with a chance of at most 120 * 60 / 23**5 =
            0.11 % (one address: 0.019 %); docs/PROTOCOL.md ("Lobby") has the arithmetic.
        clock: the monotonic clock (injectable for tests).
        cluster: a :class:`~sprocket.game.cluster.Cluster` setting: this server becomes a node of the
            rooms cluster sharing that Redis (quick-join, create, join-by-code and list answer for every
            node; see :mod:`sprocket.game.cluster`).  Default None: this process alone, no Redis.

    A room's game may set ``room_state`` on its GameServer (a str of at most 32 characters, e.g.
    ``"lobby"``/``"playing"``): listings show it.  A room's hook (``on_join``, ``on_leave``, ``on_drop``,
    ``on_resume``, ``simulate``) that raises closes that room only: the traceback is logged, its players
    are back in the lobby and told why (``on_room_left``), and the others play on.  The same holds for
    ``on_input`` (and so the game ``rule`` it applies) and ``on_packet``: in a room, their raising closes
    the room (its players keep their connections, back in the lobby), where a GameServer of its own
    kicks the sender.

    Raises:
        InvalidArgument: no room types, a bad name or type, or a bad limit (``InvalidType`` for wrong types).
        ConnectionFailed: the Servo cannot bind.
    """

    def __init__(
        self,
        room_types: Mapping[str, type[GameServer] | RoomType],
        servo: Servo | None = None,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        max_rooms: int = 64,
        empty_timeout: float = 30.0,
        code_attempts: int = 5,
        code_window: float = 10.0,
        ip_code_attempts: int = 20,
        ip_code_window: float = 60.0,
        total_code_attempts: int = 120,
        total_code_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        cluster: Cluster | None = None,
        **servo_options: Any,
    ) -> None:
        if not isinstance(room_types, Mapping) or not room_types:
            raise InvalidArgument(f"room_types must be a non-empty mapping of names to GameServer "
                                  f"subclasses, got {describe(room_types)}")  # fmt: skip
        self.room_types: dict[str, RoomType] = {}
        for name, kind in room_types.items():
            if not check_name(name, "a room type name", optional=False):
                raise InvalidArgument("a room type name must not be empty")
            self.room_types[name] = kind if isinstance(kind, RoomType) else RoomType(kind)
        self.max_rooms = check_count(max_rooms, "max_rooms")
        self.empty_timeout = check_number(
            empty_timeout, "empty_timeout", minimum=0.0, what="a number of seconds"
        )
        self._limiter = CodeLimiter(code_attempts, code_window)
        self._ip_limiter = CodeLimiter(ip_code_attempts, ip_code_window)
        self._total_limiter = CodeLimiter(total_code_attempts, total_code_window)
        if servo is not None and not isinstance(servo, Servo):
            raise InvalidType(f"servo must be a sprocket.Servo, got {describe(servo)}")
        self.clock = clock
        self.servo = servo if servo is not None else Servo(host, port, **servo_options)
        self._rooms: dict[str, _Room] = {}
        self._where: dict[Client, _Room | None] = {}  # every client: its room, or None in the lobby
        self._closed_codes: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._listing: tuple[RoomInfo, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The cluster node (sprocket.game.cluster), or None; set last: its worker reads this server.
        self.cluster = cluster.attach(self) if cluster is not None else None

    # -- what tests and tools read (any thread) --------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.servo.port

    def rooms(self) -> list[RoomInfo]:
        """Every open room (private ones too), as of the end of the last loop iteration.  Thread-safe."""
        return list(self._listing)

    def tick_stats(self) -> list[RoomTickStats]:
        """Every open room's tick statistics (late ticks, tick-duration percentiles), by code.  Thread-safe:
        read it from any thread while the loop runs (the durations are copied at once).  Raises nothing."""
        out = []
        for room in list(self._rooms.values()):
            stats = room.server.stats
            times = sorted(list(stats.tick_times))  # list() of a deque is one step under the GIL
            p50, p99, top = (_rank(times, pct) * 1e3 for pct in (50, 99, 100))
            out.append(RoomTickStats(room.code, room.type, stats.ticks, stats.late_ticks, stats.skipped_ticks,
                                     p50, p99, top, 1e3 / room.schedule.rate, len(times)))  # fmt: skip
        return sorted(out, key=lambda r: r.code)

    def room_server(self, code: str) -> GameServer | None:
        """The GameServer of the room with this code, or None.  For tests and tools: read it only from
        the loop's thread, or for values that are safe to read racily."""
        room = self._rooms.get(code)
        return room.server if room is not None else None

    # -- the loop ----------------------------------------------------------------------------------------

    def step(self, now: float | None = None) -> float:
        """One iteration: handle the lobby and route the network events, run every room's due ticks,
        dispose of rooms empty for ``empty_timeout``.  Returns the seconds until a room's next tick is
        due.  Tests drive this; :meth:`run` calls it.  Raises ``ClosedError`` once the Servo is closed."""
        now = self.clock() if now is None else now
        if self.cluster is not None:
            self.cluster.step(now)
        for item in self.servo.events():
            self._event(item, now)
        wait = _IDLE_WAIT
        for room in list(self._rooms.values()):
            schedule = room.schedule
            skipped = schedule.skipped
            due = schedule.due(now)
            if schedule.skipped > skipped:
                room.server._bank_input_credit(schedule.skipped - skipped)
            for left in range(due, 0, -1):
                if _is_late(schedule, left, self.clock()):
                    room.server.stats.late_ticks += 1
                if not self._guard(room, room.server.step, now):
                    break
            if room.code in self._rooms:
                room.server.stats.overruns = schedule.overruns
                room.server.stats.skipped_ticks = schedule.skipped
                wait = min(wait, schedule.time_until(now))
        for room in list(self._rooms.values()):
            if room.empty_since is not None and now - room.empty_since >= self.empty_timeout:
                self._dispose(room, "it was empty", now)
        self._listing = tuple(room.info() for room in self._rooms.values())
        return max(0.0, wait)

    def run(self, duration: float | None = None) -> None:
        """Run the loop in this thread until :meth:`stop` (or for ``duration`` seconds), then close.

        Raises ``InvalidArgument`` if ``duration`` is negative or not finite.
        """
        if duration is not None:
            check_number(duration, "duration", minimum=0.0, what="a number of seconds")
        end = self.clock() + duration if duration is not None else math.inf
        log.info("room server on port %s: room types %s", self.port, ", ".join(self.room_types))
        try:
            while not self._stop.is_set() and self.clock() < end:
                wait = self.step()
                self._stop.wait(wait)  # pacing to the next tick, not synchronisation; stop() interrupts it
        except KeyboardInterrupt:
            log.info("room server stopped by Ctrl-C")
        finally:
            self.close()

    def start(self) -> RoomServer:
        """Run the loop in a background daemon thread; return this server."""
        if self._thread is not None:
            raise UsageError("this RoomServer was started already")
        self._thread = threading.Thread(target=self.run, name=f"sprocket-rooms-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop (from any thread) and wait for a background loop to finish."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def close(self) -> None:
        """Stop the loop, then close the Servo (clients are told the server is shutting down).  Idempotent."""
        self.stop()
        if self.cluster is not None:
            self.cluster.close()
        self.servo.close()

    # -- events ---------------------------------------------------------------------------------------------

    def _event(self, item: Any, now: float) -> None:
        if type(item) is Packet:
            client = item.sender
            kind = item.get(GAME_FIELD)
            if isinstance(kind, str) and kind in LOBBY_REQUESTS:  # a kind may be anything: [1] is unhashable
                self._request(client, kind, item, now)
                return
            room = self._where.get(client)
            if room is not None:
                room.servo._queue.append(item)
            # A game message or a packet of yours from a client in the lobby: there is no game to give it to.
        elif isinstance(item, Joined):
            self._where[item.client] = None
            types = [[name, kind.max_players] for name, kind in self.room_types.items()]
            extra = self.cluster.lobby_fields() if self.cluster is not None else {}
            item.client.send(**{GAME_FIELD: L_LOBBY, "types": types, "id": item.client.id, **extra})
        elif isinstance(item, Left):
            room = self._where.pop(item.client, None)
            self._limiter.forget(item.client)
            if room is not None:
                self._exit(room, item.client, item, now, tell=False)
        elif isinstance(item, (Dropped, Resumed)):
            room = self._where.get(item.client)
            if room is not None:
                room.servo._queue.append(item)

    def _request(self, client: Client, kind: str, packet: Packet, now: float) -> None:
        if client not in self._where:
            return  # it left already
        try:
            if self.cluster is not None and self.cluster.request(client, kind, packet, now):
                return
            if kind == L_SEAT:
                self._error(client, kind, BAD_REQUEST, "this server is not in a cluster: no seats to take")
                return
            if kind == L_LIST:
                wanted = packet.get("type")
                rooms = [r for r in self._rooms.values() if not r.private and wanted in (None, r.type)]
                rooms.sort(key=lambda r: (-len(r.members), r.created))
                listing = [r.info().to_wire() for r in rooms[:MAX_LISTED]]
                client.send(**{GAME_FIELD: L_ROOMS, "rooms": listing, "total": len(rooms)})
            elif kind == L_EXIT:
                room = self._where.get(client)
                if room is None:
                    self._error(client, kind, NOT_IN_ROOM, "you are not in a room")
                else:
                    self._where[client] = None
                    self._exit(room, client, Left(client, "left the room", CloseCode.CLOSED), now)
            elif kind == L_QUICK:
                type_name = self._type(client, kind, packet.get("type"))
                if type_name is not None:
                    self._quick(client, type_name, now)
            elif kind == L_CREATE:
                type_name = self._type(client, kind, packet.get("type"))
                if type_name is None:
                    return
                private = packet.get("private", True)
                try:
                    name = check_name(packet.get("name"), "the room name")
                except InvalidArgument as exc:
                    self._error(client, kind, BAD_REQUEST, str(exc))
                    return
                if not isinstance(private, bool):
                    self._error(
                        client, kind, BAD_REQUEST, f"'private' must be true or false, got {describe(private)}"
                    )
                    return
                room = self._create(client, kind, type_name, name, private, now)
                if room is not None:
                    self._enter(room, client, now)
            elif kind == L_JOIN:
                self._join_code(client, packet.get("code"), now)
        except Exception:
            # A request must never stop the loop: a bug here costs this request only (logged in full).
            log.exception("could not handle lobby request %r from client %s", kind, client.id)
            self._error(client, kind, BAD_REQUEST, "the server could not handle this request")

    def _type(self, client: Client, kind: str, value: object) -> str | None:
        if isinstance(value, str) and value in self.room_types:
            return value
        shown = value[:MAX_NAME] if isinstance(value, str) else describe(value)
        self._error(client, kind, UNKNOWN_TYPE, f"no room type {shown!r}; this server has "
                    + ", ".join(repr(t) for t in self.room_types))  # fmt: skip
        return None

    def _quick(self, client: Client, type_name: str, now: float) -> None:
        current = self._where.get(client)
        best: _Room | None = None
        for room in self._rooms.values():
            if room.private or room.type != type_name or room is current or room.servo._closed:
                continue
            if len(room.members) >= room.max_players:
                continue
            if best is None or (len(room.members), -room.created) > (len(best.members), -best.created):
                best = room  # the fullest room with a free seat: rooms fill up instead of spreading players
        if best is None:
            best = self._create(client, L_QUICK, type_name, None, False, now)
        if best is not None:
            self._enter(best, client, now)

    def _join_code(self, client: Client, value: object, now: float) -> None:
        # Per connection, per address, server-wide: an attempt counts towards all three only if all allow it.
        limits = ((self._limiter, client, "too many join codes tried"),
                  (self._ip_limiter, client.ip, "too many join codes tried from your address"),
                  (self._total_limiter, None, "too many join codes tried on this server"))  # fmt: skip
        for limiter, key, refusal in limits:
            wait = limiter.wait(key, now)
            if wait > 0:
                self._error(client, L_JOIN, RATE, f"{refusal}; wait {math.ceil(wait)} s and try again")
                return
        for limiter, key, _refusal in limits:
            limiter.record(key, now)
        code = normalize_code(value)
        room = self._rooms.get(code) if code is not None else None
        if room is None:
            why = self._closed_codes.get(code) if code is not None else None
            if why is not None:
                self._error(client, L_JOIN, CLOSED, f"room {code} has closed: {why}")
            else:
                self._error(client, L_JOIN, NO_ROOM, "no room has this code (check the letters)")
            return
        if self._where.get(client) is room:
            self._error(client, L_JOIN, BAD_REQUEST, f"you are in room {room.code} already")
            return
        if len(room.members) >= room.max_players:
            self._error(client, L_JOIN, FULL, f"room {room.code} is full ({room.max_players} players)")
            return
        self._enter(room, client, now)

    def _create(self, client: Client, kind: str, type_name: str, name: str | None, private: bool,
                now: float, code: str | None = None) -> _Room | None:  # fmt: skip
        if len(self._rooms) >= self.max_rooms:
            self._error(client, kind, MAX_ROOMS, f"the server runs {len(self._rooms)} rooms, its most; "
                        "join one, or try again later")  # fmt: skip
            return None
        room_type = self.room_types[type_name]
        if code is None:  # a cluster node is given the code Redis reserved
            code = new_code(lambda c: c in self._rooms or c in self._closed_codes)
        servo = RoomServo(self.servo, code)
        server = room_type.server(servo=servo, **room_type.options)
        server._kick_on_failure = False  # on_input / on_packet raising closes this room (see _guard)
        schedule = TickSchedule(server.tick_rate, now, max_catch_up=server.max_catch_up)
        room = _Room(code, type_name, name, private, room_type.max_players or 1, servo, server, schedule, now,
                     empty_since=now)  # fmt: skip
        self._rooms[code] = room
        log.info(
            "room %s (%s%s) opened by client %s", code, type_name, ", private" if private else "", client.id
        )
        return room

    def _enter(self, room: _Room, client: Client, now: float) -> None:
        current = self._where.get(client)
        if current is not None:
            self._exit(current, client, Left(client, "moved to another room", CloseCode.CLOSED), now)
        self._where[client] = room
        room.members.append(client)
        room.empty_since = None
        extra = self.cluster.lobby_fields() if self.cluster is not None else {}  # the nodes, fresh
        client.send(**{GAME_FIELD: L_ROOM, **room.info().to_wire(), **extra})
        room.servo._queue.append(Joined(client))  # the room's hello follows at its next tick

    def _exit(self, room: _Room, client: Client, left: Left, now: float, *, tell: bool = True) -> None:
        """Take ``client`` out of ``room``: its server hears the Left now (so nothing of the room reaches the
        client after the lobby's reply), then the client is told it is in the lobby."""
        if client in room.members:
            room.members.remove(client)
            if self.cluster is not None:
                self.cluster.player_left(room.code)
            room.servo._queue.append(left)
            if room.code in self._rooms:
                self._guard(room, room.server._network)  # runs on_leave now; may close the room
        if not room.members and room.code in self._rooms:
            room.empty_since = now
        if tell and self._where.get(client) is None:
            client.send(**{GAME_FIELD: L_OUT, "reason": left.reason, "closed": False, "code": room.code})

    def _guard(self, room: _Room, call: Callable[..., Any], *args: Any) -> bool:
        try:
            call(*args)
        except Exception as exc:
            log.exception("room %s (%s) failed; closing it", room.code, room.type)
            self._close_room(room, f"the room's game failed ({type(exc).__name__})")
            return False
        return True

    def _close_room(self, room: _Room, reason: str) -> None:
        # The room's world may be in any state: no more hooks; its players go back to the lobby.
        self._rooms.pop(room.code, None)
        self._remember_closed(room.code, reason)
        room.servo.close()
        if self.cluster is not None:
            self.cluster.room_closed(room.code)
        for client in list(room.members):
            if self._where.get(client) is room:
                self._where[client] = None
            try:
                client.send(**{GAME_FIELD: L_OUT, "reason": f"the room closed: {reason}", "closed": True,
                               "code": room.code})  # fmt: skip
            except Exception:
                log.debug("could not tell client %s its room closed", client.id, exc_info=True)
        room.members.clear()

    def _dispose(self, room: _Room, reason: str, now: float) -> None:
        self._rooms.pop(room.code, None)
        self._remember_closed(room.code, reason)
        room.servo.close()
        if self.cluster is not None:
            self.cluster.room_closed(room.code)
        log.info("room %s (%s) disposed: %s", room.code, room.type, reason)

    def _remember_closed(self, code: str, reason: str) -> None:
        self._closed_codes[code] = reason
        if len(self._closed_codes) > CLOSED_KEPT:
            self._closed_codes.popitem(last=False)

    def _error(self, client: Client, kind: str, error: str, reason: str) -> None:
        client.send(**{GAME_FIELD: L_ERROR, "request": kind, "error": error, "reason": reason})

    def __repr__(self) -> str:
        return f"<RoomServer port {self.port}: {len(self._rooms)} rooms, {len(self._where)} clients>"
