"""The client half of the netcode, without a window: snapshots in, interpolation, prediction, inputs out.

:class:`GameClient` wraps a :class:`~sprocket.Sprocket`.  Call :meth:`GameClient.poll` once per frame,
:meth:`GameClient.send_input` once per fixed step, and read :meth:`GameClient.entities` to draw.
``NetworkedGame`` (pygame) and headless bots are both built on it, and both hear about what
:meth:`GameClient.poll` returns through the same hooks, :class:`ClientHooks`.  This module never imports
pygame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sprocket import Connected, Disconnected, Packet, Sprocket

from ._checks import InvalidType, check_callable, check_number, describe
from .entity import Entity
from .interpolation import InterpolationBuffer
from .messages import ACK, GAME_FIELD, HELLO, INPUT, JOIN, LEAVE, SNAPSHOT, PlayerJoined, PlayerLeft
from .prediction import Predictor, Rule
from .snapshot import Snapshot, SnapshotError, SnapshotHistory, decode_snapshot

log = logging.getLogger("sprocket")

__all__ = ["CLIENT_HOOKS", "ClientHooks", "GameClient", "NetStats"]

#: The hooks every client-side class has (name -> parameters after self); see :class:`ClientHooks`.
CLIENT_HOOKS: dict[str, tuple[str, ...]] = {
    "on_packet": ("packet",),
    "on_connect": (),
    "on_disconnect": ("reason",),
    "on_player_join": ("player",),
    "on_player_leave": ("player",),
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
      str, says why).
    * ``on_player_join(player)`` — a player joined the game: ``player`` is a :class:`PlayerJoined`
      (``player.id`` is their client id on the server, ``player.name`` their name).  You hear of every
      player already there, and of yourself, once, when you enter the game.
    * ``on_player_leave(player)`` — a player left: ``player`` is a :class:`PlayerLeft` (``id``,
      ``name``, and ``reason``, a str).

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
    shared game ``rule`` and reconciled with each snapshot.

    Args:
        sprocket: the connection (a :class:`~sprocket.Sprocket`).
        rule: ``rule(state, input, dt) -> state``, the same function the server uses; without it the
            controlled entity is interpolated like the others (no prediction).
        interpolation_delay: a fixed delay in seconds, or None (default) to adapt to the network.
        clock: the local monotonic clock (injectable for tests).

    Raises:
        InvalidArgument: ``interpolation_delay`` is negative or not finite; also a ``TypeError``
            (``InvalidType``) when ``sprocket`` is not a Sprocket, ``rule`` or ``clock`` not callable, or
            ``interpolation_delay`` not a number.
    """

    def __init__(
        self,
        sprocket: Sprocket,
        *,
        rule: Rule | None = None,
        interpolation_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(sprocket, Sprocket):
            raise InvalidType(f"sprocket must be a sprocket.Sprocket, got {describe(sprocket)}")
        check_callable(rule, "rule", optional=True)
        check_callable(clock, "clock")
        if interpolation_delay is not None:
            check_number(interpolation_delay, "interpolation_delay", minimum=0.0, what="a number of seconds")
        self.sprocket = sprocket
        self.rule = rule
        self.clock = clock
        self.buffer = InterpolationBuffer(delay=interpolation_delay)
        self.history = SnapshotHistory(capacity=64)
        self.tick_rate = 60.0
        self.snapshot_rate = 20.0
        self.id: int | None = None  # our client id on the server
        self.me: int | None = None  # the entity we control
        self.players: dict[int, str | None] = {}
        self.latest: Snapshot | None = None
        self.predictor: Predictor[Any, Any] | None = None
        self.stats = NetStats()
        self.snapshots_received = 0
        self.snapshot_bytes = 0.0  # smoothed encoded size of a snapshot packet
        self.prediction_error = 0.0  # smoothed size of reconciliation corrections
        self._seq = 0  # input sequence numbers sent (continuous across predictors)
        self._seq_base = 0  # inputs sent before the current predictor was made
        self._welcomed = False

    @property
    def dt(self) -> float:
        """The server's fixed step in seconds (inputs are sent once per step)."""
        return 1.0 / self.tick_rate

    @property
    def ready(self) -> bool:
        """True once the server's hello arrived: the game is running for us."""
        return self._welcomed and self.sprocket.connected

    def poll(self) -> list[Any]:
        """Process everything received; return what the game should hear about, in order.

        The list holds your own packets (:class:`~sprocket.Packet`), :class:`~sprocket.Connected`,
        :class:`~sprocket.Disconnected`, :class:`PlayerJoined` and :class:`PlayerLeft`.  Snapshots are
        consumed here.  Never blocks.
        """
        out: list[Any] = []
        for item in self.sprocket.events():
            if type(item) is not Packet:
                if isinstance(item, Disconnected):
                    self._welcomed = False
                out.append(item)
                continue
            kind = item.get(GAME_FIELD)
            if kind is None:
                out.append(item)
            elif kind == SNAPSHOT:
                self._snapshot(item)
            elif kind == HELLO:
                self._hello(item)
                out.extend(PlayerJoined(pid, name) for pid, name in self.players.items())
            elif kind == JOIN:
                self.players[item["id"]] = item.get("name")
                out.append(PlayerJoined(item["id"], item.get("name")))
            elif kind == LEAVE:
                name = self.players.pop(item["id"], item.get("name"))
                out.append(PlayerLeft(item["id"], name, str(item.get("reason", ""))))
        self.stats.update(self.clock(), self.sprocket.stats)
        return out

    def send_input(self, input: Any) -> int:
        """Send one fixed step's input (and predict its effect locally); returns its sequence number.

        Call once per fixed step of :attr:`dt`.  ``input`` must be sendable (a dict of numbers is typical).
        Inputs sent while not connected are dropped (returns 0).

        Raises:
            UnsendableValue: ``input`` cannot be encoded.
        """
        if not self.ready:
            return 0
        if self.predictor is not None:
            self._seq = self._seq_base + self.predictor.apply(input)
        else:
            self._seq += 1
        self.sprocket.send(**{GAME_FIELD: INPUT, "s": self._seq, "i": input})
        return self._seq

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of display smoothing pass (call once per frame).

        Raises ``InvalidArgument`` if ``dt`` is negative or not finite (``InvalidType`` if not a number).
        """
        check_number(dt, "dt", minimum=0.0, what="a number of seconds")
        if self.predictor is not None:
            self.predictor.advance_display(dt)

    def server_time(self) -> float:
        """The server's clock, as estimated now."""
        return self.clock() + self.sprocket.clock_offset

    def entities(self) -> dict[int, Entity]:
        """Every entity as it should be drawn now: remote ones interpolated, ours predicted."""
        entities = self.buffer.sample(self.server_time())
        if self.predictor is not None and self.me is not None and self.me in entities:
            entities[self.me] = self.predictor.display
        return entities

    # -- internals ------------------------------------------------------------------------------------

    def _hello(self, packet: Packet) -> None:
        try:
            self.tick_rate = float(packet["rate"])
            self.snapshot_rate = float(packet["snap"])
            self.id = int(packet["id"])
            self.players = {int(pid): name for pid, name in packet.get("players", [])}
        except (KeyError, TypeError, ValueError):
            log.warning("malformed game hello from the server: %r", packet)
            return
        self._welcomed = True

    def _snapshot(self, packet: Packet) -> None:
        wire = packet.get("w")
        base_tick = wire.get("base") if isinstance(wire, dict) else None
        base = self.history.get(base_tick) if isinstance(base_tick, int) else None
        try:
            snapshot = decode_snapshot(wire if isinstance(wire, dict) else {}, base)
        except SnapshotError as exc:
            # We lost the baseline (it aged out of our history): ask for a full snapshot.
            log.warning("could not apply a snapshot (%s); asking the server for a full one", exc)
            self.sprocket.send(**{GAME_FIELD: ACK, "t": None})
            return
        self.snapshots_received += 1
        self.snapshot_bytes += (packet.wire_size - self.snapshot_bytes) * 0.1
        self.history.add(snapshot)
        self.latest = snapshot
        self.buffer.push(snapshot, self.server_time())
        self.sprocket.send(**{GAME_FIELD: ACK, "t": snapshot.tick})
        me = packet.get("you")
        ack = packet.get("ack")
        self._reconcile(snapshot, me if isinstance(me, int) else None, ack if isinstance(ack, int) else 0)

    def _reconcile(self, snapshot: Snapshot, me: int | None, ack: int) -> None:
        if me != self.me:
            self.me = me
            self.predictor = None
        if me is None or self.rule is None:
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
        error = self.predictor.reconcile(state, local_ack)
        self.prediction_error += (error - self.prediction_error) * 0.2
