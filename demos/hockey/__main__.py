"""Play Sprocket Hockey: ``sprocket play`` (installed), ``./play`` or ``python -m demos.hockey`` (a clone).

sprocket play                      # you against a bot, server in this process (default)
sprocket play --host               # host a game and wait for a friend
sprocket play --join 192.168.1.5   # join a friend's game
sprocket play --bot --join HOST    # a headless bot joins HOST
sprocket play --server             # only the headless server
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
from sprocket.game import Announcer, PlayerJoined
from sprocket.game.serve import add_announce_arguments, count_arg, milliseconds_arg, port_arg, start_announcer
from sprocket.testing import LagProxy

from .bot import HockeyBot, plain_reason
from .server import HockeyServer


def join_arg(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` for ``--join``: (host, port), the port defaulting to 7777; a usage error otherwise."""
    host, colon, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise argparse.ArgumentTypeError(f"give a host to join, as HOST or HOST:PORT, not {text!r}")
    return host, port_arg(port_text) if colon else DEFAULT_PORT


def parse(argv: Sequence[str] | None, prog: str | None = None) -> argparse.Namespace:
    """Parse the demo's command line (``prog`` is the name shown in help: ``./play``, ``sprocket play``)."""
    parser = argparse.ArgumentParser(
        prog=prog or "./play",
        description="Sprocket Hockey: two-player air hockey over the network. With no options, "
        "you play against a bot, with the server in this process.",
    )
    parser.epilog = "Exit status: 0 when you quit, 1 when the game cannot start or its connection fails."
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--host", action="store_true", help="host a game and wait for a second player")
    mode.add_argument("--join", metavar="HOST[:PORT]", type=join_arg, help="join the game hosted at HOST")
    mode.add_argument("--server", action="store_true", help="run only the headless server")
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
    return args


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


def run_bot(host: str, port: int, name: str, where: str) -> int:
    """``--bot``: play until Ctrl-C (status 0) or until the connection fails for good (status 1)."""
    bot = ReportingBot(host, port, name=name, where=where)
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
    return 0


def lan_address() -> str:
    """This machine's address on the local network (best effort; no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET address: connect() on UDP only picks a route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def announce(args: argparse.Namespace, server: HockeyServer) -> Announcer | None:
    """Announce a ``--host`` / ``--server`` game on the LAN unless ``--no-announce`` (None then, or when
    it cannot: the game is still hosted, and the reason printed)."""
    if args.server_name is None and args.host:
        args.server_name = f"{default_name(args)} on {socket.gethostname()}"[:64]
    try:
        return start_announcer(args, server)
    except SprocketError as exc:
        say(f"not announced on the LAN: {exc}", error=True)
        return None


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the demo as the command line says; return the exit status (1 when it cannot host)."""
    args = parse(argv, prog)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    lag, jitter = args.lag / 1000, args.jitter / 1000
    if not (args.server or args.bot):
        from sprocket.game.app import NoDisplay, check_display

        try:
            check_display()  # before anything starts: a window with no screen would run invisibly
        except NoDisplay:
            say(f"{prog or './play'}: no display found: set DISPLAY, or use --server / --bot to run headless",
                error=True)  # fmt: skip
            return 1

    if args.server:
        server = HockeyServer(host="0.0.0.0", port=args.port)
        announcer = None
        try:
            announcer = announce(args, server)  # inside: Ctrl-C while it starts is a clean stop too
            print(f"Sprocket Hockey server on {lan_address()}:{server.port} (Ctrl-C to stop)", flush=True)
            server.run()
        except KeyboardInterrupt:
            server.close()
        finally:
            if announcer is not None:
                announcer.close()  # a goodbye: LAN lists drop this server at once
        return 0

    server = None
    announcer = None
    proxy = None
    join_hint = ""
    if args.join:
        host, port = args.join
    else:
        # Host in this process: on the network with --host, privately on a free port otherwise.
        bind = "0.0.0.0" if args.host else "127.0.0.1"
        try:
            server = HockeyServer(Servo(bind, args.port if args.host else 0)).start()
        except ConnectionFailed as exc:
            print(f"Cannot host: {exc}", file=sys.stderr)
            return 1
        host, port = "127.0.0.1", server.port
        if args.host:
            join_hint = f"A friend joins with:  {prog or './play'} --join {lan_address()}" + (
                f":{server.port}" if server.port != DEFAULT_PORT else ""
            )
            print(f"Hosting on {lan_address()}:{server.port}. {join_hint}", flush=True)
            announcer = announce(args, server)
    where = f"{host}:{port}"
    if lag or jitter:
        proxy = LagProxy(host, port, lag=lag, jitter=jitter).start()
        host, port = "127.0.0.1", proxy.port
    bot = None
    try:
        if args.bot:
            return run_bot(host, port, default_name(args), where)
        from .game import HockeyGame
        from .rules import HEIGHT, WIDTH

        # The handshake takes two round trips: through a lot of simulated lag, give it the time it needs.
        connect_timeout = 5.0 + 4 * (lag + jitter)
        game = HockeyGame(host, port, name=default_name(args), where=where, join_hint=join_hint,
                          window_pos=window_position(args, (WIDTH, HEIGHT)),
                          connect_timeout=connect_timeout)  # fmt: skip
        if server is not None and not args.host:
            # The default mode: a bot joins over the real network (through loopback) as your opponent,
            # once you are in (so you play blue, on the left).
            try:
                game.sprocket.wait_connected()
            except SprocketError as exc:
                game.close()
                say(f"{prog or './play'}: could not connect: {exc}", error=True)
                return 1
            bot = HockeyBot("127.0.0.1", server.port).start()
        game.run(frames=args.frames)
        game.close()
        failure = game.failure
        if failure:
            say(f"{prog or './play'}: {failure}", error=True)
            return 1
    finally:
        if bot is not None:
            bot.stop()
        if proxy is not None:
            proxy.close()
        if announcer is not None:
            announcer.close()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(0) from None
