"""Fan-out: the server broadcasts a 100-entity world state (``[id, x, y, vx, vy]`` each) at 60 Hz.

One server process; the clients live in two other processes (N/2 real clients each, through each
library's public client API), polling every client in a loop with a short sleep.

The server waits until every client is connected, then runs a fixed-rate loop: sleep until tick k is
due, poll, send ``{tick, t, ents}`` where ``t`` is the tick's *scheduled* time (``time.monotonic()``,
shared by every process on Linux, as integer microseconds so that PodSixNet's 32-bit floats cannot blur
it).  The states are computed before the loop, so the server's CPU time
is the networking alone.  How each library broadcasts, idiomatically:

* sprocket: ``servo.sendall(**state)`` (encoded once, fanned out by the I/O thread);
* raw: ``server.sendall(**state)`` (encoded once, fanned out by the writer thread);
* PodSixNet: ``channel.Send(state)`` for every channel (it has no broadcast, so it encodes per client),
  then ``server.Pump()``.

Figures: delivery latency (receive time - scheduled time) p50/p99; late deliveries (later than one tick
period, 16.7 ms, or missing) in percent of ticks x clients; late server ticks (the loop began a tick
more than one period after it was due) in percent of ticks; the server's CPU time (process CPU, every
thread; user and system apart too) in percent of one core over the broadcast window; and, to tell a
slow server from slow clients, the client processes' CPU (summed, in percent of one core).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from .common import (
    Params,
    cpu_seconds,
    cpu_split,
    emit,
    load_podsixnet,
    percentile,
    run_server_and_hosts,
    sleep_until,
    snapshot_state,
    wait_for,
    worker_main,
)

MODULE = "fanout"


def defaults(quick: bool) -> Params:
    return {
        "client_counts": [8, 64] if quick else [8, 32, 64],
        "hz": 60,
        "seconds": 2.0 if quick else 5.0,
        "entities": 100,
        "hosts": 2,
        "poll_sleep": 0.0005,
        "timeout": 60.0,
    }


# -- the server ----------------------------------------------------------------------------------------


class _ServerSide:
    """What the tick loop needs from a library's server: a client count, a poll and a broadcast."""

    def count(self) -> int:
        raise NotImplementedError

    def poll(self) -> None:
        raise NotImplementedError

    def broadcast(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SprocketServer(_ServerSide):
    def __init__(self) -> None:
        from sprocket import Servo

        self.servo = Servo("127.0.0.1", 0)
        self.port = self.servo.port

    def count(self) -> int:
        return len(self.servo.clients)

    def poll(self) -> None:
        self.servo.get()

    def broadcast(self, state: dict[str, Any]) -> None:
        self.servo.sendall(**state)

    def close(self) -> None:
        self.servo.close()


class _RawServer(_ServerSide):
    def __init__(self) -> None:
        from .raw import RawServer

        self.server = RawServer("127.0.0.1", 0)
        self.port = self.server.port

    def count(self) -> int:
        return self.server.client_count

    def poll(self) -> None:
        self.server.get()

    def broadcast(self, state: dict[str, Any]) -> None:
        self.server.sendall(**state)

    def close(self) -> None:
        self.server.close()


class _PodSixNetServer(_ServerSide):
    def __init__(self) -> None:
        load_podsixnet()
        from PodSixNet.Channel import Channel
        from PodSixNet.Server import Server

        self.server = Server(channelClass=Channel, localaddr=("127.0.0.1", 0), listeners=socket.SOMAXCONN)
        self.port = self.server.socket.getsockname()[1]

    def count(self) -> int:
        return len(self.server.channels)

    def poll(self) -> None:
        self.server.Pump()

    def broadcast(self, state: dict[str, Any]) -> None:
        message = {"action": "state", **state}
        for channel in self.server.channels:
            channel.Send(message)
        self.server.Pump()

    def close(self) -> None:
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            self.server.Pump()
            time.sleep(0.001)
        for channel in list(self.server.channels):
            channel.close()
        self.server.close()


SERVERS: dict[str, type[_ServerSide]] = {
    "sprocket": _SprocketServer,
    "raw": _RawServer,
    "podsixnet": _PodSixNetServer,
}


def server(p: Params) -> None:
    side: Any = SERVERS[p["impl"]]()
    emit("ready", port=side.port)
    if not wait_for(lambda: side.count() >= p["n_clients"], p["timeout"], side.poll, 0.01):
        emit("error", error=f"only {side.count()} of {p['n_clients']} clients connected")
        return
    period = 1.0 / p["hz"]
    n_ticks = round(p["seconds"] * p["hz"])
    states = [
        {"tick": k, "t": 0, "ents": snapshot_state(k, p["entities"])} for k in range(n_ticks)
    ]  # made before the loop: the CPU time measured below is the networking only
    wait_for(lambda: False, 0.5, side.poll, 0.005)  # let the last handshakes finish (PodSixNet needs Pump)
    t0 = time.monotonic() + 0.05
    late_starts = 0
    cpu0 = cpu_seconds()
    user0, sys0 = cpu_split()
    for k in range(n_ticks):
        due = t0 + k * period
        sleep_until(due)
        if time.monotonic() - due > period:
            late_starts += 1
        side.poll()
        state = states[k]
        state["t"] = round(due * 1e6)  # integer microseconds: exact in every codec
        side.broadcast(state)
    sleep_until(t0 + n_ticks * period)
    cpu = cpu_seconds() - cpu0
    user1, sys1 = cpu_split()
    wall = n_ticks * period
    side.broadcast({"tick": -1, "t": 0, "ents": [], "end": n_ticks})
    emit(
        "result",
        cpu=cpu,
        cpu_user=user1 - user0,
        cpu_sys=sys1 - sys0,
        wall=wall,
        n_ticks=n_ticks,
        late_starts=late_starts,
    )
    wait_for(lambda: False, 0.3, side.poll, 0.005)  # let the end marker go out
    side.close()


# -- the client hosts ----------------------------------------------------------------------------------


def host_sprocket(p: Params) -> None:
    from sprocket import Sprocket

    clients = [Sprocket("127.0.0.1", p["port"]) for _ in range(p["n"])]
    if not wait_for(lambda: all(c.connected for c in clients), 30.0, lambda: None, 0.01):
        emit("error", error="sprocket clients did not all connect")
        return
    emit("connected")
    gets = [c.get for c in clients]

    def receive(i: int) -> list[tuple[Any, float]]:
        return [(pk.get("end"), pk.t) for pk in gets[i]()]

    _client_loop(len(clients), receive, p)
    for c in clients:
        c.close()


def host_raw(p: Params) -> None:
    from .raw import RawClient

    clients = [RawClient("127.0.0.1", p["port"]) for _ in range(p["n"])]
    emit("connected")
    gets = [c.get for c in clients]

    def receive(i: int) -> list[tuple[Any, float]]:
        return [(d.get("end"), d["t"]) for d in gets[i]()]

    _client_loop(len(clients), receive, p)
    for c in clients:
        c.close()


def host_podsixnet(p: Params) -> None:
    load_podsixnet()
    from PodSixNet.asyncwrapper import poll
    from PodSixNet.EndPoint import EndPoint

    shared: dict[int, Any] = {}  # one asyncore map: one select() per round for all the host's clients
    clients = [EndPoint(("127.0.0.1", p["port"]), map=shared) for _ in range(p["n"])]
    for ep in clients:
        ep.DoConnect()

    def pump() -> None:
        poll(0.0, shared)

    if not wait_for(lambda: all(ep.isConnected for ep in clients), 30.0, pump, 0.01):
        emit("error", error="PodSixNet clients did not all connect")
        return
    emit("connected")
    for ep in clients:
        ep.queue = []

    def receive(i: int) -> list[tuple[Any, float]]:
        if i == 0:
            pump()
        ep = clients[i]
        items, ep.queue = ep.queue, []
        return [(d.get("end"), d["t"]) for d in items if d.get("action") == "state"]

    _client_loop(len(clients), receive, p)
    for ep in clients:
        ep.close()


def _client_loop(n: int, receive: Any, p: Params) -> None:
    """Poll every client until each has seen the end marker (or time runs out); report latencies."""
    latencies: list[float] = []
    received = 0
    ends: dict[int, int] = {}
    nap = p["poll_sleep"]
    clock = time.monotonic
    deadline = clock() + p["seconds"] + p["timeout"]
    cpu0, wall0 = cpu_seconds(), clock()
    while len(ends) < n and clock() < deadline:
        got = 0
        for i in range(n):
            items = receive(i)
            if not items:
                continue
            now = clock()
            for end, t in items:
                if end is not None:
                    ends[i] = end
                else:
                    latencies.append(round(now * 1e3 - t * 1e-3, 3))
                    received += 1
            got += len(items)
        if not got:
            time.sleep(nap)
    cpu, wall = cpu_seconds() - cpu0, clock() - wall0
    emit("result", latencies_ms=latencies, received=received, finished=len(ends), cpu=cpu, wall=wall)


ROLES = {
    ("server", "*"): server,
    ("host", "sprocket"): host_sprocket,
    ("host", "raw"): host_raw,
    ("host", "podsixnet"): host_podsixnet,
}


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One measurement at ``params["n_clients"]`` in fresh processes (runner side)."""
    n = params["n_clients"]
    res, results = run_server_and_hosts(MODULE, impl, params, connect_timeout=60)
    latencies = [x for r in results for x in r["latencies_ms"]]
    expected = res["n_ticks"] * n
    period_ms = 1e3 / params["hz"]
    on_time = sum(1 for x in latencies if x <= period_ms)
    return {
        "late_pct": 100.0 * (expected - on_time) / expected,
        "missing": float(expected - len(latencies)),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "server_cpu_pct": 100.0 * res["cpu"] / res["wall"],
        "server_cpu_user_pct": 100.0 * res["cpu_user"] / res["wall"],
        "server_cpu_sys_pct": 100.0 * res["cpu_sys"] / res["wall"],
        "late_ticks_pct": 100.0 * res["late_starts"] / res["n_ticks"],
        "clients_cpu_pct": sum(100.0 * r["cpu"] / r["wall"] for r in results),
    }


if __name__ == "__main__":
    worker_main(ROLES)
