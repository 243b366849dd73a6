"""Capacity: how many connected clients one server keeps fed at 20 snapshots/s of a demo-sized world.

A step at N clients: the server (the same fixed-rate loop as the fan-out group, at 20 Hz with a
10-entity world) waits for N clients, then broadcasts for ``seconds``.  The clients live in
``hosts`` other processes, as lean hosts (see :mod:`benchmarks.lean`: one loop per process speaking the
library's own protocol, so that the clients' cost is not charged to the server).  A snapshot is on time
when it arrives within one period (50 ms) of its scheduled time; a step passes when at least
``pass_pct`` percent of all (snapshot, client) deliveries are on time.  The ramp goes up through
``ramp`` and stops at the first step that fails; the figure is the largest count that passed.
"""

from __future__ import annotations

import time
from typing import Any

from .common import BenchError, Params, emit, percentile, run_server_and_hosts, worker_main
from .fanout import server as fanout_server
from .lean import make_host

MODULE = "capacity"


def defaults(quick: bool) -> Params:
    return {
        "ramp": [100, 500] if quick else [100, 250, 500, 1000],
        "hz": 20,
        "seconds": 1.5 if quick else 3.0,
        "entities": 10,
        "hosts": 2,
        "pass_pct": 95.0,
        "timeout": 60.0,
    }


def host(p: Params) -> None:
    h = make_host(p["impl"], p["port"])
    n = p["n"]
    got = h.connect(n, timeout=60.0)
    if got < n:
        emit("error", error=f"only {got} of {n} {p['impl']} clients connected")
        return
    emit("connected", count=got)
    period_ms = 1e3 / p["hz"]
    latencies: list[float] = []
    on_time = 0
    ends: set[int] = set()
    deadline = time.monotonic() + p["seconds"] + p["timeout"]
    while len(ends) < n and time.monotonic() < deadline:
        batch = h.step(0.002)
        if not batch:
            continue
        now_ms = time.monotonic() * 1e3
        for index, fields in batch:
            if "end" in fields:
                ends.add(index)
                continue
            latency = now_ms - fields["t"] * 1e-3
            latencies.append(latency)
            if latency <= period_ms:
                on_time += 1
    emit(
        "result",
        received=len(latencies),
        on_time=on_time,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        finished=len(ends),
    )
    h.close()


ROLES = {("server", "*"): fanout_server, ("host", "*"): host}


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One step at ``params["n_clients"]`` in fresh processes (runner side)."""
    n = params["n_clients"]
    res, results = run_server_and_hosts(MODULE, impl, params, connect_timeout=90)
    expected = res["n_ticks"] * n
    on_time = sum(r["on_time"] for r in results)
    return {
        "on_time_pct": 100.0 * on_time / expected,
        "p99_ms": max(r["p99_ms"] for r in results),
        "server_cpu_pct": 100.0 * res["cpu"] / res["wall"],
        "server_cpu_user_pct": 100.0 * res["cpu_user"] / res["wall"],
        "server_cpu_sys_pct": 100.0 * res["cpu_sys"] / res["wall"],
    }


def run_ramp(impl: str, params: Params, log: Any = None) -> dict[str, float]:
    """Ramp up through ``params["ramp"]``; stop at the first failing step (runner side)."""
    best = 0
    out: dict[str, float] = {"max_clients": 0.0}  # first, so that the progress line shows it
    for n in params["ramp"]:
        try:
            step = run_once(impl, {**params, "n_clients": n})
        except BenchError as exc:
            if log is not None:
                log(f"    capacity {impl} at {n}: {str(exc).splitlines()[0]}")
            step = {"on_time_pct": 0.0, "p99_ms": float("nan"), "server_cpu_pct": float("nan")}
        out[f"on_time_pct@{n}"] = step["on_time_pct"]
        out[f"server_cpu_pct@{n}"] = step["server_cpu_pct"]
        if step["on_time_pct"] < params["pass_pct"]:
            break
        best = n
    out["max_clients"] = float(best)
    return out


if __name__ == "__main__":
    worker_main(ROLES)
