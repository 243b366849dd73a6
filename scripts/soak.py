#!/usr/bin/env python3
"""Soak test: many clients sending at 60 Hz while the server broadcasts at 30 Hz, everything checked.

    .venv/bin/python scripts/soak.py --duration 600 --clients 50          # ten minutes, 50 clients
    .venv/bin/python scripts/soak.py --duration 5 --clients 50 --json     # what tests/hostile runs

The server runs in this process; the clients run in ``--workers`` child processes (this same script with
``--worker``).  Every client numbers its packets and the server checks each client's sequence; every
broadcast is numbered and each client checks it sees them contiguously up to the final ``end`` marker.
At the end the server is closed and this process must be back to its starting threads and descriptors.

Prints a summary (or one JSON object with ``--json``) and exits 0 when clean, 1 on any loss, duplicate,
reordering, unexpected disconnect, leak or memory growth over ``--max-rss-growth-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sprocket import Disconnected, Joined, Left, Packet, Servo, Sprocket

MiB = 1 << 20


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sprocket_threads() -> int:
    return sum(t.name.startswith("sprocket-") for t in threading.enumerate())


class Ticker:
    """A fixed-rate game-loop clock: ``wait()`` returns at the next tick (late ticks run at once)."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate
        self.start = time.monotonic()
        self.ticks = 0
        self.late = 0
        self._event = threading.Event()

    def wait(self) -> None:
        self.ticks += 1
        due = self.start + self.ticks * self.period
        now = time.monotonic()
        if now < due:
            self._event.wait(due - now)
        elif now - due > 0.25:  # far behind: count it, and do not burst to catch up
            self.late += 1
            self.start = now - self.ticks * self.period


# -- the clients (child processes) -----------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    pad = "c" * args.payload
    clients = [
        Sprocket(
            "127.0.0.1", args.port, name=f"w{args.index}-{i}", ping_interval=0.5, timeout=10.0,
            connect_timeout=30.0,
        )
        for i in range(args.count)
    ]  # fmt: skip
    for c in clients:
        c.wait_connected(30)
    sent = [0] * args.count
    first: list[int | None] = [None] * args.count
    last: list[int | None] = [None] * args.count
    seen = [0] * args.count
    end: list[int | None] = [None] * args.count
    problems: list[str] = []

    def receive(i: int) -> None:
        for item in clients[i].events():
            if isinstance(item, Disconnected):
                problems.append(f"client {clients[i].id} disconnected: {item.code}: {item.reason}")
            elif type(item) is Packet:
                if "b" in item:
                    b = item["b"]
                    if last[i] is not None and b != last[i] + 1:  # type: ignore[operator]
                        kind = "duplicated/reordered" if b <= last[i] else "lost"  # type: ignore[operator]
                        problems.append(f"client {clients[i].id}: broadcast {b} after {last[i]} ({kind})")
                    if first[i] is None:
                        first[i] = b
                    last[i] = b
                    seen[i] += 1
                elif "end" in item:
                    end[i] = item["end"]

    ticker = Ticker(args.rate)
    started = time.monotonic()
    while time.monotonic() - started < args.duration:
        for i, c in enumerate(clients):
            c.send(seq=sent[i], pad=pad)
            sent[i] += 1
        for i in range(args.count):
            receive(i)
        ticker.wait()
    elapsed = time.monotonic() - started
    for i, c in enumerate(clients):
        c.send(done=True, sent=sent[i])
    deadline = time.monotonic() + 30
    while any(e is None for e in end) and time.monotonic() < deadline and not problems:
        for i in range(args.count):
            receive(i)
        threading.Event().wait(0.005)
    for i, c in enumerate(clients):
        if end[i] is None:
            problems.append(f"client {c.id}: never saw the end marker")
        elif last[i] != end[i] or (first[i] is not None and seen[i] != end[i] - first[i] + 1):  # type: ignore[operator]
            problems.append(f"client {c.id}: saw {seen[i]} broadcasts {first[i]}..{last[i]}, end {end[i]}")
    for c in clients:
        c.close()
    print(
        json.dumps(
            {
                "sent": sum(sent), "broadcasts_seen": sum(seen), "problems": problems[:20],
                "problem_count": len(problems), "rate": sum(sent) / elapsed / args.count,
                "late_ticks": ticker.late,
            }
        ),
        flush=True,
    )  # fmt: skip
    return 0 if not problems else 1


# -- the server (this process) ---------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> dict[str, Any]:
    fds_before, threads_before = fds(), sprocket_threads()
    servo = Servo("127.0.0.1", 0, ping_interval=0.5, timeout=10.0, handshake_timeout=30.0)
    counts = [args.clients // args.workers + (i < args.clients % args.workers) for i in range(args.workers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable, __file__, "--worker", "--port", str(servo.port), "--count", str(n),
                "--index", str(i), "--duration", str(args.duration), "--rate", str(args.rate),
                "--payload", str(args.payload),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, n in enumerate(counts)
        if n
    ]  # fmt: skip
    expected: dict[int, int] = {}
    done: dict[int, int] = {}
    problems: list[str] = []
    left: dict[str, int] = {}
    joined = 0
    pad = "s" * args.payload
    bseq = 0
    ended = False
    ticker: Ticker | None = None
    rss_base = 0
    rss_peak = 0
    warm_at = 0.0
    deadline = time.monotonic() + args.duration + 90
    while time.monotonic() < deadline:
        for item in servo.events():
            if type(item) is Packet:
                cid = item.sender.id
                if "seq" in item:
                    want = expected.get(cid, 0)
                    if item["seq"] != want:
                        kind = "duplicated/reordered" if item["seq"] < want else "lost"
                        problems.append(f"from client {cid}: seq {item['seq']}, expected {want} ({kind})")
                    expected[cid] = item["seq"] + 1
                elif "done" in item:
                    done[cid] = item["sent"]
                    got = expected.get(cid, 0)
                    if got != item["sent"]:
                        problems.append(f"client {cid} sent {item['sent']}, the server got {got}")
            elif isinstance(item, Joined):
                joined += 1
            elif isinstance(item, Left):
                left[str(item.code)] = left.get(str(item.code), 0) + 1
                if item.code != "closed" or item.client.id not in done:
                    problems.append(f"client {item.client.id} left early: {item.code}: {item.reason}")
        now = time.monotonic()
        if joined == args.clients and ticker is None:
            ticker = Ticker(args.broadcast_rate)
            warm_at = now + 1.0
        if warm_at and now >= warm_at:
            sample = rss()
            rss_base = rss_base or sample
            rss_peak = max(rss_peak, sample)
        if ticker is not None and not ended:
            if len(done) == args.clients:
                servo.sendall(end=bseq - 1)
                ended = True
            elif now - ticker.start >= ticker.ticks * ticker.period:
                servo.sendall(b=bseq, pad=pad)
                bseq += 1
                ticker.ticks += 1
        if ended and sum(left.values()) == args.clients and all(p.poll() is not None for p in procs):
            break
        threading.Event().wait(0.002)
    else:
        problems.append("the soak did not finish before its deadline")
    workers = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        report = json.loads(lines[-1]) if lines else {"problems": [f"worker exit {p.returncode}, no report"]}
        workers.append(report)
        problems.extend(report.get("problems", []))
        if p.returncode:
            problems.append(f"worker exited with {p.returncode}")
    servo.close()
    leak_deadline = time.monotonic() + 5
    while (fds() > fds_before or sprocket_threads() > threads_before) and time.monotonic() < leak_deadline:
        threading.Event().wait(0.01)
    leaked_fds, leaked_threads = fds() - fds_before, sprocket_threads() - threads_before
    if leaked_fds > 0:
        problems.append(f"{leaked_fds} file descriptors leaked")
    if leaked_threads > 0:
        problems.append(f"{leaked_threads} sprocket threads left running")
    growth = rss_peak - rss_base
    if growth > args.max_rss_growth_mb * MiB:
        problems.append(f"server memory grew {growth / MiB:.1f} MiB after warm-up")
    sent = sum(w.get("sent", 0) for w in workers)
    return {
        "duration": args.duration,
        "clients": args.clients,
        "workers": len(procs),
        "rate": args.rate,
        "broadcast_rate": args.broadcast_rate,
        "packets_up": sent,
        "packets_up_checked": sum(expected.values()),
        "broadcasts": bseq,
        "broadcast_deliveries": sum(w.get("broadcasts_seen", 0) for w in workers),
        "achieved_rate": round(sum(w.get("rate", 0.0) * c for w, c in zip(workers, counts, strict=False))
                               / max(1, args.clients), 2),
        "late_ticks": sum(w.get("late_ticks", 0) for w in workers),
        "left": left,
        "rss_base_mib": round(rss_base / MiB, 1),
        "rss_growth_mib": round(growth / MiB, 2),
        "leaked_fds": leaked_fds,
        "leaked_threads": leaked_threads,
        "problems": problems[:50],
        "problem_count": len(problems),
        "ok": not problems,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of play (default 30)")
    parser.add_argument("--clients", type=int, default=50, help="number of clients (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--rate", type=float, default=60.0, help="packets per second per client")
    parser.add_argument("--broadcast-rate", type=float, default=30.0, help="server broadcasts per second")
    parser.add_argument("--payload", type=int, default=64, help="padding bytes per packet (default 64)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=32.0, help="allowed server growth")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.clients < 1 or args.workers < 1 or args.duration <= 0:
        parser.error("--clients, --workers and --duration must be positive")
    summary = soak(args)
    if args.json:
        print(json.dumps(summary))
    else:
        s = summary
        print(
            f"soak: {s['clients']} clients x {s['rate']:g} Hz for {s['duration']:g} s in {s['workers']} "
            f"processes, server broadcasting at {s['broadcast_rate']:g} Hz"
        )
        print(
            f"  client -> server: {s['packets_up']} packets sent, {s['packets_up_checked']} checked in "
            f"order (achieved {s['achieved_rate']:g} Hz per client, {s['late_ticks']} late ticks)"
        )
        print(
            f"  server -> clients: {s['broadcasts']} broadcasts, {s['broadcast_deliveries']} deliveries "
            "checked contiguous"
        )
        print(f"  leaves: {s['left']}")
        print(f"  server RSS {s['rss_base_mib']} MiB after warm-up, grew {s['rss_growth_mib']} MiB")
        print(f"  leaked: {s['leaked_fds']} descriptors, {s['leaked_threads']} threads")
        for problem in s["problems"]:
            print(f"  PROBLEM: {problem}")
        result = "OK" if s["ok"] else f"FAILED ({s['problem_count']} problems)"
        print(f"  result: {result}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
