"""Play Sprocket Hockey: ``sprocket play`` (installed), ``./play`` or ``python -m demos.hockey`` (a clone).

sprocket play                      # you against a bot, server in this process (default)
sprocket play --host               # host a game and wait for a friend
sprocket play --join 192.168.1.5   # join a friend's game
sprocket play --bot --join HOST    # a headless bot joins HOST
sprocket play --server             # only the headless server
sprocket play --lag 150 --jitter 30   # play through a simulated bad network
sprocket play --frames 120         # run 120 frames and exit (with SDL's dummy drivers: a smoke test)
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from sprocket import DEFAULT_PORT, ConnectionFailed, Servo
from sprocket.game.serve import port_arg
from sprocket.testing import LagProxy

from .bot import HockeyBot
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
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--host", action="store_true", help="host a game and wait for a second player")
    mode.add_argument("--join", metavar="HOST[:PORT]", type=join_arg, help="join the game hosted at HOST")
    mode.add_argument("--server", action="store_true", help="run only the headless server")
    parser.add_argument("--bot", action="store_true", help="run a headless bot instead of a window")
    parser.add_argument(
        "--port", type=port_arg, default=DEFAULT_PORT, help=f"port to host on (default {DEFAULT_PORT})"
    )
    parser.add_argument("--name", default=None, help="your player name")
    parser.add_argument("--lag", type=float, default=0.0, metavar="MS", help="add this much round-trip lag")
    parser.add_argument("--jitter", type=float, default=0.0, metavar="MS", help="vary the lag by +- MS")
    parser.add_argument(
        "--frames", type=int, default=None, metavar="N", help="run N frames, then exit (for smoke tests)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log network events")
    return parser.parse_args(argv)


def lan_address() -> str:
    """This machine's address on the local network (best effort; no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET address: connect() on UDP only picks a route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the demo as the command line says; return the exit status (1 when it cannot host)."""
    args = parse(argv, prog)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    lag, jitter = args.lag / 1000, args.jitter / 1000

    if args.server:
        server = HockeyServer(host="0.0.0.0", port=args.port)
        print(f"Sprocket Hockey server on {lan_address()}:{server.port} (Ctrl-C to stop)", flush=True)
        try:
            server.run()
        except KeyboardInterrupt:
            server.close()
        return 0

    server = None
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
    where = f"{host}:{port}"
    if lag or jitter:
        proxy = LagProxy(host, port, lag=lag, jitter=jitter).start()
        host, port = "127.0.0.1", proxy.port
    bot = None
    try:
        if args.bot:
            HockeyBot(host, port, name=args.name or "Robo").run()
            return 0
        from .game import HockeyGame

        game = HockeyGame(host, port, name=args.name or "You", where=where, join_hint=join_hint)
        if server is not None and not args.host:
            # The default mode: a bot joins over the real network (through loopback) as your opponent,
            # once you are in (so you play blue, on the left).
            game.sprocket.wait_connected()
            bot = HockeyBot("127.0.0.1", server.port).start()
        game.run(frames=args.frames)
        game.close()
    finally:
        if bot is not None:
            bot.stop()
        if proxy is not None:
            proxy.close()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(0) from None
