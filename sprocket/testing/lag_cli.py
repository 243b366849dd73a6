"""The lag simulator's command line: ``sprocket netsim`` (also ``python -m sprocket.netsim``).

Runs a :class:`~sprocket.testing.LagProxy` in the foreground until Ctrl-C, printing where it listens.
This module prints (it is a command); the library modules never do.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from .lag import LagProxy, _fmt_addr

__all__ = ["build_parser", "main"]


def _host_port(text: str, default_host: str | None) -> tuple[str, int]:
    """Parse ``HOST:PORT`` / ``[IPv6]:PORT`` (or ``PORT`` when ``default_host`` is given)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        if default_host is None:
            raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
        host = default_host
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host, port


def _target_arg(text: str) -> tuple[str, int]:
    """argparse type for --target."""
    host, port = _host_port(text, None)
    if port == 0:
        raise argparse.ArgumentTypeError("target port must not be 0")
    return host, port


def _listen_arg(text: str) -> tuple[str, int]:
    """argparse type for --listen."""
    return _host_port(text, "127.0.0.1")


def _ms_arg(text: str) -> float:
    """argparse type for a non-negative number of milliseconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 milliseconds, got {text!r}")
    return value


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line parser of ``sprocket netsim``; ``prog`` is the name shown in help and errors."""
    parser = argparse.ArgumentParser(
        prog=prog or "sprocket netsim",
        description=(
            "Relay TCP connections to a game server while adding lag, jitter and stalls, so you "
            "can feel a bad network on one machine. Point your client at the --listen address."
        ),
        epilog=(
            "Each direction gets lag/2 plus a uniform +/- jitter/2 per chunk, so '--lag 150 --jitter 30' "
            "gives a round trip of 150 +/- 30 ms. Bytes are never reordered or lost. "
            "Example: sprocket netsim --target 127.0.0.1:9000 --listen 9001 --lag 150 --jitter 30"
        ),
    )
    parser.add_argument(
        "--target",
        required=True,
        type=_target_arg,
        metavar="HOST:PORT",
        help="the real server to relay to (IPv6 as [ADDR]:PORT)",
    )
    parser.add_argument(
        "--listen",
        type=_listen_arg,
        default=("127.0.0.1", 0),
        metavar="[HOST:]PORT",
        help="where clients connect (default: 127.0.0.1 and a free port, printed at start)",
    )
    parser.add_argument(
        "--lag",
        type=_ms_arg,
        default=0.0,
        metavar="MS",
        help="added round-trip time in milliseconds, half each way (default: 0)",
    )
    parser.add_argument(
        "--jitter",
        type=_ms_arg,
        default=0.0,
        metavar="MS",
        help="round-trip variation in milliseconds: the ping varies by +/- MS (default: 0)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="N", help="random seed for reproducible jitter"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log connections (-v) or everything (-vv) to stderr",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the proxy from the command line until Ctrl-C; return the process exit status.

    Returns 0 after Ctrl-C (SIGINT) or SIGTERM, 1 when the proxy cannot be set up or its thread dies.
    argparse exits with status 2 (SystemExit) on bad arguments and 0 for --help.
    """
    args = build_parser(prog).parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target_host, target_port = args.target
    listen_host, listen_port = args.listen
    try:
        proxy = LagProxy(
            target_host,
            target_port,
            listen_host=listen_host,
            listen_port=listen_port,
            lag=args.lag / 1000,
            jitter=args.jitter / 1000,
            seed=args.seed,
        )
    except (OSError, ValueError) as exc:  # InvalidArgument is a ValueError
        print(f"netsim: error: {exc}", file=sys.stderr)
        return 1
    restore = _install_stop_signals()
    try:
        with proxy:
            print(
                f"netsim: listening on {_fmt_addr(listen_host, proxy.port)}, relaying to "
                f"{_fmt_addr(target_host, target_port)} with {args.lag:g} ms +/- {args.jitter:g} ms "
                "added round trip (Ctrl-C to stop)",
                flush=True,
            )
            while proxy.running:  # supervising the relay thread until Ctrl-C
                time.sleep(0.5)
            print("netsim: relay thread stopped unexpectedly", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("netsim: stopped", flush=True)
        return 0
    finally:
        restore()


def _install_stop_signals() -> Callable[[], None]:
    """Make SIGINT (even if inherited as ignored) and SIGTERM raise KeyboardInterrupt.

    Returns a function restoring the previous handlers. Does nothing off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, stop)):
        previous[signum] = signal.signal(signum, handler)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


if __name__ == "__main__":
    sys.exit(main())
