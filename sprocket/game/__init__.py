"""sprocket.game: the game layer — smooth netcode for pygame, and a headless authoritative server.

Pure parts (no pygame, no sockets): :class:`Entity`, :class:`World`, snapshots and their deltas,
:class:`InterpolationBuffer`, :class:`Predictor`, :class:`WorldPredictor` (world prediction of the entity
types declared ``predicted=True``), :class:`FixedStep`, :class:`TickSchedule`.
Server side (no pygame): :class:`GameServer`; :class:`RoomServer` (many rooms of GameServers on one port,
with a lobby; the client side is :class:`Lobby`, ``client.lobby``; :class:`Cluster` spreads rooms over
many processes through Redis, :mod:`sprocket.game.cluster`); :class:`Announcer` to announce a server
on the LAN.  Finding a game (no pygame): :func:`find_servers` and the non-blocking :class:`ServerBrowser`
(:mod:`sprocket.game.discovery`).  Client side: :class:`GameClient` and :class:`GameBot` (no pygame), and
:class:`NetworkedGame` (pygame; imported on first use so servers never need pygame).

Errors: a bad argument raises :class:`~sprocket.errors.InvalidArgument` naming it (also a ``TypeError``
when its type is wrong); :class:`EntityError`, :class:`SnapshotError` and :class:`HookError` (a hook
misspelled or misshaped; :func:`not_a_hook` declares a method of your own) — all
in the :class:`~sprocket.errors.SprocketError` tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .bot import GameBot
from .client import GameClient, NetStats
from .clock import FixedStep, TickSchedule
from .discovery import Announcer, DiscoveryStats, ServerBrowser, ServerInfo, ServerStatus, find_servers
from .entity import (
    Entity,
    EntityError,
    angle,
    blend,
    entity_type,
    entity_types,
    extrapolate,
    quantized,
    round_quantized,
    snap,
)
from .hooks import HookError, not_a_hook
from .interpolation import InterpolationBuffer
from .lobby import Lobby
from .messages import (
    LobbyRefused,
    PlayerDropped,
    PlayerJoined,
    PlayerLeft,
    PlayerResumed,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomList,
)
from .prediction import Predictor
from .rollback import WorldPredictor
from .rooms import RoomServer, RoomType
from .server import GameServer, Player, ServerStats
from .snapshot import Snapshot, SnapshotError, SnapshotHistory, World, decode_snapshot, encode_snapshot

if TYPE_CHECKING:
    from .app import NetworkedGame, NoDisplay, check_display
    from .cluster import Cluster

__all__ = [
    "Announcer",
    "Cluster",
    "DiscoveryStats",
    "Entity",
    "EntityError",
    "FixedStep",
    "GameBot",
    "GameClient",
    "GameServer",
    "HookError",
    "InterpolationBuffer",
    "Lobby",
    "LobbyRefused",
    "NetStats",
    "NetworkedGame",
    "NoDisplay",
    "Player",
    "PlayerDropped",
    "PlayerJoined",
    "PlayerLeft",
    "PlayerResumed",
    "Predictor",
    "RoomInfo",
    "RoomJoined",
    "RoomLeft",
    "RoomList",
    "RoomServer",
    "RoomType",
    "ServerBrowser",
    "ServerInfo",
    "ServerStats",
    "ServerStatus",
    "Snapshot",
    "SnapshotError",
    "SnapshotHistory",
    "TickSchedule",
    "World",
    "WorldPredictor",
    "angle",
    "blend",
    "check_display",
    "decode_snapshot",
    "encode_snapshot",
    "entity_type",
    "entity_types",
    "extrapolate",
    "find_servers",
    "not_a_hook",
    "quantized",
    "round_quantized",
    "snap",
]


def __getattr__(name: str) -> Any:
    # NetworkedGame and the display check need pygame: imported only when asked for (servers never load it).
    if name in ("NetworkedGame", "NoDisplay", "check_display"):
        from . import app

        return getattr(app, name)
    if name == "Cluster":  # rooms over many processes (sprocket.game.cluster): loaded only when asked for
        from . import cluster

        return cluster.Cluster
    raise AttributeError(f"module 'sprocket.game' has no attribute {name!r}")
