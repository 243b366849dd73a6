"""A test's game world on one machine: servers, bots, clients, lag proxies and windows, all cleaned up.

:class:`Harness` is what the pytest fixtures of :mod:`sprocket.testing.plugin` use; it works without
pytest too (``with Harness() as h: ...``).  Everything binds to 127.0.0.1 on a free port, runs in
background threads, and is stopped by :meth:`Harness.close` in a safe order (windows and clients first,
then bots, then proxies, then servers), after which no sprocket thread started meanwhile may remain.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sprocket import InvalidArgument, Sprocket, SprocketError

from .lag import LagProxy
from .waiting import check_timeout, step_until, wait_until

if TYPE_CHECKING:
    from sprocket.game import GameBot, GameClient, GameServer, NetworkedGame

__all__ = ["Harness", "LeakedThreads", "Target", "dummy_sdl"]

S = TypeVar("S", bound="GameServer")
B = TypeVar("B", bound="GameBot")
G = TypeVar("G", bound="NetworkedGame")

#: Seconds :meth:`Harness.close` waits for the threads it started to end before reporting them.
THREAD_EXIT_TIMEOUT = 5.0


class _HasPort(Protocol):
    @property
    def port(self) -> int: ...


#: Where a bot, client or window connects: a port number, or anything with a ``port`` (a GameServer,
#: a LagProxy, a Servo).  The host is always 127.0.0.1.
Target = int | _HasPort


class LeakedThreads(SprocketError, AssertionError):
    """Threads started during a test were still running after everything was closed.

    ``threads`` lists them.  Usually a bot, server or connection made outside the harness and never
    closed; close it in the test (or create it through the harness).
    """

    def __init__(self, threads: list[threading.Thread], waited: float = THREAD_EXIT_TIMEOUT) -> None:
        """Name the leftover threads and how long they were given to end in the message."""
        names = ", ".join(sorted(t.name for t in threads))
        super().__init__(
            f"{len(threads)} sprocket thread(s) still running {waited:g} s after the test's "
            f"servers, bots and clients were closed: {names}"
        )
        self.threads = threads


def dummy_sdl() -> None:
    """Use SDL's dummy video and audio drivers unless the environment already chose drivers.

    Call before pygame opens a window (``NetworkedGame`` does that in its constructor): the game then
    runs with no screen and no sound device, as on a CI machine.  Does not import pygame.
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def port_of(target: Target) -> int:
    """The port of ``target``: an int as it is, else ``target.port``.

    Raises:
        InvalidArgument: ``target`` is neither a port number in 1..65535 nor something with a ``port``.
    """
    port = target if isinstance(target, int) else getattr(target, "port", None)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
        raise InvalidArgument(
            f"connect to what? expected a port number or an object with a .port (a GameServer, a LagProxy), "
            f"got {target!r}"
        )
    return port


def _is_subclass(value: object, base: type) -> bool:
    return isinstance(value, type) and issubclass(value, base)


def _ready(bot: GameBot) -> Callable[[], bool]:
    return lambda: bot.net.ready


def _connected(client: GameClient) -> Callable[[], bool]:
    return lambda: client.sprocket.connected


def _sprocket_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sprocket") and t.is_alive()}


class Harness:
    """Starts the pieces of a networked test and stops every one of them at :meth:`close`.

    Use it as a context manager, or let the pytest fixtures (``game_server``, ``game_bots``,
    ``game_clients``, ``lag_proxy``, ``networked_game``) drive one for you.  Nothing is started by the
    constructor.
    """

    def __init__(self, *, thread_exit_timeout: float = THREAD_EXIT_TIMEOUT) -> None:
        """An empty harness; it remembers which sprocket threads were already running.

        ``thread_exit_timeout`` is how long :meth:`close` waits for the threads started meanwhile to end.

        Raises:
            InvalidArgument: ``thread_exit_timeout`` is negative, not finite or not a number.
        """
        self._thread_exit_timeout = check_timeout(thread_exit_timeout)
        self._before = _sprocket_threads()
        self._games: list[NetworkedGame] = []
        self._clients: list[GameClient] = []
        self._bots: list[GameBot] = []
        self._proxies: list[LagProxy] = []
        self._servers: list[GameServer] = []
        self._closed = False

    # -- starting things --------------------------------------------------------------------------------

    def start_server(self, server_class: type[S], /, **options: Any) -> S:
        """Create ``server_class(host="127.0.0.1", port=0, **options)`` and run it in a background thread.

        ``options`` go to the class: ``tick_rate``, ``snapshot_rate``, ``rule``, and any Servo option
        (``timeout``, ``password``, ``app``...).  The server listens on a free port (``server.port``)
        and is stopped at :meth:`close`.

        Raises:
            InvalidArgument: ``server_class`` is not a GameServer subclass, or an option is bad.
            ConnectionFailed: the server cannot bind.
            ClosedError: the harness is closed.
        """
        from sprocket.game import GameServer

        self._check_open()
        if not (isinstance(server_class, type) and issubclass(server_class, GameServer)):
            raise InvalidArgument(f"start_server needs a GameServer subclass, got {server_class!r}")
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        server = server_class(**options)
        self._servers.append(server)
        server.start()
        return server

    def lag_proxy(
        self, target: Target, *, lag: float = 0.1, jitter: float = 0.0, seed: int | None = 0
    ) -> LagProxy:
        """Start a :class:`LagProxy` in front of ``target``; connect to its ``port`` to get a bad network.

        ``lag`` is the added round trip in seconds, ``jitter`` its variation (see :class:`LagProxy`);
        ``seed`` makes the jitter reproducible (default 0; None for a fresh one each run).  Closed at
        :meth:`close`.  Use ``proxy.stall(seconds)``, ``proxy.set(lag=...)`` and
        ``proxy.disconnect_all()`` to misbehave on demand.

        Raises:
            InvalidArgument: bad ``target``, ``lag`` or ``jitter``.
            ClosedError: the harness is closed.
        """
        self._check_open()
        proxy = LagProxy("127.0.0.1", port_of(target), lag=lag, jitter=jitter, seed=seed)
        self._proxies.append(proxy)
        proxy.start()
        return proxy

    def connect_bots(
        self,
        target: Target,
        bot_class: type[B] | None = None,
        count: int = 1,
        *,
        names: Sequence[str] | None = None,
        wait: bool = True,
        timeout: float = 10.0,
        **options: Any,
    ) -> list[B]:
        """Start ``count`` bots of ``bot_class`` (default: a plain GameBot) playing on ``target``.

        Each bot is ``bot_class("127.0.0.1", port, name=..., **options)`` run in its own thread; names
        are ``names`` or "bot 1", "bot 2"...  With ``wait`` (the default) this returns once every bot is
        in the game (connected and welcomed by the server), so the test can start asserting at once.
        Bots are stopped at :meth:`close`.

        Raises:
            InvalidArgument: a bad ``target``, ``count`` or ``names``, or not a GameBot subclass.
            WaitTimeout: ``wait`` and a bot was not in the game within ``timeout`` seconds.
            ClosedError: the harness is closed.
        """
        from sprocket.game import GameBot

        self._check_open()
        cls: Any = GameBot if bot_class is None else bot_class
        if not _is_subclass(cls, GameBot):
            raise InvalidArgument(f"connect_bots needs a GameBot subclass, got {bot_class!r}")
        labels = self._names(count, names, "bot")
        port = port_of(target)
        bots: list[B] = []
        for label in labels:
            bot = cls("127.0.0.1", port, name=label, **options)
            self._bots.append(bot)
            bots.append(bot)
            bot.start()
        if wait:
            for bot in bots:
                wait_until(_ready(bot), timeout, f"{bot.sprocket.name!r} to join the game")
        return bots

    def connect_clients(
        self,
        target: Target,
        count: int = 1,
        *,
        names: Sequence[str] | None = None,
        wait: bool = True,
        timeout: float = 10.0,
        rule: Callable[[Any, Any, float], Any] | None = None,
        interpolation_delay: float | None = None,
        **options: Any,
    ) -> list[GameClient]:
        """Connect ``count`` headless :class:`~sprocket.game.GameClient`\\ s to ``target``.

        The test drives each one itself: ``client.poll()`` once per frame, ``client.send_input(...)``,
        ``client.entities()``.  ``rule`` and ``interpolation_delay`` go to the GameClient, other
        ``options`` to its :class:`~sprocket.Sprocket`.  With ``wait`` this returns once every
        connection is up (the game's welcome is read by your first ``poll()``).  Closed at :meth:`close`.

        Raises:
            InvalidArgument: a bad ``target``, ``count`` or ``names``.
            WaitTimeout: ``wait`` and a client was not connected within ``timeout`` seconds.
            ClosedError: the harness is closed.
        """
        from sprocket.game import GameClient

        self._check_open()
        port = port_of(target)
        clients: list[GameClient] = []
        for label in self._names(count, names, "client"):
            connection = Sprocket("127.0.0.1", port, name=label, **options)
            client = GameClient(connection, rule=rule, interpolation_delay=interpolation_delay)
            self._clients.append(client)
            clients.append(client)
        if wait:
            for client in clients:
                wait_until(_connected(client), timeout, f"{client.sprocket.name!r} to connect")
        return clients

    def open_game(
        self, game_class: type[G], target: Target, *, wait: bool = True, timeout: float = 10.0, **options: Any
    ) -> G:
        """Open ``game_class("127.0.0.1", port, **options)`` under SDL's dummy drivers (:func:`dummy_sdl`).

        Nothing runs by itself: drive the game with ``game.step()`` or
        :func:`~sprocket.testing.step_until`.  With ``wait`` this steps frames until the game is
        connected and in the game (``game.connected``).  Closed at :meth:`close`.

        Raises:
            InvalidArgument: a bad ``target``, or not a NetworkedGame subclass.
            WaitTimeout: ``wait`` and the game was not in the game within ``timeout`` seconds.
            ClosedError: the harness is closed.
        """
        dummy_sdl()
        from sprocket.game import NetworkedGame

        self._check_open()
        if not (isinstance(game_class, type) and issubclass(game_class, NetworkedGame)):
            raise InvalidArgument(f"open_game needs a NetworkedGame subclass, got {game_class!r}")
        game = game_class("127.0.0.1", port_of(target), **options)
        self._games.append(game)
        if wait:
            step_until(game, lambda: game.connected, timeout, f"the {game_class.__name__} to join the game")
        return game

    # -- stopping ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything this harness started, then check that their threads are gone.

        Order: windows, clients, bots, proxies, servers.  Idempotent.  Every piece is closed even when
        closing another one raised.

        Raises:
            LeakedThreads: sprocket threads started since the harness was made still ran
                ``thread_exit_timeout`` seconds later.
            Whatever closing a piece raised first (after everything else was closed).
        """
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        steps: list[Callable[[], None]] = []
        steps += [game.close for game in reversed(self._games)]
        steps += [client.sprocket.close for client in reversed(self._clients)]
        steps += [bot.stop for bot in reversed(self._bots)]
        steps += [bot.sprocket.close for bot in reversed(self._bots)]
        steps += [proxy.close for proxy in reversed(self._proxies)]
        steps += [server.stop for server in reversed(self._servers)]
        steps += [server.close for server in reversed(self._servers)]
        for step in steps:
            try:
                step()
            except Exception as exc:  # close everything else before reporting
                errors.append(exc)
        if errors:
            raise errors[0]
        deadline = time.monotonic() + self._thread_exit_timeout
        while (left := _sprocket_threads() - self._before) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for threads to end, with a deadline
        if left:
            raise LeakedThreads(sorted(left, key=lambda t: t.name), self._thread_exit_timeout)

    def __enter__(self) -> Harness:
        """Return the harness."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """:meth:`close`; a test's own exception is not hidden by a failure to close."""
        try:
            self.close()
        except Exception:
            if exc is None:
                raise

    # -- internals --------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            from sprocket import ClosedError

            raise ClosedError("this Harness is closed")

    @staticmethod
    def _names(count: int, names: Sequence[str] | None, kind: str) -> list[str]:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgument(f"count must be an int >= 1, got {count!r}")
        if names is None:
            return [f"{kind} {i + 1}" for i in range(count)]
        labels = list(names)
        if len(labels) != count or not all(isinstance(n, str) for n in labels):
            raise InvalidArgument(f"names must be {count} strings, got {names!r}")
        return labels
