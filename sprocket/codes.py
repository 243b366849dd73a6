"""Why a connection ended: the one list of close codes, used by the protocol, the events and the errors.

Every code is a short word that travels in BYE and REJECT frames (docs/PROTOCOL.md lists the same table;
a test checks that they agree).  :class:`CloseCode` is a ``str`` enum, so ``event.code == "timeout"``
works as well as ``event.code is CloseCode.TIMEOUT``.

This module holds data only: it imports nothing from sprocket.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode"]


class CloseCode(str, enum.Enum):
    """Why a connection ended (or was never made).  A ``str``: compare it with plain words.

    Goodbyes (a BYE frame, or the connection simply ending):

    - ``closed``: one side closed it normally.
    - ``shutdown``: the server is shutting down.
    - ``timeout``: nothing heard for ``timeout`` seconds, or the handshake took too long.
    - ``kicked``: the server kicked this client (only a server may say it).
    - ``protocol``: a peer broke the wire protocol (the reason says how).
    - ``send_queue_full``: a peer could not keep up with what was sent to it.
    - ``limit``: a packet was over the receiver's announced ``max_packet_size``.
    - ``lost``: the TCP connection dropped without a goodbye.
    - ``refused``: the connection could not be made (client side: nobody listening, bad address).

    Refusals (a REJECT frame during the handshake): ``password``, ``full``, ``codec``, ``app``,
    ``version``, ``busy``, ``limit``, ``session_lost`` (a resume the server cannot honour: unknown or
    expired session, a token that does not match, or more was sent while away than could be kept) and
    ``rejected`` (any other refusal).
    """

    CLOSED = "closed"
    SHUTDOWN = "shutdown"
    TIMEOUT = "timeout"
    KICKED = "kicked"
    PROTOCOL = "protocol"
    SEND_QUEUE_FULL = "send_queue_full"
    LIMIT = "limit"
    LOST = "lost"
    REFUSED = "refused"
    PASSWORD = "password"
    FULL = "full"
    CODEC = "codec"
    APP = "app"
    VERSION = "version"
    BUSY = "busy"
    SESSION_LOST = "session_lost"
    REJECTED = "rejected"

    # A str enum shows its value, so codes read naturally in messages and f-strings.
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def from_wire(cls, word: object, default: CloseCode) -> CloseCode:
        """The code a peer's frame names, or ``default`` for anything unknown (never raises)."""
        try:
            return cls(word)
        except ValueError:
            return default

    @property
    def is_refusal(self) -> bool:
        """True for the codes a server may put in a REJECT frame."""
        return self in _REFUSALS

    @property
    def peer_may_say(self) -> bool:
        """True for the codes either side may put in a BYE frame (``kicked`` and ``shutdown`` are the
        server's alone; ``lost`` and ``refused`` are never said, only observed)."""
        return self in _BYE_ANY


_REFUSALS = frozenset(
    {
        CloseCode.PASSWORD, CloseCode.FULL, CloseCode.CODEC, CloseCode.APP, CloseCode.VERSION,
        CloseCode.BUSY, CloseCode.LIMIT, CloseCode.SESSION_LOST, CloseCode.REJECTED,
    }
)  # fmt: skip
# Codes accepted in a BYE from either side; a client's BYE may not claim the server-only ones.
_BYE_ANY = frozenset(
    {CloseCode.CLOSED, CloseCode.TIMEOUT, CloseCode.PROTOCOL, CloseCode.SEND_QUEUE_FULL, CloseCode.LIMIT}
)
SERVER_ONLY = frozenset({CloseCode.SHUTDOWN, CloseCode.KICKED})
# How a connection may end and still be resumed: it dropped (no goodbye) or went silent.  Every goodbye,
# from either side, ends the session too.
RESUMABLE = frozenset({CloseCode.LOST, CloseCode.TIMEOUT})
