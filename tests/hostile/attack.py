"""Round two's attacker kit, written from docs/PROTOCOL.md alone (never from sprocket's own helpers).

Everything an outside attacker needs, byte by byte: frames (4-byte big-endian length, a type byte, a body),
control maps in plain msgpack, DATA bodies in msgpack with the documented extension types (1 tuple, 2 set,
3 frozenset, 5 big integer), a raw client (:class:`Wire`) that can bind its source address, a raw hostile
*server* (:class:`HostileServer`) for attacking a Sprocket, an honest echo client that measures how long
each echo waits (:class:`EchoProbe`), and an echo server in a child process (:func:`echo_server`) so its
RSS is measured apart from the test::

    python -m tests.hostile.attack serve '{"servo": {...Servo kwargs...}, "get_every": 0.0}'

prints ``port N``, then one ``event {json}`` line per join or leave, and echoes every packet with a
``seq`` field back to its sender as ``{"echo": seq}``.  It calls ``events()`` every ``get_every`` seconds
(0: as often as it can) and exits by itself after ``LIFETIME`` seconds, so a forgotten child always ends.
"""

from __future__ import annotations

import json
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack

# -- the wire format, as docs/PROTOCOL.md states it ------------------------------------------------------

CHALLENGE, HELLO, WELCOME, REJECT, DATA, PING, PONG, BYE = range(1, 9)
EXT_TUPLE, EXT_SET, EXT_FROZENSET, EXT_REGISTERED, EXT_BIGINT = range(1, 6)
MAX_PACKET = 1 << 20  # the default max_packet_size: the largest DATA body
HEADER = struct.Struct(">I")
MERSENNE = 2**61 - 1  # CPython hashes ints modulo this prime: every multiple of it hashes to 0
LIFETIME = 90.0
REPO = Path(__file__).resolve().parents[2]


def frame(kind: int, body: bytes = b"") -> bytes:
    """One frame: uint32 BE length (type byte + body), the type byte, the body."""
    return HEADER.pack(len(body) + 1) + bytes((kind,)) + body


def pack(value: Any) -> bytes:
    """Plain msgpack with the str/bin distinction."""
    return msgpack.packb(value, use_bin_type=True)


def data_frame(fields: dict[str, Any]) -> bytes:
    """A DATA frame whose body is the msgpack map ``fields`` (values may hold :class:`msgpack.ExtType`)."""
    return frame(DATA, pack(fields))


def big_int(value: int) -> Any:
    """``value`` as msgpack shows it: a plain int in the 64-bit range, else extension 5 (decimal ASCII)."""
    if -(2**63) <= value < 2**64:
        return value
    return msgpack.ExtType(EXT_BIGINT, str(value).encode("ascii"))


def ext_set(items: Iterable[Any]) -> msgpack.ExtType:
    """Extension 2 (set): its payload is a msgpack array of the items."""
    return msgpack.ExtType(EXT_SET, pack(list(items)))


def ext_frozenset(items: Iterable[Any]) -> msgpack.ExtType:
    """Extension 3 (frozenset): its payload is a msgpack array of the items."""
    return msgpack.ExtType(EXT_FROZENSET, pack(list(items)))


def ext_tuple(items: Iterable[Any]) -> msgpack.ExtType:
    """Extension 1 (tuple): its payload is a msgpack array of the items."""
    return msgpack.ExtType(EXT_TUPLE, pack(list(items)))


def colliding_keys(count: int) -> list[Any]:
    """``count`` distinct integers ``k * (2**61 - 1)`` (all hash to 0 in CPython), as msgpack values."""
    return [big_int(k * MERSENNE) for k in range(1, count + 1)]


HASH_FLOOD_KEYS = 40_000


def hash_flood_body(shape: str, count: int | None = None) -> bytes:
    """The issue's one-packet freeze: ``{"a": <container of count colliding keys>}`` as a DATA body.

    ``shape`` is ``set`` (ext 2), ``frozenset`` (ext 3) or ``map`` (a map with those ints as keys).
    ``count`` defaults to 40,000 for sets (about 1 MiB) and 38,000 for a map (its values take a byte
    each); the body always fits the default ``max_packet_size``.
    """
    if count is None:
        count = HASH_FLOOD_KEYS if shape != "map" else 38_000
    keys = colliding_keys(count)
    if shape == "set":
        value: Any = ext_set(keys)
    elif shape == "frozenset":
        value = ext_frozenset(keys)
    elif shape == "map":
        value = dict.fromkeys(keys, 0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    body = pack({"a": value})
    assert len(body) <= MAX_PACKET, len(body)
    return body


def empty_containers_body(count: int, kind: str = "sets") -> bytes:
    """``{"a": [<count empty containers>]}``: cheap on the wire (1-3 bytes each), costly to decode.

    ``kind``: ``sets`` (ext 2 of an empty array), ``tuples`` (ext 1), ``mixed`` (alternating), ``maps``
    (empty msgpack maps, 1 byte each) or ``arrays`` (empty msgpack arrays).
    """
    empty_set = msgpack.ExtType(EXT_SET, pack([]))
    empty_tuple = msgpack.ExtType(EXT_TUPLE, pack([]))
    items: list[Any]
    if kind == "sets":
        items = [empty_set] * count
    elif kind == "tuples":
        items = [empty_tuple] * count
    elif kind == "mixed":
        items = [empty_set if i % 2 else empty_tuple for i in range(count)]
    elif kind == "maps":
        items = [{}] * count
    elif kind == "arrays":
        items = [[]] * count
    else:
        raise ValueError(f"unknown kind {kind!r}")
    body = pack({"a": items})
    assert len(body) <= MAX_PACKET, len(body)
    return body


def max_empty_maps_body() -> bytes:
    """As many empty maps as fit in one default-size packet (about 1 MiB decoding to about 70 MiB)."""
    overhead = len(pack({"a": [{}] * 70_000})) - 70_000
    return empty_containers_body(MAX_PACKET - overhead, "maps")


def hello_body(**overrides: Any) -> bytes:
    """A HELLO map as the docs list it (no password, default codec); ``overrides`` replace fields."""
    fields: dict[str, Any] = {
        "version": 1, "codec": "msgpack", "app": None, "name": None, "auth": None,
        "max_packet_size": MAX_PACKET,
    }  # fmt: skip
    fields.update(overrides)
    return pack(fields)


def split_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete frame off the front of ``buffer``."""
    frames = []
    while len(buffer) >= 5:
        (length,) = HEADER.unpack_from(buffer)
        if len(buffer) < 4 + length:
            break
        frames.append((buffer[4], bytes(buffer[5 : 4 + length])))
        del buffer[: 4 + length]
    return frames


def goodbye_of(kind: int, body: bytes) -> dict[str, Any]:
    """A BYE or REJECT frame's map, with ``"frame"`` saying which it was."""
    return {"frame": "BYE" if kind == BYE else "REJECT", **dict(msgpack.unpackb(body))}


# -- a raw client -------------------------------------------------------------------------------------


class Wire:
    """A raw TCP client speaking sprocket by hand.  ``source`` binds its address (e.g. ``127.0.0.2``).

    Reads always have a deadline; ``frames`` keeps what arrived, ``closed`` turns True at EOF or reset.
    Writes never raise: they return False once the server has hung up.
    """

    def __init__(self, port: int, *, source: str | None = None, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(10.0)
        self.sock.connect((host, port))
        self.buffer = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.closed = False
        self.closed_at: float | None = None
        self.welcome: dict[str, Any] | None = None

    # writing

    def send(self, data: bytes, timeout: float = 10.0) -> bool:
        """Write all of ``data`` within ``timeout`` seconds; False if the server hung up (or stalled)."""
        if self.closed:
            return False
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
        except OSError:
            self._eof()
            return False
        return True

    def pump(self, chunk: bytes, stop: threading.Event, until: float) -> int:
        """Write ``chunk`` (whole frames) over and over as fast as the socket takes it, until ``stop`` is
        set, ``until`` (a monotonic time) passes or the server hangs up; never cuts a frame.  Returns the
        bytes written."""
        view = memoryview(chunk)
        offset = 0
        total = 0
        self.sock.setblocking(False)
        try:
            while not stop.is_set() and time.monotonic() < until and not self.closed:
                try:
                    sent = self.sock.send(view[offset:])
                except BlockingIOError:
                    select.select([], [self.sock], [], 0.05)
                    continue
                except OSError:
                    self._eof()
                    break
                total += sent
                offset = (offset + sent) % len(chunk)
            if offset and not self.closed:  # finish the frame in flight so the stream stays framed
                self.sock.settimeout(5.0)
                self.send(chunk[offset:])
        finally:
            if not self.closed:
                self.sock.settimeout(10.0)
        return total

    # reading

    def _eof(self) -> None:
        if not self.closed:
            self.closed = True
            self.closed_at = time.monotonic()

    def read_some(self, deadline: float) -> bool:
        """Read once before ``deadline``; False on timeout, EOF or reset."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.closed:
            return False
        try:
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 16)
        except TimeoutError:
            return False
        except OSError:
            self._eof()
            return False
        if not chunk:
            self._eof()
            return False
        self.buffer += chunk
        self.frames += split_frames(self.buffer)
        return True

    def next_frame(self, timeout: float) -> tuple[int, bytes] | None:
        """The next frame not yet taken (PINGs are answered and skipped), or None at EOF or deadline.

        A BYE or REJECT stays in ``frames`` (for :meth:`goodbye`), so it is also what every later call
        returns."""
        deadline = time.monotonic() + timeout
        while True:
            while self.frames:
                kind, body = self.frames.pop(0)
                if kind == PING:
                    self.send(frame(PONG, body + struct.pack(">d", time.monotonic())))
                    continue
                if kind in (BYE, REJECT):
                    self.frames.insert(0, (kind, body))  # keep goodbyes for goodbye()
                return kind, body
            if not self.read_some(deadline):
                return None

    def handshake(self, timeout: float = 5.0, **hello: Any) -> tuple[int, dict[str, Any]]:
        """Read CHALLENGE, send HELLO, read the answer.  Returns ``(WELCOME or REJECT or 0, its map)``."""
        got = self.next_frame(timeout)
        if got is not None and got[0] in (REJECT, BYE):
            return got[0], goodbye_of(*got)
        if got is None or got[0] != CHALLENGE:
            return 0, {"closed": self.closed, "first": got and got[0]}
        self.send(frame(HELLO, hello_body(**hello)))
        got = self.next_frame(timeout)
        if got is None:
            return 0, {"closed": self.closed}
        kind, body = got
        fields = goodbye_of(kind, body) if kind in (REJECT, BYE) else dict(msgpack.unpackb(body))
        if kind == WELCOME:
            self.welcome = fields
        return kind, fields

    def wait_closed(self, timeout: float) -> bool:
        """Read (keeping frames) until the server hangs up; True if it did before the deadline."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if not self.read_some(deadline) and not self.closed:
                return False
        return True

    def goodbye(self) -> dict[str, Any] | None:
        """The BYE or REJECT the server sent (``{"frame", "code", "reason"}``), if any arrived."""
        for kind, body in self.frames:
            if kind in (BYE, REJECT):
                return goodbye_of(kind, body)
        return None

    def close(self) -> None:
        self.sock.close()


def drain_all(wires: list[Wire], timeout: float) -> None:
    """Read every wire at once (select) until each one is closed or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = [w for w in wires if not w.closed]
        if not open_:
            return
        ready, _, _ = select.select([w.sock for w in open_], [], [], min(0.2, deadline - time.monotonic()))
        by_sock = {w.sock: w for w in open_}
        for sock in ready:
            by_sock[sock].read_some(time.monotonic() + 0.01)


# -- a raw hostile server -------------------------------------------------------------------------------


class HostileServer:
    """A listening socket on 127.0.0.1 that does the server's half of the handshake by hand, then sends
    ``payloads`` (whole frames) to the first client and answers its PINGs until it leaves.

    ``goodbye`` is the client's BYE map, if it sent one; ``hello`` its HELLO map.
    """

    def __init__(self, payloads: list[bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.payloads = payloads
        self.hello: dict[str, Any] | None = None
        self.goodbye: dict[str, Any] | None = None
        self.sent_at: float | None = None
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.listener.close()

    def _run(self) -> None:
        try:
            self.listener.settimeout(10.0)
            conn, _ = self.listener.accept()
        except OSError as exc:
            self.errors.append(exc)
            return
        with conn:
            try:
                self._serve(conn)
            except OSError:
                pass  # the client hung up
            except BaseException as exc:
                self.errors.append(exc)

    def _serve(self, conn: socket.socket) -> None:
        conn.sendall(frame(CHALLENGE, pack({"sprocket": 1, "nonce": bytes(16)})))
        buffer = bytearray()
        frames: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + 60.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            for kind, body in frames:
                if kind == HELLO and self.hello is None:
                    self.hello = dict(msgpack.unpackb(body))
                    welcome = {
                        "id": 1, "time": time.monotonic(), "ping_interval": 1.0, "timeout": 10.0,
                        "max_packet_size": MAX_PACKET,
                    }  # fmt: skip
                    conn.sendall(frame(WELCOME, pack(welcome)))
                    self.sent_at = time.monotonic()
                    for payload in self.payloads:
                        conn.sendall(payload)
                elif kind == PING:
                    conn.sendall(frame(PONG, body + struct.pack(">d", time.monotonic())))
                elif kind == BYE:
                    self.goodbye = dict(msgpack.unpackb(body))
            frames = []
            conn.settimeout(0.1)
            try:
                chunk = conn.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                return
            buffer += chunk
            frames = split_frames(buffer)


# -- the honest client ----------------------------------------------------------------------------------


class EchoProbe:
    """An honest Sprocket that sends ``{"seq": n}`` every ``interval`` seconds and times each echo.

    Its loop (a thread) also calls ``events()``; a Disconnected lands in ``disconnected``.  ``waits`` maps
    each answered seq to seconds from send to echo; :meth:`stop` stops sending and waits for the rest.
    """

    def __init__(self, port: int, interval: float = 0.05, **sprocket_kw: Any) -> None:
        from sprocket import Sprocket

        self.client = Sprocket("127.0.0.1", port, name="honest", **sprocket_kw).wait_connected(10)
        self.interval = interval
        self.sent_at: dict[int, float] = {}
        self.waits: dict[int, float] = {}
        self.disconnected: Any = None
        self.errors: list[BaseException] = []
        self._sending = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="honest-echo", daemon=True)

    def _run(self) -> None:
        from sprocket import Disconnected, Packet

        deadline = time.monotonic() + LIFETIME
        next_send = time.monotonic()
        seq = 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                now = time.monotonic()
                if self._sending and now >= next_send and self.disconnected is None:
                    self.sent_at[seq] = now
                    self.client.send(seq=seq)
                    seq += 1
                    next_send += self.interval
                for item in self.client.events():
                    if type(item) is Packet and "echo" in item:
                        self.waits[item["echo"]] = time.monotonic() - self.sent_at[item["echo"]]
                    elif isinstance(item, Disconnected):
                        self.disconnected = item
                self._stop.wait(0.001)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> EchoProbe:
        self._thread.start()
        from tests.conftest import wait_until

        wait_until(lambda: len(self.waits) >= 3 or self.errors, 10, "the honest client's first echoes")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending; wait up to ``timeout`` for the echoes still due; stop the loop and close."""
        self._sending = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.disconnected is None and self.missing():
            self._stop.wait(0.01)
        self._stop.set()
        self._thread.join(10)
        self.client.close()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self.stop(0)

    def missing(self) -> list[int]:
        """The seq numbers sent whose echo has not come back (yet)."""
        return [seq for seq in self.sent_at if seq not in self.waits]

    def figures(self, since: float = 0.0) -> dict[str, Any]:
        """p50 and max echo wait in ms for the echoes sent after ``since`` (unanswered: waited till now)."""
        now = time.monotonic()
        waits = [self.waits.get(seq, now - sent) for seq, sent in self.sent_at.items() if sent >= since] or [
            0.0
        ]
        return {
            "echoes": len(waits),
            "p50_ms": statistics.median(waits) * 1000,
            "max_ms": max(waits) * 1000,
            "unanswered": len(self.missing()),
        }


# -- the echo server in a child process -------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class ServerChild:
    """Handle on ``python -m tests.hostile.attack serve``: its port, pid, RSS and the events it printed."""

    def __init__(self, servo: dict[str, Any], get_every: float) -> None:
        config = json.dumps({"servo": servo, "get_every": get_every})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.attack", "serve", config],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="attack-child-reader", daemon=True)
        self._reader.start()
        self.pid = self.proc.pid
        self.port = int(self.wait_line("port ", 20))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float) -> str:
        """Wait for a stdout line starting with ``prefix``; return the rest.  AssertionError (with the
        child's stderr) if it exits first or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line[len(prefix) :]
            if self.proc.poll() is not None and not self._reader.is_alive():
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"the server child exited ({self.proc.returncode}): {stderr.strip()}")
            threading.Event().wait(0.01)  # polling the child's output, with a deadline
        raise AssertionError(f"the server child printed no {prefix!r} within {timeout} s")

    def rss(self) -> int:
        """The child's resident set size in bytes."""
        return rss_bytes(self.pid)

    def events(self) -> list[dict[str, Any]]:
        """Every join and leave the child printed so far: ``{"kind", "id", "name"[, "code", "reason",
        "at"]}`` (``at`` is the child's monotonic clock, the same clock as this process's on Linux)."""
        return [json.loads(line[6:]) for line in list(self.lines) if line.startswith("event ")]

    def left(self, name: str | None = None) -> list[dict[str, Any]]:
        """The leaves printed so far, of clients called ``name`` (all of them if None)."""
        return [e for e in self.events() if e["kind"] == "left" and (name is None or e["name"] == name)]

    def close(self) -> None:
        """Kill the child (SIGKILL: a stalled server must not hold the test) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def server_child(get_every: float = 0.0, **servo: Any) -> Iterator[ServerChild]:
    """An echo server in a child process with these Servo keyword arguments (killed at the end)."""
    server = ServerChild(servo, get_every)
    try:
        yield server
    finally:
        server.close()


def echo_server(config: dict[str, Any]) -> None:
    """The child's main: a Servo with ``config["servo"]`` that echoes ``seq`` and prints its events."""
    from sprocket import Joined, Left, Packet, Servo

    servo = Servo("127.0.0.1", 0, **config["servo"])
    get_every = float(config["get_every"])
    print("port", servo.port, flush=True)
    start = time.monotonic()
    next_get = start
    wake = threading.Event()
    while time.monotonic() - start < LIFETIME:
        if time.monotonic() >= next_get:
            for item in servo.events():
                if type(item) is Packet:
                    if "seq" in item:
                        item.sender.send(echo=item["seq"])
                elif isinstance(item, Joined):
                    event = {"kind": "joined", "id": item.client.id, "name": item.client.name}
                    print("event", json.dumps(event), flush=True)
                elif isinstance(item, Left):
                    event = {
                        "kind": "left", "id": item.client.id, "name": item.client.name,
                        "code": str(item.code), "reason": item.reason, "at": time.monotonic(),
                    }  # fmt: skip
                    print("event", json.dumps(event), flush=True)
            next_get = time.monotonic() + get_every
        wake.wait(0.001)
    servo.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        echo_server(json.loads(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
