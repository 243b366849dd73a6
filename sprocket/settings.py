"""Settings: every option of a Sprocket or a Servo, checked once and handed down whole.

:class:`Settings` is one frozen dataclass.  ``Sprocket(...)`` and ``Servo(...)`` build it from their keyword
arguments, and the same object travels to the I/O thread and to each protocol :class:`Connection`, so an
option has one name from the keyword argument to the rule that uses it.

The ``check_*`` functions validate one argument and raise :class:`~sprocket.InvalidArgument` (or
:class:`~sprocket.InvalidType`) naming it; the game layer uses them too.  This module never does I/O.
"""

from __future__ import annotations

import dataclasses
import math
import ssl

from .codec import Codec, MsgpackCodec, get_codec
from .errors import InvalidArgument, InvalidType

__all__ = ["DEFAULT_PORT", "MIN_PACKET_LIMIT", "Settings", "check_duration", "check_port", "check_size"]

DEFAULT_PORT = 7777
# No peer may announce a max_packet_size below this: it would make every send fail.
MIN_PACKET_LIMIT = 1024
# The smallest replay buffer a session may have (the default is 16 times this, 1 MiB).
MIN_RESUME_BUFFER = 64 * 1024


def check_port(name: str, value: object) -> int:
    """Return ``value`` if it is a TCP port number (an int from 0 to 65535; 0 picks a free port).

    Raises:
        InvalidType: not an int (a bool is not a port either).
        InvalidArgument: outside 0-65535.
    """
    if type(value) is not int:
        raise InvalidType(f"{name} must be an int from 0 to 65535, got {value!r} ({type(value).__name__})")
    if not 0 <= value <= 65535:
        raise InvalidArgument(f"{name} must be from 0 to 65535, got {value}")
    return value


def check_duration(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number of seconds, > 0 (or >= 0 with ``allow_zero``).

    Raises:
        InvalidType: not a number.
        InvalidArgument: NaN, infinite, negative, or zero when zero is not allowed.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidType(f"{name} must be a number of seconds, got {value!r} ({type(value).__name__})")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        wanted = ">= 0" if allow_zero else "> 0"
        raise InvalidArgument(f"{name} must be a finite number of seconds {wanted}, got {value!r}")
    return seconds


def check_size(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (a count or a number of bytes).

    Raises:
        InvalidType: not an int.
        InvalidArgument: below ``minimum``.
    """
    if type(value) is not int:
        raise InvalidType(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidType(f"{name} must be a str or None, got {value!r} ({type(value).__name__})")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every option of one end of a connection, validated on creation.

    The fields are the keyword arguments of :class:`~sprocket.Sprocket` and :class:`~sprocket.Servo` (see
    their docstrings); a field that only one side uses is ignored by the other.  ``codec`` may also be
    given as a name (``"msgpack"``, ``"pickle"``); it is stored as a :class:`~sprocket.codec.Codec`.

    Raises:
        InvalidArgument: a value is out of range, or an unknown codec name.
        InvalidType: a value has the wrong type.
    """

    codec: Codec = dataclasses.field(default_factory=MsgpackCodec)
    max_packet_size: int = 1 << 20
    ping_interval: float = 1.0
    timeout: float = 10.0
    handshake_timeout: float = 5.0  # a Sprocket's connect_timeout: TCP connect plus handshake
    close_timeout: float = 1.0
    max_send_queue: int = 8 << 20
    max_inbox_bytes: int = 16 << 20
    password: str | None = None
    app: str | None = None
    ssl_context: ssl.SSLContext | None = None
    # Sessions: the bytes of sent frames kept until acknowledged, for replay after a resume (None: 1 MiB,
    # and at least two largest frames).
    resume_buffer: int | None = None
    # Client only.
    name: str | None = None
    server_hostname: str | None = None
    reconnect: bool = True
    # Server only.
    max_clients: int | None = None
    max_pending: int = 512
    max_pending_per_ip: int = 64
    max_inbox_bytes_per_client: int | None = None  # None: max_inbox_bytes // 4
    max_incomplete_bytes: int = 16 << 20
    max_packets_per_second: float | None = None
    grace: float = 30.0  # seconds a dropped client's seat is held (0: sessions off)
    max_held_sessions: int = 1024
    max_held_sessions_per_ip: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "codec", get_codec(self.codec))
        check_size("max_packet_size", self.max_packet_size, minimum=MIN_PACKET_LIMIT)
        for name in ("ping_interval", "timeout", "handshake_timeout"):
            object.__setattr__(self, name, check_duration(name, getattr(self, name)))
        object.__setattr__(
            self, "close_timeout", check_duration("close_timeout", self.close_timeout, allow_zero=True)
        )
        check_size("max_send_queue", self.max_send_queue)
        check_size("max_inbox_bytes", self.max_inbox_bytes)
        check_size("max_pending", self.max_pending)
        check_size("max_pending_per_ip", self.max_pending_per_ip)
        if self.max_inbox_bytes_per_client is None:
            object.__setattr__(self, "max_inbox_bytes_per_client", max(1, self.max_inbox_bytes // 4))
        check_size("max_inbox_bytes_per_client", self.max_inbox_bytes_per_client)
        check_size("max_incomplete_bytes", self.max_incomplete_bytes, minimum=self.max_packet_size)
        if self.max_packets_per_second is not None:
            rate = self.max_packets_per_second
            if isinstance(rate, bool) or not isinstance(rate, (int, float)):
                raise InvalidType(f"max_packets_per_second must be a number or None, got {rate!r}")
            if not (math.isfinite(rate) and rate > 0):
                raise InvalidArgument(f"max_packets_per_second must be a finite number > 0, got {rate!r}")
            object.__setattr__(self, "max_packets_per_second", float(rate))
        if self.resume_buffer is None:
            object.__setattr__(self, "resume_buffer", max(MIN_RESUME_BUFFER * 16, 2 * self.max_packet_size))
        check_size("resume_buffer", self.resume_buffer, minimum=MIN_RESUME_BUFFER)
        object.__setattr__(self, "grace", check_duration("grace", self.grace, allow_zero=True))
        check_size("max_held_sessions", self.max_held_sessions, minimum=0)
        check_size("max_held_sessions_per_ip", self.max_held_sessions_per_ip, minimum=0)
        if type(self.reconnect) is not bool:
            raise InvalidType(f"reconnect must be True or False, got {self.reconnect!r}")
        if self.max_clients is not None:
            check_size("max_clients", self.max_clients, minimum=0)
        for name in ("password", "app", "name", "server_hostname"):
            _check_text(name, getattr(self, name))
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise InvalidType(
                f"ssl_context must be an ssl.SSLContext or None, got {type(self.ssl_context).__name__}"
            )
