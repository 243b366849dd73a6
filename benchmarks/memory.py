"""Memory: the server's resident memory per connected idle client.

The server (each library's ordinary server object, polled in a loop) first takes ``warm`` clients, so
one-time costs of the first connections (lazy imports, first allocations) are out of the figure, then
reads its VmRSS from /proc/self/status (after ``gc.collect()`` and a settle time); then ``n`` more idle
clients connect from another process (a lean host, see :mod:`benchmarks.lean`) and it reads VmRSS again.
Figure: (after - before) / n, in KiB.  RSS moves in 4 KiB pages and Python's allocator in 1 MiB arenas,
so expect about +-2 KiB of noise at n = 500 (+-5 KiB at the quick run's 200).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .common import Params, Worker, emit, rss_kb, wait_for, worker_main, workers
from .fanout import SERVERS
from .lean import make_host

MODULE = "memory"


def defaults(quick: bool) -> Params:
    return {"warm": 10, "n": 200 if quick else 500, "settle": 1.0 if quick else 1.5, "timeout": 60.0}


def server(p: Params) -> None:
    side: Any = SERVERS[p["impl"]]()
    emit("ready", port=side.port)
    if not wait_for(lambda: side.count() >= p["warm"], p["timeout"], side.poll, 0.01):
        emit("error", error=f"only {side.count()} of {p['warm']} warm-up clients connected")
        return
    wait_for(lambda: False, p["settle"], side.poll, 0.01)
    gc.collect()
    before = rss_kb()
    emit("base", rss_kb=before)
    total = p["warm"] + p["n"]
    if not wait_for(lambda: side.count() >= total, p["timeout"], side.poll, 0.01):
        emit("error", error=f"only {side.count()} of {total} clients connected")
        return
    wait_for(lambda: False, p["settle"], side.poll, 0.01)
    gc.collect()
    after = rss_kb()
    emit("result", before_kb=before, after_kb=after, clients=side.count() - p["warm"])
    side.close()


def host(p: Params) -> None:
    h = make_host(p["impl"], p["port"])
    n = p["n"]
    got = h.connect(n, timeout=60.0)
    if got < n:
        emit("error", error=f"only {got} of {n} {p['impl']} clients connected")
        return
    emit("connected", count=got)
    deadline = time.monotonic() + p["timeout"]
    while h.closed() < n and time.monotonic() < deadline:  # idle until the server goes away
        h.step(0.05)
    h.close()


ROLES = {("server", "*"): server, ("host", "*"): host}


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One measurement in fresh processes (runner side)."""
    with workers() as started:
        srv = Worker(MODULE, "server", impl, params)
        started.append(srv)
        port = srv.expect("ready", 20)["port"]
        warm = Worker(MODULE, "host", impl, {**params, "n": params["warm"], "port": port})
        started.append(warm)
        warm.expect("connected", 60)
        srv.expect("base", 60)
        load = Worker(MODULE, "host", impl, {**params, "port": port})
        started.append(load)
        load.expect("connected", 90)
        res = srv.expect("result", 90)
        for worker in (load, warm, srv):
            worker.finish(10)
    per_client = (res["after_kb"] - res["before_kb"]) / res["clients"]
    return {"kib_per_client": per_client, "server_rss_mib": res["after_kb"] / 1024}


if __name__ == "__main__":
    worker_main(ROLES)
