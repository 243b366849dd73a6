"""sprocket: multiplayer pygame games talking over the network in minutes.

The core (this package) uses only the standard library and msgpack and never imports pygame::

    from sprocket import Packet, Sprocket, Servo

    servo = Servo(port=0)                         # a server, in a background thread
    s = Sprocket("127.0.0.1", servo.port)         # a client; returns at once
    s.send(x=3, y=2, id="Player 1")               # never blocks
    for packet in servo.get():                    # never blocks
        print(packet.x, packet.sender)

The game layer lives in :mod:`sprocket.game` (pygame).
"""

import logging as _logging

from .client import Sprocket
from .codec import register, registered_types
from .codes import CloseCode
from .errors import (
    ClosedError,
    ConnectionFailed,
    ConnectTimeout,
    DecodeError,
    InvalidArgument,
    InvalidType,
    PacketTooLarge,
    ProtocolError,
    RegistrationError,
    Rejected,
    SprocketError,
    UnsendableValue,
    UsageError,
)
from .events import Connected, Disconnected, Dropped, Joined, Left, Reconnected, Reconnecting, Resumed
from .packet import EncodedPacket, Packet
from .protocol import PROTOCOL_VERSION
from .server import Client, Servo
from .settings import DEFAULT_PORT

__version__ = "0.1.0"

# The library prints nothing: its log records go nowhere unless the application configures logging.
_logging.getLogger("sprocket").addHandler(_logging.NullHandler())

__all__ = [
    "DEFAULT_PORT",
    "PROTOCOL_VERSION",
    "Client",
    "CloseCode",
    "ClosedError",
    "ConnectTimeout",
    "Connected",
    "ConnectionFailed",
    "DecodeError",
    "Disconnected",
    "Dropped",
    "EncodedPacket",
    "InvalidArgument",
    "InvalidType",
    "Joined",
    "Left",
    "Packet",
    "PacketTooLarge",
    "ProtocolError",
    "Reconnected",
    "Reconnecting",
    "RegistrationError",
    "Rejected",
    "Resumed",
    "Servo",
    "Sprocket",
    "SprocketError",
    "UnsendableValue",
    "UsageError",
    "register",
    "registered_types",
]
