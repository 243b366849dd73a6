"""One command for a local multiplayer session: a headless server, N game windows and M bots.

    sprocket session --windows 2 --bots 1 --lag 120 --jitter 20       # the bundled demo
    sprocket session --rooms 6                                        # 6 matches at once, on one server
    python -m sprocket.game.session yourgame --windows 2              # any game module

Works with any game module that defines ``Server`` (a GameServer subclass), ``Game`` (a NetworkedGame
subclass) and, for ``--bots``, ``Bot`` (a GameBot subclass).  Every part runs in its own process, as it
would on separate machines; with ``--lag``/``--jitter`` each client talks through its own
:class:`~sprocket.testing.LagProxy`.  Windows are placed side by side across the screen, scaled down
when they would not fit (two 960-pixel windows on a 1280-pixel screen are shown at 620 pixels each);
they join one after the other, so "Player 1" (the leftmost window) is the first player the server seats.
Bots join after the windows.  Closing every window (or Ctrl-C) ends the session and stops everything it
started.

``--rooms N`` runs a :class:`~sprocket.game.RoomServer` instead, with the module's ``Server`` as its one
room type (named ``ROOM_TYPE``, default ``"game"``, with ``ROOM_SEATS`` seats, default 2, and the Servo's
``app`` from ``APP`` if the module defines them), and fills N rooms: the windows quick-join first (so they
play in the first room), then bots quick-join every seat left, all of them in one process (threads) to keep
the machine free for the server.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sprocket.errors import InvalidArgument
from sprocket.testing.lag import LagProxy

from .rooms import RoomServer, RoomType
from .serve import count_arg, milliseconds_arg, port_arg, seconds_arg

__all__ = ["main", "tile"]

GAP = 8  # pixels between two windows, and from the screen's edges
TOP = 40  # pixels above the windows (a title bar, a panel)
JOIN_TIMEOUT = 20.0  # seconds a window or bot may take to join before the next one starts anyway


Place = tuple[tuple[int, int], tuple[int, int]]  # a window's ((x, y), (width, height)) on the screen


def tile(slot: int, slots: int, screen: tuple[int, int], size: tuple[int, int]) -> Place:
    """Where window ``slot`` (0-based) of ``slots`` goes on a ``screen`` of (width, height) pixels, for a
    game drawn at ``size``: ``((x, y), (width, height))``, the windows side by side in one row with
    :data:`GAP` pixels between them and the edges, each scaled down (keeping its shape) so the row fits
    the screen's width and height, never scaled up.  Pure.

    Raises:
        InvalidArgument: ``slots`` < 1, or ``slot`` not in ``range(slots)``.
    """
    if slots < 1 or not 0 <= slot < slots:
        raise InvalidArgument(f"tile() needs 0 <= slot < slots, got slot {slot} of {slots}")
    width, height = screen
    room_w = (width - GAP * (slots + 1)) / slots
    room_h = height - TOP - GAP
    scale = min(1.0, room_w / size[0], room_h / size[1])
    shown = (max(1, int(size[0] * scale)), max(1, int(size[1] * scale)))
    row = shown[0] * slots + GAP * (slots - 1)
    left = max(0, (width - row) // 2)
    return (left + slot * (shown[0] + GAP), TOP), shown


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


def _joined(path: str | None) -> None:
    # Tell the session this part is in the game (the next window may start: seats go in order).
    if path:
        Path(path).write_text("joined")


def _room_type(module: Any) -> str:
    return str(getattr(module, "ROOM_TYPE", "game"))


def _run_rooms(module: Any, args: argparse.Namespace) -> None:
    # The --rooms server: the module's Server as the one room type.
    seats = int(getattr(module, "ROOM_SEATS", 2))
    server = RoomServer({_room_type(module): RoomType(module.Server, max_players=seats)}, host="127.0.0.1",
                        port=args.port, app=getattr(module, "APP", None))  # fmt: skip
    server.run()  # until Ctrl-C (it closes the server)


def _run_bots(module: Any, args: argparse.Namespace) -> None:
    # The --rooms bots: all in this process, each in its own thread, each quick-joining a room.
    bots = []
    try:
        for i in range(args.count):
            bot = module.Bot("127.0.0.1", args.port, name=f"Bot {i + 1}")
            bot.lobby.quick_join(_room_type(module))  # sent once the connection is up
            bots.append(bot.start())
        deadline = time.monotonic() + JOIN_TIMEOUT
        while time.monotonic() < deadline and not all(bot.net.ready for bot in bots):
            time.sleep(0.05)  # polling the bots' state with a deadline
        _joined(args.joined_file)
        while any(bot.running for bot in bots):
            time.sleep(0.2)  # supervising the bot threads until Ctrl-C
    finally:
        for bot in bots:
            bot.stop()


def _role(args: argparse.Namespace) -> int:
    # Runs inside a child process: one window, one bot, or (--rooms) the rooms server or all the bots.
    module = importlib.import_module(args.game)
    try:
        if args.role == "window":
            _run_window(module, args)
        elif args.role == "rooms":
            _run_rooms(module, args)
        elif args.role == "bots":
            _run_bots(module, args)
        else:
            bot = module.Bot("127.0.0.1", args.port, name=args.name)
            bot.sprocket.wait_connected(JOIN_TIMEOUT)
            _joined(args.joined_file)
            bot.run()
    except KeyboardInterrupt:
        pass  # the session is ending; run() has closed the connection on its way out
    return 0


def _run_window(module: Any, args: argparse.Namespace) -> None:
    from .app import desktop_size

    size = tuple(getattr(module.Game, "size", (960, 640)))
    pos, shown = tile(args.slot, args.slots, desktop_size(), (int(size[0]), int(size[1])))
    os.environ["SDL_VIDEO_WINDOW_POS"] = f"{pos[0]},{pos[1]}"  # this window's place in the row
    options: dict[str, Any] = {} if shown == size else {"window_size": shown}
    game = module.Game("127.0.0.1", args.port, name=args.name, **options)
    if args.rooms:
        game.lobby.quick_join(_room_type(module))  # --rooms: a seat in the first room with one free
    game.running = True
    deadline = time.monotonic() + JOIN_TIMEOUT
    while game.running and not game.connected and time.monotonic() < deadline:
        game.step()  # the window is live (drawing "connecting...") while it joins
        if game.net.error is not None and not game.reconnecting:
            break  # could not join: the window shows why
    _joined(args.joined_file)
    if game.running:
        game.run()
    else:
        game.close()


def _wait_joined(path: Path, process: subprocess.Popen[bytes]) -> None:
    # Until the child says it joined, exits, or JOIN_TIMEOUT passes (then the session goes on regardless).
    deadline = time.monotonic() + JOIN_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None and not path.exists():
        time.sleep(0.05)  # polling a child process's file with a deadline


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    parser.add_argument(
        "--windows", type=count_arg, default=None, help="game windows to open (default 2; 1 with --rooms)"
    )
    parser.add_argument("--bots", type=count_arg, default=0, help="headless bots to add (default 0)")
    parser.add_argument(
        "--rooms",
        type=count_arg,
        default=0,
        metavar="N",
        help="run a rooms server and fill N rooms with bots (your windows take the first seats)",
    )
    parser.add_argument(
        "--lag", type=milliseconds_arg, default=0.0, metavar="MS", help="round-trip lag for every client (ms)"
    )
    parser.add_argument(
        "--jitter", type=milliseconds_arg, default=0.0, metavar="MS", help="lag variation (+- MS)"
    )
    parser.add_argument("--port", type=port_arg, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--duration", type=seconds_arg, default=None, metavar="S", help="end the session after S seconds"
    )
    parser.add_argument("--role", choices=["window", "bot", "rooms", "bots"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=count_arg, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--name", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--slot", type=count_arg, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--slots", type=count_arg, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--joined-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.windows is None:
        args.windows = 1 if args.rooms else 2
    if args.rooms and args.bots:
        parser.error("--rooms fills its rooms with bots itself: leave out --bots")
    if not args.role and args.windows + args.bots + args.rooms == 0:
        parser.error("nothing to start: give --windows N, --bots N or --rooms N (at least one)")
    if args.role:
        return _role(args)

    if args.windows:
        from .app import NoDisplay, check_display

        try:
            check_display()
        except NoDisplay as exc:
            print(f"{parser.prog}: {exc}; or use --windows 0 --bots N to run headless", file=sys.stderr)
            return 1
    module = importlib.import_module(args.game)
    for needed in ("Server", "Game") + (("Bot",) if args.bots or args.rooms else ()):
        if not hasattr(module, needed):
            raise SystemExit(f"{args.game} has no {needed!r}: define Server, Game and Bot in it")
    port = args.port or _free_port()
    python = sys.executable
    # `kill` (SIGTERM) ends the session as Ctrl-C does: its windows and server are told to close.  (Checking
    # for a display started SDL, which takes SIGTERM over as a quit event nobody here reads.)
    signal.signal(signal.SIGTERM, _interrupt)
    children: list[subprocess.Popen[bytes]] = []
    proxies: list[LagProxy] = []
    signals = tempfile.TemporaryDirectory(prefix="sprocket-session-")
    room_bots = max(0, args.rooms * int(getattr(module, "ROOM_SEATS", 2)) - args.windows) if args.rooms else 0
    if args.rooms:
        serve = [python, "-m", "sprocket.game.session", args.game, "--role", "rooms", "--port", str(port)]
    else:
        serve = [python, "-m", "sprocket.game.serve", f"{args.game}:{module.Server.__name__}",
                 "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(serve)
    children.append(server)
    try:
        _wait_for_port(port, server)

        def client_port() -> int:
            if not (args.lag or args.jitter):
                return port
            proxy = LagProxy("127.0.0.1", port, lag=args.lag / 1000, jitter=args.jitter / 1000).start()
            proxies.append(proxy)
            return proxy.port

        windows: list[subprocess.Popen[bytes]] = []
        # One after the other, each once the previous one is in the game: the server seats players in
        # the order they join, so Player 1 (the leftmost window) gets the first seat, and people come
        # before bots.
        for i in range(args.windows + args.bots):
            window = i < args.windows
            joined = Path(signals.name) / f"joined-{i}"
            name = f"Player {i + 1}" if window else f"Bot {i - args.windows + 1}"
            cmd = [python, "-m", "sprocket.game.session", args.game, "--port", str(client_port()),
                   "--role", "window" if window else "bot", "--name", name, "--slot", str(i),
                   "--slots", str(max(1, args.windows)), "--joined-file", str(joined),
                   "--rooms", str(args.rooms)]  # fmt: skip
            child = subprocess.Popen(cmd)
            (windows if window else children).append(child)
            _wait_joined(joined, child)
        if room_bots:
            joined = Path(signals.name) / "joined-bots"
            cmd = [python, "-m", "sprocket.game.session", args.game, "--port", str(client_port()),
                   "--role", "bots", "--count", str(room_bots), "--joined-file", str(joined)]  # fmt: skip
            child = subprocess.Popen(cmd)
            children.append(child)
            _wait_joined(joined, child)
        children.extend(windows)
        lag = f" through {args.lag:g} ms +- {args.jitter:g} ms of lag" if args.lag or args.jitter else ""
        rooms = f" ({args.rooms} rooms of {_room_type(module)!r})" if args.rooms else ""
        print(f"session: server on 127.0.0.1:{port}{rooms}, {args.windows} window(s), "
              f"{args.bots + room_bots} bot(s){lag}. Close the windows or press Ctrl-C to end.",
              flush=True)  # fmt: skip
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
        signals.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
