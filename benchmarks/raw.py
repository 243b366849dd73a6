"""The raw baseline: the socket code a competent Python programmer would write by hand for a game.

It has the same shape of API as sprocket (``send(**fields)`` and ``get()`` never block, background I/O)
but none of sprocket's work: no handshake, no heartbeats, no timeouts, no send-queue limit, no
back-pressure, no events, no validation beyond the frame length.  It stands for the practical speed limit
of Python here, so sprocket's figures are given as ratios against it.

Wire format: a 4-byte big-endian length, then a msgpack map.  TCP_NODELAY on both ends.

* :class:`RawClient`: a writer thread that takes every frame queued since it last woke and sends them
  with one ``sendall`` (coalescing), and a reader thread doing ``recv_into`` a reused buffer.
* :class:`RawServer`: one reader thread (a ``selectors`` loop over the listener and every client socket,
  ``recv_into`` one reused buffer) and one writer thread that coalesces per client.  A broadcast is
  encoded once.

Not for production: a client that stops reading blocks the server's writer (there is no per-client
queue limit), and errors just drop the connection.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import selectors
import socket
import struct
import threading
from typing import Any

import msgpack

__all__ = ["RawClient", "RawServer"]

_HEADER = struct.Struct(">I")
RECV_SIZE = 256 * 1024
MAX_FRAME = 16 << 20
_packb = msgpack.packb
_unpackb = msgpack.unpackb


def _frame(fields: dict[str, Any]) -> bytes:
    payload = _packb(fields)
    return _HEADER.pack(len(payload)) + payload


class _Framer:
    """Splits a byte stream read with ``recv_into`` into msgpack-decoded frames.

    One reused buffer; the tail of a frame cut by the end of a read is carried over (usually a few bytes).
    """

    __slots__ = ("buf", "view")

    def __init__(self, size: int = RECV_SIZE) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)

    def read(self, sock: socket.socket, carry: bytes, out: collections.deque[Any], tag: Any) -> bytes | None:
        """Read once from ``sock``; append every complete frame's value (as ``(tag, value)`` if ``tag`` is
        not None) to ``out``; return the new carry-over, or None when the peer closed."""
        start = len(carry)
        if start >= 4:
            (length,) = _HEADER.unpack_from(carry)
            if length + 4 > len(self.buf):
                self._grow(length + 4)
        view = self.view
        if start:
            view[:start] = carry
        n = sock.recv_into(view[start:])
        if n == 0:
            return None
        end = start + n
        pos = 0
        unpackb = _unpackb
        append = out.append
        while end - pos >= 4:
            (length,) = _HEADER.unpack_from(view, pos)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes")
            stop = pos + 4 + length
            if stop > end:
                break
            value = unpackb(view[pos + 4 : stop])
            append(value if tag is None else (tag, value))
            pos = stop
        return bytes(view[pos:end]) if pos < end else b""

    def _grow(self, size: int) -> None:
        self.view.release()
        self.buf = bytearray(max(size, 2 * len(self.buf)))
        self.view = memoryview(self.buf)


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RawClient:
    """A client: connects at once (blocking, bounded by ``timeout``), then ``send``/``get`` never block."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        _tune(sock)
        self._sock = sock
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._inbox: collections.deque[dict[str, Any]] = collections.deque()
        self.connected = True
        self._reader = threading.Thread(target=self._read_loop, name="raw-client-reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="raw-client-writer", daemon=True)
        self._reader.start()
        self._writer.start()

    def send(self, **fields: Any) -> None:
        """Queue one packet; the writer thread sends it.  Never blocks."""
        self._out.put(_frame(fields))

    def get(self) -> list[dict[str, Any]]:
        """Every packet received since the last call, oldest first.  Never blocks."""
        inbox = self._inbox
        popleft = inbox.popleft
        return [popleft() for _ in range(len(inbox))]

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (up to ``timeout``), then close."""
        self._out.put(None)
        self._writer.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(timeout)

    def _write_loop(self) -> None:
        out = self._out
        sock = self._sock
        get_nowait = out.get_nowait
        try:
            while True:
                first = out.get()
                if first is None:
                    return
                chunks = [first]
                last = False
                with contextlib.suppress(queue.Empty):
                    while len(chunks) < 8192:
                        item = get_nowait()
                        if item is None:
                            last = True
                            break
                        chunks.append(item)
                sock.sendall(first if len(chunks) == 1 else b"".join(chunks))
                if last:
                    return
        except OSError:
            self.connected = False

    def _read_loop(self) -> None:
        framer = _Framer()
        carry = b""
        try:
            while True:
                new = framer.read(self._sock, carry, self._inbox, None)
                if new is None:
                    break
                carry = new
        except (OSError, ValueError):
            pass
        self.connected = False


class _Conn:
    __slots__ = ("carry", "id", "sock")

    def __init__(self, sock: socket.socket, conn_id: int) -> None:
        self.sock = sock
        self.id = conn_id
        self.carry = b""


class RawServer:
    """A server: accepts clients, ``get()`` returns ``(client_id, fields)`` pairs, ``send``/``sendall``
    never block.  Listens at once; ``port=0`` picks a free port (read ``server.port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(socket.SOMAXCONN)
        self._listener = listener
        self.port: int = listener.getsockname()[1]
        self._conns: dict[int, _Conn] = {}
        self._next_id = 1
        self._inbox: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._out: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._reader = threading.Thread(target=self._read_loop, name="raw-server-reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="raw-server-writer", daemon=True)
        self._reader.start()
        self._writer.start()

    @property
    def client_count(self) -> int:
        """Clients connected now."""
        return len(self._conns)

    def get(self) -> list[tuple[int, dict[str, Any]]]:
        """Every ``(client_id, fields)`` received since the last call, oldest first.  Never blocks."""
        inbox = self._inbox
        popleft = inbox.popleft
        return [popleft() for _ in range(len(inbox))]

    def send(self, client_id: int, **fields: Any) -> None:
        """Queue one packet for one client.  Never blocks."""
        self._out.put((client_id, _frame(fields)))

    def sendall(self, **fields: Any) -> None:
        """Queue one packet for every client, encoded once.  Never blocks."""
        self._out.put((0, _frame(fields)))

    def close(self) -> None:
        """Stop both threads and close every socket."""
        self._stopping = True
        self._out.put(None)
        self._wake_w.send(b"\0")
        self._writer.join(2.0)
        self._reader.join(2.0)

    def _read_loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, False)
        framer = _Framer()
        inbox = self._inbox
        try:
            while not self._stopping:
                for key, _ in selector.select():
                    conn = key.data
                    if conn is None:
                        self._accept(selector)
                    elif conn is False:
                        continue
                    else:
                        try:
                            carry = framer.read(conn.sock, conn.carry, inbox, conn.id)
                        except (OSError, ValueError):
                            carry = None
                        if carry is None:
                            self._drop(selector, conn)
                        else:
                            conn.carry = carry
        finally:
            for conn in list(self._conns.values()):
                self._drop(selector, conn)
            selector.close()
            self._listener.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.settimeout(None)
        _tune(sock)
        conn = _Conn(sock, self._next_id)
        self._next_id += 1
        self._conns[conn.id] = conn
        selector.register(sock, selectors.EVENT_READ, conn)

    def _drop(self, selector: selectors.BaseSelector, conn: _Conn) -> None:
        self._conns.pop(conn.id, None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(conn.sock)
        conn.sock.close()

    def _write_loop(self) -> None:
        out = self._out
        get_nowait = out.get_nowait
        while True:
            first = out.get()
            if first is None:
                return
            items = [first]
            last = False
            with contextlib.suppress(queue.Empty):
                while len(items) < 8192:
                    item = get_nowait()
                    if item is None:
                        last = True
                        break
                    items.append(item)
            # Coalesce: one sendall per client for everything queued since the last wake-up.
            per_client: dict[int, list[bytes]] = {}
            conns = self._conns
            for client_id, frame in items:
                if client_id:
                    per_client.setdefault(client_id, []).append(frame)
                else:
                    for cid in list(conns):
                        per_client.setdefault(cid, []).append(frame)
            for cid, frames in per_client.items():
                conn = conns.get(cid)
                if conn is None:
                    continue
                try:
                    conn.sock.sendall(frames[0] if len(frames) == 1 else b"".join(frames))
                except OSError:
                    continue  # the reader thread notices and drops it
            if last:
                return
