"""``GameBot``: a headless player — the same netcode as a window, driven by code instead of keys.

Bots join over the real network, send inputs at the server's tick rate and see the world exactly as a
player would (interpolated, with their own entity predicted).  Use them as opponents, in tests and in
load runs.  This module never imports pygame.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sprocket import DEFAULT_PORT, Sprocket

from ._checks import check_callable, check_number
from .client import CLIENT_HOOKS, RETIRED_CLIENT_HOOKS, ClientHooks, GameClient
from .clock import FixedStep
from .entity import Entity
from .hooks import check_hooks
from .lobby import Lobby
from .prediction import Rule

__all__ = ["GameBot"]

log = logging.getLogger("sprocket")

HOOKS = {**CLIENT_HOOKS, "decide": ("entities",)}

RETIRED_HOOKS = {
    **RETIRED_CLIENT_HOOKS,
    "on_message": "the hooks for each kind of item: on_connect(self), on_disconnect(self, reason), "
    "on_player_join(self, player) and on_player_leave(self, player)",
}


class GameBot(ClientHooks):
    """Subclass and override :meth:`decide`; then :meth:`run` (blocking) or :meth:`start` (a thread).

    ``decide(entities)`` is called once per fixed step with every entity as the bot sees it now and
    returns the input to send (or None).  ``self.me`` is the id of the bot's own entity.  A bot hears
    about the connection and the other players through the same hooks as a
    :class:`~sprocket.game.NetworkedGame` window: ``on_packet(packet)``, ``on_connect()``,
    ``on_disconnect(reason)``, ``on_player_join(player)``, ``on_player_leave(player)`` (see
    :class:`~sprocket.game.client.ClientHooks`), plus ``on_drop(reason)`` / ``on_resume()`` and
    ``on_player_drop(player)`` / ``on_player_resume(player)``.  When its connection drops, the bot waits
    while the Sprocket reconnects (``decide`` is not called; :attr:`entities` stays as it was) and plays
    on after the resume, with the same entity; if the server no longer held its session, it plays on as
    a new player after the fresh join.  When your class is defined, a hook with the wrong
    parameters, an unknown ``on_*`` method or a near-miss of a hook's name (``decid``, ``decides``)
    raises :class:`~sprocket.game.HookError`; declare a method of your own that trips the check with
    :func:`~sprocket.game.not_a_hook`.

    Args:
        host, port: the server to join (ignored when ``sprocket`` is given).
        sprocket: an existing :class:`~sprocket.Sprocket` to use.
        name: the bot's player name.
        rule: the game rule, for prediction of the bot's own entity (as in a window).
        sprocket_options: further ``Sprocket`` arguments.

    Class attributes ``max_entities`` and ``max_snapshot_bytes`` cap the server's snapshots as in
    :class:`~sprocket.game.GameClient`.  Nothing a server sends raises in :meth:`tick`; a malformed
    game message closes the connection and ends :meth:`run` with the reason in :attr:`stopped_reason`.

    Raises:
        InvalidArgument: a bad ``rule`` or ``sprocket`` (``InvalidType``, also a ``TypeError``), or a bad
            Sprocket argument.
    """

    rule: Rule | None = None
    max_entities: int = GameClient.max_entities
    max_snapshot_bytes: int = GameClient.max_snapshot_bytes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_hooks(cls, HOOKS, base="GameBot", retired=RETIRED_HOOKS)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        sprocket: Sprocket | None = None,
        name: str | None = "bot",
        rule: Rule | None = None,
        **sprocket_options: Any,
    ) -> None:
        if rule is not None:
            self.rule = rule
        check_callable(self.rule, "rule", optional=True)
        sprocket = sprocket if sprocket is not None else Sprocket(host, port, name=name, **sprocket_options)
        self.net = GameClient(sprocket, rule=self.rule, max_entities=self.max_entities,
                              max_snapshot_bytes=self.max_snapshot_bytes)  # fmt: skip
        self.entities: dict[int, Entity] = {}
        #: Why :meth:`run` ended, in words (None while it runs or before): "stopped", "played for ... s",
        #: the connection's reason (``self.net.error``: the server closed it, or the bot closed it
        #: because the server sent a malformed game message), or the exception that ended a bot thread.
        self.stopped_reason: str | None = None
        #: The exception that ended a :meth:`start` thread (logged with its traceback), or None.
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sprocket(self) -> Sprocket:
        """The connection (``self.net.sprocket``; a cluster's lobby may move it to another node)."""
        return self.net.sprocket

    @property
    def lobby(self) -> Lobby:
        """The lobby of a :class:`~sprocket.game.RoomServer` (``self.net.lobby``): list, create, join and
        leave rooms; the answers come to ``on_room_joined`` / ``on_room_left`` / ``on_room_list`` /
        ``on_lobby_error``."""
        return self.net.lobby

    @property
    def me(self) -> int | None:
        """The id of the entity this bot controls, or None."""
        return self.net.me

    def decide(self, entities: dict[int, Entity]) -> Any:
        """Return this step's input (or None).  Override this."""
        return None

    def tick(self, dt: float) -> None:
        """One iteration: receive (calling the hooks), let ``dt`` pass, decide and send.

        :meth:`run` calls this at the server's tick rate.  Raises ``InvalidArgument`` if ``dt`` is
        negative or not finite (``InvalidType`` if not a number).
        """
        check_number(dt, "dt", minimum=0.0, what="a number of seconds")
        for item in self.net.poll():
            self._dispatch(item)
        self.net.advance(dt)
        self.entities = self.net.entities()
        if self.net.ready:
            value = self.decide(self.entities)
            if value is not None:
                self.net.send_input(value)

    def _over(self) -> bool:
        # Over for good: not while the Sprocket is reconnecting (the bot waits, frozen, and plays on after
        # the resume or the fresh join that follows a lost session).
        net = self.net
        return net.error is not None and not net.ready and not net.reconnecting

    def run(self, duration: float | None = None) -> None:
        """Play until :meth:`stop`, the connection ends for good, or ``duration`` seconds pass; then close.

        ``duration`` counts from when the connection is up.  Raises ``InvalidArgument`` if ``duration`` is
        negative or not finite (None plays on), before connecting; ``ConnectionFailed`` if the connection
        cannot be made (closed afterwards too).
        """
        if duration is not None:
            check_number(duration, "duration", minimum=0.0, what="a number of seconds")
        self.stopped_reason = None
        try:
            self.sprocket.wait_connected()
            fixed = FixedStep(self.net.tick_rate)
            last = time.monotonic()
            end = last + duration if duration is not None else float("inf")
            while not self._stop.is_set() and time.monotonic() < end:
                now = time.monotonic()
                steps = fixed.advance(now - last)
                last = now
                for _ in range(steps):
                    self.tick(fixed.dt)
                    if self._over():
                        break  # the connection is over (the bot may have closed it: a malformed message)
                if self._over():
                    self.stopped_reason = self.net.error
                    log.info("bot %r stopped: %s", self.sprocket.name, self.stopped_reason)
                    break
                if fixed.rate != self.net.tick_rate:
                    fixed = FixedStep(self.net.tick_rate)
                self._stop.wait(max(0.0, fixed.dt - (time.monotonic() - now)))  # pacing, not synchronisation
            if self.stopped_reason is None:
                self.stopped_reason = "stopped" if self._stop.is_set() else f"played for {duration:g} s"
        finally:
            self.sprocket.close()

    def start(self, duration: float | None = None) -> GameBot:
        """Run :meth:`run` in a background daemon thread; return this bot.

        The thread never dies with a traceback: whatever ends it (the connection failing or being
        closed, an exception from one of your hooks) is logged and kept in :attr:`stopped_reason` (and
        an exception in :attr:`error`).  Raises ``InvalidArgument`` for a bad ``duration`` here, in your
        thread (see :meth:`run`).
        """
        if duration is not None:
            check_number(duration, "duration", minimum=0.0, what="a number of seconds")
        self._thread = threading.Thread(target=self._run_thread, args=(duration,), name="sprocket-bot",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def _run_thread(self, duration: float | None) -> None:
        # A bot thread ends with a reason, never with a traceback on stderr: whatever stopped it (the
        # connection failed, a hook of yours raised) is logged and kept in stopped_reason / error.
        try:
            self.run(duration)
        except Exception as exc:
            self.error = exc
            self.stopped_reason = f"{type(exc).__name__}: {exc}"
            log.exception("bot %r stopped: %s", self.sprocket.name, self.stopped_reason)

    @property
    def running(self) -> bool:
        """True while a :meth:`start` thread is playing."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop playing and wait for a background bot to finish."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
