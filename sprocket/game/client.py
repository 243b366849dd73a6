"""The client half of the netcode, without a window: snapshots in, interpolation, prediction, inputs out.

:class:`GameClient` wraps a :class:`~sprocket.Sprocket`.  Call :meth:`GameClient.poll` once per frame,
:meth:`GameClient.send_input` once per fixed step, and read :meth:`GameClient.entities` to draw.
``NetworkedGame`` (pygame) and headless bots are both built on it, and both hear about what
:meth:`GameClient.poll` returns through the same hooks, :class:`ClientHooks`.  This module never imports
pygame.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from sprocket import CloseCode, Connected, Disconnected, Packet, Reconnected, Reconnecting, Sprocket
from sprocket.errors import ProtocolError

from ._checks import InvalidType, as_float, check_callable, check_count, check_number, describe
from .entity import Entity
from .interpolation import InterpolationBuffer
from .lobby import Lobby
from .messages import (
    ACK,
    BACK,
    DROP,
    GAME_FIELD,
    HELLO,
    INPUT,
    JOIN,
    L_OUT,
    L_ROOM,
    LEAVE,
    LOBBY_REPLIES,
    SNAP,
    SNAPSHOT,
    LobbyRefused,
    PlayerDropped,
    PlayerJoined,
    PlayerLeft,
    PlayerResumed,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomList,
)
from .prediction import Predictor, Rule
from .rollback import CORRECTION_HALF_LIFE, SNAP_DISTANCE, WorldPredictor
from .snapshot import (
    COMPACT_MAX_ITEMS,
    COMPACT_MIN_ITEMS,
    DEFAULT_MAX_ENTITIES,
    Snapshot,
    SnapshotError,
    SnapshotHistory,
    decode_snapshot,
    snapshot_cost,
    wire_base_tick,
)

log = logging.getLogger("sprocket")

__all__ = ["CLIENT_HOOKS", "ClientHooks", "GameClient", "NetStats"]

#: The highest tick or snapshot rate a server's hello may announce (a rate of 0, NaN or 1e9 is refused).
MAX_RATE = 1000.0
#: The most players a server may announce (in its hello and joins) before the client refuses it.
MAX_PLAYERS = 65536
#: How far, in seconds, a snapshot's time may be from this client's estimate of the server's clock.
MAX_CLOCK_ERROR = 60.0
# Seconds between two warnings about refused snapshots (the first is always logged).
_WARN_EVERY = 5.0


class _Malformed(Exception):
    """Internal: a game message from the server that does not fit docs/PROTOCOL.md (never escapes)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(packet: Packet | dict[str, Any], kind: str, name: str) -> Any:
    if name not in packet:
        raise _Malformed(f"a {kind!r} message without {name!r}")
    return packet[name]


def _int_field(packet: Packet | dict[str, Any], kind: str, name: str, *, minimum: int | None = None) -> int:
    value = _field(packet, kind, name)
    if not _is_int(value):
        raise _Malformed(f"a {kind!r} message whose {name!r} is {describe(value)}, not an int")
    if minimum is not None and value < minimum:
        raise _Malformed(f"a {kind!r} message whose {name!r} is {value}, below {minimum}")
    return int(value)


def _rate_field(packet: Packet, name: str) -> float:
    value = _field(packet, "hello", name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Malformed(f"a 'hello' message whose {name!r} is {describe(value)}, not a number")
    rate = as_float(value)
    if not 0.0 < rate <= MAX_RATE:  # also refuses NaN
        raise _Malformed(f"a 'hello' message whose {name!r} is {value!r}, not a rate in (0, {MAX_RATE:g}]")
    return rate


def _name(value: object, kind: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _Malformed(f"a {kind!r} message whose player name is {describe(value)}, not a str or nil")
    return value


#: The hooks every client-side class has (name -> parameters after self); see :class:`ClientHooks`.
CLIENT_HOOKS: dict[str, tuple[str, ...]] = {
    "on_packet": ("packet",),
    "on_connect": (),
    "on_disconnect": ("reason",),
    "on_drop": ("reason",),
    "on_resume": (),
    "on_player_join": ("player",),
    "on_player_leave": ("player",),
    "on_player_drop": ("player",),
    "on_player_resume": ("player",),
    "on_room_joined": ("room",),
    "on_room_left": ("left",),
    "on_room_list": ("rooms",),
    "on_lobby_error": ("refusal",),
}

#: Client-side hooks that were renamed, and what replaced them (for the HookError's message).
RETIRED_CLIENT_HOOKS: dict[str, str] = {
    "on_join": "on_player_join(self, player), which receives a PlayerJoined (on the server, on_join "
    "receives a Client)",
    "on_leave": "on_player_leave(self, player), which receives a PlayerLeft with the reason in "
    "player.reason (on the server, on_leave receives a Client and the reason)",
}


class ClientHooks:
    """The connection and game-event hooks of the client side, and their one dispatcher.

    :class:`~sprocket.game.NetworkedGame` and :class:`~sprocket.game.GameBot` both derive from it, so a
    window and a bot hear about the same things through the same hooks (documented no-ops; override the
    ones you need):

    * ``on_packet(packet)`` — a :class:`~sprocket.Packet` of yours from the server (game-layer messages
      never reach it).
    * ``on_connect()`` / ``on_disconnect(reason)`` — the connection came up / went down (``reason``, a
      str, says why).  ``on_disconnect`` with the Sprocket still reconnecting (``self.net.reconnecting``)
      means the server no longer held our session (code ``session_lost``): a fresh join follows by
      itself, as a new player — ``on_connect``, then ``on_player_join`` for everyone — and the game
      state of the old session is cleared.
    * ``on_drop(reason)`` / ``on_resume()`` — our connection dropped and the Sprocket is getting it back
      by itself (``Sprocket(reconnect=True)``, the default) / it is back, the session resumed: the same
      player id and entity, and nothing sent either way in between lost or repeated.  In between no
      input is asked for or sent, and :meth:`GameClient.entities` stays frozen as it was at the drop.
    * ``on_player_join(player)`` — a player joined the game: ``player`` is a :class:`PlayerJoined`
      (``player.id`` is their client id on the server, ``player.name`` their name).  You hear of every
      player already there, and of yourself, once, when you enter the game.
    * ``on_player_leave(player)`` — a player left: ``player`` is a :class:`PlayerLeft` (``id``,
      ``name``, and ``reason``, a str).
    * ``on_player_drop(player)`` / ``on_player_resume(player)`` — another player's connection dropped
      and the server holds their seat for ``player.grace`` seconds (a :class:`PlayerDropped`: ``id``,
      ``name``, ``reason``, ``grace``; their entity stays, still) / they are back (a
      :class:`PlayerResumed`).  If they do not come back, ``on_player_leave`` follows.
    * Rooms (a :class:`~sprocket.game.RoomServer`; requests through ``net.lobby``, a
      :class:`~sprocket.game.lobby.Lobby`): ``on_room_joined(room)`` — we are in a room (a
      :class:`RoomInfo`; its game's ``on_player_join`` calls follow); ``on_room_left(left)`` — we are back
      in the lobby (a :class:`RoomLeft`: ``code``, ``reason``, ``closed``; every player of the room was
      left behind, without ``on_player_leave`` calls); ``on_room_list(rooms)`` — a list of
      :class:`RoomInfo`, the public rooms asked for; ``on_lobby_error(refusal)`` — a request was refused
      (a :class:`LobbyRefused`: ``request``, ``error``, ``reason``).

    The client-side join and leave hooks are not called ``on_join`` / ``on_leave`` because those names
    belong to the server side, where they receive the joining :class:`~sprocket.Client` handle.  What
    the two sides share is the id: a ``PlayerJoined``'s ``id`` is the ``Client.id`` the server saw.
    """

    def on_packet(self, packet: Packet) -> None:
        """A packet of yours from the server."""

    def on_connect(self) -> None:
        """The connection to the server is up."""

    def on_disconnect(self, reason: str) -> None:
        """The connection is over; ``reason`` says why."""

    def on_player_join(self, player: PlayerJoined) -> None:
        """A player joined (you too, once, when you enter the game)."""

    def on_player_leave(self, player: PlayerLeft) -> None:
        """A player left; ``player.reason`` says why."""

    def on_drop(self, reason: str) -> None:
        """Our connection dropped; the Sprocket is reconnecting by itself (``reason`` says why)."""

    def on_resume(self) -> None:
        """Our connection is back and the session resumed (same id, same entity, nothing lost)."""

    def on_player_drop(self, player: PlayerDropped) -> None:
        """Another player's connection dropped; the server holds their seat for ``player.grace`` s."""

    def on_player_resume(self, player: PlayerResumed) -> None:
        """A dropped player is back."""

    def on_room_joined(self, room: RoomInfo) -> None:
        """We are in ``room`` now (RoomServer); the room's players are announced next."""

    def on_room_left(self, left: RoomLeft) -> None:
        """We are back in the lobby (``left.reason`` says why; ``left.closed``: the room closed)."""

    def on_room_list(self, rooms: list[RoomInfo]) -> None:
        """The public rooms we asked for (``net.lobby.list_rooms()``), fullest first."""

    def on_lobby_error(self, refusal: LobbyRefused) -> None:
        """A lobby request was refused (``refusal.error`` is a word, ``refusal.reason`` a sentence)."""

    def _dispatch(self, item: object) -> None:
        # The one place where what GameClient.poll() returns becomes hook calls.
        if type(item) is Packet:
            self.on_packet(item)
        elif isinstance(item, PlayerJoined):
            self.on_player_join(item)
        elif isinstance(item, PlayerLeft):
            self.on_player_leave(item)
        elif isinstance(item, Connected):
            self.on_connect()
        elif isinstance(item, Disconnected):
            self.on_disconnect(item.reason)
        elif isinstance(item, PlayerDropped):
            self.on_player_drop(item)
        elif isinstance(item, PlayerResumed):
            self.on_player_resume(item)
        elif isinstance(item, Reconnecting):
            self.on_drop(item.reason)
        elif isinstance(item, Reconnected):
            self.on_resume()
        elif isinstance(item, RoomJoined):
            self.on_room_joined(item.room)
        elif isinstance(item, RoomLeft):
            self.on_room_left(item)
        elif isinstance(item, RoomList):
            self.on_room_list(list(item.rooms))
        elif isinstance(item, LobbyRefused):
            self.on_lobby_error(item)


class NetStats:
    """Rates measured from a Sprocket's counters: bytes and packets per second each way.

    Pure apart from reading the counters it is given; call :meth:`update` with the time.  Raises
    ``InvalidArgument`` if ``window`` (seconds between refreshes) is not a finite number > 0.
    """

    def __init__(self, window: float = 1.0) -> None:
        self.window = check_number(window, "window", positive=True, what="a number of seconds")
        self.bytes_in_per_s = 0.0
        self.bytes_out_per_s = 0.0
        self.packets_in_per_s = 0.0
        self.packets_out_per_s = 0.0
        self._last: tuple[float, dict[str, int]] | None = None

    def update(self, now: float, counters: dict[str, int]) -> None:
        """Fold in the counters read at ``now``; rates refresh once per ``window`` seconds."""
        if self._last is None:
            self._last = (now, counters)
            return
        then, old = self._last
        elapsed = now - then
        if elapsed < self.window:
            return
        self.bytes_in_per_s = (counters["bytes_in"] - old["bytes_in"]) / elapsed
        self.bytes_out_per_s = (counters["bytes_out"] - old["bytes_out"]) / elapsed
        self.packets_in_per_s = (counters["packets_in"] - old["packets_in"]) / elapsed
        self.packets_out_per_s = (counters["packets_out"] - old["packets_out"]) / elapsed
        self._last = (now, counters)


class GameClient:
    """Client-side netcode for a game served by a :class:`~sprocket.game.GameServer`.

    Remote entities are rendered in the past (``server_time - delay``) from an
    :class:`~sprocket.game.InterpolationBuffer`; the entity this client controls is predicted with the
    shared game ``rule`` and reconciled with each snapshot.  Entities of types declared
    ``predicted=True`` (world prediction, see :mod:`sprocket.game.rollback`) are predicted up to the
    present too, by :attr:`world` (a :class:`~sprocket.game.rollback.WorldPredictor`): rewound to each
    snapshot and re-simulated with the inputs the server has not applied yet.  The predicted world
    advances one tick per input sent, so a game that predicts the world sends an input every fixed step
    (until it has sent one, those entities are interpolated like the others).  Class attributes
    ``correction_half_life`` (seconds in which a correction offset halves, 1/30) and
    ``snap_distance`` (a larger correction snaps, 100) tune its smoothing.  The re-simulation moves the
    other players' entities by the rule with the last input the server applied for each (sent with each
    snapshot while the world holds a predicted entity; kept in :attr:`others_inputs`); class attribute
    ``predict_players`` (False) draws those entities from the predicted present too, instead of
    interpolated in the past (see :mod:`sprocket.game.rollback` for the trade-off).

    Args:
        sprocket: the connection (a :class:`~sprocket.Sprocket`).
        rule: ``rule(state, input, dt) -> state``, the same function the server uses; without it the
            controlled entity is interpolated like the others (no prediction).
        interpolation_delay: a fixed delay in seconds, or None (default) to adapt to the network.
        clock: the local monotonic clock (injectable for tests).
        max_entities: the most entities a snapshot may hold (default 5000); a bigger one is refused
            before it is decoded.
        max_snapshot_bytes: the most memory the snapshots kept as delta baselines may hold, by the
            estimate of :func:`~sprocket.game.snapshot.snapshot_cost` (default 64 MiB; at most 64
            snapshots are kept in any case).  The oldest are forgotten first; the newest is always kept.
        max_refused_snapshots: snapshots in a row that may be refused (malformed, over a limit, or with
            a time far from the server's clock) before the client gives up on the server (default 20).

    When the connection drops, the Sprocket gets it back by itself (``Sprocket(reconnect=True)``, the
    default) and the game carries on where it was: while :attr:`reconnecting`, :meth:`send_input` sends
    nothing (:attr:`ready` is false) and :meth:`entities` returns the world as it was at the drop
    (frozen; :attr:`away_for` counts the seconds).  On the resume the same player id and entity go on: the
    inputs not yet acknowledged are the ones the Sprocket replays to the server, so the prediction carries
    on from them (a correction, if any, glides as usual), and the snapshots replayed or delayed across the
    gap are used but do not count towards the interpolation delay's link statistics.  If the server no
    longer held the session (``Disconnected`` with code ``session_lost``), the game state is cleared and
    the Sprocket's fresh join starts it again, as a new player.

    Nothing a server sends makes :meth:`poll` raise.  Every game message is checked against
    docs/PROTOCOL.md (types, finite numbers, ranges, required fields); a malformed one is logged and
    the connection is closed: :meth:`poll` returns a :class:`~sprocket.Disconnected` with code
    ``protocol`` and a reason saying what was wrong, :attr:`error` keeps that reason, and later polls
    return nothing.  A snapshot that cannot be used is refused (logged, at most one warning every 5 s)
    and a full one asked for; ``max_refused_snapshots`` of them in a row close the connection the same
    way.  If the game rule raises while predicting (on a state the server sent), the traceback is
    logged and the entity is shown interpolated instead of predicted.

    Raises:
        InvalidArgument: ``interpolation_delay`` is negative or not finite, or a ``max_*`` is not an int
            >= 1; also a ``TypeError`` (``InvalidType``) when ``sprocket`` is not a Sprocket, ``rule``
            or ``clock`` not callable, or ``interpolation_delay`` or a ``max_*`` not a number.
    """

    max_entities: int = DEFAULT_MAX_ENTITIES
    max_snapshot_bytes: int = 64 << 20
    max_refused_snapshots: int = 20
    correction_half_life: float = CORRECTION_HALF_LIFE
    snap_distance: float = SNAP_DISTANCE
    predict_players: bool = False

    def __init__(
        self,
        sprocket: Sprocket,
        *,
        rule: Rule | None = None,
        interpolation_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_entities: int | None = None,
        max_snapshot_bytes: int | None = None,
        max_refused_snapshots: int | None = None,
    ) -> None:
        if not isinstance(sprocket, Sprocket):
            raise InvalidType(f"sprocket must be a sprocket.Sprocket, got {describe(sprocket)}")
        check_callable(rule, "rule", optional=True)
        check_callable(clock, "clock")
        if interpolation_delay is not None:
            check_number(interpolation_delay, "interpolation_delay", minimum=0.0, what="a number of seconds")
        if max_entities is not None:
            self.max_entities = max_entities
        if max_snapshot_bytes is not None:
            self.max_snapshot_bytes = max_snapshot_bytes
        if max_refused_snapshots is not None:
            self.max_refused_snapshots = max_refused_snapshots
        for name in ("max_entities", "max_snapshot_bytes", "max_refused_snapshots"):
            check_count(getattr(self, name), name)
        self.sprocket = sprocket
        self.rule = rule
        self.clock = clock
        self.buffer = InterpolationBuffer(delay=interpolation_delay)
        self.history = SnapshotHistory(capacity=64, max_bytes=self.max_snapshot_bytes)
        self.tick_rate = 60.0
        self.snapshot_rate = 20.0
        self.id: int | None = None  # our client id on the server
        self.me: int | None = None  # the entity we control
        self.players: dict[int, str | None] = {}
        #: Other players whose connection dropped and whose seat the server holds, by id.
        self.away: dict[int, PlayerDropped] = {}
        self.latest: Snapshot | None = None
        self.predictor: Predictor[Any, Any] | None = None
        #: World prediction of the ``predicted=True`` entity types (None until a snapshot holds one, and
        #: after a ``simulate`` method failed: they are then interpolated).
        self.world: WorldPredictor | None = None
        self._world_failed = False
        #: The last input the server applied for each other player, by the entity it controls (world
        #: prediction moves those entities with it).
        self.others_inputs: dict[int, Any] = {}
        self.stats = NetStats()
        self.snapshots_received = 0
        self.snapshot_bytes = 0.0  # smoothed encoded size of a snapshot packet
        self.prediction_error = 0.0  # smoothed size of reconciliation corrections
        self.snapshots_refused = 0  # snapshots that could not be used (see max_refused_snapshots)
        self._seq = 0  # input sequence numbers sent (continuous across predictors)
        self._seq_base = 0  # inputs sent before the current predictor was made
        self._welcomed = False
        self._error: str | None = None  # why we closed the connection ourselves
        self._refused_in_a_row = 0
        self._warned_at = -math.inf
        self._unlogged = 0
        self._no_prediction: int | None = None  # an entity the rule failed on: shown interpolated
        self._dropped_at: float | None = None  # clock() when our connection dropped (while reconnecting)
        self._frozen: dict[int, Entity] = {}  # what entities() returned last: shown while reconnecting
        self._moving = False  # a request to enter or leave a room is pending: no inputs meanwhile
        #: The lobby of a :class:`~sprocket.game.RoomServer` (unused with a plain GameServer).
        self.lobby = Lobby(self)

    @property
    def dt(self) -> float:
        """The server's fixed step in seconds (inputs are sent once per step)."""
        return 1.0 / self.tick_rate

    @property
    def ready(self) -> bool:
        """True once the server's hello arrived: the game is running for us."""
        live = self._welcomed and self._error is None and self.sprocket.connected
        return live and self._dropped_at is None and not self._moving

    @property
    def reconnecting(self) -> bool:
        """True while our connection is down and the Sprocket is getting it back: from the moment the
        Sprocket notices the drop until :meth:`poll` has returned the ``Reconnected`` (``on_resume``)."""
        return self._error is None and (self.sprocket.reconnecting or self._dropped_at is not None)

    @property
    def away_for(self) -> float | None:
        """Seconds since our connection dropped, while :attr:`reconnecting` (else None)."""
        if self._dropped_at is None or self._error is not None:
            return None
        return max(0.0, self.clock() - self._dropped_at)

    @property
    def error(self) -> str | None:
        """Why we are not connected, in words (None while connecting or connected): the reason this
        client closed the connection (a malformed message from the server), else the Sprocket's."""
        if self._error is not None:
            return self._error
        if self.lobby._hide_connect:
            return None  # the lobby is moving us to another cluster node: connecting, and may try another
        return self.sprocket.error

    def poll(self) -> list[Any]:
        """Process everything received; return what the game should hear about, in order.

        The list holds your own packets (:class:`~sprocket.Packet`), :class:`~sprocket.Connected`,
        :class:`~sprocket.Disconnected`, :class:`~sprocket.Reconnecting`, :class:`~sprocket.Reconnected`,
        :class:`PlayerJoined`, :class:`PlayerLeft`, :class:`PlayerDropped` and :class:`PlayerResumed`.
        Snapshots are consumed here.  Never blocks, and never raises because of what the server sent: a
        malformed game message closes the connection, and the list ends with a ``Disconnected`` (code
        ``protocol``) whose reason says what was wrong; after that it is always empty.

        Raises:
            ClosedError: you closed the Sprocket yourself.
        """
        out: list[Any] = []
        if self._error is not None:
            return out  # we closed the connection: nothing more comes from that server
        for item in self.sprocket.events():
            if type(item) is not Packet:
                if isinstance(item, Connected) and self.lobby._hide_connect:
                    self.lobby._hide_connect = False
                    continue  # the lobby moved us to another node of a cluster: not news for the game
                if isinstance(item, Disconnected) and self.lobby._retry_elsewhere():
                    break  # the cluster node we were sent to is unreachable: another one is being asked
                if isinstance(item, Disconnected):
                    self._welcomed = False
                    self._dropped_at = None
                    self.lobby._reset()
                    self._moving = False
                    if item.code is CloseCode.SESSION_LOST:
                        self._forget_session()  # a fresh join follows: start again as a new player
                elif isinstance(item, Reconnecting):
                    self._dropped_at = self.clock()
                elif isinstance(item, Reconnected):
                    self._dropped_at = None
                    self.buffer.resume()
                out.append(item)
                continue
            kind = item.get(GAME_FIELD)
            if kind is None:
                out.append(item)
                continue
            try:
                self._game_message(kind, item, out)
            except _Malformed as exc:
                self._fail(f"the server sent {exc}", out)
            except Exception as exc:
                # Nothing a server sends may raise in the user's thread; a bug here is logged in full.
                log.exception("could not handle a game message from the server")
                self._fail(
                    f"could not handle a game message from the server ({type(exc).__name__}: {exc})", out
                )
            if self._error is not None:
                break  # the rest came from a server we no longer trust
            if self.lobby._go is not None:
                self.lobby._follow()  # a cluster's room is on another node: the rest is the old node's
                break
        self.stats.update(self.clock(), self.sprocket.stats)
        return out

    def _game_message(self, kind: object, item: Packet, out: list[Any]) -> None:
        if isinstance(kind, str) and kind in LOBBY_REPLIES:  # a kind may be anything: [1] is unhashable
            if kind in (L_ROOM, L_OUT):
                self._leave_room()  # nothing of the room we were in comes after this message
            try:
                news = self.lobby._receive(str(kind), item)
            except ProtocolError as exc:
                raise _Malformed(str(exc)) from None
            if news is not None:
                if not isinstance(news, RoomList) and self.lobby.pending is None:
                    self._moving = False
                out.append(news)
            return
        if kind == SNAP:
            self._snapshot(item, compact=True)
        elif kind == SNAPSHOT:
            self._snapshot(item)
        elif kind == HELLO:
            self._hello(item)
            out.extend(PlayerJoined(pid, name) for pid, name in self.players.items())
        elif kind == JOIN:
            pid = _int_field(item, JOIN, "id")
            name = _name(item.get("name"), JOIN)
            if pid not in self.players and len(self.players) >= MAX_PLAYERS:
                raise _Malformed(f"more than {MAX_PLAYERS} players")
            self.players[pid] = name
            out.append(PlayerJoined(pid, name))
        elif kind == LEAVE:
            pid = _int_field(item, LEAVE, "id")
            name = _name(item.get("name"), LEAVE)
            reason = item.get("reason", "")
            if not isinstance(reason, str):
                raise _Malformed(f"a 'leave' message whose 'reason' is {describe(reason)}, not a str")
            self.away.pop(pid, None)
            out.append(PlayerLeft(pid, self.players.pop(pid, name), reason))
        elif kind == DROP:
            pid = _int_field(item, DROP, "id")
            name = _name(item.get("name"), DROP)
            reason = item.get("reason", "")
            if not isinstance(reason, str):
                raise _Malformed(f"a 'drop' message whose 'reason' is {describe(reason)}, not a str")
            grace = item.get("grace", 0.0)
            if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0.0 <= grace < math.inf:
                raise _Malformed(f"a 'drop' message whose 'grace' is {grace!r}, not a number of seconds")
            if pid not in self.players:
                return  # not a player we know of (a message from before we joined): nothing to show
            dropped = PlayerDropped(pid, self.players.get(pid, name), reason, float(grace))
            self.away[pid] = dropped
            out.append(dropped)
        elif kind == BACK:
            pid = _int_field(item, BACK, "id")
            name = _name(item.get("name"), BACK)
            if self.away.pop(pid, None) is not None:
                out.append(PlayerResumed(pid, self.players.get(pid, name)))
        # Unknown kinds are ignored (docs/PROTOCOL.md): room for additions.

    def _forget_session(self) -> None:
        """The server no longer holds our session: clear the old game so the fresh join starts cleanly."""
        self._clear_game()
        self.id = None
        self._seq = 0
        self._seq_base = 0

    def _leave_room(self) -> None:
        """We left a room (or are entering another): clear its game, keeping our id and the numbering of
        inputs (the next room's server counts them from where we are)."""
        self._clear_game()
        self._seq_base = self._seq
        self._welcomed = False

    def _clear_game(self) -> None:
        # Everything that belonged to the game we were in: players, entities, snapshots, prediction.
        self.me = None
        self.players = {}
        self.away = {}
        self.latest = None
        self.predictor = None
        self.world = None
        self._world_failed = False
        self.others_inputs = {}
        self.buffer.clear()
        self.history = SnapshotHistory(capacity=64, max_bytes=self.max_snapshot_bytes)
        self._no_prediction = None
        self._refused_in_a_row = 0
        self._frozen = {}

    def _fail(self, reason: str, out: list[Any]) -> None:
        """Close the connection because of what the server sent; tell the game through ``out``."""
        if self._error is not None:
            return
        self._error = reason
        self._welcomed = False
        log.warning("closing the connection to %s:%s: %s", self.sprocket.host, self.sprocket.port, reason)
        try:
            self.sprocket.close(CloseCode.PROTOCOL, reason)
        except Exception:  # closing must not raise either; the log has it
            log.exception("could not close the connection cleanly")
        out.append(Disconnected(reason, CloseCode.PROTOCOL))

    def send_input(self, input: Any) -> int:
        """Send one fixed step's input (and predict its effect locally); returns its sequence number.

        Call once per fixed step of :attr:`dt`: the server applies one input per client per tick, so
        inputs sent faster only queue up (and past two more than the ticks the server banked, the oldest
        are dropped).  ``input`` must be sendable (a dict of numbers is typical) and pass the server's
        input checks.  Inputs sent while not connected are
        dropped (returns 0).  If the game rule raises while predicting, the traceback is logged, the
        input is still sent, and the entity is shown interpolated from then on.

        Raises:
            UnsendableValue: ``input`` cannot be encoded.
        """
        if not self.ready:
            return 0
        if self.predictor is not None:
            try:
                self._seq = self._seq_base + self.predictor.apply(input)
            except Exception:
                self._stop_predicting("predicting your input")
                self._seq += 1
        else:
            self._seq += 1
        self.sprocket.send(**{GAME_FIELD: INPUT, "s": self._seq, "i": input})
        if self.world is not None:
            try:
                self.world.step(self._seq, input)
            except Exception:
                self._stop_world("predicting the world one tick on")
        return self._seq

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of display smoothing pass (call once per frame).

        Raises ``InvalidArgument`` if ``dt`` is negative or not finite (``InvalidType`` if not a number).
        """
        check_number(dt, "dt", minimum=0.0, what="a number of seconds")
        if self.predictor is not None:
            self.predictor.advance_display(dt)
        if self.world is not None:
            self.world.advance_display(dt)

    def server_time(self) -> float:
        """The server's clock, as estimated now (this machine's clock until the estimate is a finite
        number: a server that sent a clock of NaN does not make this NaN)."""
        offset = self.sprocket.clock_offset
        now = self.clock()
        later = now + offset
        return later if math.isfinite(later) else now

    def entities(self) -> dict[int, Entity]:
        """Every entity as it should be drawn now: remote ones interpolated, ours predicted.

        While :attr:`reconnecting`, the world as it was at the drop (the game is frozen until the resume).
        """
        if self.reconnecting and self._frozen:
            return {eid: entity.copy() for eid, entity in self._frozen.items()}
        entities = self.buffer.sample(self.server_time())
        if self.predictor is not None and self.me is not None and self.me in entities:
            entities[self.me] = self.predictor.display
        world = self.world
        if world is not None and self._seq > 0 and world.tick is not None:
            # Predicted types come from the predicted present, not the interpolated past: spawned and
            # despawned with the newest snapshot, where they are now.
            for eid in [eid for eid, entity in entities.items() if type(entity).predicted]:
                del entities[eid]
            entities.update(world.display())
        self._frozen = entities
        return {eid: entity.copy() for eid, entity in entities.items()} if self.reconnecting else entities

    # -- internals ------------------------------------------------------------------------------------

    def _hello(self, packet: Packet) -> None:
        rate = _rate_field(packet, "rate")
        snap = _rate_field(packet, "snap")
        pid = _int_field(packet, HELLO, "id", minimum=0)
        roster = packet.get("players", [])
        if not isinstance(roster, list):
            raise _Malformed(f"a 'hello' message whose 'players' is {describe(roster)}, not a list")
        if len(roster) > MAX_PLAYERS:
            raise _Malformed(f"a 'hello' message with {len(roster)} players, over {MAX_PLAYERS}")
        players: dict[int, str | None] = {}
        for entry in roster:
            if not (isinstance(entry, list) and len(entry) == 2 and _is_int(entry[0])):
                raise _Malformed(f"a 'hello' message whose player {describe(entry)} is not [id, name]")
            players[entry[0]] = _name(entry[1], HELLO)
        away = packet.get("away", [])
        if not isinstance(away, list) or len(away) > MAX_PLAYERS or not all(_is_int(a) for a in away):
            raise _Malformed(f"a 'hello' message whose 'away' is {describe(away)}, not a list of ids")
        self.tick_rate, self.snapshot_rate, self.id, self.players = rate, snap, pid, players
        self.away = {
            a: PlayerDropped(a, players[a], "connection lost", 0.0) for a in away if a in players and a != pid
        }
        self._welcomed = True

    def _snapshot(self, packet: Packet, *, compact: bool = False) -> None:
        size = packet.wire_size
        fields: Any = packet
        if compact:
            # "S": the same fields as "snap", by position: [w, ack, you] or [w, ack, you, in].
            body = _field(packet, SNAP, "s")
            if not isinstance(body, list) or not 3 <= len(body) <= 4:
                raise _Malformed(f"a 'S' message whose 's' is {describe(body)}, not [w, ack, you(, in)]")
            fields = dict(zip(("w", "ack", "you", "in"), body, strict=False))
        wire = _field(fields, SNAPSHOT, "w")
        if not isinstance(wire, (dict, list, tuple)):
            raise _Malformed(f"a 'snap' message whose 'w' is {describe(wire)}, not a map or a list")
        if isinstance(wire, (list, tuple)) and not COMPACT_MIN_ITEMS <= len(wire) <= COMPACT_MAX_ITEMS:
            raise _Malformed(
                f"a 'snap' message whose 'w' is a list of {len(wire)} items, not a compact snapshot "
                f"({COMPACT_MIN_ITEMS} to {COMPACT_MAX_ITEMS})"
            )
        ack = _int_field(fields, SNAPSHOT, "ack", minimum=0)
        if ack > self._seq:
            raise _Malformed(f"a 'snap' message acknowledging input {ack}, but only {self._seq} were sent")
        me = _field(fields, SNAPSHOT, "you")
        if me is not None and not _is_int(me):
            raise _Malformed(f"a 'snap' message whose 'you' is {describe(me)}, not an entity id or nil")
        base_tick: Any = wire_base_tick(wire)  # None, an int, or junk that decoding refuses
        base = None
        if base_tick is not None:
            base = self.history.get(base_tick) if _is_int(base_tick) else None
            if base is None and _is_int(base_tick):
                # We lost the baseline (it aged out of our history): ask for a full snapshot.  Not the
                # server's fault, so it does not count towards max_refused_snapshots.
                self._refuse(f"its baseline, tick {base_tick}, is no longer held", count=False)
                return
        try:
            snapshot = decode_snapshot(wire, base, max_entities=self.max_entities)
        except SnapshotError as exc:
            self._refuse(str(exc))
            return
        now = self.server_time()
        if not snapshot.time - now <= MAX_CLOCK_ERROR:  # also NaN
            self._refuse(
                f"its time, {snapshot.time!r}, is {MAX_CLOCK_ERROR:g}+ s ahead of the server's clock "
                f"({now:.3f})"
            )
            return
        if now - snapshot.time > MAX_CLOCK_ERROR:
            # Old news, not a hostile server: this game loop was paused (a debugger, a long load) while the
            # connection stayed alive.  Skip it without counting it against the server.
            self._refuse(f"it is {now - snapshot.time:.0f} s old (was this loop paused?)", count=False)
            return
        self._others_inputs(fields.get("in"), full=base is None, entities=snapshot.entities)
        self._refused_in_a_row = 0
        self.snapshots_received += 1
        self.snapshot_bytes += (size - self.snapshot_bytes) * 0.1
        self.history.add(snapshot, snapshot_cost(snapshot, size))
        self.latest = snapshot
        self.buffer.push(snapshot, now)
        self.sprocket.send(**{GAME_FIELD: ACK, "t": snapshot.tick})
        self._reconcile(snapshot, me, ack)
        self._rewind(snapshot, me, ack)

    def _others_inputs(self, news: Any, *, full: bool, entities: Mapping[int, Entity]) -> None:
        # The snapshot message's "in": [[entity id, input] | [entity id], ...], the other players' last
        # applied inputs that changed since the baseline (all of them with a full snapshot); [id] alone:
        # that entity has no input now.  Absent: nothing changed (or the world predicts nothing).
        if news is None:
            if full:
                self.others_inputs = {}
            return
        if not isinstance(news, list) or len(news) > self.max_entities:
            raise _Malformed(f"a 'snap' message whose 'in' is {describe(news)}, not a list of [id, input]")
        known = {} if full else self.others_inputs
        for item in news:
            if not isinstance(item, list) or not 1 <= len(item) <= 2 or not _is_int(item[0]):
                raise _Malformed(f"a 'snap' message whose 'in' holds {describe(item)}, not [id, input]")
            if len(item) == 2:
                known[item[0]] = item[1]
            else:
                known.pop(item[0], None)
        for eid in [eid for eid in known if eid not in entities]:
            del known[eid]  # despawned: nothing to move
        self.others_inputs = known

    def _refuse(self, why: str, *, count: bool = True) -> None:
        """A snapshot could not be used: log (rate-limited), ask for a full one, give up if it persists."""
        self.snapshots_refused += 1
        if count:
            self._refused_in_a_row += 1
            if self._refused_in_a_row >= self.max_refused_snapshots:
                raise _Malformed(
                    f"{self._refused_in_a_row} snapshots in a row that could not be used (the last: {why})"
                )
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            more = f" ({self._unlogged} more since the last warning)" if self._unlogged else ""
            log.warning("could not use a snapshot (%s)%s; asking the server for a full one", why, more)
            self._warned_at = now
            self._unlogged = 0
        else:
            self._unlogged += 1
        self.sprocket.send(**{GAME_FIELD: ACK, "t": None})

    def _stop_predicting(self, doing: str) -> None:
        # The game rule raised on a state the server sent (or an input): show the entity interpolated
        # rather than let the exception reach the frame loop.  The traceback is logged for the developer.
        log.exception("the game rule failed %s for entity %s; showing it interpolated instead of predicted",
                      doing, self.me)  # fmt: skip
        self._no_prediction = self.me
        self.predictor = None

    def _rewind(self, snapshot: Snapshot, me: int | None, ack: int) -> None:
        # World prediction: rewind to this snapshot and re-simulate to the present.
        if self._world_failed:
            return
        if self.world is None:
            if not any(type(entity).predicted for entity in snapshot.entities.values()):
                return
            self.world = WorldPredictor(
                self.dt,
                rule=self.rule,
                half_life=self.correction_half_life,
                snap_distance=self.snap_distance,
                show_players=self.predict_players,
            )
        elif self.world.dt != self.dt:
            self.world.dt = self.dt
        self.world.rule = self.rule if me != self._no_prediction else None
        self.world.show_players = self.predict_players
        try:
            self.world.rewind(snapshot, ack, me, self.others_inputs)
        except Exception:
            self._stop_world("re-simulating the world from a snapshot")

    def _stop_world(self, doing: str) -> None:
        # A simulate() method (or the rule) raised on a state the server sent: show those entities
        # interpolated rather than let the exception reach the frame loop.  Logged for the developer.
        log.exception("world prediction failed %s; showing the predicted entities interpolated", doing)
        self.world = None
        self._world_failed = True

    def _reconcile(self, snapshot: Snapshot, me: int | None, ack: int) -> None:
        if me != self.me:
            self.me = me
            self.predictor = None
            self._no_prediction = None
        if me is None or self.rule is None or me == self._no_prediction:
            return
        state = snapshot.entities.get(me)
        if state is None:
            return
        if self.predictor is None or type(self.predictor.state) is not type(state):
            # Numbering continues from what was sent before, so old acks never confuse the new predictor.
            self._seq_base = self._seq
            self.predictor = Predictor(self.rule, state, self.dt)
            return
        local_ack = ack - self._seq_base
        if local_ack < 0 or local_ack > self.predictor.seq:
            return
        try:
            error = self.predictor.reconcile(state, local_ack)
        except Exception:
            self._stop_predicting("replaying your inputs on the server's state")
            return
        self.prediction_error += (error - self.prediction_error) * 0.2
