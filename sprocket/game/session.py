"""One command for a local multiplayer session: a headless server, N game windows and M bots.

    sprocket session --windows 2 --bots 1 --lag 120 --jitter 20       # the bundled demo
    python -m sprocket.game.session yourgame --windows 2              # any game module

Works with any game module that defines ``Server`` (a GameServer subclass), ``Game`` (a NetworkedGame
subclass) and, for ``--bots``, ``Bot`` (a GameBot subclass).  Every part runs in its own process, as it
would on separate machines; with ``--lag``/``--jitter`` each client talks through its own
:class:`~sprocket.testing.LagProxy`.  Windows are placed side by side.  Closing every window (or Ctrl-C)
ends the session and stops everything it started.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from sprocket.testing.lag import LagProxy

from .serve import port_arg

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode} before it was ready")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port with a deadline
    raise SystemExit(f"the server did not start listening on port {port} within {timeout:g} s")


def _role(args: argparse.Namespace) -> int:
    # Runs inside a child process: one window or one bot.
    module = importlib.import_module(args.game)
    try:
        if args.role == "window":
            module.Game("127.0.0.1", args.port, name=args.name).run()
        else:
            module.Bot("127.0.0.1", args.port, name=args.name).run()
    except KeyboardInterrupt:
        pass  # the session is ending; run() has closed the connection on its way out
    return 0


def main(argv: Sequence[str] | None = None, prog: str | None = None, default_game: str | None = None) -> int:
    """Parse the command line and run the session (or, with the hidden ``--role``, one part of it).

    ``prog`` is the command's name in help and errors; with ``default_game`` (a module name) the game
    argument may be left out.  Returns the exit status; SystemExit for bad arguments or a game module
    that lacks ``Server``/``Game``/``Bot``.
    """
    parser = argparse.ArgumentParser(
        prog=prog or "python -m sprocket.game.session",
        description="Start a headless server plus game windows and bots on this machine, ready to play.",
    )
    if default_game is None:
        parser.add_argument("game", help="the game module, e.g. demos.hockey (defines Server, Game, Bot)")
    else:
        parser.add_argument(
            "game",
            nargs="?",
            default=default_game,
            help=f"the game module, which defines Server, Game and Bot (default: {default_game})",
        )
    parser.add_argument("--windows", type=int, default=2, help="game windows to open (default 2)")
    parser.add_argument("--bots", type=int, default=0, help="headless bots to add (default 0)")
    parser.add_argument(
        "--lag", type=float, default=0.0, metavar="MS", help="round-trip lag for every client"
    )
    parser.add_argument("--jitter", type=float, default=0.0, metavar="MS", help="lag variation (+- MS)")
    parser.add_argument("--port", type=port_arg, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--duration", type=float, default=None, help="end the session after this many seconds"
    )
    parser.add_argument("--role", choices=["window", "bot"], help=argparse.SUPPRESS)
    parser.add_argument("--name", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return _role(args)

    module = importlib.import_module(args.game)
    for needed in ("Server", "Game") + (("Bot",) if args.bots else ()):
        if not hasattr(module, needed):
            raise SystemExit(f"{args.game} has no {needed!r}: define Server, Game and Bot in it")
    port = args.port or _free_port()
    python = sys.executable
    children: list[subprocess.Popen[bytes]] = []
    proxies: list[LagProxy] = []
    server = subprocess.Popen(
        [python, "-m", "sprocket.game.serve", f"{args.game}:{module.Server.__name__}",
         "--host", "127.0.0.1", "--port", str(port)],
    )  # fmt: skip
    children.append(server)
    try:
        _wait_for_port(port, server)

        def client_port() -> int:
            if not (args.lag or args.jitter):
                return port
            proxy = LagProxy("127.0.0.1", port, lag=args.lag / 1000, jitter=args.jitter / 1000).start()
            proxies.append(proxy)
            return proxy.port

        windows = []
        for i in range(args.windows):
            env = dict(os.environ, SDL_VIDEO_WINDOW_POS=f"{40 + i * 980},{60 + (i // 2) * 40}")
            cmd = [python, "-m", "sprocket.game.session", args.game, "--role", "window",
                   "--port", str(client_port()), "--name", f"Player {i + 1}"]  # fmt: skip
            windows.append(subprocess.Popen(cmd, env=env))
        if args.bots and windows:
            time.sleep(2.0)  # let the windows take their seats first: people before bots
        for i in range(args.bots):
            cmd = [python, "-m", "sprocket.game.session", args.game, "--role", "bot",
                   "--port", str(client_port()), "--name", f"Bot {i + 1}"]  # fmt: skip
            children.append(subprocess.Popen(cmd))
        children.extend(windows)
        lag = f" through {args.lag:g} ms +- {args.jitter:g} ms of lag" if args.lag or args.jitter else ""
        print(f"session: server on 127.0.0.1:{port}, {args.windows} window(s), {args.bots} bot(s){lag}. "
              "Close the windows or press Ctrl-C to end.", flush=True)  # fmt: skip
        end = time.monotonic() + args.duration if args.duration is not None else float("inf")
        while time.monotonic() < end:
            if windows and all(w.poll() is not None for w in windows):
                break
            if server.poll() is not None:
                print("session: the server stopped", file=sys.stderr)
                break
            time.sleep(0.2)  # supervising child processes
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)  # lets servers say goodbye and windows close cleanly
        for child in children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
        for proxy in proxies:
            proxy.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
