"""Run a GameServer subclass headless: ``sprocket serve module:Class [--port P]``.

Also ``python -m sprocket.game.serve module:Class``.

A separate module from :mod:`sprocket.game.server` so that ``python -m`` does not load the server
module twice (once as the package's, once as ``__main__``).  Never imports pygame.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from sprocket import DEFAULT_PORT
from sprocket.errors import SprocketError

from .discovery import DEFAULT_BROADCAST, DISCOVERY_PORT, Announcer
from .server import GameServer

__all__ = [
    "add_announce_arguments",
    "add_cluster_arguments",
    "address_arg",
    "count_arg",
    "load_class",
    "main",
    "milliseconds_arg",
    "port_arg",
    "seconds_arg",
    "serve_cluster_node",
    "start_announcer",
]


def port_arg(text: str) -> int:
    """An argparse ``type`` for a port number: an int from 0 to 65535, or a usage error saying so.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not such a number (argparse turns it into a usage error).
    """
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535, not {text!r}")
    return port


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def milliseconds_arg(text: str) -> float:
    """An argparse ``type`` for a duration the user types in milliseconds (``--lag 150``): a float >= 0.

    Raises:
        argparse.ArgumentTypeError: not such a number; the message speaks milliseconds, as the user did.
    """
    value = _number(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"give a number of milliseconds, 0 or more (e.g. 150), not {text!r}")
    return value


def seconds_arg(text: str) -> float:
    """An argparse ``type`` for a duration in seconds (``--duration 4``): a float >= 0.

    Raises:
        argparse.ArgumentTypeError: not such a number.
    """
    value = _number(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"give a number of seconds, 0 or more (e.g. 2.5), not {text!r}")
    return value


def count_arg(text: str) -> int:
    """An argparse ``type`` for how many of something (``--windows 2``): a whole number >= 0.

    Raises:
        argparse.ArgumentTypeError: not such a number.
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"give a whole number, 0 or more, not {text!r}")
    return value


def address_arg(text: str) -> str:
    """An argparse ``type`` for an IPv4 address (``--broadcast 127.255.255.255``), or a usage error.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a dotted IPv4 address.
    """
    try:
        socket.inet_aton(text)
    except OSError:
        text = ""
    if text.count(".") != 3:
        raise argparse.ArgumentTypeError(f"give an IPv4 address such as 192.168.1.255, not {text!r}")
    return text


def add_announce_arguments(parser: argparse.ArgumentParser, *, default: bool) -> None:
    """Add the LAN discovery options to ``parser``: ``--announce`` (or, when ``default`` is True,
    ``--no-announce``), ``--server-name``, ``--broadcast`` and ``--discovery-port``; read them back with
    :func:`start_announcer`."""
    if default:
        parser.add_argument(
            "--no-announce",
            dest="announce",
            action="store_false",
            help="do not announce this server on the LAN (it is announced by default)",
        )
    else:
        parser.add_argument(
            "--announce",
            action="store_true",
            help="announce this server on the LAN, so that players find it in their lists",
        )
    parser.set_defaults(announce=default)
    parser.add_argument(
        "--server-name",
        default=None,
        metavar="NAME",
        help="the name players see in the LAN list (default: this machine's name)",
    )
    parser.add_argument(
        "--broadcast",
        type=address_arg,
        default=DEFAULT_BROADCAST,
        metavar="ADDR",
        help=f"where announcements go, and where a game browser (the demo's Find a game) asks for servers "
        f"(default {DEFAULT_BROADCAST}: the local network; 127.255.255.255 keeps it on this machine)",
    )
    parser.add_argument(
        "--discovery-port",
        type=port_arg,
        default=DISCOVERY_PORT,
        metavar="P",
        help=f"the UDP port LAN browsers listen on (default {DISCOVERY_PORT})",
    )


def start_announcer(args: argparse.Namespace, server: GameServer) -> Announcer | None:
    """Start announcing ``server`` as the options of :func:`add_announce_arguments` say (None when
    announcing is off).  Close the result when the server stops: it says goodbye.

    Raises:
        ConnectionFailed: the announcing socket cannot be opened.
        InvalidArgument: the server name is too long or not printable.
    """
    if not args.announce:
        return None
    name = args.server_name if args.server_name is not None else socket.gethostname()[:64]
    return Announcer(server, name=name, address=args.broadcast, discovery_port=args.discovery_port).start()


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``sprocket serve module:Class [--host H] [--port P] [--duration S] [--grace S] [--announce ...]``;
    the exit status.

    ``prog`` is the command's name in help and errors.  Raises SystemExit for bad arguments or a class
    that cannot be imported.
    """
    parser = argparse.ArgumentParser(
        prog=prog or "python -m sprocket.game.serve",
        description="Run a sprocket GameServer subclass headless.",
    )
    parser.add_argument(
        "server",
        help="the GameServer subclass, as module:Class (e.g. server:MyServer for server.py in this "
        "folder, or sprocket.demos.hockey:HockeyServer)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all interfaces)")
    parser.add_argument("--port", type=port_arg, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--duration", type=seconds_arg, default=None, metavar="S", help="stop after this many seconds"
    )
    parser.add_argument(
        "--grace",
        type=seconds_arg,
        default=None,
        metavar="S",
        help="seconds a dropped player's seat is held for their return (default 30; 0: no resuming)",
    )
    add_announce_arguments(parser, default=False)
    add_cluster_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    cls = load_class(args.server, GameServer)
    options = {} if args.grace is None else {"grace": args.grace}
    if args.redis is not None:
        return serve_cluster_node(args, cls, options)
    server = cls(host=args.host, port=args.port, **options)
    announcer = None
    try:
        # Ctrl-C at any moment, even while the announcer starts (it announces at once, so a watcher may
        # already have seen the server), is a clean stop.
        try:
            announcer = start_announcer(args, server)
        except SprocketError as exc:
            server.close()
            raise SystemExit(f"cannot announce on the LAN: {exc}") from None
        where = f" (announced to {args.broadcast}:{args.discovery_port})" if announcer else ""
        print(f"{cls.__name__} listening on {args.host}:{server.port}{where} (Ctrl-C to stop)", flush=True)
        server.run(duration=args.duration)
    except KeyboardInterrupt:
        server.close()
    finally:
        if announcer is not None:
            announcer.close()
    return 0


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the rooms-cluster options to ``parser``: ``--redis URL`` (run the class as the room type of a
    RoomServer node of the cluster sharing that Redis), ``--cluster-secret`` (default: the
    ``SPROCKET_CLUSTER_SECRET`` environment variable), ``--public-host``, ``--node-id``, ``--room-type``
    and ``--max-rooms``; :func:`serve_cluster_node` reads them."""
    group = parser.add_argument_group("rooms cluster (docs/DEPLOY.md; needs the client: pip install redis)")
    group.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="join the rooms cluster sharing this Redis (redis://host:6379/0): the class becomes the room "
        "type of a RoomServer node",
    )
    group.add_argument(
        "--cluster-secret",
        default=None,
        metavar="SECRET",
        help="the secret shared by the nodes, 16+ characters (default: $SPROCKET_CLUSTER_SECRET)",
    )
    group.add_argument(
        "--public-host",
        default=None,
        metavar="ADDR",
        help="the address clients reach this node at (default: --host, or 127.0.0.1 for 0.0.0.0)",
    )
    group.add_argument("--node-id", default=None, metavar="ID", help="this node's id (default: a random one)")
    group.add_argument(
        "--room-type",
        default=None,
        metavar="NAME",
        help="the room type's name clients quick-join (default: the class name in lower case)",
    )
    group.add_argument(
        "--max-rooms", type=count_arg, default=64, metavar="N", help="rooms on this node (default 64)"
    )


def serve_cluster_node(args: argparse.Namespace, cls: type[GameServer], options: dict[str, Any]) -> int:
    """Run ``cls`` as the room type of a RoomServer node of the cluster the options of
    :func:`add_cluster_arguments` name, until Ctrl-C or ``--duration``; the exit status.

    Raises:
        SystemExit: no cluster secret, a bad setting, or the redis package is missing.
    """
    from .cluster import Cluster
    from .rooms import RoomServer

    if args.announce:
        raise SystemExit("--announce is for a single server: a cluster's players need one node's address")
    secret = args.cluster_secret or os.environ.get("SPROCKET_CLUSTER_SECRET")
    if not secret:
        raise SystemExit(
            "give the cluster secret: --cluster-secret or SPROCKET_CLUSTER_SECRET (the same on every node)"
        )
    public = args.public_host or (args.host if args.host not in ("0.0.0.0", "", "::") else "127.0.0.1")
    room_type = args.room_type or cls.__name__.lower()
    try:
        cluster = Cluster(args.redis, secret, public_host=public, node_id=args.node_id)
        server = RoomServer({room_type: cls}, host=args.host, port=args.port, max_rooms=args.max_rooms,
                            cluster=cluster, **options)  # fmt: skip
    except SprocketError as exc:
        raise SystemExit(f"cannot start the cluster node: {exc}") from None
    node = server.cluster
    assert node is not None
    print(f"node {node.node_id} ({room_type} rooms) listening on {args.host}:{server.port}, reached at "
          f"{public}:{server.port}, cluster {args.redis} (Ctrl-C to stop)", flush=True)  # fmt: skip
    try:
        server.run(duration=args.duration)
    except KeyboardInterrupt:
        server.close()
    return 0


def load_class(spec: str, base: type) -> Any:
    """Import ``module:Class`` and check it subclasses ``base``.  The current folder is searched first, as
    ``python -m`` does, so ``server:MyServer`` finds ``./server.py``.

    Raises:
        SystemExit: with a readable message when the module or class cannot be found.
    """
    module_name, _, class_name = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"cannot import {module_name!r}: {exc}") from exc
    if not class_name:
        candidates = [
            v for v in vars(module).values() if isinstance(v, type) and issubclass(v, base) and v is not base
        ]
        if len(candidates) != 1:
            raise SystemExit(f"name the class: {module_name}:SomeClass (a {base.__name__} subclass)")
        return candidates[0]
    cls = getattr(module, class_name, None)
    if cls is None:
        raise SystemExit(f"{module_name} has no {class_name!r} (is it spelled as in {module.__file__}?)")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise SystemExit(f"{spec} is not a {base.__name__} subclass")
    return cls


if __name__ == "__main__":
    raise SystemExit(main())
