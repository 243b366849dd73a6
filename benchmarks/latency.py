"""Latency: request/echo round trips through the public API, p50 and p99.

The client sends ``{seq}``, then polls until the echo comes back; the server polls and echoes every
packet to its sender.  Both sides use the same loop for all three libraries: poll (``get()`` or PodSixNet's
``Pump()``), and if nothing came, sleep ``poll_sleep`` (a short wait; busy polling would starve the
background I/O threads of sprocket and raw of the GIL, and a game loop sleeps anyway).  The first
``warmup`` round trips are not counted.  Round trip = ``time.perf_counter()`` around one exchange.

The ``@busy`` step is the same exchange with a client that polls busily (``client_sleep`` 0: no sleep
between polls), the way a bot or a headless tool polls; the server keeps its usual loop.  What each
client's busy loop does between its send and the echo:

* sprocket: a loop over ``get()`` and nothing else.  ``get()`` itself notices that it is polled busily
  (empty again within ``sprocket.endpoint.BUSY_POLL_GAP``): then it reads the socket itself if the I/O
  thread is idle in ``select()``, and otherwise lets the I/O thread have the GIL with ``sleep(0)`` (see
  ``Endpoint.get`` and ``IOThread.read_now``).
* raw: a loop over ``RawClient.get()`` in front of its reader thread, calling ``time.sleep(0)`` after
  each empty ``get()``: the GIL release any competent busy loop with a reader thread needs.  Without it
  (a loop over ``get()`` alone) the reader thread, woken by the echo, waits for the GIL until Python's
  switch interval (5 ms) takes it from the loop: a p50 of about 10 ms, no baseline at all.
* PodSixNet: a loop over ``Pump()``, which reads the socket in the polling thread itself (no other
  thread, so nothing to yield to).
"""

from __future__ import annotations

import time
from typing import Any

from .common import Params, Worker, emit, load_podsixnet, percentile, worker_main, workers

MODULE = "latency"


def defaults(quick: bool) -> Params:
    return {"rounds": 500 if quick else 2000, "warmup": 100, "poll_sleep": 0.00005, "timeout": 60.0}


def steps(params: Params) -> list[tuple[str, Params]]:
    """The default exchange (50 µs sleeps between empty polls), then a busily polling client."""
    return [("", params), ("@busy", {**params, "client_sleep": 0.0})]


def _nap(seconds: float) -> None:
    # Busy polling (0) must not even call sleep(0): that releases the GIL, which a busy loop does not.
    if seconds:
        time.sleep(seconds)


# -- servers -------------------------------------------------------------------------------------------


def server_sprocket(p: Params) -> None:
    from sprocket import Servo

    servo = Servo("127.0.0.1", 0)
    emit("ready", port=servo.port)
    deadline = time.monotonic() + p["timeout"]
    stop = False
    nap = p["poll_sleep"]
    while not stop and time.monotonic() < deadline:
        packets = servo.get()
        if not packets:
            _nap(nap)
            continue
        for packet in packets:
            if "stop" in packet:
                stop = True
            else:
                packet.sender.send(seq=packet.seq)
    servo.close()


def server_raw(p: Params) -> None:
    from .raw import RawServer

    server = RawServer("127.0.0.1", 0)
    emit("ready", port=server.port)
    deadline = time.monotonic() + p["timeout"]
    stop = False
    nap = p["poll_sleep"]
    while not stop and time.monotonic() < deadline:
        packets = server.get()
        if not packets:
            _nap(nap)
            continue
        for cid, fields in packets:
            if "stop" in fields:
                stop = True
            else:
                server.send(cid, seq=fields["seq"])
    server.close()


def server_podsixnet(p: Params) -> None:
    load_podsixnet()
    from PodSixNet.Channel import Channel
    from PodSixNet.Server import Server

    state = {"handled": 0, "stop": False}

    class EchoChannel(Channel):  # type: ignore[misc]
        def Network_ping(self, data: dict[str, Any]) -> None:
            self.Send({"action": "pong", "seq": data["seq"]})
            state["handled"] += 1

        def Network_stop(self, data: dict[str, Any]) -> None:
            state["stop"] = True

    server = Server(channelClass=EchoChannel, localaddr=("127.0.0.1", 0))
    emit("ready", port=server.socket.getsockname()[1])
    deadline = time.monotonic() + p["timeout"]
    nap = p["poll_sleep"]
    while not state["stop"] and time.monotonic() < deadline:
        before = state["handled"]
        server.Pump()  # sends what the previous Pump's callbacks queued, then reads
        if state["handled"] == before:
            _nap(nap)


# -- clients -------------------------------------------------------------------------------------------


def _measure(send: Any, poll: Any, p: Params) -> list[float]:
    nap = p.get("client_sleep", p["poll_sleep"])
    rtts: list[float] = []
    clock = time.perf_counter
    deadline = time.monotonic() + p["timeout"]
    for seq in range(p["warmup"] + p["rounds"]):
        t = clock()
        send(seq)
        while not poll():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no echo for round trip {seq}")
            _nap(nap)
        if seq >= p["warmup"]:
            rtts.append((clock() - t) * 1e6)
    return rtts


def client_sprocket(p: Params) -> None:
    from sprocket import Sprocket

    s = Sprocket("127.0.0.1", p["port"]).wait_connected()
    rtts = _measure(lambda seq: s.send(seq=seq), s.get, p)
    s.send(stop=1)
    emit("result", rtts_us=rtts)
    s.close()


def client_raw(p: Params) -> None:
    from .raw import RawClient

    c = RawClient("127.0.0.1", p["port"])
    get = c.get
    if p.get("client_sleep", p["poll_sleep"]):
        poll = get
    else:

        def poll() -> list[dict[str, Any]]:
            # Busy: the reader thread cannot hand over what it read while this loop holds the GIL.
            packets = get()
            if not packets:
                time.sleep(0)
            return packets

    rtts = _measure(lambda seq: c.send(seq=seq), poll, p)
    c.send(stop=1)
    emit("result", rtts_us=rtts)
    c.close()


def client_podsixnet(p: Params) -> None:
    load_podsixnet()
    from PodSixNet.EndPoint import EndPoint

    ep = EndPoint(("127.0.0.1", p["port"]))
    ep.DoConnect()
    deadline = time.monotonic() + 10.0
    while not ep.isConnected and time.monotonic() < deadline:
        ep.Pump()
        time.sleep(0.001)

    def send(seq: int) -> None:
        ep.Send({"action": "ping", "seq": seq})

    def poll() -> bool:
        ep.Pump()  # pushes what Send() queued, then reads
        return any(d.get("action") == "pong" for d in ep.GetQueue())

    rtts = _measure(send, poll, p)
    ep.Send({"action": "stop"})
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        ep.Pump()
        time.sleep(0.001)
    emit("result", rtts_us=rtts)


ROLES = {
    ("server", "sprocket"): server_sprocket,
    ("client", "sprocket"): client_sprocket,
    ("server", "raw"): server_raw,
    ("client", "raw"): client_raw,
    ("server", "podsixnet"): server_podsixnet,
    ("client", "podsixnet"): client_podsixnet,
}


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One measurement in fresh processes (runner side)."""
    with workers() as started:
        server = Worker(MODULE, "server", impl, params)
        started.append(server)
        port = server.expect("ready", 20)["port"]
        client = Worker(MODULE, "client", impl, {**params, "port": port})
        started.append(client)
        rtts = client.expect("result", params["timeout"] + 20)["rtts_us"]
        client.finish()
        server.finish()
    return {
        "p50_us": percentile(rtts, 50),
        "p99_us": percentile(rtts, 99),
        "mean_us": sum(rtts) / len(rtts),
        "max_us": max(rtts),
    }


if __name__ == "__main__":
    worker_main(ROLES)
