"""Every exception sprocket raises, in one tree.

Each class also derives from the built-in exception it fits, so ``except ValueError`` and friends keep
working::

    SprocketError
    ├── InvalidArgument       (also ValueError)     an argument is out of range (a port, a size, a codec name)
    │   └── InvalidType       (also TypeError)      ... or of the wrong type (a string where a number belongs)
    ├── UsageError            (also RuntimeError)   a call at the wrong moment (e.g. accept() twice)
    ├── PacketTooLarge        (also ValueError)     you tried to send more than max_packet_size
    ├── UnsendableValue       (also TypeError)      a value the codec cannot encode; register its type
    ├── RegistrationError     (also TypeError)      sprocket.register() was given something it cannot handle
    ├── ClosedError           (also ConnectionError) you closed it: local misuse
    ├── ConnectionFailed      (also ConnectionError) the network or the peer broke it
    │   ├── ConnectTimeout    (also TimeoutError)   no connection within the deadline
    │   └── Rejected                                the server said no during the handshake (reason given)
    └── ProtocolError         (also ValueError)     the peer sent something that breaks the wire protocol
        └── DecodeError                              ... in particular, bytes the codec cannot decode

The game layer adds ``sprocket.game.SnapshotError`` and ``EntityError`` (also ValueError) and
``HookError`` (also TypeError), all SprocketErrors too.  Every exception the library raises is in this
tree (tests/test_error_tree.py checks every raise site).

A remote peer's misbehaviour never raises in your thread: it disconnects that peer, with the reason, and
everyone else carries on.  ``ProtocolError`` escapes only from the pure decoding functions you call yourself.
"""

from __future__ import annotations

from .codes import CloseCode

__all__ = [
    "ClosedError",
    "ConnectTimeout",
    "ConnectionFailed",
    "DecodeError",
    "InvalidArgument",
    "InvalidType",
    "PacketTooLarge",
    "ProtocolError",
    "RegistrationError",
    "Rejected",
    "SprocketError",
    "UnsendableValue",
    "UsageError",
]


class SprocketError(Exception):
    """Base class of every exception sprocket raises."""


class InvalidArgument(SprocketError, ValueError):
    """An argument is out of range or otherwise unusable (the message says which and why)."""


class InvalidType(InvalidArgument, TypeError):
    """An argument has the wrong type (the message names the argument, the type wanted and the one given)."""


class UsageError(SprocketError, RuntimeError):
    """A method was called at a moment its contract does not allow (the message says which and why)."""


class PacketTooLarge(SprocketError, ValueError):
    """A packet's encoded size is over ``max_packet_size``; nothing was sent.

    Send less per packet (split the state, or send deltas), or raise ``max_packet_size`` on both ends.
    """


class UnsendableValue(SprocketError, TypeError):
    """A field's value has a type the codec cannot encode; nothing was sent.

    The message names the field and type.  Register the type with :func:`sprocket.register`.
    """


class RegistrationError(SprocketError, TypeError):
    """:func:`sprocket.register` was given a class it cannot make sendable, or a clashing name."""


class ClosedError(SprocketError, ConnectionError):
    """The object was closed by your own code (``close()`` or the end of a ``with`` block)."""


class ConnectionFailed(SprocketError, ConnectionError):
    """The connection could not be made, or was lost.  ``reason`` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectTimeout(ConnectionFailed, TimeoutError):
    """No connection was established within the deadline."""


class Rejected(ConnectionFailed):
    """The server refused the handshake (wrong password, server full, codec or app mismatch...).

    ``code`` is a :class:`~sprocket.CloseCode` refusal (``"password"``, ``"full"``, ``"codec"``, ``"app"``,
    ``"version"``, ``"busy"``, ``"limit"``, ``"rejected"``); ``reason`` is the server's explanation.
    """

    def __init__(self, reason: str, code: CloseCode | str = CloseCode.REJECTED) -> None:
        super().__init__(reason)
        self.code = CloseCode.from_wire(code, CloseCode.REJECTED)


class ProtocolError(SprocketError, ValueError):
    """The peer sent bytes that break the wire protocol (see docs/PROTOCOL.md)."""


class DecodeError(ProtocolError):
    """A payload could not be decoded by the codec (corrupt, hostile, or an unregistered type)."""
