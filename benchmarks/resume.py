"""Resume: how long a dropped connection takes to come back, and what sessions cost when nothing drops.

Two steps per run, each in fresh processes (sprocket only: raw sockets and PodSixNet cannot resume, so
there is nothing to compare against; the baseline of the second step is sprocket without sessions).

**cuts** (issue 11's "time from the link coming back to the first packet delivered after resume").  A
``Servo`` (default ``grace=30``) in one process; in another, a ``LagProxy`` with no added lag and a
``Sprocket`` (default ``reconnect=True``) connected through it.  Both send a steady stream of ``{seq}``
packets (``rate`` per second each way, on a schedule, also while the link is down: those are kept and
replayed).  After a warm-up the client process calls ``proxy.disconnect_all()`` (both TCP connections
reset, as a pulled cable), waits until the Sprocket is back and a packet has arrived after the resume,
lets the stream run for ``settle`` seconds plus a random 0-0.1 s (so that the cuts fall at random points
of the I/O thread's 50 ms housekeeping cycle, as real outages do), and cuts again, ``cuts`` times.  The
proxy accepts at once, so the link is usable again from the cut on: every time below is measured from the
cut (``time.monotonic()``; CLOCK_MONOTONIC is system-wide, so the server's timestamps compare with the
client's):

* reconnect: cut -> the client's ``Reconnected`` event comes out of ``events()`` (a);
* first packet, client / server: cut -> the first packet that comes out of ``events()`` after
  ``Reconnected`` (client) or ``Resumed`` (server) (b); the packets sent during the gap are replayed
  first, so this is usually the WELCOME's own read;
* its parts (client side, from the library's log records, which are written by the thread that does the
  work): detect (cut -> the I/O thread logs the drop), backoff (drop logged -> the proxy accepts the first
  new connection: the reconnect delay, 0.05-0.1 s for the first attempt **by design**: 0.1 s shortened by
  a random part of up to half, so that the clients of one outage do not all come back at once; the I/O
  thread wakes for it on time), handshake
  (proxy accept -> ``Reconnected`` seen: connect to the server through the proxy, CHALLENGE, HELLO with
  the token's proof, WELCOME, replay, and the application's next poll).

Both sides check every packet's ``seq``: a gap, a repeat or a reordering is counted (c); at the end each
side sends how many it sent and the other compares.  Reported, never asserted, like every figure here.
The server also counts its ``Dropped``/``Resumed``/``Left`` events and the client checks that its ``id``
never changed.

**steady** (the cost of sequencing, acknowledgements and the replay buffer when nothing goes wrong): the
throughput benchmark (:mod:`benchmarks.throughput`, the same code and parameters: small ``{x, y, id}``
packets end to end as fast as ``send()`` allows) run four times back to back, in fresh processes each:
``Sprocket(reconnect=False)`` (no session: the protocol as before issue 11), ``reconnect=True`` (the
default: a session, ACK frames, every sent frame kept until acknowledged) twice, ``reconnect=False``
again; each figure is the mean of its two measurements, so that running first or second gains nothing.
Reported for both: packets/s, the server's CPU per packet, and the bytes on the wire per packet (every
byte the server read and wrote on that connection, handshake, heartbeats and ACKs included, divided by
the packets delivered); and session ÷ no session for each.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any

from . import throughput
from .common import BenchError, Params, Worker, emit, percentile, worker_main, workers

MODULE = "resume"
IMPLS = ("sprocket",)  # nothing to compare against: see the module docstring
FIRST_ATTEMPT_DELAY = "0.05-0.1 s"  # sprocket.client: RECONNECT_FIRST_DELAY (0.1 s) minus up to half


def defaults(quick: bool) -> Params:
    return {
        "cuts": 10 if quick else 30,
        "rate": 200,  # packets/s each way
        "warmup": 0.5,
        "settle": 0.2,  # seconds of steady stream between a resume and the next cut
        "cut_timeout": 15.0,  # a resume that takes longer fails the run
        "poll_sleep": 0.0005,
        "timeout": 120.0,
        "steady": throughput.defaults(quick),
    }


def steps(params: Params) -> list[tuple[str, Params]]:
    """The runner measures these one after the other in every run (metric names get the suffix)."""
    return [("@cuts", {**params, "step": "cuts"}), ("@steady", {**params, "step": "steady"})]


# -- the cuts: workers ---------------------------------------------------------------------------------


class _Stream:
    """One direction's receiving end: checks that ``seq`` goes 1, 2, 3... with nothing missing or repeated."""

    def __init__(self) -> None:
        self.expect = 1
        self.received = 0
        self.missing = 0
        self.repeated = 0
        self.gaps: list[tuple[int, int, float]] = []  # (expected, got, when): the first few

    def got(self, seq: int) -> None:
        self.received += 1
        if seq == self.expect:
            self.expect += 1
        elif seq < self.expect:
            self.repeated += 1
        else:
            self.missing += seq - self.expect
            if len(self.gaps) < 20:
                self.gaps.append((self.expect, seq, time.monotonic()))
            self.expect = seq + 1

    def finish(self, sent: int) -> dict[str, Any]:
        """Compare with the sender's count; return the tallies."""
        self.missing += max(0, sent - (self.expect - 1))
        return {
            "sent": sent,
            "received": self.received,
            "missing": self.missing,
            "repeated": self.repeated,
            "gaps": self.gaps,
        }


class _Sender:
    """Sends ``{seq}`` at ``rate`` per second on a schedule (catching up after a slow poll)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.sent = 0
        self.next_at: float | None = None

    def tick(self, send: Any, now: float) -> None:
        if self.next_at is None:
            self.next_at = now
        while now >= self.next_at:
            self.sent += 1
            send(seq=self.sent)
            self.next_at += self.interval


def server_cuts(p: Params) -> None:
    from sprocket import Dropped, Joined, Left, Packet, Resumed, Servo

    servo = Servo("127.0.0.1", 0)
    emit("ready", port=servo.port)
    stream = _Stream()
    sender = _Sender(p["rate"])
    client: Any = None
    peer_sent: int | None = None
    dropped: list[float] = []
    resumed: list[float] = []
    first: list[float] = []
    waiting_first = False
    joins = leaves = 0
    nap = p["poll_sleep"]
    deadline = time.monotonic() + p["timeout"]
    while peer_sent is None and time.monotonic() < deadline:
        items = servo.events()
        now = time.monotonic()
        for item in items:
            if isinstance(item, Packet):
                if "end" in item:
                    peer_sent = item.end
                    break
                if waiting_first:
                    first.append(now)
                    waiting_first = False
                stream.got(item.seq)
            elif isinstance(item, Joined):
                joins += 1
                client = item.client
            elif isinstance(item, Dropped):
                dropped.append(now)
            elif isinstance(item, Resumed):
                resumed.append(now)
                waiting_first = True
            elif isinstance(item, Left):
                leaves += 1
        if client is not None and peer_sent is None:
            sender.tick(client.send, now)
        if not items:
            time.sleep(nap)
    if client is not None:
        client.send(end=sender.sent)
    emit(
        "result",
        ok=peer_sent is not None,
        up=stream.finish(peer_sent or 0),
        dropped=dropped,
        resumed=resumed,
        first=first,
        joins=joins,
        leaves=leaves,
    )
    time.sleep(0.5)  # let the end marker go out
    servo.close()


class _Stamps(logging.Handler):
    """Notes, in the thread that logs them, when the I/O thread reports a drop and when the proxy accepts."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.noticed: list[float] = []
        self.accepted: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        msg = str(record.msg)
        if record.name == "sprocket.netsim" and msg.startswith("client %r connected"):
            self.accepted.append(now)
        elif record.name == "sprocket" and "dropped" in msg and "reconnecting" in msg:
            self.noticed.append(now)


def client_cuts(p: Params) -> None:
    from sprocket import Connected, Disconnected, Packet, Reconnected, Reconnecting, Sprocket
    from sprocket.testing import LagProxy

    stamps = _Stamps()
    logger = logging.getLogger("sprocket")
    logger.setLevel(logging.INFO)
    logger.addHandler(stamps)
    proxy = LagProxy("127.0.0.1", p["port"]).start()  # no added lag
    s = Sprocket("127.0.0.1", proxy.port).wait_connected()
    first_id = s.id
    stream = _Stream()
    sender = _Sender(p["rate"])
    state: dict[str, Any] = {"reconnected": None, "first": None, "peer_sent": None, "ids": set(), "other": []}
    state["ended"] = False
    counts = {"reconnecting": 0, "reconnected": 0}
    nap = p["poll_sleep"]

    def pump(now: float) -> None:
        for item in s.events():
            if isinstance(item, Packet):
                if "end" in item:
                    state["peer_sent"] = item.end
                    continue
                if state["reconnected"] is not None and state["first"] is None:
                    state["first"] = now
                stream.got(item.seq)
            elif isinstance(item, Reconnected):
                counts["reconnected"] += 1
                state["reconnected"] = now
            elif isinstance(item, Reconnecting):
                counts["reconnecting"] += 1
            elif isinstance(item, Connected):
                state["ids"].add(item.id)
            elif isinstance(item, Disconnected):
                state["other"].append(f"Disconnected({item.reason!r}, {item.code})")
        if not state["ended"]:
            sender.tick(s.send, now)

    def run_until(predicate: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            pump(now)
            if predicate(now):
                return True
            if now >= end:
                return False
            time.sleep(nap)

    rng = random.Random(p.get("seed"))
    run_until(lambda now: False, p["warmup"])
    cuts: list[float] = []
    reconnected: list[float] = []
    first: list[float] = []
    for i in range(p["cuts"]):
        state["reconnected"] = state["first"] = None
        t_cut = time.monotonic()
        proxy.disconnect_all()
        cuts.append(t_cut)
        if not run_until(lambda now: state["first"] is not None, p["cut_timeout"]):
            emit(
                "error",
                error=f"cut {i + 1}: not back within {p['cut_timeout']} s ({s.error}; {state['other']})",
            )
            return
        reconnected.append(state["reconnected"])
        first.append(state["first"])
        # A random pause: a fixed one would put every cut at the same point of the I/O thread's 50 ms
        # housekeeping cycle (which starts the reconnect attempts), and bias every resume time alike.
        pause = p["settle"] + rng.uniform(0.0, 0.1)
        settle_end = time.monotonic() + pause
        run_until(lambda now, until=settle_end: now >= until, pause + 1.0)
    state["ended"] = True
    s.send(end=sender.sent)
    got_end = run_until(lambda now: state["peer_sent"] is not None, 30.0)
    emit(
        "result",
        ok=got_end,
        down=stream.finish(state["peer_sent"] or 0),
        cuts=cuts,
        reconnected=reconnected,
        first=first,
        noticed=stamps.noticed,
        accepted=stamps.accepted,
        reconnecting=counts["reconnecting"],
        reconnected_events=counts["reconnected"],
        id_unchanged=s.id == first_id and not state["ids"] - {first_id},
        other_events=state["other"],
    )
    s.close()
    proxy.close()


ROLES = {("server", "sprocket"): server_cuts, ("client", "sprocket"): client_cuts}


# -- runner side ---------------------------------------------------------------------------------------


def _after(stamps: list[float], t: float, until: float) -> float:
    """The first of ``stamps`` in [t, until), or NaN."""
    return next((x for x in stamps if t <= x < until), math.nan)


def _ms(values: list[float]) -> list[float]:
    return [v * 1000.0 for v in values if not math.isnan(v)]


def analyse_cuts(cres: dict[str, Any], sres: dict[str, Any]) -> dict[str, float]:
    """Turn the two workers' timestamps into figures (pure: the runner calls it with their reports)."""
    cuts: list[float] = cres["cuts"]
    n = len(cuts)
    bounds = [*cuts[1:], math.inf]
    reconnect = [r - c for c, r in zip(cuts, cres["reconnected"], strict=True)]
    first_client = [f - c for c, f in zip(cuts, cres["first"], strict=True)]
    # The server's i-th resume belongs to the i-th cut (one resume per cut; checked below).
    first_server = [_after(sres["first"], c, b) - c for c, b in zip(cuts, bounds, strict=True)]
    noticed = [_after(cres["noticed"], c, b) for c, b in zip(cuts, bounds, strict=True)]
    accepted = [_after(cres["accepted"], c, b) for c, b in zip(cuts, bounds, strict=True)]
    attempts = [sum(1 for x in cres["accepted"] if c <= x < b) for c, b in zip(cuts, bounds, strict=True)]
    detect = [d - c for c, d in zip(cuts, noticed, strict=True)]
    backoff = [a - d for d, a in zip(noticed, accepted, strict=True)]
    handshake = [r - a for a, r in zip(accepted, cres["reconnected"], strict=True)]
    up, down = sres["up"], cres["down"]
    reconnect_ms, backoff_ms = _ms(reconnect), _ms(backoff)
    out = {
        "reconnect_p50_ms": percentile(reconnect_ms, 50),
        "first_client_p50_ms": percentile(_ms(first_client), 50),
        "first_server_p50_ms": percentile(_ms(first_server), 50),
        "lost_or_repeated": float(up["missing"] + up["repeated"] + down["missing"] + down["repeated"]),
        "reconnect_p99_ms": percentile(reconnect_ms, 99),
        "first_client_p99_ms": percentile(_ms(first_client), 99),
        "first_server_p99_ms": percentile(_ms(first_server), 99),
        "detect_p50_ms": percentile(_ms(detect), 50),
        "backoff_p50_ms": percentile(backoff_ms, 50),
        "backoff_min_ms": min(backoff_ms, default=math.nan),
        "backoff_max_ms": max(backoff_ms, default=math.nan),
        "handshake_p50_ms": percentile(_ms(handshake), 50),
        "handshake_p99_ms": percentile(_ms(handshake), 99),
        "backoff_share_pct": 100.0 * percentile(backoff_ms, 50) / percentile(reconnect_ms, 50),
        "attempts_max": float(max(attempts, default=0)),
        "cuts": float(n),
        "client_resumes": float(cres["reconnected_events"]),
        "server_drops": float(len(sres["dropped"])),
        "server_resumes": float(len(sres["resumed"])),
        "server_joins": float(sres["joins"]),
        "server_leaves": float(sres["leaves"]),
        "id_unchanged": 1.0 if cres["id_unchanged"] else 0.0,
        "packets_up": float(up["received"]),
        "packets_down": float(down["received"]),
        "missing": float(up["missing"] + down["missing"]),
        "repeated": float(up["repeated"] + down["repeated"]),
    }
    # Anything but one resume per cut on both sides, with no leave, no second join and the same id.
    out["session_anomalies"] = (
        abs(n - out["client_resumes"])
        + abs(n - out["server_resumes"])
        + abs(n - out["server_drops"])
        + out["server_leaves"]
        + abs(out["server_joins"] - 1)
        + (1 - out["id_unchanged"])
    )
    return out


def run_cuts(params: Params) -> dict[str, float]:
    p = {k: v for k, v in params.items() if k not in ("steady", "step")}
    budget = p["warmup"] + p["cuts"] * (p["settle"] + p["cut_timeout"]) + 60
    with workers() as started:
        server = Worker(MODULE, "server", "sprocket", p)
        started.append(server)
        port = server.expect("ready", 20)["port"]
        client = Worker(MODULE, "client", "sprocket", {**p, "port": port})
        started.append(client)
        cres = client.expect("result", budget)
        sres = server.expect("result", 30)
        client.finish()
        server.finish()
    if not (cres["ok"] and sres["ok"]):
        raise BenchError(f"the end markers did not both arrive (client {cres['ok']}, server {sres['ok']})")
    if cres["other_events"]:
        raise BenchError(f"unexpected client events: {cres['other_events'][:3]}")
    metrics = analyse_cuts(cres, sres)
    if metrics["lost_or_repeated"]:
        print(f"    packets lost or repeated across the cuts: {describe_gaps(cres, sres)}", flush=True)
    return metrics


def describe_gaps(cres: dict[str, Any], sres: dict[str, Any]) -> str:
    """The tallies and the first gaps of each direction, placed relative to the cut before them."""
    cuts: list[float] = cres["cuts"]
    parts = []
    for name, tally in (("server -> client", cres["down"]), ("client -> server", sres["up"])):
        gaps = []
        for expected, got, when in tally["gaps"][:5]:
            before = [(i, when - c) for i, c in enumerate(cuts) if c <= when]
            where = (
                f"{before[-1][1] * 1000:.1f} ms after cut {before[-1][0] + 1}" if before else "before cut 1"
            )
            gaps.append(f"expected {expected}, got {got}, {where}")
        parts.append(
            f"{name}: sent {tally['sent']}, received {tally['received']}, missing {tally['missing']}, "
            f"repeated {tally['repeated']}" + (f" ({'; '.join(gaps)})" if gaps else "")
        )
    return "; ".join(parts)


def run_steady(params: Params) -> dict[str, float]:
    """The throughput benchmark without a session and with one, in the order plain, session, session,
    plain (fresh processes each), so that a drift of the machine during the run weighs on both alike;
    each figure is the mean of its two measurements."""
    keys = ("packets_per_s", "send_calls_per_s", "server_cpu_us_per_packet", "wire_bytes_per_packet")
    sums: dict[str, float] = {}
    for name, reconnect in (("plain", False), ("session", True), ("session", True), ("plain", False)):
        m = throughput.run_once("sprocket", {**params["steady"], "reconnect": reconnect})
        if not m.get("delivered_ok"):
            raise BenchError(f"throughput with reconnect={reconnect}: not every packet arrived")
        for key in keys:
            sums[f"{key}_{name}"] = sums.get(f"{key}_{name}", 0.0) + m[key] / 2
    ratios = {
        f"{key}_ratio": sums[f"{key}_session"] / sums[f"{key}_plain"]
        for key in ("packets_per_s", "wire_bytes_per_packet", "server_cpu_us_per_packet")
    }
    return {**ratios, **sums}  # the ratios first: the runner's progress line shows the first few


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One step (``params["step"]``: "cuts" or "steady") in fresh processes (runner side)."""
    if impl != "sprocket":
        raise BenchError("resume measures sprocket only")
    return run_steady(params) if params.get("step") == "steady" else run_cuts(params)


if __name__ == "__main__":
    worker_main(ROLES)
