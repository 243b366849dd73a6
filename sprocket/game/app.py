"""``NetworkedGame``: the pygame frame loop a user subclasses.

Each frame: pygame events -> ``on_event``; everything received -> ``on_packet`` / ``on_connect`` /
``on_disconnect`` / ``on_player_join`` / ``on_player_leave``; fixed steps -> ``input()`` (sent and
predicted); ``update(dt)``; ``draw(screen)``; the F3 overlay; flip.  Importing this module registers pygame's
``Vector2``, ``Rect`` and ``Color`` with sprocket's codec, so they can be sent as they are.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # the library prints nothing
import pygame

import sprocket
from sprocket import DEFAULT_PORT, Sprocket
from sprocket.errors import InvalidArgument, SprocketError

from ._checks import InvalidType, check_callable, check_count, check_number, describe
from .client import CLIENT_HOOKS, RETIRED_CLIENT_HOOKS, ClientHooks, GameClient
from .clock import FixedStep
from .entity import Entity
from .hooks import check_hooks
from .lobby import Lobby
from .overlay import NetOverlay
from .prediction import Rule

log = logging.getLogger("sprocket")

__all__ = [
    "NetworkedGame",
    "NoDisplay",
    "check_display",
    "desktop_size",
    "register_pygame_types",
    "sound_available",
]

#: SDL's video drivers that show nothing on any screen: picked by SDL only when it finds no display.
HEADLESS_DRIVERS = ("offscreen", "dummy")


class NoDisplay(SprocketError, RuntimeError):
    """There is no display to open a window on (no X11 or Wayland session: ``DISPLAY`` and
    ``WAYLAND_DISPLAY`` are unset, or SDL found nothing but an off-screen driver).  The message says so
    and what to set.  To run without a screen on purpose (tests, CI), set ``SDL_VIDEODRIVER=dummy``."""


def check_display() -> None:
    """Raise :class:`NoDisplay` if a window opened now would be shown on no screen; else return.

    Without ``SDL_VIDEODRIVER`` set, SDL silently falls back to an off-screen driver when it finds no
    display, and a game would run invisibly.  On Linux and the BSDs, with neither ``DISPLAY`` nor
    ``WAYLAND_DISPLAY`` set, this raises before SDL is even asked (so SDL prints nothing); otherwise it
    initialises pygame's display module and raises if SDL picked an off-screen driver.  An explicit
    ``SDL_VIDEODRIVER`` (``dummy`` for tests, ``kmsdrm`` on a console) is always accepted.

    Raises:
        NoDisplay: no display found.
    """
    if os.environ.get("SDL_VIDEODRIVER"):
        return
    message = "no display found: set DISPLAY (or SDL_VIDEODRIVER=dummy to run without a screen on purpose)"
    unix = sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
    if unix and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplay(message)
    pygame.display.init()
    if pygame.display.get_driver() in HEADLESS_DRIVERS:
        raise NoDisplay(message)


def sound_available() -> bool:
    """Whether this machine can play sound, found out without asking SDL (which, with no sound card,
    makes ALSA print a screenful of errors on stderr).

    True when ``SDL_AUDIODRIVER`` is set (your choice stands), off Linux, or on Linux when a sound server
    (PulseAudio / PipeWire) is reachable or ``/proc/asound/cards`` lists a card.  Raises nothing.
    """
    if os.environ.get("SDL_AUDIODRIVER") or not sys.platform.startswith("linux"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.environ.get("PULSE_SERVER") or (
        runtime and any((Path(runtime) / name).exists() for name in ("pulse/native", "pipewire-0"))
    ):
        return True
    try:
        cards = Path("/proc/asound/cards").read_text()
    except OSError:
        return False
    return bool(cards.strip()) and "no soundcards" not in cards


def quiet_sound() -> None:
    """Before ``pygame.init()``: with no sound device, point SDL at its silent ``dummy`` audio driver, so
    that ``pygame.mixer`` works (sounds play to nowhere) and nothing is printed; one log line says so."""
    if not sound_available():
        os.environ["SDL_AUDIODRIVER"] = "dummy"
        log.info("no sound device found: playing without sound")


def desktop_size() -> tuple[int, int]:
    """The size of the first screen in pixels, or (1280, 800) when SDL cannot say (initialises pygame's
    display module; raises nothing)."""
    try:
        pygame.display.init()
        sizes = pygame.display.get_desktop_sizes()
    except pygame.error:
        return (1280, 800)
    if not sizes or sizes[0][0] <= 0 or sizes[0][1] <= 0:
        return (1280, 800)
    return (int(sizes[0][0]), int(sizes[0][1]))


HOOKS = {
    **CLIENT_HOOKS,
    "on_event": ("event",),
    "input": (),
    "update": ("dt",),
    "draw": ("screen",),
}


def register_pygame_types() -> None:
    """Make ``pygame.Vector2``, ``pygame.Rect`` and ``pygame.Color`` sendable (done on import)."""
    sprocket.register(
        pygame.Vector2,
        name="pygame.Vector2",
        to_dict=lambda v: [v.x, v.y],
        from_dict=lambda d: pygame.Vector2(d),
    )
    sprocket.register(
        pygame.Rect, name="pygame.Rect", to_dict=lambda r: list(r), from_dict=lambda d: pygame.Rect(d)
    )
    sprocket.register(
        pygame.Color, name="pygame.Color", to_dict=lambda c: list(c), from_dict=lambda d: pygame.Color(d)
    )


register_pygame_types()


class NetworkedGame(ClientHooks):
    """Subclass this, override the hooks you need, and call :meth:`run`.

    Hooks (documented no-ops).  When your class is defined, a hook with the wrong parameters, an unknown
    ``on_*`` method or a near-miss of a hook's name (``updte``, ``draww``, ``inputs``) raises
    :class:`~sprocket.game.HookError` naming it and the hook; declare a method of your own that trips
    the check with :func:`~sprocket.game.not_a_hook`.

    * ``on_event(event)`` — a pygame event (QUIT and F3 are handled for you first).
    * ``on_packet(packet)`` — a packet of yours from the server.
    * ``on_connect()`` / ``on_disconnect(reason)`` — the connection came up / went down.
    * ``on_player_join(player)`` / ``on_player_leave(player)`` — a :class:`PlayerJoined` /
      :class:`PlayerLeft` (the same hooks as :class:`~sprocket.game.GameBot`'s; see
      :class:`~sprocket.game.client.ClientHooks`).
    * ``on_drop(reason)`` / ``on_resume()`` — your connection dropped and is being got back by itself /
      it is back (same player, same entity, nothing lost); ``on_player_drop(player)`` /
      ``on_player_resume(player)`` — the same for another player (a :class:`PlayerDropped` /
      :class:`PlayerResumed`).
    * ``input()`` — return this fixed step's input (e.g. a dict of keys held) or None; it is sent to the
      server and, with a ``rule``, applied locally at once (prediction).  Called once per server tick
      while in the game (not while connecting).
    * ``update(dt)`` — per-frame logic (``dt`` in seconds).
    * ``draw(screen)`` — draw the frame; :attr:`entities` holds every entity as it should look now.

    Args:
        host, port: the server to join (ignored when ``sprocket`` is given).
        sprocket: an existing :class:`~sprocket.Sprocket` to use.
        name: your player name (sent to the server).
        rule: the game rule ``rule(state, input, dt) -> state`` shared with the server.
        size, title, fps: the window (two positive ints), its caption and the frame-rate cap (0: none);
            class attributes give the defaults.
        interpolation_delay: fixed interpolation delay in seconds (default: adaptive).
        window_size: the window's size on screen, two positive ints, if not ``size``: the game still draws
            at ``size`` (:attr:`screen`, and every coordinate you use, keep that size) and each frame is
            scaled to the window; mouse events' ``pos`` and ``rel`` are given in game coordinates.
        window_pos: where the window's top-left corner goes on the screen (default: where the window
            manager puts it; ``SDL_VIDEO_WINDOW_POS``, if set, wins).
        sprocket_options: further ``Sprocket`` arguments (``password``, ``app``, ``timeout``...).

    When the connection drops, the Sprocket reconnects by itself (``reconnect=True``, the default)
    within the server's grace period.  Meanwhile the game is frozen as it was at the drop
    (:attr:`entities` does not change, ``input()`` is not called), ``update`` and ``draw`` still run,
    and :meth:`draw_connection_status` draws "Reconnecting… (n s)" over it, ``n`` the whole seconds
    since the drop (:attr:`away_for`).  On the resume the game goes on with the same entity: its
    prediction carries on from the inputs the Sprocket replays, so nothing jumps.  If the server no
    longer held the session, the game starts again as a new player (see ``on_disconnect``).

    Class attributes ``max_entities`` (5000) and ``max_snapshot_bytes`` (64 MiB) cap what a server's
    snapshots may hold and what is kept of them (see :class:`~sprocket.game.GameClient`);
    ``predict_players`` (False) draws the other players' entities from the predicted present when the
    world is predicted, instead of interpolated (see :mod:`sprocket.game.rollback`).  Nothing a
    server sends raises in :meth:`step`: a malformed game message closes the connection, and the
    reason is drawn on screen (:meth:`draw_connection_status`) and passed to ``on_disconnect``.

    The window needs a display: with none (no ``DISPLAY``, and ``SDL_VIDEODRIVER`` not set) the
    constructor raises :class:`NoDisplay` rather than run invisibly (see :func:`check_display`).  With no
    sound device, pygame's mixer is started on SDL's silent driver, quietly (one log line).

    Raises:
        InvalidArgument: a bad ``size``, ``window_size``, ``window_pos``, ``fps``, ``title``, ``rule`` or
            ``interpolation_delay`` (checked before the window opens; ``InvalidType``, also a
            ``TypeError``, for a wrong type), or a bad Sprocket argument.
        NoDisplay: there is no display to open the window on.
    """

    title: str = "sprocket game"
    size: tuple[int, int] = (960, 640)
    fps: int = 60
    rule: Rule | None = None
    background: tuple[int, int, int] = (12, 14, 24)
    show_connection_status: bool = True
    max_entities: int = GameClient.max_entities
    max_snapshot_bytes: int = GameClient.max_snapshot_bytes
    predict_players: bool = GameClient.predict_players

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_hooks(cls, HOOKS, base="NetworkedGame", retired=RETIRED_CLIENT_HOOKS)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        sprocket: Sprocket | None = None,
        name: str | None = None,
        rule: Rule | None = None,
        size: tuple[int, int] | None = None,
        title: str | None = None,
        fps: int | None = None,
        interpolation_delay: float | None = None,
        window_size: tuple[int, int] | None = None,
        window_pos: tuple[int, int] | None = None,
        **sprocket_options: Any,
    ) -> None:
        if size is not None:
            self.size = size
        if title is not None:
            self.title = title
        if fps is not None:
            self.fps = fps
        if rule is not None:
            self.rule = rule
        if sprocket is not None and not isinstance(sprocket, Sprocket):
            raise InvalidType(f"sprocket must be a sprocket.Sprocket, got {describe(sprocket)}")
        self.size = _check_size(self.size)
        if not isinstance(self.title, str):
            raise InvalidType(f"title must be a str, got {describe(self.title)}")
        check_number(self.fps, "fps", minimum=0.0, what="a number of frames per second")
        check_callable(self.rule, "rule", optional=True)
        if interpolation_delay is not None:
            check_number(interpolation_delay, "interpolation_delay", minimum=0.0, what="a number of seconds")
        shown = self.size if window_size is None else _check_size(window_size, "window_size")
        if window_pos is not None:
            window_pos = _check_position(window_pos)
        check_display()
        quiet_sound()
        pygame.init()
        if window_pos is not None and not os.environ.get("SDL_VIDEO_WINDOW_POS"):
            os.environ["SDL_VIDEO_WINDOW_POS"] = f"{window_pos[0]},{window_pos[1]}"  # read by set_mode
        self._window: pygame.Surface | None = None  # the window, when it is scaled from the game's size
        if shown == self.size:
            self.screen = pygame.display.set_mode(self.size)
        else:
            self._window = pygame.display.set_mode(shown)
            self.screen = pygame.Surface(self.size).convert()
        pygame.display.set_caption(self.title)
        self.clock = pygame.time.Clock()
        self._connect_args = (name, sprocket_options, interpolation_delay)
        sprocket = sprocket if sprocket is not None else Sprocket(host, port, name=name, **sprocket_options)
        self.net = self._game_client(interpolation_delay, sprocket)
        self.overlay = NetOverlay()
        self.entities: dict[int, Entity] = {}
        self.frame = 0
        self.running = False
        self._fixed = FixedStep(rate=self.net.tick_rate)
        self._closed = False
        self._status_font: pygame.font.Font | None = None
        self._big_font: pygame.font.Font | None = None

    # -- hooks (on_packet, on_connect, on_disconnect, on_player_join, on_player_leave: ClientHooks) ----

    def on_event(self, event: pygame.event.Event) -> None:
        """A pygame event (after QUIT and F3 were handled)."""

    def on_disconnect(self, reason: str) -> None:
        """The connection is over; ``reason`` says why.  The loop keeps running so you can show it."""

    def input(self) -> Any:
        """Return this fixed step's input (sent and predicted), or None to send nothing."""
        return None

    def update(self, dt: float) -> None:
        """Per-frame game logic; ``dt`` is the frame time in seconds."""

    def draw(self, screen: pygame.Surface) -> None:
        """Draw the frame.  The default clears to :attr:`background`."""
        screen.fill(self.background)

    def draw_connection_status(self, screen: pygame.Surface) -> None:
        """While not in the game, draw a line at the bottom saying so ("connecting...", or why the
        connection failed or was closed — :attr:`GameClient.error <sprocket.game.GameClient.error>`,
        which includes a malformed message from the server); while reconnecting, "Reconnecting… (n s)"
        in the middle of the (frozen) game, ``n`` the whole seconds since the drop, with the reason below.
        Set ``show_connection_status = False`` to draw your own instead."""
        if self._status_font is None:
            self._status_font = pygame.font.Font(None, 24)
        if self.reconnecting:
            self._draw_reconnecting(screen)
            return
        s = self.sprocket
        error = self.net.error  # the Sprocket's reason, or why the game layer closed the connection
        lines = [f"connecting to {s.host}:{s.port}..."] if error is None else ["not connected:", error]
        width, height = screen.get_size()
        y = height - 8
        for text in reversed(lines):
            label = self._status_font.render(text, True, (255, 210, 120))
            if label.get_width() > width - 24:  # a long reason on a small window: shrink it to fit
                fit = (width - 24, max(1, label.get_height() * (width - 24) // label.get_width()))
                label = pygame.transform.smoothscale(label, fit)
            box = label.get_rect(midbottom=(width // 2, y)).inflate(16, 6)
            screen.fill((20, 20, 30), box)
            screen.blit(label, label.get_rect(center=box.center))
            y = box.top

    def _draw_reconnecting(self, screen: pygame.Surface) -> None:
        width, height = screen.get_size()
        veil = pygame.Surface((width, height), pygame.SRCALPHA)
        veil.fill((0, 0, 0, 140))
        screen.blit(veil, (0, 0))
        if self._big_font is None:
            self._big_font = pygame.font.Font(None, max(24, min(64, width // 12)))
        title = self._big_font.render(
            f"Reconnecting\u2026 ({int(self.away_for or 0.0)} s)", True, (255, 255, 255)
        )
        screen.blit(title, title.get_rect(center=(width // 2, height // 2 - 12)))
        reason = (self.sprocket.error or "").split("; reconnecting")[0]
        grace = self.sprocket.grace
        if grace is not None and (self.away_for or 0.0) > grace:
            reason += f" (past the server's {grace:g} s grace period: joining again as a new player)"
        assert self._status_font is not None
        label = self._status_font.render(reason, True, (200, 205, 220))
        if label.get_width() > width - 24:
            fit = (width - 24, max(1, label.get_height() * (width - 24) // label.get_width()))
            label = pygame.transform.smoothscale(label, fit)
        screen.blit(label, label.get_rect(center=(width // 2, height // 2 + 24)))

    # -- state ------------------------------------------------------------------------------------------

    @property
    def lobby(self) -> Lobby:
        """The lobby of a :class:`~sprocket.game.RoomServer` (``self.net.lobby``, as ``bot.lobby`` on a
        :class:`~sprocket.game.GameBot`): list, create, join and leave rooms; the answers come to
        ``on_room_joined`` / ``on_room_left`` / ``on_room_list`` / ``on_lobby_error``.  After
        :meth:`reconnect` it is the new connection's lobby (back in the lobby, out of any room).  Its
        requests raise ``ClosedError`` once the game is closed, ``InvalidArgument`` for a bad argument."""
        return self.net.lobby

    @property
    def me(self) -> int | None:
        """The id of the entity you control, or None."""
        return self.net.me

    @property
    def my_entity(self) -> Entity | None:
        """The entity you control (predicted), or None."""
        me = self.net.me
        return self.entities.get(me) if me is not None else None

    @property
    def connected(self) -> bool:
        """True while connected and in the game."""
        return self.net.ready

    @property
    def reconnecting(self) -> bool:
        """True while the connection is down and being got back (the game is frozen meanwhile)."""
        return self.net.reconnecting

    @property
    def away_for(self) -> float | None:
        """Seconds since the connection dropped, while :attr:`reconnecting` (else None)."""
        return self.net.away_for

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self, frames: int | None = None) -> None:
        """Run frames until the window closes or :meth:`quit` (or ``frames`` frames), then :meth:`close`.

        Afterwards the connection and the window are closed in every case (to look at the game between
        frames, call :meth:`step` yourself).  Ctrl-C ends it quietly.  Exceptions from your hooks
        propagate, after the close.  Raises ``InvalidArgument`` if ``frames`` is not an int >= 0.
        """
        if frames is not None:
            check_count(frames, "frames", minimum=0)
        self.running = True
        try:
            count = 0
            while self.running and (frames is None or count < frames):
                self.step()
                count += 1
        except KeyboardInterrupt:
            pass  # Ctrl-C in the terminal: close the window and the connection quietly
        finally:
            self.running = False
            self.close()

    def step(self, dt: float | None = None) -> None:
        """Run exactly one frame.  ``dt`` overrides the measured frame time (for tests).

        Raises ``InvalidArgument`` if ``dt`` is negative or not finite (``InvalidType`` if not a number).
        """
        if dt is not None:
            check_number(dt, "dt", minimum=0.0, what="a number of seconds")
        measured = self.clock.tick(self.fps) / 1000.0
        dt = measured if dt is None else dt
        for event in pygame.event.get():
            if self._window is not None and hasattr(event, "pos"):
                event = self._unscaled(event)
            if event.type == pygame.QUIT:
                self.quit()
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_F3:
                self.overlay.toggle()
            self.on_event(event)
        for item in self.net.poll():
            self._dispatch(item)
        if self._fixed.rate != self.net.tick_rate:
            self._fixed = FixedStep(rate=self.net.tick_rate)
        steps = self._fixed.advance(dt)
        if self.net.ready:  # input() is only asked for when it can be sent
            for _ in range(steps):
                value = self.input()
                if value is not None:
                    self.net.send_input(value)
        self.net.advance(dt)
        self.entities = self.net.entities()
        self.update(dt)
        self.draw(self.screen)
        if self.show_connection_status and not self.net.ready:
            self.draw_connection_status(self.screen)
        self.overlay.draw(self.screen, self.net, self.clock.get_fps())
        if self._window is not None:
            pygame.transform.smoothscale(self.screen, self._window.get_size(), self._window)
        pygame.display.flip()
        self.frame += 1

    def _unscaled(self, event: pygame.event.Event) -> pygame.event.Event:
        # A scaled window: mouse positions from window pixels to game pixels.
        assert self._window is not None
        fx = self.size[0] / self._window.get_width()
        fy = self.size[1] / self._window.get_height()
        attributes = dict(event.dict)
        x, y = attributes["pos"]
        attributes["pos"] = (int(x * fx), int(y * fy))
        if "rel" in attributes:
            rx, ry = attributes["rel"]
            attributes["rel"] = (int(rx * fx), int(ry * fy))
        return pygame.event.Event(event.type, attributes)

    def reconnect(self) -> None:
        """Close the current connection (if any) and join the same server again: always a **fresh join**,
        as a new player (a new Sprocket: a new client id, a new entity, the game state cleared).

        A dropped connection needs no call: the Sprocket reconnects by itself and *resumes* the session
        (the same id and entity, nothing lost) for as long as the server holds it (its grace period,
        30 s by default); if the server no longer does, it joins afresh by itself.  Call this when the
        connection is over for good: the grace period ran out, the server restarted, the server closed
        it, or ``reconnect=False`` was given."""
        name, options, delay = self._connect_args
        old = self.sprocket
        old.close()
        self.net = self._game_client(delay, Sprocket(old.host, old.port, name=name or old.name, **options))
        self.entities = {}

    @property
    def sprocket(self) -> Sprocket:
        """The connection (``self.net.sprocket``; a cluster's lobby may move it to another node)."""
        return self.net.sprocket

    def _game_client(self, delay: float | None, sprocket: Sprocket) -> GameClient:
        client = GameClient(
            sprocket,
            rule=self.rule,
            interpolation_delay=delay,
            max_entities=self.max_entities,
            max_snapshot_bytes=self.max_snapshot_bytes,
        )
        client.predict_players = self.predict_players
        return client

    def quit(self) -> None:
        """Stop :meth:`run` after the current frame."""
        self.running = False

    def close(self) -> None:
        """Close the connection (saying goodbye) and the window.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.sprocket.close()
        pygame.display.quit()


def _check_size(size: object, what: str = "size") -> tuple[int, int]:
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise InvalidType(f"{what} must be (width, height), got {describe(size)}")
    width, height = size
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidType(f"{what} must be two ints (width, height); the {name} is {describe(value)}")
        if value <= 0:
            raise InvalidArgument(f"{what} must be two ints > 0 (width, height), got {size!r}")
    return (width, height)


def _check_position(pos: object) -> tuple[int, int]:
    if not (isinstance(pos, (tuple, list)) and len(pos) == 2):
        raise InvalidType(f"window_pos must be (x, y), got {describe(pos)}")
    for name, value in zip(("x", "y"), pos, strict=True):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidType(f"window_pos must be two ints (x, y); the {name} is {describe(value)}")
    return (pos[0], pos[1])
