"""Play Sprocket Hockey: ``sprocket play`` (installed), ``./play`` or ``python -m demos.hockey`` (a clone).

sprocket play                      # the menu: quick match, find a game on the LAN, host, join with a code
sprocket play --quick              # you against a bot, server in this process (the menu's first item)
sprocket play --host               # host hockey rooms, play in the first, wait for a friend
sprocket play --join 192.168.1.5   # join a friend's game (quick-join a room on a rooms server)
sprocket play --join HOST --code ABCDE   # join the room with this code
sprocket play --bot --join HOST    # a headless bot joins HOST
sprocket play --server             # only the headless server: many two-player hockey rooms at once
sprocket play --host --no-announce # host without announcing the game on the LAN
sprocket play --lag 150 --jitter 30   # play through a simulated bad network
sprocket play --frames 120         # run 120 frames and exit (with SDL's dummy drivers: a smoke test)

Exit status: 0 when you quit; 1 when the game could not start or its connection failed (the reason is
printed); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from sprocket import DEFAULT_PORT, ConnectionFailed, Servo, SprocketError
from sprocket.game import Announcer, LobbyRefused, PlayerJoined, RoomInfo, RoomServer
from sprocket.game.rooms import CODE_LENGTH, normalize_code
from sprocket.game.serve import add_announce_arguments, address_arg, count_arg, milliseconds_arg, port_arg
from sprocket.testing import LagProxy

from .bot import HockeyBot, plain_reason
from .rooms import RoomPlan, hockey_rooms, rooms_status
from .server import HockeyServer


def join_arg(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` for ``--join``: (host, port), the port defaulting to 7777; a usage error otherwise."""
    host, colon, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise argparse.ArgumentTypeError(f"give a host to join, as HOST or HOST:PORT, not {text!r}")
    return host, port_arg(port_text) if colon else DEFAULT_PORT


def code_arg(text: str) -> str:
    """A room's join code for ``--code``, as typed (any case; spaces and dashes ignored): its canonical
    form; a usage error otherwise."""
    code = normalize_code(text)
    if code is None:
        raise argparse.ArgumentTypeError(f"a join code is {CODE_LENGTH} letters (no I, L or O), not {text!r}")
    return code


def parse(argv: Sequence[str] | None, prog: str | None = None) -> argparse.Namespace:
    """Parse the demo's command line (``prog`` is the name shown in help: ``./play``, ``sprocket play``)."""
    parser = argparse.ArgumentParser(
        prog=prog or "./play",
        description="Sprocket Hockey: two-player air hockey over the network. With no options, a menu "
        "opens: a quick match against a bot (the server in this process), games found on the local "
        "network, hosting, or joining with a code. Any of the options below skips the menu.",
    )
    parser.epilog = (
        "Exit status: 0 when you quit, 1 when the game cannot start or its connection fails, "
        "2 for bad arguments."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--host",
        action="store_true",
        help="host hockey rooms, play in the first and wait for a second player",
    )
    mode.add_argument("--join", metavar="HOST[:PORT]", type=join_arg, help="join the game hosted at HOST")
    mode.add_argument(
        "--server", action="store_true", help="run only the headless server: many two-player hockey rooms"
    )
    mode.add_argument(
        "--quick", action="store_true", help="skip the menu: play against a bot (the menu's Quick match)"
    )
    parser.add_argument(
        "--code", type=code_arg, default=None, help="with --join: join the room with this 5-letter code"
    )
    parser.add_argument(
        "--bind",
        type=address_arg,
        default="0.0.0.0",
        metavar="ADDR",
        help="with --host / --server: the address to listen on (default 0.0.0.0, every interface)",
    )
    parser.add_argument(
        "--bot", action="store_true", help="a headless bot plays instead of you (with --join or --host)"
    )
    parser.add_argument(
        "--port", type=port_arg, default=DEFAULT_PORT, help=f"port to host on (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--name", default=None, help="your player name (default: You; Host with --host, Guest with --join)"
    )
    parser.add_argument(
        "--lag", type=milliseconds_arg, default=0.0, metavar="MS", help="add this much round-trip lag (ms)"
    )
    parser.add_argument(
        "--jitter", type=milliseconds_arg, default=0.0, metavar="MS", help="vary the lag by +- MS (ms)"
    )
    parser.add_argument(
        "--frames", type=count_arg, default=None, metavar="N", help="run N frames, then exit (smoke tests)"
    )
    # --host and --server announce the game on the LAN (opt out with --no-announce).
    add_announce_arguments(parser, default=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="log network events")
    args = parser.parse_args(argv)
    if args.bot and args.server:
        parser.error("--bot and --server do not go together: the server has no player of its own")
    if args.bot and not (args.join or args.host):
        parser.error("--bot plays in a game: give --join HOST (or --host to host one for it)")
    if args.code and not args.join:
        parser.error("--code names a room on a server: give --join HOST too")
    return args


def wants_menu(args: argparse.Namespace) -> bool:
    """True when the command line chose nothing: no mode, no bot, no lag, no frame count (then the menu
    opens; any of those flags skips it, as before the menu existed)."""
    return not (args.host or args.join or args.server or args.bot or args.quick or args.frames is not None
                or args.lag or args.jitter)  # fmt: skip


def default_name(args: argparse.Namespace) -> str:
    """The player name when ``--name`` is not given: distinct for the two ends of a --host / --join game."""
    if args.name:
        return str(args.name)
    if args.bot:
        return "Robo"
    return "Host" if args.host else "Guest" if args.join else "You"


class ReportingBot(HockeyBot):
    """``--bot``: a HockeyBot that tells the terminal what happens to its connection (this is a command;
    the bot class itself prints nothing)."""

    def __init__(self, *args: Any, where: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.where = where

    def on_player_join(self, player: PlayerJoined) -> None:
        if player.id == self.net.id:
            say(f"{self.sprocket.name} joined the game at {self.where}")

    def on_drop(self, reason: str) -> None:
        grace = self.sprocket.grace
        within = f" for up to {grace:g} s" if grace else ""
        say(f"lost the connection to {self.where} ({reason}); reconnecting{within}...")

    def on_resume(self) -> None:
        say(f"reconnected to {self.where}: playing on")

    def on_room_joined(self, room: RoomInfo) -> None:
        say(f"{self.sprocket.name} is in room {room.code} at {self.where}")

    def on_lobby_error(self, refusal: LobbyRefused) -> None:
        super().on_lobby_error(refusal)
        say(f"could not join a room at {self.where}: {self.plan.failure}", error=True)
        self.stop()


def say(text: str, error: bool = False) -> None:
    """One line for the person at the terminal (stdout; stderr for ``error``)."""
    print(text, file=sys.stderr if error else sys.stdout, flush=True)


def window_position(args: argparse.Namespace, size: tuple[int, int]) -> tuple[int, int] | None:
    """Where the window goes: --host on the left of the screen, --join on the right (so that two windows
    on one machine do not open at the same spot); None (the window manager's choice) otherwise."""
    if not (args.host or args.join):
        return None
    from sprocket.game.app import desktop_size

    width, height = desktop_size()
    x = 0 if args.host else max(0, width - size[0])
    return (x, max(0, min(40, height - size[1])))


def run_bot(host: str, port: int, name: str, where: str, plan: RoomPlan | None = None) -> int:
    """``--bot``: play until Ctrl-C (status 0), or until the connection fails for good or the room cannot
    be joined (status 1)."""
    bot = ReportingBot(host, port, name=name, where=where, plan=plan)
    try:
        bot.run()
    except ConnectionFailed as exc:
        say(f"could not connect to {where}: {plain_reason(str(exc))}", error=True)
        return 1
    except KeyboardInterrupt:
        return 0
    if bot.stopped_reason not in (None, "stopped"):
        say(f"the bot stopped: {bot.stopped_reason}", error=True)
        return 1
    return 1 if bot.plan.failure else 0


def lan_address() -> str:
    """This machine's address on the local network (best effort; no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET address: connect() on UDP only picks a route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def announce(args: argparse.Namespace, server: RoomServer, name: str | None = None) -> Announcer | None:
    """Announce a ``--host`` / ``--server`` rooms server on the LAN unless ``--no-announce`` (None then,
    or when it cannot: the game is still hosted, and the reason printed).  ``name``: the host's player
    name, for the default server name ("Ada on mybox")."""
    if not args.announce:
        return None
    server_name = args.server_name
    if server_name is None:
        server_name = f"{name} on {socket.gethostname()}" if name else socket.gethostname()
    try:
        # Sent from the address the server listens on, when it is a specific one: lists show that address.
        bind = None if args.bind == "0.0.0.0" else args.bind
        return Announcer(rooms_status(server), name=server_name[:64], address=args.broadcast,
                         discovery_port=args.discovery_port, bind=bind).start()  # fmt: skip
    except SprocketError as exc:
        say(f"not announced on the LAN: {exc}", error=True)
        return None


def shown_address(args: argparse.Namespace) -> str:
    """The address others reach a hosted game at: the LAN address when listening everywhere."""
    return lan_address() if args.bind == "0.0.0.0" else str(args.bind)


def serve_rooms(args: argparse.Namespace) -> int:
    """``--server``: hockey rooms until Ctrl-C (status 0); 1 when the port cannot be bound."""
    try:
        server = hockey_rooms(args.bind, args.port)
    except ConnectionFailed as exc:
        say(f"Cannot host: {exc}", error=True)
        return 1
    announcer = None
    try:
        announcer = announce(args, server)  # inside: Ctrl-C while it starts is a clean stop too
        print(f"Sprocket Hockey server on {shown_address(args)}:{server.port}: two-player hockey rooms, "
              "as many as players open (Ctrl-C to stop)", flush=True)  # fmt: skip
        server.run()  # Ctrl-C ends it cleanly (it closes the server)
    except KeyboardInterrupt:
        server.close()
    finally:
        if announcer is not None:
            announcer.close()  # a goodbye: LAN lists drop this server at once
    return 0


def play(
    args: argparse.Namespace,
    mode: str,
    name: str,
    prog: str,
    *,
    target: tuple[str, int] | None = None,
    plan: RoomPlan | None = None,
    keep_window: bool = False,
) -> tuple[int, str | None]:
    """Play one game: ``mode`` is ``"quick"`` (a HockeyServer in this process and a bot), ``"host"``
    (hockey rooms hosted here and announced, playing in the first) or ``"join"`` (``target``, following
    ``plan``).  Returns (exit status, why it failed or None); a ``--bot`` prints its own story."""
    lag, jitter = args.lag / 1000, args.jitter / 1000
    server: HockeyServer | RoomServer | None = None
    announcer = None
    proxy = None
    join_hint = ""
    if mode == "join":
        assert target is not None
        host, port = target
    elif mode == "host":
        # Rooms, so that the friend who joins (or finds the game on the LAN) plays with you, and a third
        # and fourth play their own match instead of watching.
        try:
            server = hockey_rooms(args.bind, args.port).start()
        except ConnectionFailed as exc:
            return 1, f"Cannot host: {exc}"
        host, port = ("127.0.0.1" if args.bind == "0.0.0.0" else args.bind), server.port
        address = shown_address(args) + (f":{server.port}" if server.port != DEFAULT_PORT else "")
        join_hint = f"A friend finds this game in Find a game, or joins with:  {prog} --join {address}"
        print(f"Hosting on {address}. A friend joins with:  {prog} --join {address}", flush=True)
        announcer = announce(args, server, name)
    else:
        # A private match on a free port of this machine: nobody else can join it.
        try:
            match = HockeyServer(Servo("127.0.0.1", 0))
        except ConnectionFailed as exc:
            return 1, f"Cannot host: {exc}"
        server = match
        match.start()
        host, port = "127.0.0.1", match.port
    where = f"{host}:{port}"
    if lag or jitter:
        proxy = LagProxy(host, port, lag=lag, jitter=jitter).start()
        host, port = "127.0.0.1", proxy.port
    bot = None
    try:
        if args.bot:
            return run_bot(host, port, name, where, plan), None
        from .game import HockeyGame
        from .rules import HEIGHT, WIDTH

        # The handshake takes two round trips: through a lot of simulated lag, give it the time it needs.
        connect_timeout = 5.0 + 4 * (lag + jitter)
        game = HockeyGame(host, port, name=name, where=where, join_hint=join_hint, plan=plan,
                          keep_window=keep_window, window_pos=window_position(args, (WIDTH, HEIGHT)),
                          connect_timeout=connect_timeout)  # fmt: skip
        if mode == "quick":
            # A bot joins over the real network (through loopback) as your opponent, once you are in (so
            # you play blue, on the left).
            try:
                game.sprocket.wait_connected()
            except SprocketError as exc:
                game.close()
                return 1, f"could not connect: {exc}"
            bot = HockeyBot("127.0.0.1", server.port).start()  # type: ignore[union-attr]
        game.run(frames=args.frames)
        game.close()
        failure = game.failure
        return (1 if failure else 0), failure
    finally:
        if bot is not None:
            bot.stop()
        if proxy is not None:
            proxy.close()
        if announcer is not None:
            announcer.close()
        if isinstance(server, HockeyServer):
            server.stop()
        elif server is not None:
            server.close()


def run_menu(args: argparse.Namespace, prog: str) -> int:
    """The menu, then the game chosen, then the menu again (showing why a game failed) until Quit."""
    import pygame

    from .menu import MenuModel
    from .menu_screen import MenuScreen, browse_bind

    model = MenuModel(name=args.name or "You")
    screen = MenuScreen(model, discovery_port=args.discovery_port, bind=browse_bind(args.broadcast))
    try:
        while True:
            choice = screen.run()
            if choice.action == "quit":
                return 0
            target = (choice.host, choice.port) if choice.action == "join" else None
            _, failure = play(args, choice.action, choice.name, prog, target=target, plan=choice.plan,
                              keep_window=True)  # fmt: skip
            model.error = failure
    except KeyboardInterrupt:
        return 0
    finally:
        screen.close()
        pygame.display.quit()


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the demo as the command line says; return the exit status (1 when it cannot host)."""
    args = parse(argv, prog)
    prog = prog or "./play"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not (args.server or args.bot):
        from sprocket.game.app import NoDisplay, check_display

        try:
            check_display()  # before anything starts: a window with no screen would run invisibly
        except NoDisplay:
            say(f"{prog}: no display found: set DISPLAY, or use --server / --bot to run headless", error=True)
            return 1
    if args.server:
        return serve_rooms(args)
    if wants_menu(args):
        return run_menu(args, prog)
    mode = "host" if args.host else "join" if args.join else "quick"
    plan = RoomPlan("join", code=args.code) if args.code else None
    status, failure = play(args, mode, default_name(args), prog, target=args.join, plan=plan)
    if failure:
        say(f"{prog}: {failure}", error=True)
    return status


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(0) from None
