"""Throughput: one client sends small packets ``{x, y, id}`` as fast as ``send()`` allows; the server
counts them with ``get()``.  Every packet must arrive.

Client and server are separate processes.  The client stamps ``t0 = time.monotonic()`` just before its
first send, sends for ``max_seconds`` (checking the clock every 1000 sends; ``count`` is only a cap), then
an end marker carrying the number sent and ``t0``.  The server notes when the marker comes out of
``get()`` (TCP keeps order, so every packet before it came out too) and checks the count.
Figure: packets / (t_end - t0), end to end: encoding, both I/O paths, decoding and the server's
``get()`` loop.  CLOCK_MONOTONIC is system-wide on Linux, so the two processes' clocks agree.

Server loop (all three): poll; if nothing came, sleep ``poll_sleep`` (a short wait, like a game loop
that has nothing to do); touch one field of every packet.
"""

from __future__ import annotations

import time
from typing import Any

from .common import Params, Worker, cpu_seconds, emit, load_podsixnet, worker_main, workers

MODULE = "throughput"


def defaults(quick: bool) -> Params:
    return {
        "count": 3_000_000,  # a cap; the sending time bounds each run
        "max_seconds": 0.4 if quick else 1.0,
        "poll_sleep": 0.001,
        "pump_every": 16,
        "timeout": 60.0,
    }


# -- sprocket ------------------------------------------------------------------------------------------


def server_sprocket(p: Params) -> None:
    from sprocket import Servo

    servo = Servo("127.0.0.1", 0)
    emit("ready", port=servo.port)
    received = 0
    total = 0.0
    end: Any = None
    sender: Any = None
    deadline = time.monotonic() + p["timeout"]
    cpu0 = cpu_seconds()
    while end is None and time.monotonic() < deadline:
        packets = servo.get()
        if not packets:
            time.sleep(p["poll_sleep"])
            continue
        for packet in packets:
            if "end" in packet:
                end, sender = packet, packet.sender
                break
            total += packet.x
            received += 1
    t_end = time.monotonic()
    cpu = cpu_seconds() - cpu0
    stats = servo.stats
    if sender is not None:
        sender.send(ack=received)
    # Every byte read and written on the connection so far (handshake, heartbeats, ACKs included).
    _report_server(end, received, t_end, cpu, wire_bytes=stats["bytes_in"] + stats["bytes_out"])
    time.sleep(0.2)
    servo.close()


def _blast(send: Any, p: Params) -> tuple[int, float, float]:
    """Send ``{x, y, id}`` packets as fast as ``send`` allows (the same loop for every library), then the
    end marker; return (packets sent, start time, time the last one was handed to send)."""
    count = p["count"]
    t0 = time.monotonic()
    deadline = t0 + p["max_seconds"]
    sent = 0
    while sent < count and time.monotonic() < deadline:
        for i in range(sent, min(sent + 1000, count)):
            send(x=i * 0.5, y=i * 0.25, id=7)
        sent = min(sent + 1000, count)
    t_sent = time.monotonic()
    send(end=sent, t0=t0)
    return sent, t0, t_sent


def client_sprocket(p: Params) -> None:
    from sprocket import Sprocket

    # "reconnect" (benchmarks.resume): False runs without a session, the protocol as before issue 11.
    options = {"reconnect": p["reconnect"]} if "reconnect" in p else {}
    s = Sprocket("127.0.0.1", p["port"], **options).wait_connected()
    send = s.send
    sent, t0, t_sent = _blast(send, p)
    ack = _wait(lambda: [q.ack for q in s.get() if "ack" in q], p["timeout"], p["poll_sleep"])
    emit("result", sent=sent, send_seconds=t_sent - t0, ack=ack)
    s.close()


# -- raw -----------------------------------------------------------------------------------------------


def server_raw(p: Params) -> None:
    from .raw import RawServer

    server = RawServer("127.0.0.1", 0)
    emit("ready", port=server.port)
    received = 0
    total = 0.0
    end: Any = None
    sender = 0
    deadline = time.monotonic() + p["timeout"]
    cpu0 = cpu_seconds()
    while end is None and time.monotonic() < deadline:
        packets = server.get()
        if not packets:
            time.sleep(p["poll_sleep"])
            continue
        for cid, fields in packets:
            if "end" in fields:
                end, sender = fields, cid
                break
            total += fields["x"]
            received += 1
    t_end = time.monotonic()
    cpu = cpu_seconds() - cpu0
    if sender:
        server.send(sender, ack=received)
    _report_server(end, received, t_end, cpu)
    time.sleep(0.2)
    server.close()


def client_raw(p: Params) -> None:
    from .raw import RawClient

    c = RawClient("127.0.0.1", p["port"])
    send = c.send
    sent, t0, t_sent = _blast(send, p)
    ack = _wait(lambda: [q["ack"] for q in c.get() if "ack" in q], p["timeout"], p["poll_sleep"])
    emit("result", sent=sent, send_seconds=t_sent - t0, ack=ack)
    c.close()


# -- PodSixNet -----------------------------------------------------------------------------------------


def server_podsixnet(p: Params) -> None:
    load_podsixnet()
    from PodSixNet.Channel import Channel
    from PodSixNet.Server import Server

    state: dict[str, Any] = {"received": 0, "total": 0.0, "end": None, "channel": None}

    class BenchChannel(Channel):  # type: ignore[misc]
        def Network_pos(self, data: dict[str, Any]) -> None:
            state["total"] += data["x"]
            state["received"] += 1

        def Network_end(self, data: dict[str, Any]) -> None:
            state["end"], state["channel"] = data, self

    server = Server(channelClass=BenchChannel, localaddr=("127.0.0.1", 0))
    emit("ready", port=server.socket.getsockname()[1])
    deadline = time.monotonic() + p["timeout"]
    cpu0 = cpu_seconds()
    while state["end"] is None and time.monotonic() < deadline:
        before = state["received"]
        server.Pump()
        if state["received"] == before:
            time.sleep(p["poll_sleep"])
    t_end = time.monotonic()
    cpu = cpu_seconds() - cpu0
    if state["channel"] is not None:
        state["channel"].Send({"action": "ack", "ack": state["received"]})
    _report_server(state["end"], state["received"], t_end, cpu)
    stop = time.monotonic() + 0.3
    while time.monotonic() < stop:
        server.Pump()
        time.sleep(0.001)


def client_podsixnet(p: Params) -> None:
    load_podsixnet()
    from PodSixNet.EndPoint import EndPoint

    ep = EndPoint(("127.0.0.1", p["port"]))
    ep.DoConnect()
    connect_deadline = time.monotonic() + 10.0
    while not ep.isConnected and time.monotonic() < connect_deadline:
        ep.Pump()
        time.sleep(0.001)
    send = ep.Send
    pump = ep.Pump
    every = p["pump_every"]
    count = p["count"]
    t0 = time.monotonic()
    deadline = t0 + p["max_seconds"]
    sent = 0
    while sent < count and time.monotonic() < deadline:
        stop = min(sent + 1000, count)
        for i in range(sent, stop):
            send({"action": "pos", "x": i * 0.5, "y": i * 0.25, "id": 7})
            if i % every == 0:
                pump()
        sent = stop
    t_sent = time.monotonic()
    send({"action": "end", "end": sent, "t0": t0})

    acks: list[Any] = []

    def poll() -> list[Any]:
        pump()
        acks.extend(d["ack"] for d in ep.GetQueue() if d.get("action") == "ack")
        return acks

    ack = _wait(poll, p["timeout"], p["poll_sleep"])
    emit("result", sent=sent, send_seconds=t_sent - t0, ack=ack)


# -- shared --------------------------------------------------------------------------------------------


def _wait(poll: Any, timeout: float, step: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = poll()
        if found:
            return found[0]
        time.sleep(step)
    return None


def _report_server(end: Any, received: int, t_end: float, cpu: float, **extra: Any) -> None:
    if end is None:
        emit("result", ok=False, received=received)
        return
    emit(
        "result", ok=True, received=received, expected=end["end"], t0=end["t0"], t_end=t_end, cpu=cpu, **extra
    )


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
    p = dict(params)
    with workers() as started:
        server = Worker(MODULE, "server", impl, p)
        started.append(server)
        port = server.expect("ready", 20)["port"]
        client = Worker(MODULE, "client", impl, {**p, "port": port})
        started.append(client)
        res = server.expect("result", p["timeout"] + 20)
        cres = client.expect("result", p["timeout"] + 20)
        client.finish()
        server.finish()
    if not res.get("ok") or res["received"] != res["expected"]:
        return {"delivered_ok": 0.0, "packets_per_s": float("nan")}
    elapsed = res["t_end"] - res["t0"]
    metrics = {
        "delivered_ok": 1.0,
        "packets": float(res["received"]),
        "packets_per_s": res["received"] / elapsed,
        "send_calls_per_s": cres["sent"] / cres["send_seconds"],
        "server_cpu_us_per_packet": res["cpu"] / res["received"] * 1e6,
    }
    if "wire_bytes" in res:  # sprocket's server counts its bytes
        metrics["wire_bytes_per_packet"] = res["wire_bytes"] / res["received"]
    return metrics


if __name__ == "__main__":
    worker_main(ROLES)
