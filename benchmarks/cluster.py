"""Cluster: matchmaking through Redis over 3 node processes, against one RoomServer process, same run.

Each run starts a real ``redis-server`` (127.0.0.1, a free port, no persistence: tests/cluster/
redis_server.py), three nodes (``python -m sprocket.game.serve tests.cluster.games:Duel --redis URL``,
each its own process) and, for the baseline, one plain RoomServer process with the same room type and no
Redis.  The load is ``clients`` lean lobby clients (tests/cluster/crowd.py: sprocket's own sans-I/O
protocol objects on one selector thread in the runner's process), each connecting to one node (round
robin; the baseline's all to its one process) and quick-joining a two-player room; a client whose room is
on another node follows the ``go`` to it and presents its reservation there, as a GameClient's Lobby does.
All start at once (the nodes' 64 pending handshakes per address are retried after 50 ms, as a crowd from
many addresses would not need).  Measured, for the cluster and the single process:

* seated per second: clients / (first connect -> last ``room``), end to end;
* time to seat, p50 / p99: a client's connect -> its ``room`` (redirect included);
* time to seat one client at a time (``solo`` clients, each through the next node): the unloaded cost of
  a request, its Redis round trips and, for two thirds of them, the redirect;
* rooms per node, max and min (the cluster's balance);
* memory per node: each node process's RSS once everyone is seated (MB, the mean over nodes).

And the cluster ÷ single-process ratio of the time to seat (p50), taken in the same run: the core
engineer compares ratios, not absolute times, on a shared machine.  Reported, never asserted.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from typing import Any

from .common import BenchError, Params, percentile

MODULE = "cluster"
IMPLS = ("sprocket",)
SECRET = "benchmark-cluster-secret-0123"
_SINGLE = (
    "import sys\n"
    "from sprocket.game import RoomServer\n"
    "from tests.cluster.games import Duel\n"
    "server = RoomServer({'duel': Duel}, host='127.0.0.1', port=0, max_rooms=1000)\n"
    "print(f'listening on 127.0.0.1:{server.port},', flush=True)\n"
    "server.run()\n"
)


def defaults(quick: bool) -> Params:
    return {"clients": 100 if quick else 300, "solo": 10 if quick else 30, "nodes": 3, "timeout": 60.0}


def _root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spawn(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "SPROCKET_CLUSTER_SECRET": SECRET, "PYTHONPATH": _root()}
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, env=env, cwd=_root(), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on 127.0.0.1:" not in line:
        proc.kill()
        raise BenchError(f"a node did not start: {line!r}")
    return proc, int(line.split("listening on 127.0.0.1:")[1].split(",")[0])


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _load(ports: list[int], clients: int, timeout: float) -> dict[str, float]:
    from tests.cluster.crowd import LobbyCrowd

    crowd = LobbyCrowd()
    try:
        start = time.monotonic()
        for i, port in enumerate(ports):
            crowd.add(
                clients // len(ports) + (1 if i < clients % len(ports) else 0), ("127.0.0.1", port), "duel"
            )
        deadline = start + timeout
        while len(crowd.seated()) < clients:
            if time.monotonic() > deadline:
                raise BenchError(f"{len(crowd.seated())} of {clients} seated within {timeout:g} s")
            time.sleep(0.01)  # the benchmark's own wait for the crowd, with a deadline
        seat_s = [c.seated_at - c.started for c in crowd.clients if c.seated_at is not None]
        last = max(c.seated_at for c in crowd.clients if c.seated_at is not None)
        rooms = collections.Counter(c.seats[-1] for c in crowd.clients)
        per_node = collections.Counter(port for _, port in rooms)
        return {
            "seated_per_s": clients / (last - start),
            "seat_p50_ms": percentile(seat_s, 50) * 1000,
            "seat_p99_ms": percentile(seat_s, 99) * 1000,
            "rooms_max": float(max(per_node.values())),
            "rooms_min": float(min(per_node.get(p, 0) for p in ports)),
            "over_capacity": float(sum(1 for n in rooms.values() if n > 2)),
            "redirects": float(sum(c.redirects for c in crowd.clients)),
        }
    finally:
        crowd.close()


def _solo(ports: list[int], clients: int, timeout: float) -> dict[str, float]:
    """One client at a time (each through the next node, round robin): the unloaded time to seat."""
    from tests.cluster.crowd import LobbyCrowd

    crowd = LobbyCrowd()
    try:
        for i in range(clients):
            (lean,) = crowd.add(1, ("127.0.0.1", ports[i % len(ports)]), "duel")
            deadline = time.monotonic() + timeout
            while lean.seated_at is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"a lone client was not seated within {timeout:g} s")
                time.sleep(0.0005)  # the benchmark's own wait, with a deadline
        seat_s = [c.seated_at - c.started for c in crowd.clients if c.seated_at is not None]
        return {"solo_p50_ms": percentile(seat_s, 50) * 1000}
    finally:
        crowd.close()


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One measurement: the cluster, then the single process, each with fresh processes."""
    sys.path.insert(0, _root())
    from tests.cluster.redis_server import RedisServer, available

    if not available():
        raise BenchError(
            "redis-server or the redis package is missing (apt-get install redis-server; "
            "pip install 'sprocket[redis]')"
        )
    redis_server = RedisServer().start()
    procs: list[subprocess.Popen[str]] = []
    try:
        ports = []
        for i in range(params["nodes"]):
            proc, port = _spawn(
                [
                    "-m",
                    "sprocket.game.serve",
                    "tests.cluster.games:Duel",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--redis",
                    redis_server.url,
                    "--node-id",
                    f"node{i}",
                    "--room-type",
                    "duel",
                    "--max-rooms",
                    "1000",
                ]
            )
            procs.append(proc)
            ports.append(port)
        db = redis_server.client()
        deadline = time.monotonic() + 10
        while db.scard("sprocket:nodes") < params["nodes"]:
            if time.monotonic() > deadline:
                raise BenchError("the nodes did not register in Redis")
            time.sleep(0.05)
        cluster = _load(ports, params["clients"], params["timeout"])
        cluster.update(_solo(ports, params["solo"], params["timeout"]))
        cluster["node_rss_mb"] = sum(_rss_mb(p.pid) for p in procs) / len(procs)
    finally:
        _stop(procs)
        redis_server.close()
    proc, port = _spawn(["-c", _SINGLE])
    try:
        single = _load([port], params["clients"], params["timeout"])
        single.update(_solo([port], params["solo"], params["timeout"]))
        single["node_rss_mb"] = _rss_mb(proc.pid)
    finally:
        _stop([proc])
    out = {f"{k}@cluster": v for k, v in cluster.items()}
    out.update(
        {f"{k}@single": v for k, v in single.items() if not k.startswith("rooms_") and k != "redirects"}
    )
    out["seat_p50_ratio"] = cluster["seat_p50_ms"] / single["seat_p50_ms"]
    out["seat_p99_ratio"] = cluster["seat_p99_ms"] / single["seat_p99_ms"]
    out["solo_p50_ratio"] = cluster["solo_p50_ms"] / single["solo_p50_ms"]
    return out


def rows(params: Params) -> list[Any]:
    """The report's lines for this group (benchmarks/report.py calls this)."""
    from .report import Row

    n = params["clients"]

    def row(label: str, metric: str, unit: str, digits: int = 1) -> Row:
        return Row("cluster", label, metric, unit, digits, baselines=False)

    return [
        row(
            f"seated per second, 3 nodes + Redis ({n} lean clients quick-joining 2-player rooms)",
            "seated_per_s@cluster",
            "/s",
        ),
        row("seated per second, one RoomServer process (no Redis)", "seated_per_s@single", "/s"),
        row("time to seat (connect -> room, redirect included), p50, cluster", "seat_p50_ms@cluster", "ms"),
        row("time to seat, p99, cluster", "seat_p99_ms@cluster", "ms"),
        row("time to seat, p50, one process", "seat_p50_ms@single", "ms"),
        row("time to seat, p99, one process", "seat_p99_ms@single", "ms"),
        row("time to seat, p50, cluster ÷ one process (same run)", "seat_p50_ratio", "x", 2),
        row("time to seat, p99, cluster ÷ one process (same run)", "seat_p99_ratio", "x", 2),
        row(
            f"time to seat, one client at a time ({params['solo']}), p50, cluster",
            "solo_p50_ms@cluster",
            "ms",
            2,
        ),
        row("time to seat, one client at a time, p50, one process", "solo_p50_ms@single", "ms", 2),
        row("time to seat, one client at a time, p50, cluster ÷ one process", "solo_p50_ratio", "x", 2),
        row("rooms per node, max", "rooms_max@cluster", "rooms", 0),
        row("rooms per node, min", "rooms_min@cluster", "rooms", 0),
        row("rooms over capacity (must be 0)", "over_capacity@cluster", "rooms", 0),
        row("clients sent to another node (go + seat)", "redirects@cluster", "clients", 0),
        row("memory per node (RSS, mean of 3), cluster", "node_rss_mb@cluster", "MB"),
        row("memory of the one process", "node_rss_mb@single", "MB"),
    ]
