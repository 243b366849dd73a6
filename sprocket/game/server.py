"""The authoritative tick server: a headless fixed-step game loop over a :class:`~sprocket.Servo`.

Each tick: network events (joins, inputs, leaves, your packets) -> inputs applied through the game rule ->
``simulate(dt)`` -> every few ticks, a snapshot to each client as a delta against the last snapshot that
client acknowledged.  Drift-free scheduling on the monotonic clock, with a cap on catch-up ticks.

This module must never import pygame: game servers run where pygame is not installed.
Run one headless with ``python -m sprocket.game.serve yourgame:YourServer --port 7777``.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sprocket import (
    DEFAULT_PORT,
    Client,
    Dropped,
    EncodedPacket,
    Joined,
    Left,
    Packet,
    PacketTooLarge,
    Resumed,
    Servo,
)
from sprocket.errors import InvalidArgument

from ._checks import InvalidType, check_callable, check_count, check_number, describe
from .clock import TickSchedule
from .entity import Entity
from .hooks import check_hooks
from .inputs import InputLimits, check_schema, input_problem
from .messages import ACK, BACK, DROP, GAME_FIELD, HELLO, INPUT, JOIN, LEAVE, SNAP
from .prediction import Rule, run_rule
from .snapshot import (
    DEFAULT_MAX_ENTITIES,
    SnapshotError,
    SnapshotHistory,
    World,
    encode_snapshot,
    entity_problems,
)

log = logging.getLogger("sprocket")

# Stands in the input queue for an input that was refused: it is never applied, but its sequence number
# is acknowledged in turn, so the client's predictor stops replaying it.
_REFUSED = object()
# Seconds between two warnings about one client's refused inputs (the first is always logged).
_WARN_EVERY = 5.0
_REFUSAL_WINDOW = 60.0  # seconds over which refused inputs are counted towards max_bad_inputs
# Seconds after a resume during which the ticks banked for the inputs replayed across the gap are kept
# (the replay arrives a round trip after the resume); then the bank is back to its usual cap.
_RESUME_SETTLE = 2.0

__all__ = ["NO_INPUT", "GameServer", "Player", "ServerStats"]


class _NoInput:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_INPUT"


#: :attr:`Player.last_input` of a client that has no input applied yet, or is away.
NO_INPUT: Any = _NoInput()

HOOKS = {
    "on_join": ("client",),
    "on_leave": ("client", "reason"),
    "on_drop": ("client", "reason"),
    "on_resume": ("client",),
    "on_input": ("client", "input"),
    "on_packet": ("client", "packet"),
    "simulate": ("dt",),
}


@dataclass
class Player:
    """The server's record of one client in the game (kept while it is away in its grace period)."""

    client: Client
    entity: int | None = None  # the entity this client controls (predicted on its side)
    away_since: float | None = None  # server time its connection dropped; None while connected
    last_input_tick: int = 0  # the tick of the last input applied (or of the join)
    resumed_tick: int = 0  # the tick of its last resume
    inputs: collections.deque[tuple[int, Any]] = field(default_factory=collections.deque)
    last_seq: int = 0  # the newest input sequence number applied
    #: The input last applied for this client (:data:`NO_INPUT` before the first and while away): what
    #: the other clients' world prediction assumes it keeps sending.
    last_input: Any = NO_INPUT
    input_changed_tick: int = 0  # the first snapshot tick that carries last_input as it is now
    acked_tick: int | None = None  # the newest snapshot the client confirmed: the delta baseline
    dropped_inputs: int = 0  # inputs dropped because too many were queued
    refused_inputs: int = 0  # inputs refused by the input checks in the current minute (max_bad_inputs)
    refusals_since: float = 0.0  # when that minute began
    input_credit: int = 0  # inputs this client may still have applied (one more per tick, capped)
    bytes_out: int = 0
    snapshots_sent: int = 0
    warned_at: float = -math.inf  # when a refused input of this client was last logged
    unlogged_refusals: int = 0  # refusals since then that were not logged

    @property
    def away(self) -> bool:
        """True while the client's connection is down and its seat held (between on_drop and on_resume)."""
        return self.away_since is not None


@dataclass
class ServerStats:
    """Tick loop statistics: tick durations, overruns, late and skipped ticks, snapshot sizes.

    Read-only for you (the loop running the server writes them; reading them from another thread is safe
    in CPython).  ``tick_times``: the durations of the last 600 ticks, in seconds (see :meth:`tick_ms`).
    ``ticks``: ticks run.  ``late_ticks``: ticks begun more than one tick interval after their scheduled
    time (the loop was busy: with other rooms, or another process on the core).  ``skipped_ticks``: tick
    slots never run because the loop fell more than ``max_catch_up`` ticks behind (``overruns``: how many
    times it did).  :attr:`late_percent` puts them together.  The counters are kept by the loop that
    runs the ticks (:meth:`GameServer.run` or a :class:`~sprocket.game.RoomServer`), not by :meth:`step`.
    """

    tick_times: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=600))
    overruns: int = 0
    skipped_ticks: int = 0
    snapshot_bytes: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=200))
    ticks: int = 0
    late_ticks: int = 0

    @property
    def late_percent(self) -> float:
        """Late and skipped ticks, in percent of the tick slots so far (0.0 before any)."""
        slots = self.ticks + self.skipped_ticks
        return 100.0 * (self.late_ticks + self.skipped_ticks) / slots if slots else 0.0

    def tick_ms(self, percentile: float) -> float:
        """The given percentile (0-100) of recent tick durations, in milliseconds (0.0 before any)."""
        if not self.tick_times:
            return 0.0
        ordered = sorted(self.tick_times)
        index = min(len(ordered) - 1, max(0, math.ceil(percentile / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def mean_snapshot_bytes(self) -> float:
        """Mean encoded size of recent snapshot packets, in bytes."""
        return sum(self.snapshot_bytes) / len(self.snapshot_bytes) if self.snapshot_bytes else 0.0


class GameServer:
    """Subclass this to write your game's authoritative server.  It runs headless (no pygame).

    Hooks (all optional).  When your class is defined, a hook with the wrong parameters, an unknown
    ``on_*`` method or a near-miss of a hook's name (``simulat``, ``on_jion``) raises
    :class:`~sprocket.game.HookError` naming it and the hook; declare a method of your own that trips
    the check with :func:`~sprocket.game.not_a_hook`.

    * ``on_join(client)`` — a client joined: spawn its entity and call ``self.control(client, id)``.
      ``client`` is its :class:`~sprocket.Client` handle (``client.id``, ``client.name``; on the client
      side, the matching hook is ``on_player_join(player)``, whose ``player.id`` is this ``client.id``).
    * ``on_leave(client, reason)`` — it left for good (a goodbye, a kick, or it did not come back within
      the grace period after a drop): despawn what it owned.
    * ``on_drop(client, reason)`` — its connection dropped (``reason`` says why), and the Servo holds its
      seat for ``grace`` seconds (:attr:`grace`, the Servo's ``grace``; 30 by default) while it
      reconnects.  Its :class:`Player` stays in :attr:`players` (``player.away`` true) and its entity in
      the world; the other clients see it stay (they get a ``"drop"`` message:
      ``on_player_drop``).  Pause your game here if you like.
    * ``on_resume(client)`` — it came back within the grace period: the same ``client`` object, id,
      Player and entity.  Every input and packet it sent across the gap arrives once, in order.
    * ``on_input(client, input)`` — one input of a client.  The default applies the game rule
      (``rule(state, input, dt)``) to the entity the client controls, exactly as the client predicted it.
    * ``on_packet(client, packet)`` — any packet of yours that is not a game-layer message.
    * ``simulate(dt)`` — advance the world one fixed step (the ball, collisions, scores...).

    While a player is away its entity gets **no input**: the rule (``on_input``) is not run for it, so
    the entity stays exactly where it was (unless ``simulate()`` moves it) — no last input repeated, no
    default input made up.  Inputs that had arrived but were not yet applied when the connection dropped
    wait, and are applied after the resume, in order, before the ones the client's Sprocket replays;
    none of them counts as late or excess (see the input policy: the ticks it was away are banked, up to
    ``max_queued_inputs``).  No snapshots are sent to an away player; the first after its resume is a
    delta against the last one it acknowledged (or a full one).

    World prediction: while the world holds an entity of a ``predicted`` type, each snapshot tells every
    client the other players' last applied inputs (``"in"``, docs/PROTOCOL.md), which its re-simulation
    moves their entities with.  Class attribute ``share_inputs`` (True) turns that off: clients then hold
    the other players still while re-simulating (and snapshots are a little smaller).

    The same class runs as a room of a :class:`~sprocket.game.RoomServer` (many rooms on one port, with a
    lobby), unchanged: it then gets a :class:`~sprocket.game.rooms.RoomServo` as its ``servo`` and sees
    only its room's clients.  Set ``self.room_state`` (a str of at most 32 characters, e.g. ``"playing"``)
    for the room listings to show.

    Args:
        servo: a Servo to use; by default one is made from ``host``, ``port`` and ``servo_options``.
        tick_rate: simulation steps per second (default: the class attribute, 60).
        snapshot_rate: snapshots per second sent to each client (default: the class attribute, 20; at
            most ``tick_rate``).
        rule: the game rule ``rule(state, input, dt) -> state`` shared with the clients (or set ``rule``
            as a class attribute: ``rule = staticmethod(step)``).
        input_schema: the declared fields of an input (or set ``input_schema`` as a class attribute);
            see the input policy below.

    Class attributes (set them in your subclass): ``tick_rate``, ``snapshot_rate``, ``rule``,
    ``max_catch_up`` (5: due ticks run back to back when the loop has fallen behind; the rest are
    skipped), and the input policy below.

    Inputs are never trusted.  Each one is checked when it arrives, before the rule sees it
    (:mod:`sprocket.game.inputs`): it must be plain data — finite numbers within ``±max_input_number``
    (2**53), strings of at most ``max_input_string`` (256), containers nested at most ``max_input_depth``
    (4) deep holding at most ``max_input_items`` (64) values — and, if you declare ``input_schema``
    (``{"x": (-1.0, 1.0), "fire": bool}``: a dict input whose fields fit their declarations; see
    :mod:`sprocket.game.inputs` for the forms), fit it.  A refused input is dropped (never applied;
    its sequence number is still acknowledged), a warning naming the client is logged (at most one
    every 5 s per client), and after ``max_bad_inputs`` (10) refused inputs within a minute the client is
    kicked with a reason saying why (an occasional bad input is forgiven).

    Inputs are applied in order, one per client per tick: no client moves faster than the rule allows
    however fast it sends.  A client whose inputs arrived late (a network hiccup, then a burst) catches
    up: its ticks without an input are banked, up to ``input_catch_up`` (8) of them, and spent on
    later ticks at up to ``max_inputs_per_tick`` (3) inputs a tick — so over any stretch of ``T`` ticks
    a client has at most ``T + input_catch_up`` inputs applied.  At most two more inputs than the client has
    banked ticks for wait (and never more than ``max_queued_inputs``, 30): past that the oldest are dropped
    (counted in ``Player.dropped_inputs``; still acknowledged, so the client's prediction corrects itself),
    so a stall costs a correction once, not input lag for the rest of the session.  After a resume the
    inputs that waited and the ones replayed across the gap were all made before the drop, in ticks the
    client was not applied inputs: the ticks since its last applied input are banked for them (up to
    ``max_queued_inputs``), so none is dropped and they catch up at ``max_inputs_per_tick`` a tick.

    The world is checked after every tick: an entity whose ``float`` field became NaN or infinite (or
    whose typed field holds a value of another type), by the rule or by ``simulate()``, gets its last
    good state back (from the last snapshot; fields it did not have then take their defaults), and
    the entity, its type and the field are logged once per entity.  So no snapshot ever carries a
    value the clients would refuse.

    Raises:
        InvalidArgument: a rate is not a finite number > 0, one of the ``max_*`` attributes is not an int
            >= 1 (``max_input_number``: a number > 0; ``input_catch_up``: an int >= 0), ``input_schema``
            is not a valid schema, or ``rule`` is not callable or ``servo`` not a Servo (``InvalidType``,
            also a ``TypeError``, for those and other wrong types).
        ConnectionFailed: the Servo cannot bind.
    """

    tick_rate: float = 60.0
    snapshot_rate: float = 20.0
    rule: Rule | None = None
    max_inputs_per_tick: int = 3
    max_queued_inputs: int = 30
    max_catch_up: int = 5
    input_catch_up: int = 8
    input_schema: dict[str, Any] | None = None
    share_inputs: bool = True
    max_bad_inputs: int = 10
    max_input_number: float = 2.0**53
    max_input_items: int = 64
    max_input_depth: int = 4
    max_input_string: int = 256

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_hooks(cls, HOOKS, base="GameServer")

    def __init__(
        self,
        servo: Servo | None = None,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        tick_rate: float | None = None,
        snapshot_rate: float | None = None,
        rule: Rule | None = None,
        input_schema: dict[str, Any] | None = None,
        **servo_options: Any,
    ) -> None:
        rate = self.tick_rate if tick_rate is None else tick_rate
        self.tick_rate = check_number(rate, "tick_rate", positive=True, what="a number of ticks per second")
        snap = self.snapshot_rate if snapshot_rate is None else snapshot_rate
        snap = check_number(snap, "snapshot_rate", positive=True, what="a number of snapshots per second")
        self.snapshot_rate = min(snap, self.tick_rate)
        for name in ("max_inputs_per_tick", "max_queued_inputs", "max_catch_up", "max_bad_inputs"):
            check_count(getattr(self, name), name)
        check_count(self.input_catch_up, "input_catch_up", minimum=0)
        self.input_schema = check_schema(self.input_schema if input_schema is None else input_schema)
        self._input_limits = InputLimits(
            self.max_input_number, self.max_input_items, self.max_input_depth, self.max_input_string
        )
        if rule is not None:
            self.rule = rule
        check_callable(self.rule, "rule", optional=True)
        if servo is not None and not isinstance(servo, Servo):
            raise InvalidType(f"servo must be a sprocket.Servo, got {describe(servo)}")
        self.dt = 1.0 / self.tick_rate
        self.servo = servo if servo is not None else Servo(host, port, **servo_options)
        self.world = World()
        self.tick = 0
        self.time = 0.0  # server clock (time.monotonic) at the current tick
        self.players: dict[Client, Player] = {}
        self.stats = ServerStats()
        self._history = SnapshotHistory(capacity=max(64, int(self.snapshot_rate * 4)))
        # Entities that lost their player (by the first snapshot tick that says so): delta snapshots tell
        # clients to stop moving them by that player's last input.
        self._released: dict[int, int] = {}
        self._warned_world_size = False
        self._snapshot_every = max(1, round(self.tick_rate / self.snapshot_rate))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_entities: set[int] = set()  # entities whose invalid values were logged already
        # on_input / on_packet raising: kick the sender (True), or let it propagate out of step() (a room
        # of a RoomServer sets False: its RoomServer then closes the room, not the whole server).
        self._kick_on_failure = True

    # -- hooks (documented no-ops) ------------------------------------------------------------------

    def on_join(self, client: Client) -> None:
        """A client joined.  Spawn its entity here and ``self.control(client, entity_id)``."""

    def on_leave(self, client: Client, reason: str) -> None:
        """A client left for good (``reason`` says why).  Despawn what it owned here."""

    def on_drop(self, client: Client, reason: str) -> None:
        """A client's connection dropped; its seat, Player and entity are held for :attr:`grace` seconds."""

    def on_resume(self, client: Client) -> None:
        """A dropped client is back (the same handle, Player and entity)."""

    def on_input(self, client: Client, input: Any) -> None:
        """Apply one input (already checked: see the input policy).  Default: run ``rule`` on the entity
        the client controls, if any; a result holding a NaN or infinite float is refused (the entity
        keeps its state, and this is logged once per entity)."""
        player = self.players.get(client)
        if self.rule is None or player is None or player.entity is None or player.entity not in self.world:
            return
        eid = player.entity
        state = self.world[eid]
        new = run_rule(self.rule, state.copy(), input, self.dt, name=f"{type(self).__name__}.rule")
        problems = entity_problems(new) if type(new) is type(state) else []
        if problems:
            # The rule made a value no snapshot may carry (1e308 * speed = inf): refuse this update.
            self._log_invalid(eid, state, problems[0][1], f"the rule, applying client {client.id}'s input")
            return
        _assign(state, new)

    def on_packet(self, client: Client, packet: Packet) -> None:
        """A packet of yours (not a game-layer message) arrived from ``client``."""

    def simulate(self, dt: float) -> None:
        """Advance the world by one fixed step of ``dt`` seconds."""

    # -- things to call from hooks -----------------------------------------------------------------

    def control(self, client: Client, entity_id: int | None) -> None:
        """Make ``client`` the controller of ``entity_id`` (its inputs drive it; it predicts it locally).

        ``entity_id`` None: it controls nothing (a spectator).

        Raises:
            InvalidArgument: the client is not in the game (it left, or is not one of this server's), or
                ``entity_id`` is not an int or None (``InvalidType``, also a ``TypeError``).
        """
        if entity_id is not None and (not isinstance(entity_id, int) or isinstance(entity_id, bool)):
            raise InvalidType(f"entity_id must be an int or None, got {describe(entity_id)}")
        player = self.players.get(client)
        if player is None:
            raise InvalidArgument(f"client must be a client in the game, got {describe(client)}")
        if player.entity != entity_id:
            self._release(player.entity)
            player.entity = entity_id
            player.input_changed_tick = self.tick + 1  # its input now moves another entity: tell everyone

    def teleport(self, entity: int | Entity) -> None:
        """Mark ``entity`` (an id, or the entity object) as having jumped this tick: a respawn, a face-off.

        Clients then show its move as a jump instead of blending it over a snapshot interval or gliding
        to it (the snapshot's ``"jump"`` list; see :meth:`World.teleport`).  Raises
        :class:`~sprocket.game.snapshot.UnknownEntityError` (a ``ValueError`` and ``KeyError``) if it is
        not in the world.
        """
        self.world.teleport(entity)

    def simulate_predicted(self, dt: float) -> dict[int, Any]:
        """Run ``simulate(world, dt)`` of every entity whose type is ``predicted=True``, in id order.

        Call it from your :meth:`simulate` where your game wants that physics to happen: the clients
        re-run exactly this (after applying the inputs of the tick) to predict those entities.  Returns
        each one's result by id (whatever its ``simulate`` returned: events, say).  Whatever a
        ``simulate`` raises propagates.
        """
        world = self.world
        results: dict[int, Any] = {}
        for eid in sorted(eid for eid, entity in world.items() if type(entity).predicted):
            results[eid] = world[eid].simulate(world, dt)  # type: ignore[attr-defined]
        return results

    def controller(self, entity_id: int) -> Client | None:
        """The client controlling ``entity_id``, or None."""
        for player in self.players.values():
            if player.entity == entity_id:
                return player.client
        return None

    def send(self, client: Client, **fields: Any) -> None:
        """Send a packet of yours to one client (it arrives in the client's ``on_packet``)."""
        client.send(**fields)

    def broadcast(self, **fields: Any) -> None:
        """Send a packet of yours to every client."""
        self.servo.sendall(**fields)

    # -- the loop -------------------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> None:
        """Run the tick loop in this thread until :meth:`stop` (or for ``duration`` seconds), then close.

        Ctrl-C (KeyboardInterrupt) in this thread stops it quietly.  Exceptions from ``simulate`` and the
        join/leave/drop/resume hooks propagate (after the server is closed): a bug stops the server
        loudly.  (An exception from ``on_input``/``on_packet`` only disconnects the client that sent it.)
        Raises ``InvalidArgument`` if ``duration`` is negative or not finite (None runs until stopped).
        """
        if duration is not None:
            check_number(duration, "duration", minimum=0.0, what="a number of seconds")
        start = time.monotonic()
        schedule = TickSchedule(self.tick_rate, start, max_catch_up=self.max_catch_up)
        end = start + duration if duration is not None else math.inf
        log.info("game server on port %s: %g ticks/s, %g snapshots/s", self.servo.port, self.tick_rate,
                 self.snapshot_rate)  # fmt: skip
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= end:
                    break
                skipped = schedule.skipped
                due = schedule.due(now)
                if schedule.skipped > skipped:
                    # Tick slots skipped while the loop was behind still passed for the clients, whose
                    # inputs for them are queued: let those be caught up like any late inputs.
                    self._bank_input_credit(schedule.skipped - skipped)
                for left in range(due, 0, -1):
                    if _is_late(schedule, left, time.monotonic()):
                        self.stats.late_ticks += 1
                    self.step(now)
                self.stats.overruns = schedule.overruns
                self.stats.skipped_ticks = schedule.skipped
                # Waiting for the next tick is scheduling, not synchronisation; stop() interrupts it.
                self._stop.wait(min(schedule.time_until(time.monotonic()), max(0.0, end - now)))
        except KeyboardInterrupt:
            log.info("game server stopped by Ctrl-C")
        finally:
            self.close()

    def start(self) -> GameServer:
        """Run the loop in a background daemon thread (e.g. inside the host's own game process)."""
        self._thread = threading.Thread(target=self.run, name=f"sprocket-game-{self.servo.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop (from any thread) and wait for a background loop to finish."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def close(self) -> None:
        """Stop the loop (waiting for a background one to finish its tick, as :meth:`stop` does), then close
        the Servo (clients are told the server is shutting down)."""
        self.stop()  # a tick still running must not find the Servo closed under it mid-send
        self.servo.close()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.servo.port

    @property
    def grace(self) -> float:
        """Seconds a dropped client's seat is held (the Servo's ``grace``; 0: a drop is a leave)."""
        return float(self.servo.settings.grace)

    def step(self, now: float | None = None) -> None:
        """Run exactly one tick at server time ``now`` (default: the monotonic clock).  Tests drive this.

        Raises ``InvalidArgument`` if ``now`` is not finite (``InvalidType`` if not a number).
        """
        if now is not None:
            now = check_number(now, "now", what="a number of seconds")
        began = time.perf_counter()
        self.time = time.monotonic() if now is None else now
        self._network()
        self._bank_input_credit(1)
        for player in list(self.players.values()):
            if player.away_since is None:
                self._apply_inputs(player)  # an away player's entity gets no input: it stays still
        self.simulate(self.dt)
        self._guard_world()
        self.tick += 1
        self.stats.ticks += 1
        if self.tick % self._snapshot_every == 0 and self.players:
            self._send_snapshots()
        self.stats.tick_times.append(time.perf_counter() - began)

    # -- internals ------------------------------------------------------------------------------------

    def _network(self) -> None:
        for item in self.servo.events():
            if type(item) is Packet:
                self._packet(item)
            elif isinstance(item, Joined):
                self._joined(item.client)
            elif isinstance(item, Left):
                self._left(item.client, item.reason)
            elif isinstance(item, Dropped):
                self._dropped(item.client, item.reason)
            elif isinstance(item, Resumed):
                self._resumed(item.client)

    def _joined(self, client: Client) -> None:
        self.players[client] = Player(client, last_input_tick=self.tick)
        roster = [[p.client.id, p.client.name] for p in self.players.values()]
        away = [p.client.id for p in self.players.values() if p.away_since is not None]
        client.send(**{GAME_FIELD: HELLO, "rate": self.tick_rate, "snap": self.snapshot_rate, "id": client.id,
                       "players": roster, "away": away})  # fmt: skip
        self._tell_players({GAME_FIELD: JOIN, "id": client.id, "name": client.name}, exclude=client)
        self.on_join(client)

    def _left(self, client: Client, reason: str) -> None:
        if client not in self.players:
            return
        try:
            self.on_leave(client, reason)  # self.players[client] is still there for the hook to read
        finally:
            self._release(self.players.pop(client).entity)
            self._tell_players({GAME_FIELD: LEAVE, "id": client.id, "name": client.name, "reason": reason})

    def _dropped(self, client: Client, reason: str) -> None:
        player = self.players.get(client)
        if player is None:
            return
        player.away_since = self.time
        self._set_last_input(player, NO_INPUT)  # nothing of it is applied while it is away
        self._tell_players({GAME_FIELD: DROP, "id": client.id, "name": client.name, "reason": reason,
                            "grace": self.grace}, exclude=client)  # fmt: skip
        self.on_drop(client, reason)

    def _resumed(self, client: Client) -> None:
        player = self.players.get(client)
        if player is None:
            return
        player.away_since = None
        player.resumed_tick = self.tick
        # Everything still to come from it (queued, then replayed by its Sprocket) was made before the drop,
        # in ticks that passed without an input of its being applied: bank those ticks, so that none of
        # it is dropped as excess and it all catches up.
        idle = self.tick - player.last_input_tick
        player.input_credit = max(player.input_credit, min(self.max_queued_inputs, idle))
        self._tell_players({GAME_FIELD: BACK, "id": client.id, "name": client.name}, exclude=client)
        self.on_resume(client)

    def _tell_players(self, fields: dict[str, Any], exclude: Client | None = None) -> None:
        # Game-layer news goes to the players only: a client the Servo has let in but whose join this
        # loop has not handled yet hears of everyone in its hello instead (a "join" before it would
        # announce the same player twice).
        packet = self.servo.encode(fields)
        for player in self.players.values():
            if player.client is not exclude:
                player.client.send_packet(packet)

    def _packet(self, packet: Packet) -> None:
        client = packet.sender
        player = self.players.get(client)
        kind = packet.get(GAME_FIELD)
        if kind is None:
            try:
                self.on_packet(client, packet)
            except Exception:
                if not self._kick_on_failure:
                    raise  # a room of a RoomServer: the room closes instead (see sprocket.game.rooms)
                # As with inputs: a packet that breaks the handler costs only its sender its place.
                log.exception("on_packet failed for client %s; disconnecting it", client.id)
                client.kick("the server could not handle your packet")
            return
        if player is None:
            return
        if kind == INPUT:
            seq = packet.get("s")
            if type(seq) is not int or seq <= (player.inputs[-1][0] if player.inputs else player.last_seq):
                client.kick("protocol error: input sequence numbers must increase")
                return
            value = packet.get("i")
            problem = input_problem(value, self.input_schema, self._input_limits)
            if problem is not None:
                if self._refuse_input(player, problem):
                    return
                value = _REFUSED
            # More waiting than the client has banked ticks for would be input lag for the rest of the
            # session (one applied per tick, one arriving per tick): keep the newest, bounded.
            while len(player.inputs) >= min(self.max_queued_inputs, 2 + player.input_credit):
                player.inputs.popleft()
                player.dropped_inputs += 1
            player.inputs.append((seq, value))
        elif kind == ACK:
            tick = packet.get("t")
            player.acked_tick = tick if type(tick) is int and tick <= self.tick else None
        else:
            log.debug("ignoring unknown game message %r from client %s", kind, client.id)

    def _refuse_input(self, player: Player, problem: str) -> bool:
        """Count and log a refused input; kick its sender at ``max_bad_inputs``.  True if kicked."""
        now = time.monotonic()
        if now - player.refusals_since > _REFUSAL_WINDOW:
            player.refused_inputs = 0  # an occasional bad input is forgiven: only a run of them kicks
            player.refusals_since = now
        player.refused_inputs += 1
        client = player.client
        who = f"client {client.id}" + (f" ({client.name!r})" if client.name else "")
        if player.refused_inputs >= self.max_bad_inputs:
            log.warning("%s sent %d invalid inputs (the last: %s); kicking it", who, player.refused_inputs,
                        problem)  # fmt: skip
            player.inputs.clear()
            client.kick(f"sent {player.refused_inputs} invalid inputs (the last: {problem})")
            return True
        if now - player.warned_at >= _WARN_EVERY:
            unlogged = player.unlogged_refusals
            more = f" (and {unlogged} more since the last warning)" if unlogged else ""
            log.warning("refused an input from %s: %s%s; %d of %d allowed before it is kicked", who, problem,
                        more, player.refused_inputs, self.max_bad_inputs - 1)  # fmt: skip
            player.warned_at = now
            player.unlogged_refusals = 0
        else:
            player.unlogged_refusals += 1
        return False

    def _bank_input_credit(self, ticks: int) -> None:
        # Each tick that passes lets each client have one more input applied, up to 1 + input_catch_up
        # (more only after a resume, which banks what the gap needs: see _resumed).
        cap = 1 + self.input_catch_up
        settle = _RESUME_SETTLE * self.tick_rate
        for player in self.players.values():
            if player.input_credit < cap:
                player.input_credit = min(cap, player.input_credit + ticks)
            elif player.input_credit > cap and not player.inputs and self.tick - player.resumed_tick > settle:
                player.input_credit = cap  # the catch-up after a resume is over

    def _apply_inputs(self, player: Player) -> None:
        count = min(self.max_inputs_per_tick, player.input_credit, len(player.inputs))
        player.input_credit -= count
        if count:
            player.last_input_tick = self.tick
        for _ in range(count):
            seq, value = player.inputs.popleft()
            player.last_seq = seq
            if value is _REFUSED:
                continue  # never applied; acknowledged so the client's predictor stops replaying it
            self._set_last_input(player, value)
            try:
                self.on_input(player.client, value)
            except Exception:
                if not self._kick_on_failure:
                    raise  # a room of a RoomServer: the room closes instead (see sprocket.game.rooms)
                # Inputs come from the network: one that makes the rule fail must cost only that client
                # its place, not stop the server for everyone.  The traceback is logged for the developer.
                log.exception("on_input failed for client %s with input %r; disconnecting it",
                              player.client.id, value)  # fmt: skip
                player.inputs.clear()
                player.client.kick("the server could not apply your input")
                return

    def _set_last_input(self, player: Player, value: Any) -> None:
        last = player.last_input
        if last is value or (last is not NO_INPUT and value is not NO_INPUT and _same(last, value)):
            return
        player.last_input = value
        player.input_changed_tick = self.tick + 1  # the next snapshot is the first to carry it

    def _inputs_since(self, base_tick: int | None, exclude: int | None) -> list[list[Any]]:
        # The "in" field of a snapshot message: the last input applied for each player that changed after
        # the client's baseline (all of them in a full snapshot), except the recipient's own.
        out: list[list[Any]] = []
        for player in self.players.values():
            eid = player.entity
            if eid is None or eid == exclude:
                continue
            if base_tick is not None and player.input_changed_tick <= base_tick:
                continue
            out.append([eid] if player.last_input is NO_INPUT else [eid, player.last_input])
        if base_tick is not None and self._released:
            controlled = {player.entity for player in self.players.values()}
            for eid, tick in self._released.items():
                if tick > base_tick and eid not in controlled and eid != exclude:
                    out.append([eid])
        return out

    def _release(self, eid: int | None) -> None:
        if eid is None:
            return
        self._released[eid] = self.tick + 1
        # Older news than any baseline still held is in every client's full snapshot anyway.
        oldest = self.tick - self._history.capacity * self._snapshot_every
        for old in [e for e, tick in self._released.items() if tick < oldest]:
            del self._released[old]

    def _guard_world(self) -> None:
        # No entity may keep a value a snapshot cannot carry (a NaN from simulate(), say): one such
        # value would make every client refuse every snapshot.  Put back its last good state.
        invalid = self.world.find_invalid()
        if not invalid:
            return
        latest = self._history.latest
        for eid, _name, why in invalid:
            entity = self.world.get(eid)
            if entity is None or not entity_problems(entity):
                continue  # already repaired (two bad fields of one entity)
            self._log_invalid(eid, entity, why, "simulate() or a hook")
            good = latest.entities.get(eid) if latest is not None else None
            if good is not None and type(good) is type(entity) and not entity_problems(good):
                _assign(entity, good.copy())
                continue
            try:
                defaults = type(entity)()
                for name, _ in entity_problems(entity):
                    setattr(entity, name, getattr(defaults, name))
            except Exception:
                log.exception("entity %s (%s) cannot be repaired; despawning it", eid, entity.type_name)
                self.world.despawn(eid)

    def _log_invalid(self, eid: int, entity: Entity, why: str, by: str) -> None:
        if eid in self._logged_entities:
            return
        self._logged_entities.add(eid)
        log.error("entity %s (%s): %s, set by %s; the update is refused and the entity keeps its last good "
                  "state (logged once per entity)", eid, entity.type_name, why, by)  # fmt: skip

    def _send_snapshots(self) -> None:
        snapshot = self.world.snapshot(self.tick, self.time)
        self._history.add(snapshot)
        if len(snapshot.entities) > DEFAULT_MAX_ENTITIES and not self._warned_world_size:
            self._warned_world_size = True
            log.warning(
                "the world holds %d entities: clients refuse snapshots of more than %d unless they are made "
                "with a larger max_entities (GameClient, NetworkedGame and GameBot take it)",
                len(snapshot.entities), DEFAULT_MAX_ENTITIES,
            )  # fmt: skip
        # World prediction on the clients needs the other players' last inputs (docs/PROTOCOL.md "in").
        predicting = self.share_inputs and any(type(e).predicted for e in snapshot.entities.values())
        encoded: dict[tuple[int | None, int, int | None], EncodedPacket] = {}
        for player in self.players.values():
            if player.away_since is not None:
                continue  # nothing to send to a dropped client: it gets a fresh snapshot when it is back
            base = self._history.get(player.acked_tick) if player.acked_tick is not None else None
            key = (base.tick if base else None, player.last_seq, player.entity)
            packet = encoded.get(key)
            if packet is None:
                exact = () if player.entity is None else (player.entity,)  # its prediction starts exact
                wire = encode_snapshot(snapshot, base, compact=True, exact=exact)
                # "S": the "snap" message's fields by position, [w, ack, you(, in)] (docs/PROTOCOL.md).
                body = [wire, player.last_seq, player.entity]
                if predicting:
                    inputs = self._inputs_since(base.tick if base else None, player.entity)
                    if inputs:
                        body.append(inputs)
                fields = {GAME_FIELD: SNAP, "s": body}
                try:
                    packet = self.servo.encode(fields)
                except PacketTooLarge as exc:
                    raise SnapshotError(
                        f"the snapshot of tick {self.tick} is too large: {exc}; "
                        f"{len(snapshot.entities)} entities: send fewer or smaller fields, or "
                        "raise max_packet_size on both ends"
                    ) from exc
                encoded[key] = packet
            player.client.send_packet(packet)
            player.bytes_out += packet.size
            player.snapshots_sent += 1
            self.stats.snapshot_bytes.append(packet.size)


def _same(a: Any, b: Any) -> bool:
    # Inputs are plain data (checked on arrival); equal data means the same input.  Types count: 1 != 1.0
    # on the wire for a client that checks them.
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _is_late(schedule: TickSchedule, left: int, now: float) -> bool:
    """Whether the next of the ticks :meth:`TickSchedule.due` handed out (``left`` of them still to run)
    begins late at ``now``: more than one tick interval after its scheduled time.  Raises nothing."""
    slot = schedule.tick - left + schedule.skipped
    return now - schedule.start - slot / schedule.rate > 1.0 / schedule.rate


def _assign(target: Entity, source: Entity) -> None:
    # The rule works on a copy (as on the client); copy the result back into the stored entity, which
    # stays the same object so references held by simulate() remain valid.
    for name, value in source.to_fields().items():
        setattr(target, name, value)
