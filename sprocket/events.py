"""Connection events, delivered in the user's thread in order with the packets: plain records.

``Servo.events()`` returns :class:`Joined`, :class:`~sprocket.Packet`, :class:`Dropped`, :class:`Resumed`
and :class:`Left` items in the order they happened; ``Sprocket.events()`` returns :class:`Connected`,
packets, :class:`Reconnecting`, :class:`Reconnected` and :class:`Disconnected`.
``get()`` returns only the packets and runs the matching callbacks instead (see :mod:`sprocket.inbox` for
the ordering rule).

This module holds data only; it never touches a socket or a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .codes import CloseCode

if TYPE_CHECKING:  # for annotations only: events sit below the server in the import tower
    from .server import Client

__all__ = ["Connected", "Disconnected", "Dropped", "Joined", "Left", "Reconnected", "Reconnecting", "Resumed"]


@dataclass(frozen=True)
class Joined:
    """Server side: ``client`` completed its handshake.  Seen before any packet from it."""

    client: Client
    ends_connection: ClassVar[bool] = False


@dataclass(frozen=True)
class Left:
    """Server side: ``client`` is gone.  Seen after its last packet.

    ``code`` is a :class:`~sprocket.CloseCode`: ``closed`` (it said goodbye), ``timeout``, ``kicked``,
    ``protocol`` (it broke the protocol), ``send_queue_full``, ``limit``, ``lost`` (the connection
    dropped), ``shutdown`` (you closed the Servo).  ``reason`` is a sentence for logs and players.
    """

    client: Client
    reason: str
    code: CloseCode
    ends_connection: ClassVar[bool] = True


@dataclass(frozen=True)
class Dropped:
    """Server side: ``client``'s connection dropped (``code`` ``lost`` or ``timeout``), but its seat is held
    for the Servo's ``grace`` seconds.  Seen after its last packet.

    ``client`` stays in ``servo.clients`` with ``client.connected`` false; packets sent to it meanwhile are
    kept and delivered when it comes back (:class:`Resumed`).  If it does not, :class:`Left` follows.
    """

    client: Client
    reason: str
    code: CloseCode
    ends_connection: ClassVar[bool] = True


@dataclass(frozen=True)
class Resumed:
    """Server side: ``client`` came back within the grace period: the same handle, the same id.  Seen
    before any packet it sent on its new connection; nothing sent either way in between is lost or
    repeated."""

    client: Client
    ends_connection: ClassVar[bool] = False


@dataclass(frozen=True)
class Connected:
    """Client side: the handshake completed; ``id`` is this client's id on the server."""

    id: int
    ends_connection: ClassVar[bool] = False


@dataclass(frozen=True)
class Disconnected:
    """Client side: the connection ended, or could never be made.  Seen after the last packet.

    ``code`` is a :class:`~sprocket.CloseCode`: ``closed``/``shutdown`` (the server said goodbye, or you
    closed it), ``timeout``, ``refused``, ``lost``, ``kicked``, ``protocol``, ``send_queue_full``,
    ``limit``, or a refusal (``password``, ``full``, ``codec``, ``app``, ``version``, ``busy``,
    ``rejected``).  ``rejected`` is True when the server refused the handshake.
    """

    reason: str
    code: CloseCode
    rejected: bool = False
    ends_connection: ClassVar[bool] = True


@dataclass(frozen=True)
class Reconnecting:
    """Client side: the connection dropped (``code`` ``lost`` or ``timeout``) and the Sprocket is getting
    it back by itself (``Sprocket(reconnect=True)``, the default).  Seen after the last packet received
    before the drop.

    Packets you send meanwhile are kept and delivered once the connection is back.  What follows is
    :class:`Reconnected` (the same session: nothing lost), or :class:`Disconnected` (the server no longer
    holds the session, or it could not be reached within its grace period).
    """

    reason: str
    code: CloseCode
    ends_connection: ClassVar[bool] = True


@dataclass(frozen=True)
class Reconnected:
    """Client side: the connection is back and the session resumed: the same ``id``, and every packet
    sent either way while it was down is delivered, once, in order.  Seen before the first packet
    received on the new connection."""

    ends_connection: ClassVar[bool] = False
