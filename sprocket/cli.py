"""The ``sprocket`` command (also ``python -m sprocket``): the demo, a headless server, a local session
and the lag simulator, each as a subcommand with its own ``--help``.

Subcommand modules are imported only when their command runs, so ``sprocket --help`` loads neither
pygame nor the game layer.  This module prints (it is a command); the library modules never do.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COMMANDS", "Command", "demo_module", "main"]

#: The bundled demo's module in an installed sprocket (the wheel maps the repository's ``demos/`` here).
INSTALLED_DEMO = "sprocket.demos.hockey"
#: The same demo in a clone of the repository.
CHECKOUT_DEMO = "demos.hockey"


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, a one-line summary, and the module whose ``main(argv, prog)`` runs it."""

    name: str
    summary: str
    module: str


COMMANDS: tuple[Command, ...] = (
    Command("play", "play Sprocket Hockey, the demo (the same options as ./play)", "sprocket.cli:_play"),
    Command("serve", "run a GameServer subclass headless (module:Class)", "sprocket.game.serve"),
    Command("session", "a server, game windows and bots on this machine", "sprocket.cli:_session"),
    Command("netsim", "a TCP relay adding lag, jitter and stalls", "sprocket.testing.lag_cli"),
)


def demo_module() -> str:
    """The importable name of the bundled demo: ``sprocket.demos.hockey`` when installed, else the clone's.

    In a clone without an install of sprocket (``demos/`` beside the ``sprocket/`` package), the clone's
    root is put on ``sys.path`` so that ``demos.hockey`` imports.

    Raises:
        SystemExit: the demo is neither installed nor next to this package.
    """
    try:
        if importlib.util.find_spec(INSTALLED_DEMO) is not None:
            return INSTALLED_DEMO
    except ImportError:
        pass
    root = Path(__file__).resolve().parents[1]
    if (root / "demos" / "hockey" / "__init__.py").is_file():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return CHECKOUT_DEMO
    raise SystemExit(
        "the demo is not installed: install sprocket with its game extra, e.g. pip install 'sprocket[game]'"
    )


def _play(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``sprocket play``: the demo's own command line (see ``demos/hockey/__main__.py``)."""
    demo = importlib.import_module(demo_module() + ".__main__")
    status: int = demo.main(argv, prog=prog)
    return status


def _session(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``sprocket session``: :mod:`sprocket.game.session`, with the bundled demo as the default game."""
    from sprocket.game import session

    return session.main(argv, prog=prog, default_game=demo_module())


def _load(command: Command) -> Callable[..., int]:
    module_name, _, attribute = command.module.partition(":")
    module = importlib.import_module(module_name)
    runner: Callable[..., int] = getattr(module, attribute or "main")
    return runner


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("sprocket")
    except Exception:  # not installed (a clone on sys.path): say so rather than fail
        return "unknown (not installed)"


def build_parser(prog: str = "sprocket") -> argparse.ArgumentParser:
    """The top-level parser: the subcommand, then everything after it is handed to that command."""
    listing = "\n".join(f"  {c.name:<9} {c.summary}" for c in COMMANDS)
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Multiplayer pygame games over the network: the demo and sprocket's tools.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"commands:\n{listing}\n\n'{prog} COMMAND --help' shows a command's options.",
        usage=f"{prog} [-h] [--version] COMMAND [ARGS...]",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("command", metavar="COMMAND", choices=[c.name for c in COMMANDS], help="see below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "sprocket") -> int:
    """Run ``sprocket COMMAND ARGS...``; return the exit status.

    Exits through SystemExit for ``--help``, ``--version`` and bad arguments (status 2), as argparse does.
    A command that needs pygame where it is not installed says so and returns 1.
    """
    args = build_parser(prog).parse_args(argv)
    command = next(c for c in COMMANDS if c.name == args.command)
    try:
        runner = _load(command)
        return runner(args.args, prog=f"{prog} {command.name}")
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if exc.name != "pygame":
            raise
        print(
            f"{prog} {command.name}: needs pygame, which is not installed. Install the game layer with "
            "pip install 'sprocket[game]' (or 'sprocket[game-ce]' for pygame-ce).",
            file=sys.stderr,
        )
        return 1
