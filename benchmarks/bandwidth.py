"""Bandwidth: bytes per client per second sent by a game server, with delta snapshots and with full ones.

Two worlds, each a separate set of rows:

* **hockey**: the real demo.  ``demos.hockey.server.HockeyServer`` on a Servo at 127.0.0.1:0 with its own
  defaults (60 Hz tick, 30 snapshots/s, ``app="sprocket-hockey-1"``), 4 entities (a Match, a Puck, two
  Mallets), and two real ``demos.hockey.bot.HockeyBot`` clients (skill 1.0 and 0.8), one process each.
  The bots get ready by themselves; the server waits (with a deadline) until ``match.phase == "play"``
  (after the 3 s countdown), then measures for ``hockey_window`` seconds of play (goals, face-offs and
  goal pauses included, as they come).
* **blobs**: a scripted :class:`~benchmarks.gameworld.BlobServer` (GameServer defaults: 60 Hz tick,
  20 snapshots/s) with ``blobs`` entities of ``x, y, vx, vy`` of which ``blobs_moving`` move every tick,
  and ``blob_clients`` spectator clients (plain ``GameBot``s that send no input), one process each.
  It waits until every client has had a few snapshots, then measures for ``blobs_window`` seconds.

Each world is run twice per run, in fresh processes each time: once as it is (deltas against the
snapshot each client acknowledged) and once through :func:`benchmarks.gameworld.full_snapshots`, which
clears every ``player.acked_tick`` just before the snapshots are sent, so ``GameServer._send_snapshots``
encodes every snapshot against no baseline (full).  Nothing else differs.

Measured in the server process, over the window:

* snapshot bytes/s per client: the growth of ``Player.bytes_out`` (the encoded snapshot packets the
  game layer handed to each client, without the 5-byte frame header), averaged over the clients;
* wire kbps per client: the growth of ``servo.stats["bytes_out"]`` (every byte written to the sockets:
  snapshots, frame headers, the demo's sound-effect broadcasts, heartbeats) ÷ clients, x 8 / 1000;
* full ÷ delta: the full run's snapshot bytes/s ÷ the delta run's, per run, then the median.
"""

from __future__ import annotations

import time
from typing import Any

from .common import Params, Worker, emit, worker_main, workers

MODULE = "bandwidth"
IMPLS = ("sprocket",)  # the baselines are sprocket's own: full snapshots instead of deltas
WORLDS = ("hockey", "blobs")


def defaults(quick: bool) -> Params:
    return {
        "hockey_window": 3.0 if quick else 8.0,
        "hockey_skills": [1.0, 0.8],
        "blobs_window": 2.0 if quick else 4.0,
        "blobs": 100,
        "blobs_moving": 10,
        "blob_clients": 2,
        "blob_tick_rate": 60.0,
        "blob_snapshot_rate": 20.0,
        "start_timeout": 30.0,  # clients joined and (hockey) the match in play, or the run fails
        "timeout": 60.0,
    }


def steps(params: Params) -> list[tuple[str, Params]]:
    return [(f"@{world}", {**params, "world": world}) for world in WORLDS]


# -- server --------------------------------------------------------------------------------------------


def server(p: Params) -> None:
    from .gameworld import BlobServer, full_snapshots

    hockey = p["world"] == "hockey"
    kwargs: dict[str, Any] = {}
    if hockey:
        from demos.hockey.server import HockeyServer

        cls: Any = HockeyServer
        n_clients = len(p["hockey_skills"])
        window = p["hockey_window"]
    else:
        cls = BlobServer
        kwargs = {"blobs": p["blobs"], "moving": p["blobs_moving"], "tick_rate": p["blob_tick_rate"],
                  "snapshot_rate": p["blob_snapshot_rate"]}  # fmt: skip
        n_clients = p["blob_clients"]
        window = p["blobs_window"]
    if p["mode"] == "full":
        cls = full_snapshots(cls)
    game = cls(host="127.0.0.1", port=0, **kwargs).start()
    emit("ready", port=game.port)
    try:
        _measure(game, hockey, n_clients, window, p)
    finally:
        game.stop()


def _measure(game: Any, hockey: bool, n_clients: int, window: float, p: Params) -> None:
    thread = game._thread
    warm_snapshots = max(3, int(game.snapshot_rate))  # about a second of snapshots to every client

    def started() -> bool:
        players = list(game.players.values())
        if len(players) < n_clients or any(pl.snapshots_sent < warm_snapshots for pl in players):
            return False
        return game.match.phase == "play" if hockey else True

    deadline = time.monotonic() + p["start_timeout"]
    while not started():
        if time.monotonic() > deadline or not thread.is_alive():
            phase = game.match.phase if hockey else "-"
            emit("error", error=f"not started within {p['start_timeout']:g} s: {len(game.players)} clients, "
                                f"phase {phase}, server thread alive: {thread.is_alive()}")  # fmt: skip
            return
        time.sleep(0.02)

    players = list(game.players.values())
    bytes0 = [pl.bytes_out for pl in players]
    snaps0 = [pl.snapshots_sent for pl in players]
    wire0 = game.servo.stats["bytes_out"]
    score0 = game.match.left + game.match.right if hockey else 0
    t0 = time.monotonic()
    samples = in_play = 0
    end = t0 + window
    while time.monotonic() < end:
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        samples += 1
        in_play += (game.match.phase == "play") if hockey else 1
    elapsed = time.monotonic() - t0
    wire = game.servo.stats["bytes_out"] - wire0
    per_client = [pl.bytes_out - b for pl, b in zip(players, bytes0, strict=True)]
    snaps = [pl.snapshots_sent - s for pl, s in zip(players, snaps0, strict=True)]
    if not thread.is_alive() or len(game.players) < n_clients:
        emit("error", error=f"server thread alive: {thread.is_alive()}, {len(game.players)} clients left")
        return
    emit(
        "result",
        elapsed=elapsed,
        snapshot_bytes=per_client,
        snapshots=snaps,
        wire_bytes=wire,
        n_clients=len(players),
        entities=len(game.world),
        play_pct=100.0 * in_play / max(1, samples),
        goals=(game.match.left + game.match.right - score0) if hockey else 0,
        overruns=game.stats.overruns,
    )


# -- clients -------------------------------------------------------------------------------------------


def client(p: Params) -> None:
    if p["world"] == "hockey":
        from demos.hockey.bot import HockeyBot

        bot: Any = HockeyBot("127.0.0.1", p["port"], name=p["name"], skill=p["skill"])
    else:
        from sprocket.game import GameBot

        from . import gameworld  # noqa: F401 - registers the Blob entity type

        bot = GameBot("127.0.0.1", p["port"], name=p["name"])
    emit("ready")
    # Plays until the server closes (the run is over) or the cap passes.
    bot.run(duration=p["timeout"])
    emit("done", snapshots=bot.net.snapshots_received)


ROLES = {("server", "*"): server, ("client", "*"): client}


# -- runner side ---------------------------------------------------------------------------------------


def _one(impl: str, p: Params, mode: str) -> dict[str, Any]:
    hockey = p["world"] == "hockey"
    skills = p["hockey_skills"] if hockey else [0.0] * p["blob_clients"]
    with workers() as started:
        srv = Worker(MODULE, "server", impl, {**p, "mode": mode})
        started.append(srv)
        port = srv.expect("ready", 20)["port"]
        clients = []
        for i, skill in enumerate(skills):
            c = Worker(MODULE, "client", impl, {**p, "port": port, "name": f"bot{i}", "skill": skill})
            started.append(c)
            clients.append(c)
        res = srv.expect("result", p["start_timeout"] + p["timeout"])
        srv.finish()
        for c in clients:
            c.finish(10)
    return res


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One run of one world: deltas, then full snapshots, each in fresh processes (runner side)."""
    out: dict[str, float] = {}
    for mode in ("delta", "full"):
        res = _one(impl, params, mode)
        n, elapsed = res["n_clients"], res["elapsed"]
        out[f"{mode}_Bps"] = sum(res["snapshot_bytes"]) / n / elapsed
        out[f"{mode}_kbps"] = res["wire_bytes"] / n / elapsed * 8 / 1000
        out[f"{mode}_snapshot_bytes"] = sum(res["snapshot_bytes"]) / max(1, sum(res["snapshots"]))
        out[f"{mode}_snapshots_per_s"] = sum(res["snapshots"]) / n / elapsed
        out[f"{mode}_play_pct"] = res["play_pct"]
        out[f"{mode}_goals"] = res["goals"]
        out[f"{mode}_overruns"] = res["overruns"]
    out["full_over_delta"] = out["full_Bps"] / out["delta_Bps"] if out["delta_Bps"] else float("nan")
    # The runner's one-line summary shows the first four keys: put the headline figures first.
    head = ("delta_Bps", "full_Bps", "full_over_delta", "delta_kbps")
    return {**{k: out[k] for k in head}, **{k: v for k, v in out.items() if k not in head}}


if __name__ == "__main__":
    worker_main(ROLES)
