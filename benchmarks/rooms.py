"""Rooms (issue 13): how many two-player hockey rooms one RoomServer process runs at 60 Hz.

A step at N rooms: a server process runs a :class:`~sprocket.game.RoomServer` with one room type, the
demo's ``demos.hockey.server.HockeyServer`` (unchanged: 60 ticks/s, 30 snapshots/s), on 127.0.0.1:0.
``hosts`` other processes hold the 2N players as lean clients (:class:`benchmarks.lean.SprocketHost`:
the library's own sans-I/O protocol object per connection, one ``selectors`` loop per process, so the
clients' cost is not charged to the server).  Each client quick-joins ``"hockey"`` (the lobby fills the
rooms two by two), says it is ready (the match starts and stays in play), sends an input
``{"x", "y"}`` at 60 Hz and acknowledges every snapshot, as ``GameClient`` does, without decoding it.

Once every room is full, the server lets one second pass, then measures ``seconds``: per room, the
ticks run, the **late** ones (begun more than one tick interval after their scheduled time) and the
**skipped** ones (the room fell more than ``max_catch_up`` ticks behind), from
:meth:`RoomServer.tick_stats`; the tick durations of the window (p50, p99 over every room's ticks);
the process's CPU time (all threads) over the window; VmRSS with the rooms full minus VmRSS before the
first client, after ``gc.collect()``.  Figures: late ticks in % of tick slots, tick p50/p99 in ms, server
CPU per room in % of one core, RSS per room in KiB.

The ramp goes through ``ramp`` and stops after the first step with late ticks >= 1 % or tick p99 >= the
tick interval (16.7 ms); ``max_rooms`` is the largest step that passed.

Baseline in the same run, at each step: the same N matches as N separate ``HockeyServer`` s in the
same one process (each its own Servo, port, I/O thread and tick thread, as a game would host them
without rooms), the same lean clients connecting straight to their match's port.  Ratios are rooms ÷
separate servers, per step.  Sprocket only (no baseline library has rooms).
"""

from __future__ import annotations

import gc
import itertools
import math
import time
from typing import Any

from .common import (
    BenchError,
    Params,
    Worker,
    cpu_seconds,
    emit,
    percentile,
    rss_kb,
    sleep_until,
    split,
    worker_main,
    workers,
)
from .lean import SprocketHost

MODULE = "rooms"
IMPLS = ("sprocket",)
ROOM_TYPE = "hockey"


def defaults(quick: bool) -> Params:
    return {
        "ramp": [8, 32] if quick else [8, 16, 24, 32, 40, 48, 56, 64],
        "seconds": 2.0 if quick else 5.0,
        "hosts": 2,
        "late_limit_pct": 1.0,
        "baseline": True,
        "compare_at": 8 if quick else 32,
        "small_check": True,
        "timeout": 60.0,
    }


# -- the server process ----------------------------------------------------------------------------------


def _tick_window(stats: Any, ticks_before: int) -> list[float]:
    """The durations (s) of the ticks a server ran since it had run ``ticks_before`` (at most 600)."""
    times = list(stats.tick_times)
    count = min(len(times), stats.ticks - ticks_before)
    return times[len(times) - count :] if count > 0 else []


def server(p: Params) -> None:
    from demos.hockey.server import HockeyServer
    from sprocket import Servo
    from sprocket.game import RoomServer, RoomType

    if not p["small_check"]:  # "before": every world checked field by field, as before the small-world path
        from sprocket.game import snapshot

        snapshot._SMALL_GROUP = 0
    n = int(p["n_rooms"])
    trace: list[tuple[float, float, float]] = []
    gc.collect()
    rss_before = rss_kb()
    if p["mode"] == "rooms":
        rooms = RoomServer(
            {ROOM_TYPE: RoomType(HockeyServer, max_players=2)}, Servo("127.0.0.1", 0), max_rooms=n + 8
        ).start()
        emit("ready", ports=[rooms.port])
        original = rooms.step

        def traced(now: float | None = None) -> float:  # each loop iteration: when, how long, wait asked
            began = time.monotonic()
            wait = original(now)
            trace.append((began, time.monotonic() - began, wait))
            return wait

        rooms.step = traced  # type: ignore[method-assign]

        def games() -> list[Any]:
            return [g for g in (rooms.room_server(r.code) for r in rooms.rooms()) if g is not None]

        def full() -> bool:
            return sum(1 for r in rooms.rooms() if r.players == 2) >= n

        def close() -> None:
            rooms.close()
    else:
        servers = [HockeyServer(Servo("127.0.0.1", 0)).start() for _ in range(n)]
        emit("ready", ports=[s.port for s in servers])

        def games() -> list[Any]:
            return servers

        def full() -> bool:
            return all(len(s.players) == 2 for s in servers)

        def close() -> None:
            for s in servers:
                s.close()

    try:
        deadline = time.monotonic() + float(p["timeout"])
        while not full():
            if time.monotonic() > deadline:
                emit("error", error=f"{p['mode']}: the {n} rooms did not fill in {p['timeout']} s")
                return
            time.sleep(0.05)  # pacing a look at the rooms, not synchronisation
        settle = time.monotonic() + 1.0
        sleep_until(settle)
        playing = games()
        before = [(g.stats.ticks, g.stats.late_ticks, g.stats.skipped_ticks) for g in playing]
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        sleep_until(wall0 + float(p["seconds"]))
        cpu1, wall1 = cpu_seconds(), time.monotonic()
        ticks = late = skipped = 0
        durations: list[float] = []
        phases: dict[str, int] = {}
        for game, (t0, l0, s0) in zip(playing, before, strict=True):
            stats = game.stats
            ticks += stats.ticks - t0
            late += stats.late_ticks - l0
            skipped += stats.skipped_ticks - s0
            durations += _tick_window(stats, t0)
            phase = getattr(getattr(game, "match", None), "phase", "?")
            phases[phase] = phases.get(phase, 0) + 1
        gc.collect()
        rss_after = rss_kb()
        wall = wall1 - wall0
        slots = ticks + skipped
        # The RoomServer's loop (rooms only): iterations, their durations, and how much later than asked
        # it woke from each wait (the machine's other work shows up here).
        window = [t for t in trace if wall0 <= t[0] <= wall1]
        steps = [t[1] * 1e3 for t in window]
        oversleep = [(b[0] - a[0] - a[1] - a[2]) * 1e3 for a, b in itertools.pairwise(window)]
        emit(
            "result",
            rooms=len(playing),
            late_pct=100.0 * (late + skipped) / slots if slots else math.nan,
            skipped=skipped,
            tick_p50_ms=percentile(durations, 50) * 1e3,
            tick_p99_ms=percentile(durations, 99) * 1e3,
            ticks_per_room_s=ticks / len(playing) / wall,
            cpu_pct=100.0 * (cpu1 - cpu0) / wall,
            cpu_per_room_pct=100.0 * (cpu1 - cpu0) / wall / len(playing),
            rss_per_room_kib=(rss_after - rss_before) / len(playing),
            phases=phases,
            loop_hz=len(window) / wall,
            loop_step_p50_ms=percentile(steps, 50),
            loop_step_p99_ms=percentile(steps, 99),
            wake_late_p99_ms=percentile(oversleep, 99),
            wake_late_max_ms=max(oversleep, default=math.nan),
        )
    finally:
        close()


# -- the client processes ----------------------------------------------------------------------------------


def host(p: Params) -> None:
    from sprocket.game.messages import ACK, GAME_FIELD, HELLO, INPUT, L_QUICK, SNAP, SNAPSHOT
    from sprocket.protocol import data_frame

    ports: list[int] = p["ports"]
    first: int = p["first"]  # this host's first client's number among all the step's clients
    n = int(p["n"])
    rooms_mode = p["mode"] == "rooms"
    # Each client connects to its match's port (separate servers) or to the one RoomServer; one lean host
    # (one selector) holds them all.
    h = SprocketHost(ports[0])
    deadline = time.monotonic() + float(p["timeout"])
    for number in range(first, first + n):
        h.addr = ("127.0.0.1", ports[0] if rooms_mode else ports[number // 2])
        h.start(1)
        if h.started % 32 == 0 or number == first + n - 1:  # in batches: a Servo takes 64 handshakes per IP
            while h.connected() < h.started and time.monotonic() < deadline:
                h.step(0.002)
    if h.connected() < n:
        emit("error", error=f"only {h.connected()} of {n} clients connected")
        return
    emit("connected", count=n)

    def send(k: int, fields: dict[str, Any]) -> None:
        c = h.conns[k]
        if c.conn is not None and c.conn.is_open:
            c.conn.send_data(data_frame(h.codec.encode(fields)))
            h._flush(c)

    playing = [False] * n
    seq = [0] * n
    snapshots = 0
    if rooms_mode:
        for k in range(n):
            send(k, {GAME_FIELD: L_QUICK, "type": ROOM_TYPE})
    period = 1.0 / 60.0
    next_input = time.monotonic()
    next_ready = next_input
    end = time.monotonic() + float(p["run_for"])
    while time.monotonic() < end:
        for k, fields in h.step(max(0.0, min(next_input - time.monotonic(), 0.005))):
            kind = fields.get(GAME_FIELD)
            if kind in (SNAP, SNAPSHOT):
                snapshots += 1
                # "S" carries [w, ack, you(, in)], "snap" a map; w is the compact list or the verbose map.
                body = fields.get("s")
                wire = body[0] if kind == SNAP and isinstance(body, list) and body else fields.get("w")
                tick = wire.get("tick") if isinstance(wire, dict) else wire[0] if wire else None
                send(k, {GAME_FIELD: ACK, "t": tick})
            elif kind == HELLO:
                playing[k] = True
                send(k, {"ready": True})
        now = time.monotonic()
        if now >= next_ready:  # ready again every 2 s: a match that ended ("over") starts again
            next_ready = now + 2.0
            for k in range(n):
                if playing[k]:
                    send(k, {"ready": True})
        if now >= next_input:
            behind = math.floor((now - next_input) / period)
            next_input += period * (1 + (behind if behind > 5 else 0))  # far behind: skip, do not burst
            t = now * 2.0
            for k in range(n):
                if playing[k]:
                    seq[k] += 1
                    phase = k * 0.7
                    inp = {"x": round(math.sin(t + phase), 3), "y": round(math.cos(1.3 * t + phase), 3)}
                    send(k, {GAME_FIELD: INPUT, "s": seq[k], "i": inp})
    emit("result", playing=sum(playing), snapshots=snapshots, inputs=sum(seq))
    h.close()


ROLES = {("server", "*"): server, ("host", "*"): host}


# -- the runner side -----------------------------------------------------------------------------------------


def run_once(params: Params) -> dict[str, float]:
    """One step (``params["n_rooms"]`` rooms, ``params["mode"]``) in fresh processes (runner side)."""
    n = int(params["n_rooms"])
    with workers() as started:
        srv = Worker(MODULE, "server", "sprocket", params)
        started.append(srv)
        ports = srv.expect("ready", 30)["ports"]
        run_for = float(params["timeout"]) + float(params["seconds"]) + 2.0
        counts = split(2 * n, int(params["hosts"]))
        firsts = [sum(counts[:i]) for i in range(len(counts))]
        hosts = [
            Worker(
                MODULE,
                "host",
                "sprocket",
                {**params, "ports": ports, "n": count, "first": first, "run_for": run_for},
            )
            for count, first in zip(counts, firsts, strict=True)
            if count
        ]
        started.extend(hosts)
        for h in hosts:
            h.expect("connected", float(params["timeout"]))
        res = srv.expect("result", float(params["timeout"]) + float(params["seconds"]) + 30)
        srv.finish(30)  # it closes its servers and exits (a profiler writes its profile then)
        for worker in hosts:
            worker.kill()  # the hosts run for a fixed time; the measurement is over
    if res["rooms"] != n:
        raise BenchError(f"{n} rooms wanted, {res['rooms']} measured")
    return {k: float(v) for k, v in res.items() if isinstance(v, (int, float)) and k != "rooms"}


def run_ramp(impl: str, params: Params, log: Any = None) -> dict[str, float]:
    """Ramp up through ``params["ramp"]``, rooms then the separate-servers baseline at each step; stop
    after the first step the RoomServer fails (runner side)."""
    out: dict[str, float] = {"max_rooms": 0.0}
    best = 0
    for n in params["ramp"]:
        modes = ("rooms", "servers") if params["baseline"] else ("rooms",)
        step: dict[str, dict[str, float]] = {}
        for mode in modes:
            try:
                step[mode] = run_once({**params, "n_rooms": n, "mode": mode})
            except BenchError as exc:
                if log is not None:
                    log(f"    rooms {mode} at {n}: {str(exc).splitlines()[0]}")
                step[mode] = {"late_pct": math.nan, "tick_p99_ms": math.nan}
        if n == params["compare_at"]:  # the tick path before its small-world check, same step, same run
            try:
                before = run_once({**params, "n_rooms": n, "mode": "rooms", "small_check": False})
            except BenchError as exc:
                before = {}
                if log is not None:
                    log(f"    rooms before at {n}: {str(exc).splitlines()[0]}")
            for key in ("cpu_per_room_pct", "tick_p50_ms", "late_pct"):
                value = before.get(key, math.nan)
                out[f"before_{key}@{n}"] = value
                out[f"after_before_{key}@{n}"] = (
                    step["rooms"].get(key, math.nan) / value if value else math.nan
                )
            if log is not None:
                log(f"    {n} rooms, tick path before the small-world check: CPU/room "
                    f"{before.get('cpu_per_room_pct', math.nan):.2f} %, tick p50 "
                    f"{before.get('tick_p50_ms', math.nan):.3f} ms")  # fmt: skip
        rooms = step["rooms"]
        for key in ("late_pct", "tick_p50_ms", "tick_p99_ms", "cpu_per_room_pct", "rss_per_room_kib"):
            out[f"{key}@{n}"] = rooms.get(key, math.nan)
            if "servers" in step:
                base = step["servers"].get(key, math.nan)
                out[f"servers_{key}@{n}"] = base
                out[f"ratio_{key}@{n}"] = rooms.get(key, math.nan) / base if base else math.nan
        if log is not None:
            base = step.get("servers", {})

            def f(values: dict[str, float], key: str, digits: int = 2) -> str:
                return f"{values.get(key, math.nan):.{digits}f}"

            log(f"    {n} rooms: late {f(rooms, 'late_pct')} % (separate servers {f(base, 'late_pct')} %), "
                f"tick p50/p99 {f(rooms, 'tick_p50_ms', 3)}/{f(rooms, 'tick_p99_ms', 3)} ms, CPU/room "
                f"{f(rooms, 'cpu_per_room_pct')} % (separate {f(base, 'cpu_per_room_pct')} %), "
                f"RSS/room {f(rooms, 'rss_per_room_kib', 0)} KiB; loop {f(rooms, 'loop_hz', 0)}/s, step p99 "
                f"{f(rooms, 'loop_step_p99_ms')} ms, woke late p99/max {f(rooms, 'wake_late_p99_ms', 1)}/"
                f"{f(rooms, 'wake_late_max_ms', 1)} ms")  # fmt: skip
        interval_ms = 1e3 / 60.0
        passed = (
            rooms.get("late_pct", math.nan) < params["late_limit_pct"]
            and rooms.get("tick_p99_ms", math.nan) < interval_ms
        )
        if not passed:
            break
        best = n
    out["max_rooms"] = float(best)
    return out


if __name__ == "__main__":
    worker_main(ROLES)
