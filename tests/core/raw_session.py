"""A client :class:`~sprocket.protocol.Connection` driven by hand over a real socket.

The session tests use it where a :class:`~sprocket.Sprocket` cannot go: resuming from another source
address, presenting a forged or stale token, replaying captured HELLO bytes, or a wrong password on a
resume.  It speaks the real protocol code (no hand-made frames unless asked), over TCP on 127.0.0.0/8.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from sprocket.codec import MsgpackCodec
from sprocket.protocol import Closed, Connection, Event, Received, Welcomed, data_frame
from sprocket.session import Session
from sprocket.settings import Settings

CODEC = MsgpackCodec()


def copy_session(session: Session) -> Session:
    """An independent copy of ``session`` (its counters, token and held frames) to resume with."""
    copy = Session(session.id, session.token, grace=session.grace, limit=session.limit)
    copy.sent, copy.received, copy.base, copy.peer_acked = (
        session.sent, session.received, session.base, session.peer_acked,
    )  # fmt: skip
    copy.frames.extend(session.frames)
    copy.held = session.held
    copy.acked_out = session.acked_out
    return copy


class RawClient:
    """One client connection, by hand: ``step()`` moves bytes and runs timers; ``events`` keeps them all.

    ``written`` is every byte sent (to capture a HELLO); ``inject`` writes raw bytes instead of the
    Connection's own.
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        source: str | None = None,
        session: Session | None = None,
        **settings: Any,
    ) -> None:
        settings.setdefault("ping_interval", 0.2)
        settings.setdefault("timeout", 3.0)
        self.sock = socket.create_connection(
            (host, port), timeout=5.0, source_address=(source, 0) if source else None
        )
        self.conn = Connection("client", time.monotonic(), Settings(**settings), session=session)
        self.events: list[Event] = []
        self.written = bytearray()
        self.eof = False

    @property
    def packets(self) -> list[dict[str, Any]]:
        return [e.fields for e in self.events if isinstance(e, Received)]

    @property
    def closed(self) -> Closed | None:
        return next((e for e in self.events if isinstance(e, Closed)), None)

    @property
    def welcomed(self) -> Welcomed | None:
        return next((e for e in self.events if isinstance(e, Welcomed)), None)

    def send(self, **fields: Any) -> None:
        """Send a packet (kept in the session while not open, as a Sprocket does)."""
        frame = data_frame(CODEC.encode(fields))
        if self.conn.is_open:
            self.conn.send_data(frame)
        elif self.conn._resuming is not None:
            self.conn._resuming.record(frame)
        else:
            raise AssertionError("not open")

    def inject(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and not self.eof:
            self.written += out
            try:
                self.sock.sendall(out)
            except OSError:
                self.eof = True

    def step(self, wait: float = 0.02) -> None:
        self._flush()
        if not self.eof:
            self.sock.settimeout(wait)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                data = None
            except OSError:
                data = b""
            if data is not None:
                if not data:
                    self.eof = True
                self.conn.receive_data(data, time.monotonic())
        self.conn.tick(time.monotonic())
        self._flush()
        self.events.extend(self.conn.events())

    def until(self, condition: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events}")
            self.step()

    def reset(self) -> None:
        """Drop the connection with a TCP reset (no goodbye), as a cable pull would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.eof = True

    def close(self) -> None:
        self.sock.close()
        self.eof = True

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
