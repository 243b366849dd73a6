"""``GameBot``: a headless player — the same netcode as a window, driven by code instead of keys.

Bots join over the real network, send inputs at the server's tick rate and see the world exactly as a
player would (interpolated, with their own entity predicted).  Use them as opponents, in tests and in
load runs.  This module never imports pygame.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sprocket import DEFAULT_PORT, Sprocket

from .client import GameClient, Rule
from .clock import FixedStep
from .entity import Entity
from .hooks import check_hooks

__all__ = ["GameBot"]

HOOKS = {"decide": ("entities",), "on_packet": ("packet",), "on_message": ("item",)}


class GameBot:
    """Subclass and override :meth:`decide`; then :meth:`run` (blocking) or :meth:`start` (a thread).

    ``decide(entities)`` is called once per fixed step with every entity as the bot sees it now and
    returns the input to send (or None).  ``self.me`` is the id of the bot's own entity.

    Args:
        host, port: the server to join (ignored when ``sprocket`` is given).
        name: the bot's player name.
        rule: the game rule, for prediction of the bot's own entity (as in a window).
        sprocket_options: further ``Sprocket`` arguments.
    """

    rule: Rule | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_hooks(cls, HOOKS)

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
        self.sprocket = (
            sprocket if sprocket is not None else Sprocket(host, port, name=name, **sprocket_options)
        )
        self.net = GameClient(self.sprocket, rule=self.rule)
        self.entities: dict[int, Entity] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def me(self) -> int | None:
        """The id of the entity this bot controls, or None."""
        return self.net.me

    def decide(self, entities: dict[int, Entity]) -> Any:
        """Return this step's input (or None).  Override this."""
        return None

    def on_packet(self, packet: Any) -> None:
        """A packet of the game's own from the server."""

    def on_message(self, item: Any) -> None:
        """Any other item from :meth:`GameClient.poll` (joins, leaves, connect, disconnect)."""

    def tick(self, dt: float) -> None:
        """One iteration: receive, let ``dt`` pass, decide and send.  ``run`` calls this at the tick rate."""
        from sprocket import Packet

        for item in self.net.poll():
            if type(item) is Packet:
                self.on_packet(item)
            else:
                self.on_message(item)
        self.net.advance(dt)
        self.entities = self.net.entities()
        if self.net.ready:
            value = self.decide(self.entities)
            if value is not None:
                self.net.send_input(value)

    def run(self, duration: float | None = None) -> None:
        """Play until :meth:`stop`, the connection ends, or ``duration`` seconds pass; then close."""
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
                if self.sprocket.error is not None and not self.sprocket.connected:
                    break
                if fixed.rate != self.net.tick_rate:
                    fixed = FixedStep(self.net.tick_rate)
                self._stop.wait(max(0.0, fixed.dt - (time.monotonic() - now)))  # pacing, not synchronisation
        finally:
            self.sprocket.close()

    def start(self, duration: float | None = None) -> GameBot:
        """Run in a background daemon thread."""
        self._thread = threading.Thread(target=self.run, args=(duration,), name="sprocket-bot", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop playing and wait for a background bot to finish."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
