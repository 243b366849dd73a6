"""Tools for playing the hostile peer: hand-made frames over raw sockets, child processes, measurements.

Nothing here mocks the network: a :class:`RawPeer` is a real TCP socket on 127.0.0.1 that speaks the
sprocket wire protocol (or refuses to) byte by byte, the way an attacker's script would.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings

from sprocket.codes import CloseCode
from sprocket.protocol import BYE, CHALLENGE, DATA, HELLO, PROTOCOL_VERSION, REJECT, WELCOME, frame
from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]

# Hypothesis settings for the fuzz tests: SPROCKET_FUZZ_EXAMPLES=5000 for a longer campaign.
EXAMPLES = int(os.environ.get("SPROCKET_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every close code the protocol documents (protocol.Closed); a peer's junk must end with one of these.
CLOSE_CODES = frozenset(code.value for code in CloseCode)  # every word a peer may be told


def hello_body(**overrides: Any) -> bytes:
    """A HELLO body as a Sprocket would send it; ``overrides`` replace or add fields."""
    fields: dict[str, Any] = {"version": PROTOCOL_VERSION, "codec": "msgpack", "app": None, "name": None}
    fields.update(overrides)
    return msgpack.packb(fields, use_bin_type=True)


def packet_frame(**fields: Any) -> bytes:
    """A DATA frame carrying ``fields`` encoded with plain msgpack (what the default codec reads)."""
    return frame(DATA, msgpack.packb(fields, use_bin_type=True))


class RawPeer:
    """A plain TCP socket that speaks sprocket by hand, like a hostile client would.

    It reads with a deadline (never blocks forever) and understands just enough of the framing to tell
    what the server said: ``frames`` holds every complete (type, body) received so far.
    """

    def __init__(self, port: int, *, rcvbuf: int | None = None, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Set before connecting so the window is small from the first byte (no autotuning).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.timeout = timeout
        self.buffer = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.eof = False
        self.client_id: int | None = None

    # -- writing -----------------------------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Write raw bytes; False if the server already hung up."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def send_frame(self, kind: int, body: bytes = b"") -> bool:
        return self.send(frame(kind, body))

    def send_packet(self, **fields: Any) -> bool:
        return self.send(packet_frame(**fields))

    # -- reading -----------------------------------------------------------------------------------------

    def _read_some(self, deadline: float) -> bool:
        """Read one chunk before ``deadline``; False on EOF, reset or timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        while len(self.buffer) >= 5:
            (length,) = struct.unpack_from(">I", self.buffer)
            if len(self.buffer) < 4 + length:
                break
            self.frames.append((self.buffer[4], bytes(self.buffer[5 : 4 + length])))
            del self.buffer[: 4 + length]
        return True

    def read_frame(self, kind: int, timeout: float | None = None) -> bytes:
        """Wait for the next frame of type ``kind`` (frames of other types before it are dropped) and
        return its body.  Raises AssertionError if the connection ends or the deadline passes first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = 0
        while True:
            for i in range(seen, len(self.frames)):
                if self.frames[i][0] == kind:
                    body = self.frames[i][1]
                    del self.frames[: i + 1]
                    return body
            seen = len(self.frames)
            if not self._read_some(deadline):
                raise AssertionError(f"no frame of type {kind:#x} (connection ended: {self.eof})")

    def read_until_closed(self, timeout: float | None = None) -> bool:
        """Read (and keep) everything until the server closes; True if it did before the deadline."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            if not self._read_some(deadline) and not self.eof:
                return False
        return True

    def goodbye(self) -> dict[str, Any] | None:
        """The last BYE or REJECT the server sent (``{"code", "reason"}``), if any."""
        for kind, body in reversed(self.frames):
            if kind in (BYE, REJECT):
                return dict(msgpack.unpackb(body))
        return None

    # -- the handshake -------------------------------------------------------------------------------------

    def handshake(self, **hello: Any) -> int:
        """Read the CHALLENGE, send a HELLO, wait for WELCOME; return the id the server assigned."""
        self.read_frame(CHALLENGE)
        self.send_frame(HELLO, hello_body(**hello))
        welcome = msgpack.unpackb(self.read_frame(WELCOME))
        self.client_id = int(welcome["id"])
        return self.client_id

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- measuring -------------------------------------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_fds(pid: int | str = "self") -> int:
    """How many of a process's descriptors are sockets."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # closed while we looked
    return count


def pace(seconds: float, rate: float, step: Callable[[int], object]) -> int:
    """Call ``step(i)`` ``rate`` times a second for ``seconds`` (a game loop's fixed tick); return the count.

    Waiting for the next tick is the loop's clock, not synchronisation: nothing is assumed about when
    other threads get things done.
    """
    period = 1.0 / rate
    start = time.monotonic()
    ticks = 0
    wake = threading.Event()
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            return ticks
        due = start + ticks * period
        if now >= due:
            step(ticks)
            ticks += 1
        else:
            wake.wait(due - now)


class Sampler:
    """Polls ``probe()`` in a background thread and keeps the largest value seen (bounded-memory checks)."""

    def __init__(self, probe: Callable[[], int], interval: float = 0.005) -> None:
        self.probe = probe
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.probe()
            except Exception:
                value = 0  # the thing we probe went away
            self.peak = max(self.peak, value)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        try:
            self.peak = max(self.peak, self.probe())  # the state at the end counts too
        except Exception:
            pass


# -- child processes -------------------------------------------------------------------------------------


class Child:
    """A Python child process running ``tests/hostile/_child.py``; reads its stdout line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile._child", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="hostile-child-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 15.0) -> str:
        """Wait for a stdout line starting with ``prefix``; return the rest of it."""

        def found() -> str | None:
            for line in self.lines:
                if line.startswith(prefix):
                    return line[len(prefix) :].strip() or "-"
            if self.proc.poll() is not None and not self._reader.is_alive():
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"child exited ({self.proc.returncode}) before {prefix!r}: {stderr}")
            return None

        return wait_until(found, timeout, f"child to print {prefix!r}")

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup, like a crash or the power going out."""
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def child(*args: str) -> Iterator[Child]:
    proc = Child(*args)
    try:
        yield proc
    finally:
        proc.close()


class LegitGame:
    """A well-behaved game running in the background while a test attacks the server.

    One thread plays both the server's game loop and one honest client at ``rate`` Hz: the client sends
    ``seq`` 0, 1, 2...; the server checks they arrive in order and echoes each one back; the client
    checks the echoes arrive in order.  The thread owns ``servo.events()``, so everything else the server
    reports (joins and leaves of attackers) is kept in ``joined`` and ``left`` for the test to read.
    """

    def __init__(self, servo: Any, rate: float = 60.0, **client_kw: Any) -> None:
        from sprocket import Sprocket

        self.servo = servo
        self.rate = rate
        client_kw.setdefault("ping_interval", 0.1)
        client_kw.setdefault("timeout", 2.0)
        self.client = Sprocket("127.0.0.1", servo.port, name="legit", **client_kw).wait_connected(5)
        self.sent = 0
        self.server_got: list[int] = []
        self.echoes: list[int] = []
        self.joined: list[Any] = []
        self.left: list[Any] = []
        self.client_events: list[Any] = []
        self.others: dict[int, list[int]] = {}  # seq numbers from every other client, by client id
        self.errors: list[BaseException] = []
        self.connected_at_finish = False
        self._stop = threading.Event()
        self._sending = True
        self._thread = threading.Thread(target=self._run, name="hostile-legit-game", daemon=True)

    def _step(self) -> None:
        from sprocket import Joined, Left, Packet

        if self._sending:
            self.client.send(seq=self.sent)
            self.sent += 1
        for item in self.servo.events():
            if type(item) is Packet:
                if item.sender.name == "legit" and "seq" in item:
                    self.server_got.append(item["seq"])
                    item.sender.send(echo=item["seq"])
                elif "seq" in item:
                    self.others.setdefault(item.sender.id, []).append(item["seq"])
            elif isinstance(item, Joined):
                self.joined.append(item.client)
            elif isinstance(item, Left):
                self.left.append(item)
        for item in self.client.events():
            if type(item) is Packet:
                self.echoes.append(item["echo"])
            else:
                self.client_events.append(item)

    def _run(self) -> None:
        period = 1.0 / self.rate
        deadline = time.monotonic() + 120.0  # bounded, whatever happens
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._step()
                self._stop.wait(period)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> LegitGame:
        self._thread.start()
        wait_until(lambda: len(self.echoes) >= 3, 5, "the legit game to get going")
        return self

    def finish(self, timeout: float = 10.0) -> None:
        """Stop sending, let everything in flight arrive, stop the thread."""
        self._sending = False
        wait_until(
            lambda: self.errors or len(self.echoes) >= self.sent, timeout, "the legit client's last echoes"
        )
        self._stop.set()
        self._thread.join(5)
        assert not self.errors, self.errors
        self._step()  # the thread is gone: collect whatever arrived after its last step
        self.connected_at_finish = self.client.connected and self.client.error is None

    def assert_unharmed(self) -> None:
        """The honest player noticed nothing: every packet and echo arrived, once, in order."""
        assert self.server_got == list(range(self.sent))
        assert self.echoes == list(range(self.sent))
        assert self.connected_at_finish, self.client.error
        assert [type(e).__name__ for e in self.client_events] in ([], ["Connected"])

    def wait_left(self, count: int, timeout: float = 5.0) -> list[Any]:
        """Wait until the server reported ``count`` leaves (of attackers); return them."""
        wait_until(lambda: len(self.left) >= count, timeout, f"{count} leave events (got {len(self.left)})")
        return self.left

    def left_codes(self) -> dict[str, int]:
        codes: dict[str, int] = {}
        for item in self.left:
            codes[item.code] = codes.get(item.code, 0) + 1
        return codes

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


def wait_all_closed(peers: list[RawPeer], timeout: float) -> dict[int, float]:
    """Read every peer until the server hangs up on it; return {index: time.monotonic() of the hang-up}.

    One selector watches them all, so each hang-up is timestamped when it happens, not when a sequential
    reader gets round to it.
    """
    import selectors

    closed: dict[int, float] = {}
    with selectors.DefaultSelector() as selector:
        for i, peer in enumerate(peers):
            if peer.eof:
                closed[i] = time.monotonic()
            else:
                selector.register(peer.sock, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        while len(closed) < len(peers):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                i = key.data
                peers[i]._read_some(time.monotonic() + 1.0)
                if peers[i].eof:
                    closed[i] = time.monotonic()
                    selector.unregister(peers[i].sock)
    return closed
