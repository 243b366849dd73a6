"""The scripted game world shared by the game-layer groups (bandwidth, framecost), and the "full
snapshots" switch.

* :class:`Blob`: an entity with ``x, y, vx, vy`` (all floats, so all interpolated).
* :class:`BlobServer`: a :class:`~sprocket.game.GameServer` with ``blobs`` blobs of which ``moving``
  move every tick (constant velocity, bouncing off the edges of an 800 x 600 field: a moving blob changes
  ``x`` and ``y`` every tick, and ``vx``/``vy`` only when it bounces).  With ``control=True`` every client
  that joins also gets a blob of its own, driven by :func:`steer` (the shared game rule, so the client
  predicts it).
* :func:`full_snapshots`: a subclass of any GameServer class whose every snapshot is *full*.  Nothing in
  sprocket is changed: ``GameServer._send_snapshots`` encodes each client's snapshot as a delta against
  ``player.acked_tick`` (the newest snapshot that client acknowledged) and as a full snapshot when that
  is None, so the subclass sets every ``player.acked_tick`` to None just before the snapshots are sent.
  The clients still acknowledge every snapshot; the acknowledgements are simply forgotten.  Everything
  else (ticks, inputs, encoding, packet envelope) is the same code.
"""

from __future__ import annotations

from typing import Any

from sprocket import Client
from sprocket.game import Entity, GameServer

FIELD_W, FIELD_H = 800.0, 600.0
STEER_SPEED = 200.0  # px/s for a controlled blob


class Blob(Entity, type_name="bench.Blob"):
    x: float = 0.0
    y: float = 0.0
    vx: float = 0.0
    vy: float = 0.0


def steer(blob: Blob, keys: Any, dt: float) -> Blob:
    """The game rule of a controlled blob: ``keys`` is ``{"x": -1..1, "y": -1..1}``; stays on the field."""
    keys = keys if isinstance(keys, dict) else {}
    dx, dy = keys.get("x", 0.0), keys.get("y", 0.0)
    dx = max(-1.0, min(1.0, float(dx))) if isinstance(dx, (int, float)) else 0.0
    dy = max(-1.0, min(1.0, float(dy))) if isinstance(dy, (int, float)) else 0.0
    blob.vx, blob.vy = dx * STEER_SPEED, dy * STEER_SPEED
    blob.x = min(max(blob.x + blob.vx * dt, 0.0), FIELD_W)
    blob.y = min(max(blob.y + blob.vy * dt, 0.0), FIELD_H)
    return blob


class BlobServer(GameServer):
    """``blobs`` entities, ``moving`` of them (spread evenly over the ids) moving every tick."""

    rule = staticmethod(steer)

    def __init__(self, *args: Any, blobs: int = 100, moving: int = 10, control: bool = False,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.control_blobs = control
        self.movers: list[Blob] = []
        every = max(1, blobs // moving) if moving else 0
        for i in range(blobs):
            blob = Blob(
                x=round((i * 37.0) % FIELD_W, 2),
                y=round((i * 53.0) % FIELD_H, 2),
                vx=60.0 + (i * 7) % 90,
                vy=-45.0 + (i * 11) % 90,
            )
            self.world.spawn(blob)
            if every and i % every == 0 and len(self.movers) < moving:
                self.movers.append(blob)
        self.owned: dict[Client, int] = {}

    def on_join(self, client: Client) -> None:
        if self.control_blobs:
            self.owned[client] = self.world.spawn(Blob(x=FIELD_W / 2, y=FIELD_H / 2))
            self.control(client, self.owned[client])

    def on_leave(self, client: Client, reason: str) -> None:
        eid = self.owned.pop(client, None)
        if eid is not None and eid in self.world:
            self.world.despawn(eid)

    def simulate(self, dt: float) -> None:
        for blob in self.movers:
            x, y = blob.x + blob.vx * dt, blob.y + blob.vy * dt
            if not 0.0 <= x <= FIELD_W:
                blob.vx = -blob.vx
                x = min(max(x, 0.0), FIELD_W)
            if not 0.0 <= y <= FIELD_H:
                blob.vy = -blob.vy
                y = min(max(y, 0.0), FIELD_H)
            blob.x, blob.y = x, y


_FULL: dict[type, type] = {}


def full_snapshots(cls: type[GameServer]) -> type[GameServer]:
    """A subclass of ``cls`` that sends every client full snapshots (no delta baseline, ever)."""
    if cls not in _FULL:

        def _send_snapshots(self: GameServer) -> None:
            for player in self.players.values():
                player.acked_tick = None  # no baseline: encode_snapshot(snapshot, None) -> full
            cls._send_snapshots(self)  # type: ignore[attr-defined]

        _FULL[cls] = type(f"Full{cls.__name__}", (cls,), {"_send_snapshots": _send_snapshots})
    return _FULL[cls]
