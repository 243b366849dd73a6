"""Child processes for the fault tests: a game server or a game client that a test can SIGKILL.

    python -m tests.hostile._child server PING_INTERVAL TIMEOUT  # prints "port N", echoes every seq
    python -m tests.hostile._child client PORT RATE  # prints "connected ID", sends seq at RATE Hz
    python -m tests.hostile._child flood PORT N MODE  # N raw sockets at once; MODE idle, hello or auth=PW

Both run a fixed-rate game loop for at most ``LIFETIME`` seconds, so a forgotten child always ends.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

import msgpack

from sprocket import Servo, Sprocket
from sprocket.protocol import (
    BYE,
    CHALLENGE,
    HELLO,
    PROTOCOL_VERSION,
    REJECT,
    WELCOME,
    frame,
    password_proof,
)

LIFETIME = 60.0


def loop(rate: float, step: Callable[[], None]) -> None:
    period = 1.0 / rate
    start = time.monotonic()
    tick = 0
    wake = threading.Event()
    while time.monotonic() - start < LIFETIME:
        step()
        tick += 1
        wake.wait(max(0.0, start + tick * period - time.monotonic()))


def server(ping_interval: float, timeout: float) -> None:
    servo = Servo("127.0.0.1", 0, ping_interval=ping_interval, timeout=timeout, handshake_timeout=timeout)
    print("port", servo.port, flush=True)

    def step() -> None:
        for packet in servo.get():
            if "seq" in packet:
                packet.sender.send(echo=packet["seq"])

    loop(60.0, step)
    servo.close()


def client(port: int, rate: float) -> None:
    s = Sprocket("127.0.0.1", port, ping_interval=0.1, timeout=2.0).wait_connected(10)
    print("connected", s.id, flush=True)
    seq = 0

    def step() -> None:
        nonlocal seq
        s.send(seq=seq, x=seq * 0.5, y=-seq * 0.25)
        seq += 1
        s.get()

    loop(rate, step)
    s.close()


def read_frame(sock: socket.socket, deadline: float) -> tuple[int, bytes] | None:
    """One whole frame, or None on EOF, reset or deadline."""
    buf = b""
    try:
        while True:
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from(">I", buf)[0]:
                (length,) = struct.unpack_from(">I", buf)
                return buf[4], buf[5 : 4 + length]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            chunk = sock.recv(65536 if len(buf) < 4 else 4 + struct.unpack_from(">I", buf)[0] - len(buf))
            if not chunk:
                return None
            buf += chunk
    except OSError:
        return None


def classify(got: tuple[int, bytes] | None) -> str:
    """Name a frame from the server: welcome, challenge, reject:CODE, bye:CODE, frame:TYPE, or eof."""
    if got is None:
        return "eof"
    kind, body = got
    if kind == WELCOME:
        return "welcome"
    if kind == CHALLENGE:
        return "challenge"
    if kind in (REJECT, BYE):
        return f"{'reject' if kind == REJECT else 'bye'}:{msgpack.unpackb(body)['code']}"
    return f"frame:{kind}"


def answer(sock: socket.socket, deadline: float) -> str:
    return classify(read_frame(sock, deadline))


def flood(port: int, count: int, mode: str) -> None:
    """Open ``count`` sockets at once and do ``mode`` on each; report what the server said.

    idle: send nothing.  hello: a HELLO without a password.  auth=PW: a HELLO with that password.
    Then wait for a line on stdin: "release" closes everything at once; "drain" first reads every socket
    until the server hangs up and reports the goodbyes.
    """
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(count):
        sock = socket.socket()
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            failed += 1
            sock.close()
            continue
        socks.append(sock)
    deadline = time.monotonic() + 10
    first = {}
    nonces = {}
    for sock in socks:
        got = read_frame(sock, deadline)
        first[sock] = classify(got)
        if got is not None and got[0] == CHALLENGE:
            nonces[sock] = msgpack.unpackb(got[1])["nonce"]
    answers: Counter[str] = Counter()
    if mode != "idle":
        password = mode[5:] if mode.startswith("auth=") else None
        for sock, nonce in nonces.items():
            auth = password_proof(password, nonce) if password is not None else None
            hello = {"version": PROTOCOL_VERSION, "codec": "msgpack", "name": "flood", "auth": auth}
            try:
                sock.sendall(frame(HELLO, msgpack.packb(hello)))
            except OSError:
                pass
        for sock in nonces:
            answers[answer(sock, deadline)] += 1
    report = {"connected": len(socks), "connect_failed": failed, "first": Counter(first.values())}
    report["answers"] = answers
    print("ready", json.dumps(report), flush=True)
    command = sys.stdin.readline().strip()
    if command == "drain":
        goodbyes: Counter[str] = Counter()
        deadline = time.monotonic() + 15
        started = time.monotonic()
        for sock in socks:
            last = "eof"
            while True:
                got = answer(sock, deadline)
                if got == "eof":
                    break
                if got.startswith(("bye:", "reject:")):
                    last = got
            goodbyes[last] += 1
        drained = {"goodbyes": goodbyes, "seconds": time.monotonic() - started}
        print("drained", json.dumps(drained), flush=True)
    for sock in socks:
        sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        server(float(sys.argv[2]), float(sys.argv[3]))
    elif mode == "client":
        client(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "flood":
        flood(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
