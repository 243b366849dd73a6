"""Frame cost: the game layer's own CPU time per frame on the client, against the bare networking loop.

The server (its own process) is a :class:`~benchmarks.gameworld.BlobServer` at 60 Hz tick and 20
snapshots/s with ``entities`` blobs that all move every tick, plus one blob for the client to control
(steered by :func:`~benchmarks.gameworld.steer`, the game rule both ends run).  One client process runs
a 60 FPS loop for ``window`` seconds after a warm-up (connected, welcomed, at least ``warm_snapshots``
snapshots and every entity seen).  Each frame does, timed with ``time.perf_counter`` around these calls
only (never the sleep until the next frame):

* **game**: ``GameClient.poll()`` (get every packet, decode the snapshot deltas against their baselines,
  push them into the interpolation buffer, acknowledge them, reconcile the prediction), ``advance(dt)``
  and ``entities()`` (interpolate every remote entity, plus the predicted own one), and
  ``send_input(keys)`` (apply the rule locally, send the input).
* **bare** (the baseline, same server, fresh processes): the same packets in and out with no game layer:
  ``Sprocket.get()``, and for each snapshot packet an acknowledgement (``{"_g": "ack", "t": tick}``,
  so the server keeps sending deltas of the same size), then one input packet per frame
  (``{"_g": "in", "s": seq, "i": keys}``) sent with ``Sprocket.send()``.  No decoding, interpolation or
  prediction.

Figures: mean, p50 and p99 of the per-frame time (game and bare), the mean of each part of the game
frame, game mean ÷ bare mean and game mean - bare mean per run.  The JSON also has the thread CPU time
(``time.thread_time``) of the same calls (``game_cpu_ms``, ``bare_cpu_ms``): wall time above CPU time is
time the frame waited (for the GIL, held by the I/O thread, or for a core, shared with the server).

The frame times are "cold": between two frames the loop sleeps, as a game does (and a real game draws),
so caches and branch predictors have moved on; the same calls repeated back to back run about 3 x
faster (e.g. ``InterpolationBuffer.sample`` of 101 entities: about 110 µs hot, 340 µs after a 16 ms
sleep, on the 2-core machine).  The loop measures what a game pays.

There is no raw-socket or PodSixNet equivalent of the game layer; the baseline is sprocket without it.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .common import Params, Worker, emit, percentile, sleep_until, worker_main, workers

MODULE = "framecost"
IMPLS = ("sprocket",)  # the baseline is sprocket's own networking without the game layer


def defaults(quick: bool) -> Params:
    return {
        "entities": 100,
        "tick_rate": 60.0,
        "snapshot_rate": 20.0,
        "fps": 60.0,
        "window": 2.0 if quick else 5.0,
        "warm_snapshots": 10,
        "start_timeout": 20.0,
        "timeout": 60.0,
        # The hockey step: the demo's window (HockeyGame, SDL dummy drivers) against a bot, through a
        # LagProxy; with world prediction (the puck predicted) and without (the puck interpolated).
        "hockey_lag_ms": 150.0,
        "hockey_jitter_ms": 30.0,
    }


def steps(params: Params) -> list[tuple[str, Params]]:
    """The blob world (metric names as they were), then the hockey demo (``@hockey``)."""
    return [("", {**params, "world": "blobs"}), ("@hockey", {**params, "world": "hockey"})]


# -- server --------------------------------------------------------------------------------------------


def server(p: Params) -> None:
    from .gameworld import BlobServer

    game = BlobServer(
        host="127.0.0.1", port=0, blobs=p["entities"], moving=p["entities"], control=True,
        tick_rate=p["tick_rate"], snapshot_rate=p["snapshot_rate"],
    ).start()  # fmt: skip
    emit("ready", port=game.port)
    thread = game._thread
    assert thread is not None
    joined = False
    deadline = time.monotonic() + p["timeout"]
    # Serve until the client has come and gone (or the cap passes).
    while time.monotonic() < deadline and thread.is_alive():
        if game.players:
            joined = True
        elif joined:
            break
        time.sleep(0.05)
    alive = thread.is_alive()
    game.stop()
    emit("result", alive=alive, ticks=game.stats.ticks, overruns=game.stats.overruns,
         snapshot_bytes=game.stats.mean_snapshot_bytes)  # fmt: skip


# -- client --------------------------------------------------------------------------------------------


def client(p: Params) -> None:
    from sprocket import Sprocket

    sock = Sprocket("127.0.0.1", p["port"], name="framecost")
    sock.wait_connected(10.0)
    try:
        if p["mode"] == "game":
            _game_loop(sock, p)
        else:
            _bare_loop(sock, p)
    finally:
        sock.close()


def _keys(frame: int) -> dict[str, float]:
    # Steer back and forth (a new direction every second), so the prediction always has work to do.
    return {"x": 1.0 if (frame // 60) % 2 == 0 else -1.0, "y": 0.5}


def _frames(p: Params, frame: Any, warm: Any) -> list[tuple[float, ...]] | None:
    """Run ``frame(i) -> (total, parts...)`` at ``fps``: until ``warm()`` (not recorded, bounded), then for
    ``window`` seconds (recorded).  Returns the recorded tuples, or None if warming up timed out."""
    period = 1.0 / p["fps"]
    next_frame = time.monotonic()
    i = 0
    deadline = next_frame + p["start_timeout"]
    while not warm():
        if time.monotonic() > deadline:
            return None
        frame(i)
        i += 1
        next_frame += period
        sleep_until(next_frame)
    out: list[tuple[float, ...]] = []
    end = time.monotonic() + p["window"]
    next_frame = time.monotonic()
    while time.monotonic() < end:
        out.append(frame(i))
        i += 1
        next_frame += period
        now = time.monotonic()
        if now > next_frame + period:
            next_frame = now  # a late frame (the machine was busy): do not run a burst to catch up
        sleep_until(next_frame)
    return out


def _game_loop(sock: Any, p: Params) -> None:
    from sprocket.game import GameClient

    from .gameworld import steer

    net = GameClient(sock, rule=steer)
    perf, cpu = time.perf_counter, time.thread_time
    dt = 1.0 / p["fps"]
    n_entities = p["entities"] + 1  # the blobs and our own
    seen = {"entities": 0}

    def frame(i: int) -> tuple[float, ...]:
        c0 = cpu()
        t0 = perf()
        net.poll()
        t1 = perf()
        net.advance(dt)
        ents = net.entities()
        t2 = perf()
        net.send_input(_keys(i))
        t3 = perf()
        c1 = cpu()
        seen["entities"] = len(ents)
        return (t3 - t0, t1 - t0, t2 - t1, t3 - t2, c1 - c0)

    def warm() -> bool:
        seen["snapshots0"] = net.snapshots_received  # the last call (True) starts the window
        return (
            net.ready
            and net.snapshots_received >= p["warm_snapshots"]
            and seen["entities"] >= n_entities
            and net.predictor is not None
        )

    frames = _frames(p, frame, warm)
    if frames is None:
        emit("error", error=f"game client not warmed up within {p['start_timeout']:g} s "
                            f"({net.snapshots_received} snapshots, {seen['entities']} entities)")  # fmt: skip
        return
    _report(frames, entities=seen["entities"], snapshots=net.snapshots_received - seen["snapshots0"],
            snapshot_bytes=net.snapshot_bytes)  # fmt: skip


def _bare_loop(sock: Any, p: Params) -> None:
    perf, cpu = time.perf_counter, time.thread_time
    state = {"seq": 0, "snapshots": 0, "size": 0}
    get, send = sock.get, sock.send

    def frame(i: int) -> tuple[float, ...]:
        c0 = cpu()
        t0 = perf()
        for packet in get():
            kind = packet.get("_g")
            if kind in ("S", "snap"):
                # "S" carries [w, ack, you(, in)], "snap" a map with "w".
                wire = packet.get("s")[0] if kind == "S" else packet.get("w")
                # The snapshot's tick (both wire forms), acknowledged so the server keeps sending deltas.
                tick = wire.get("tick") if isinstance(wire, dict) else wire[0] if wire else None
                send(_g="ack", t=tick)
                state["snapshots"] += 1
        t1 = perf()
        state["seq"] += 1
        send(_g="in", s=state["seq"], i=_keys(i))
        t2 = perf()
        c1 = cpu()
        return (t2 - t0, t1 - t0, t2 - t1, c1 - c0)

    def warm() -> bool:
        state["snapshots0"] = state["snapshots"]
        return state["snapshots"] >= p["warm_snapshots"]

    frames = _frames(p, frame, warm)
    if frames is None:
        emit("error", error=f"bare client not warmed up within {p['start_timeout']:g} s")
        return
    _report(frames, snapshots=state["snapshots"] - state["snapshots0"])


def _report(frames: list[tuple[float, ...]], **extra: Any) -> None:
    totals = [f[0] * 1000 for f in frames]
    parts = [sum(f[k] for f in frames) * 1000 / len(frames) for k in range(1, len(frames[0]))]
    emit("result", frames=len(frames), mean=sum(totals) / len(totals), p50=percentile(totals, 50),
         p99=percentile(totals, 99), max=max(totals), parts=parts, **extra)  # fmt: skip


# -- the hockey demo -------------------------------------------------------------------------------------


def hockey_server(p: Params) -> None:
    """The demo's server (a match that never ends, with the game-feel drill), a HockeyBot opponent in
    this process, and a LagProxy in front of the server for the measured window."""
    from demos.hockey.bot import HockeyBot
    from sprocket import Servo
    from sprocket.testing import LagProxy

    from .feel import drill_server_class

    game = drill_server_class()(Servo("127.0.0.1", 0, timeout=10.0)).start()
    bot = HockeyBot("127.0.0.1", game.port, name="bot", skill=1.0).start()
    lag, jitter = p["hockey_lag_ms"] / 1000, p["hockey_jitter_ms"] / 1000
    proxy = LagProxy("127.0.0.1", game.port, lag=lag, jitter=jitter, seed=3).start()
    emit("ready", port=proxy.port)
    thread = game._thread
    assert thread is not None
    joined = False
    deadline = time.monotonic() + p["timeout"]
    while time.monotonic() < deadline and thread.is_alive():
        if len(game.players) >= 2:
            joined = True
        elif joined:
            break  # the measured window has come and gone
        time.sleep(0.05)
    alive = thread.is_alive()
    bot.stop()
    proxy.close()
    game.stop()
    emit("result", alive=alive, ticks=game.stats.ticks, overruns=game.stats.overruns,
         snapshot_bytes=game.stats.mean_snapshot_bytes)  # fmt: skip


def hockey_client(p: Params) -> None:
    """One HockeyGame window (rendering, SDL dummy drivers, played by the game-feel striker) at 60 FPS;
    the GameClient calls timed one by one, and ``step()`` timed whole."""
    from demos.hockey.rules import Match, Puck

    from .feel import feel_game_class

    if not p["predict"]:
        Puck.predicted = False  # this process only: the puck is interpolated, as before world prediction
    game = feel_game_class()("127.0.0.1", p["port"], name="framecost")
    net = game.net
    perf, cpu = time.perf_counter, time.thread_time
    spent = {"poll": 0.0, "advance": 0.0, "entities": 0.0, "send_input": 0.0, "cpu": 0.0}

    def timed(name: str, call: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            c0, t0 = cpu(), perf()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] += perf() - t0
                spent["cpu"] += cpu() - c0

        return wrapper

    for name in ("poll", "advance", "entities", "send_input"):
        setattr(net, name, timed(name, getattr(net, name)))
    overlay_draw = game.overlay.draw
    overlay = {"t": 0.0}

    def timed_overlay(*args: Any) -> None:
        t0 = perf()
        overlay_draw(*args)
        overlay["t"] += perf() - t0

    game.overlay.draw = timed_overlay
    resim: list[int] = []
    seen = {"rewinds": 0}

    def frame(i: int) -> tuple[float, ...]:
        before = dict(spent)
        hooks, over = game.hook_time, overlay["t"]
        t0 = perf()
        game.step(DT_HOCKEY)
        total = perf() - t0
        parts = {k: spent[k] - before[k] for k in spent}
        world = getattr(net, "world", None)
        if world is not None and world.rewinds != seen["rewinds"]:
            seen["rewinds"] = world.rewinds
            resim.append(world.resimulated)
        layer = parts["poll"] + parts["advance"] + parts["entities"] + parts["send_input"]
        step_layer = total - (game.hook_time - hooks) - (overlay["t"] - over)
        return (layer, parts["poll"], parts["advance"] + parts["entities"], parts["send_input"], parts["cpu"],
                step_layer, game.hook_time - hooks, total)  # fmt: skip

    def warm() -> bool:
        match = game._find(Match)
        ready = match is not None and match.phase == "play" and net.snapshots_received >= p["warm_snapshots"]
        if p["predict"] and getattr(Puck, "predicted", False):  # (a game layer without world prediction: no)
            ready = ready and getattr(net, "world", None) is not None
        seen["snapshots0"] = net.snapshots_received
        return ready

    try:
        game.sprocket.wait_connected(10.0)
        frames = _frames(p, frame, warm)
    finally:
        game.close()
    if frames is None:
        emit("error", error=f"hockey window not in play within {p['start_timeout']:g} s")
        return
    _report(frames, snapshots=net.snapshots_received - seen["snapshots0"],
            resim_mean=sum(resim) / len(resim) if resim else math.nan,
            resim_max=max(resim) if resim else math.nan)  # fmt: skip


DT_HOCKEY = 1.0 / 60.0

ROLES = {
    ("server", "*"): server,
    ("client", "*"): client,
    ("hockey_server", "*"): hockey_server,
    ("hockey_client", "*"): hockey_client,
}


# -- runner side ---------------------------------------------------------------------------------------


def _one(impl: str, p: Params, mode: str) -> dict[str, Any]:
    with workers() as started:
        srv = Worker(MODULE, "server", impl, p)
        started.append(srv)
        port = srv.expect("ready", 20)["port"]
        cli = Worker(MODULE, "client", impl, {**p, "port": port, "mode": mode})
        started.append(cli)
        res = cli.expect("result", p["start_timeout"] + p["window"] + 30)
        cli.finish(10)
        sres = srv.expect("result", 20)
        srv.finish()
    res["server"] = sres
    return res


def _one_hockey(impl: str, p: Params, predict: bool) -> dict[str, Any]:
    with workers() as started:
        srv = Worker(MODULE, "hockey_server", impl, p)
        started.append(srv)
        port = srv.expect("ready", 20)["port"]
        cli = Worker(MODULE, "hockey_client", impl, {**p, "port": port, "predict": predict})
        started.append(cli)
        res = cli.expect("result", p["start_timeout"] + p["window"] + 30)
        cli.finish(10)
        sres = srv.expect("result", 20)
        srv.finish()
    res["server"] = sres
    return res


def run_hockey(impl: str, params: Params) -> dict[str, float]:
    """The demo's window with world prediction, then without, each in fresh processes (runner side)."""
    on = _one_hockey(impl, params, True)
    off = _one_hockey(impl, params, False)
    return {
        "game_mean_ms": on["mean"],
        "game_p50_ms": on["p50"],
        "game_p99_ms": on["p99"],
        "poll_ms": on["parts"][0],
        "interpolate_ms": on["parts"][1],
        "predict_send_ms": on["parts"][2],
        "game_cpu_ms": on["parts"][3],
        "step_layer_ms": on["parts"][4],
        "hooks_ms": on["parts"][5],
        "step_ms": on["parts"][6],
        "resim_ticks_mean": on["resim_mean"],
        "resim_ticks_max": on["resim_max"],
        "off_mean_ms": off["mean"],
        "off_p50_ms": off["p50"],
        "off_p99_ms": off["p99"],
        "world_prediction_ms": on["mean"] - off["mean"],
        "on_over_off": on["mean"] / off["mean"] if off["mean"] else float("nan"),
        "frames": float(on["frames"]),
        "server_overruns": float(on["server"]["overruns"] + off["server"]["overruns"]),
    }


def run_once(impl: str, params: Params) -> dict[str, float]:
    """Game loop, then bare loop, each in fresh processes (runner side); the hockey step: run_hockey."""
    if params.get("world") == "hockey":
        return run_hockey(impl, params)
    game = _one(impl, params, "game")
    bare = _one(impl, params, "bare")
    poll, interp, send = game["parts"][:3]
    return {
        "game_mean_ms": game["mean"],
        "game_p50_ms": game["p50"],
        "game_p99_ms": game["p99"],
        "game_over_bare": game["mean"] / bare["mean"] if bare["mean"] else float("nan"),
        "added_ms": game["mean"] - bare["mean"],
        "poll_ms": poll,
        "interpolate_ms": interp,
        "predict_send_ms": send,
        "bare_mean_ms": bare["mean"],
        "bare_p50_ms": bare["p50"],
        "bare_p99_ms": bare["p99"],
        "bare_get_ms": bare["parts"][0],
        "bare_send_ms": bare["parts"][1],
        "game_cpu_ms": game["parts"][3],
        "bare_cpu_ms": bare["parts"][2],
        "game_max_ms": game["max"],
        "bare_max_ms": bare["max"],
        "frames": float(game["frames"]),
        "entities_drawn": float(game["entities"]),
        "snapshots_per_s": game["snapshots"] / params["window"],
        "snapshot_bytes": game["snapshot_bytes"],
        "server_overruns": float(game["server"]["overruns"] + bare["server"]["overruns"]),
    }


if __name__ == "__main__":
    worker_main(ROLES)
