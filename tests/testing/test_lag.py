"""Tests for sprocket.testing.lag (LagProxy, also importable as sprocket.netsim): a lag/jitter/stall
simulating TCP relay, and its command line (``sprocket netsim``, ``python -m sprocket.netsim``).

Real sockets on 127.0.0.1 (port 0). No test synchronises with time.sleep: waits are
socket timeouts or ``wait_until`` deadline polls. Timing assertions are lower bounds only.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sprocket import ClosedError, InvalidArgument
from sprocket.testing import LagProxy, lag
from sprocket.testing import wait_until as kit_wait_until

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
IO_TIMEOUT = 10.0


# --------------------------------------------------------------------------- helpers


def wait_until(pred: Callable[[], object], timeout: float = IO_TIMEOUT) -> object:
    """The kit's wait_until with this file's longer default deadline (fails the test on timeout)."""
    return kit_wait_until(pred, timeout, "the relay")


def count_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise AssertionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def ping(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Round trip one payload through an echo; return the elapsed time."""
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    return time.monotonic() - start


def expect_closed(sock: socket.socket) -> bytes:
    """Read until EOF or a reset (a timeout fails the test); return what was read."""
    sock.settimeout(IO_TIMEOUT)
    buf = bytearray()
    try:
        while chunk := sock.recv(65536):
            buf += chunk
    except ConnectionResetError:
        pass
    return bytes(buf)


class Server:
    """A plain-socket TCP server on 127.0.0.1 running ``handler(conn)`` per connection."""

    def __init__(self, handler: Callable[[socket.socket], object]) -> None:
        self.handler = handler
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.05)  # lets the accept loop notice ``stop``
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.outcomes: list[object] = []
        self.threads: list[threading.Thread] = []
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.accept_thread.start()

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(15)
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            with self.lock:
                self.conns.append(conn)
                self.threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            outcome = self.handler(conn)
        except OSError as exc:
            outcome = exc
        finally:
            conn.close()
        with self.lock:
            self.outcomes.append(outcome)

    @property
    def accepted(self) -> int:
        with self.lock:
            return len(self.conns)

    def close(self) -> None:
        self.stop.set()
        self.accept_thread.join(5)
        self.listener.close()
        with self.lock:
            conns, threads = list(self.conns), list(self.threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)


def echo_handler(conn: socket.socket) -> str:
    try:
        while data := conn.recv(65536):
            conn.sendall(data)
    except ConnectionResetError:
        return "reset"
    return "eof"


def recording_handler(conn: socket.socket) -> bytes:
    buf = bytearray()
    while data := conn.recv(65536):
        buf += data
    return bytes(buf)


@pytest.fixture
def echo() -> Iterator[Server]:
    server = Server(echo_handler)
    yield server
    server.close()


@pytest.fixture
def make_server() -> Iterator[Callable[[Callable[[socket.socket], object]], Server]]:
    servers: list[Server] = []

    def make(handler: Callable[[socket.socket], object]) -> Server:
        servers.append(Server(handler))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Client sockets to close after the test."""
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def only_connection(proxy: LagProxy) -> lag.RelayedConnection:
    assert wait_until(lambda: len(proxy.connections) == 1)
    return proxy.connections[0]


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs", [{"lag": -0.1}, {"jitter": -1.0}, {"lag": float("nan")}, {"jitter": float("inf")}]
)
def test_constructor_rejects_bad_conditions(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        LagProxy(HOST, 9, **kwargs)


def test_set_and_stall_validate_arguments(echo: Server) -> None:
    with LagProxy(HOST, echo.port, lag=0.05) as proxy:
        with pytest.raises(InvalidArgument):
            proxy.set(lag=-1)
        with pytest.raises(InvalidArgument):
            proxy.set(lag=0.2, jitter=-1)
        assert proxy.lag == 0.05  # a rejected set() changes nothing
        with pytest.raises(InvalidArgument):
            proxy.stall(-0.5)
        with pytest.raises(InvalidArgument):
            proxy.stall(0.1, direction="sideways")


def test_one_way_delay_samples_lag_half_plus_minus_half_jitter() -> None:
    proxy = LagProxy(HOST, 9, lag=0.100, jitter=0.040, seed=7)
    twin = LagProxy(HOST, 9, lag=0.100, jitter=0.040, seed=7)
    try:
        samples = [proxy._one_way_delay() for _ in range(2000)]
        assert samples == [twin._one_way_delay() for _ in range(2000)]  # seed reproduces
        assert min(samples) >= 0.030 - 1e-12
        assert max(samples) <= 0.070 + 1e-12
        assert abs(sum(samples) / len(samples) - 0.050) < 0.002
        proxy.set(lag=0.010, jitter=0.100)  # jitter larger than lag: clamped, never negative
        samples = [proxy._one_way_delay() for _ in range(2000)]
        assert min(samples) == 0.0
        assert max(samples) <= 0.055 + 1e-12
    finally:
        proxy.close()
        twin.close()


# ------------------------------------------------------------------------ relaying


def test_bytes_pass_through_unchanged(echo: Server, sockets: list[socket.socket]) -> None:
    with LagProxy(HOST, echo.port) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        assert ping(client, b"hello") >= 0
        payload = os.urandom(1024 * 1024)
        sender = threading.Thread(target=client.sendall, args=(payload,), daemon=True)
        sender.start()
        assert recv_exact(client, len(payload)) == payload
        sender.join(IO_TIMEOUT)
        conn = only_connection(proxy)
        total = len(payload) + 5
        assert wait_until(lambda: conn.bytes_up == total and conn.bytes_down == total)
        assert conn.queued_up == conn.queued_down == 0


def test_server_speaks_first_and_closes(
    make_server: Callable[..., Server], sockets: list[socket.socket]
) -> None:
    def kick(conn: socket.socket) -> None:
        conn.sendall(b"welcome\n" + bytes(range(256)) * 100 + b"bye")

    server = make_server(kick)
    with LagProxy(HOST, server.port, lag=0.05) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        # Everything queued is delivered before the proxy closes the client side too.
        assert expect_closed(client) == b"welcome\n" + bytes(range(256)) * 100 + b"bye"
        assert wait_until(lambda: proxy.connections == [])


def test_client_close_flushes_queued_bytes_to_server(make_server: Callable[..., Server]) -> None:
    server = make_server(recording_handler)
    with LagProxy(HOST, server.port, lag=0.1) as proxy:
        client = connect(proxy.port)
        client.sendall(b"last words")
        client.close()
        assert wait_until(lambda: len(server.outcomes) == 1)
        assert server.outcomes == [b"last words"]
        assert wait_until(lambda: proxy.connections == [])


def test_lag_is_applied_to_the_round_trip(echo: Server, sockets: list[socket.socket]) -> None:
    with LagProxy(HOST, echo.port, lag=0.1) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        for _ in range(3):
            assert ping(client) >= 0.1 - 1e-3  # lower bound only


def test_order_preserved_under_heavy_jitter(echo: Server, sockets: list[socket.socket]) -> None:
    messages = [b"%06d\n" % i for i in range(2000)]
    expected = b"".join(messages)
    with LagProxy(HOST, echo.port, lag=0.02, jitter=0.08, seed=1234) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        for message in messages:
            client.sendall(message)
        received = recv_exact(client, len(expected))
    assert received == expected


def test_later_chunk_with_shorter_delay_waits_for_earlier_one(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(recording_handler)
    with LagProxy(HOST, server.port) as proxy:
        delays = [0.3]  # the first chunk gets 0.3 s, every later one 0 s
        proxy._one_way_delay = lambda: delays.pop() if delays else 0.0  # type: ignore[method-assign]
        client = connect(proxy.port)
        conn = only_connection(proxy)
        started = time.monotonic()
        client.sendall(b"first;")
        assert wait_until(lambda: not delays)  # "first;" is scheduled
        client.sendall(b"second")
        assert wait_until(lambda: conn.queued_up == 12 or conn.bytes_up > 0)
        client.close()
        assert wait_until(lambda: len(server.outcomes) == 1)
        assert server.outcomes == [b"first;second"]
        assert time.monotonic() - started >= 0.3


def test_stall_holds_traffic_then_delivers_in_order(echo: Server, sockets: list[socket.socket]) -> None:
    messages = b"".join(b"%04d;" % i for i in range(200))
    with LagProxy(HOST, echo.port) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        ping(client)
        started = time.monotonic()
        proxy.stall(0.3)
        client.sendall(messages)
        first = recv_exact(client, 1)
        first_at = time.monotonic()
        rest = recv_exact(client, len(messages) - 1)
        assert first_at - started >= 0.3
        assert first + rest == messages
        ping(client)  # traffic flows normally after the stall


@pytest.mark.parametrize("direction", ["up", "down"])
def test_connection_stall_one_direction(echo: Server, sockets: list[socket.socket], direction: str) -> None:
    with LagProxy(HOST, echo.port) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        ping(client)
        conn = only_connection(proxy)
        started = time.monotonic()
        conn.stall(0.2, direction)
        ping(client, b"0123456789" * 50)
        assert time.monotonic() - started >= 0.2


def test_set_changes_lag_live(echo: Server, sockets: list[socket.socket]) -> None:
    with LagProxy(HOST, echo.port) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        ping(client)
        proxy.set(lag=0.2)
        assert proxy.lag == 0.2
        assert ping(client) >= 0.2 - 1e-3  # same connection, new lag
        proxy.set(jitter=0.01)
        assert (proxy.lag, proxy.jitter) == (0.2, 0.01)
        assert ping(client) >= 0.19 - 1e-3


def test_slow_consumer_gets_back_pressure(
    make_server: Callable[..., Server], sockets: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 256 * 1024
    monkeypatch.setattr(lag, "MAX_QUEUED_BYTES", cap)
    payload = os.urandom(8 * 1024 * 1024)

    def push(conn: socket.socket) -> None:
        conn.sendall(payload)
        while conn.recv(65536):
            pass

    server = make_server(push)
    with LagProxy(HOST, server.port) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        conn = only_connection(proxy)
        # The client reads nothing: the proxy fills up to the cap, then stops reading.
        assert wait_until(lambda: conn.queued_down >= cap)
        assert wait_until(lambda: not conn._mask["server"] & selectors.EVENT_READ)
        limit = cap + 64 * 1024
        assert conn.queued_down <= limit
        received = bytearray()
        peak = 0
        while len(received) < len(payload):
            chunk = client.recv(65536)
            assert chunk, "unexpected EOF"
            received += chunk
            peak = max(peak, conn.queued_down)
        assert peak <= limit
        assert bytes(received) == payload


# ----------------------------------------------------------------------- failures


def test_disconnect_all_resets_both_ends(echo: Server, sockets: list[socket.socket]) -> None:
    with LagProxy(HOST, echo.port) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        ping(client)
        assert wait_until(lambda: echo.accepted == 1)
        proxy.disconnect_all()
        assert expect_closed(client) == b""
        assert wait_until(lambda: len(echo.outcomes) == 1)  # the server side saw EOF/reset
        assert echo.outcomes[0] in ("eof", "reset")
        assert proxy.connections == []
        again = connect(proxy.port)  # the proxy keeps accepting
        sockets.append(again)
        ping(again)


def test_connection_disconnect_affects_only_that_connection(
    echo: Server, sockets: list[socket.socket]
) -> None:
    with LagProxy(HOST, echo.port) as proxy:
        first, second = connect(proxy.port), connect(proxy.port)
        sockets += [first, second]
        ping(first)
        ping(second)
        assert wait_until(lambda: len(proxy.connections) == 2)
        victim = next(c for c in proxy.connections if c.client_address == first.getsockname())
        victim.disconnect()
        victim.disconnect()  # idempotent
        assert victim.closed
        assert expect_closed(first) == b""
        ping(second)
        assert proxy.connections != [] and victim not in proxy.connections


def test_target_down_closes_client(sockets: list[socket.socket]) -> None:
    with socket.create_server((HOST, 0)) as probe:
        dead_port = probe.getsockname()[1]  # nothing listens here once closed
    with LagProxy(HOST, dead_port, lag=0.05) as proxy:
        client = connect(proxy.port)
        sockets.append(client)
        with contextlib.suppress(OSError):
            client.sendall(b"anyone there?")
        assert expect_closed(client) == b""
        assert wait_until(lambda: proxy.connections == [])


def test_close_leaves_no_thread_and_no_fds(echo: Server) -> None:
    before = count_fds()
    unstarted = LagProxy(HOST, echo.port)
    unstarted.close()
    assert count_fds() == before

    proxy = LagProxy(HOST, echo.port, lag=0.02).start()
    thread_name = f"sprocket.netsim:{proxy.port}"
    assert any(t.name == thread_name for t in threading.enumerate())
    clients = [connect(proxy.port) for _ in range(3)]
    for client in clients:
        ping(client)
    clients[0].close()
    assert wait_until(lambda: len(proxy.connections) == 2)
    proxy.close()
    proxy.close()  # idempotent
    assert not any(t.name == thread_name for t in threading.enumerate())
    for client in clients[1:]:
        assert expect_closed(client) == b""  # close() closed the relayed sockets
        client.close()
    assert wait_until(lambda: len(echo.outcomes) == 3)  # the server's sockets are closed too
    assert wait_until(lambda: count_fds() == before), (count_fds(), before)
    with pytest.raises(ClosedError):
        proxy.start()


# ----------------------------------------------------------------------------- CLI


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_the_old_name_is_the_same_proxy() -> None:
    from sprocket import netsim

    assert netsim.LagProxy is LagProxy and netsim.RelayedConnection is lag.RelayedConnection


@pytest.mark.parametrize("command", [["sprocket.netsim"], ["sprocket", "netsim"]], ids=" ".join)
def test_cli_help(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command, "--help"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert "--target" in result.stdout and "--jitter" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-specific")
def test_cli_relays_and_exits_cleanly_on_ctrl_c(echo: Server) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sprocket",
            "netsim",
            "--target",
            f"{HOST}:{echo.port}",
            "--listen",
            f"{HOST}:0",
            "--lag",
            "20",
            "--jitter",
            "10",
            "--seed",
            "3",
        ],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        with connect(int(match.group(1))) as client:
            assert ping(client) >= 0.01 - 1e-3
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out
