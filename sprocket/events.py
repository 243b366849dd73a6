"""Connection events delivered in the user's thread, in order with the packets.

``Servo.events()`` returns :class:`Joined`, :class:`~sprocket.Packet` and :class:`Left` items in the order
they happened; ``Sprocket.events()`` returns :class:`Connected`, packets and :class:`Disconnected`.
``get()`` returns only the packets and runs the matching callbacks (``on_join``/``on_leave``,
``on_connect``/``on_disconnect``) at the right moment instead; see :class:`Endpoint`.

This module holds plain records and the draining rule; it never touches a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ClosedError
from .packet import Packet

if TYPE_CHECKING:
    from .iothread import IOThread
    from .server import Client

__all__ = ["Connected", "Disconnected", "Joined", "Left"]


@dataclass(frozen=True)
class Joined:
    """Server side: ``client`` completed its handshake.  Seen before any packet from it."""

    client: Client


@dataclass(frozen=True)
class Left:
    """Server side: ``client`` is gone.  Seen after its last packet.

    ``code`` is one word: ``closed`` (it said goodbye), ``timeout``, ``kicked``, ``protocol`` (it broke the
    protocol), ``send_queue_full``, ``lost`` (the connection dropped), ``shutdown`` (you closed the Servo).
    ``reason`` is a sentence for logs and players.
    """

    client: Client
    reason: str
    code: str


@dataclass(frozen=True)
class Connected:
    """Client side: the handshake completed; ``id`` is this client's id on the server."""

    id: int


@dataclass(frozen=True)
class Disconnected:
    """Client side: the connection ended, or could never be made.  Seen after the last packet.

    ``code``: ``closed``/``shutdown`` (the server said goodbye), ``timeout``, ``refused``, ``lost``,
    ``kicked``, ``protocol``, ``send_queue_full``, a reject code (``password``, ``full``, ``codec``,
    ``app``, ``version``, ``busy``), or ``closed`` after your own ``close()``.
    """

    reason: str
    code: str


class Endpoint:
    """What :class:`~sprocket.Sprocket` and :class:`~sprocket.Servo` share: ``get()``, ``events()`` and the
    ``with`` statement.  Subclasses set ``_io`` and implement ``_seen`` (bookkeeping for an event) and
    ``_callback`` (run the user's hook for an event)."""

    _io: IOThread
    _closed: bool = False

    def get(self) -> list[Packet]:
        """Return every packet received since the last call (maybe none), oldest first.  Never blocks.

        Join/leave (or connect/disconnect) callbacks run inside this call, in order: a join callback
        runs before that peer's first packet is returned; a leave callback waits for the next call when
        packets that came before it are being returned now, so you always process a peer's last packets
        before hearing that it left.

        Raises:
            ClosedError: this object was closed.
        """
        if self._closed:
            raise ClosedError(f"this {type(self).__name__} is closed; make a new one")
        io = self._io
        inbox = io.inbox
        # Fast path: read the length, then the event counter.  The I/O thread counts an event before
        # appending it, so if no event is pending now, the first n items are all packets.
        n = len(inbox)
        if io.events_in == io.events_out:
            popleft = inbox.popleft
            packets = [popleft() for _ in range(n)]
            if packets:
                io.stats["packets_in"] += n
                io.consumed(sum([p._size for p in packets]))
            return packets
        packets = []
        consumed = 0
        try:
            while inbox:
                item = inbox[0]
                if type(item) is Packet:
                    inbox.popleft()
                    packets.append(item)
                    consumed += item._size
                    continue
                if packets and isinstance(item, (Left, Disconnected)):
                    break
                inbox.popleft()
                io.events_out += 1
                self._seen(item)
                try:
                    self._callback(item)
                except BaseException:
                    # Your callback raised: the packets taken so far go back to the front of the inbox,
                    # so the next get() returns them instead of losing them.
                    inbox.extendleft(reversed(packets))
                    packets, consumed = [], 0
                    raise
        finally:
            if consumed:
                io.stats["packets_in"] += len(packets)
                io.consumed(consumed)
        return packets

    def events(self) -> list[Any]:
        """Return everything since the last call, in order: packets and connection events.  Never blocks.

        Use it instead of ``get()`` when you prefer one ``match``/``isinstance`` loop to callbacks; the
        callbacks are not run for the events it returns.

        Raises:
            ClosedError: this object was closed.
        """
        if self._closed:
            raise ClosedError(f"this {type(self).__name__} is closed; make a new one")
        io = self._io
        inbox = io.inbox
        out: list[Any] = []
        consumed = 0
        while inbox:
            item = inbox.popleft()
            if type(item) is Packet:
                consumed += item._size
                io.stats["packets_in"] += 1
            else:
                io.events_out += 1
                self._seen(item)
            out.append(item)
        if consumed:
            io.consumed(consumed)
        return out

    def _seen(self, event: Any) -> None:
        """Update user-thread bookkeeping for a connection event (e.g. the clients list)."""

    def _callback(self, event: Any) -> None:
        """Run the user's callback for a connection event."""

    def close(self) -> None:
        """Close; see the subclass."""
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_callback(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Call ``callback(*args)`` if one was given."""
    if callback is not None:
        callback(*args)
