"""The ``Packet``: what users send and receive — string keys mapped to values.

This module only defines the container.  It never encodes, decodes or touches a socket.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from .errors import InvalidType

__all__ = ["EncodedPacket", "Packet", "check_field_names"]


def check_field_names(fields: Mapping[str, Any]) -> None:
    """Check that every key of a mapping about to be sent is a str (a packet's field names are).

    Raises:
        InvalidType: a key is not a str (the peer would have to refuse the packet and drop the connection).
    """
    for key in fields:
        if type(key) is not str:
            raise InvalidType(f"packet field names must be strings, got {key!r} ({type(key).__name__})")


class Packet(MutableMapping[str, Any]):
    """A message: string field names mapped to values.

    Fields are reachable as attributes (``p.x``) and as a mapping (``p["x"]``, ``"x" in p``, ``len(p)``,
    iteration, ``keys()/items()/get()``, ``dict(p)``).  A field whose name clashes with a Packet attribute
    or method (``keys``, ``sender``, ``get``...) is reachable only as ``p["keys"]``.

    ``sender`` is not a field: on a server it is the :class:`~sprocket.Client` the packet came from, on a
    client (and on packets you build yourself) it is ``None``.  Peers cannot set it.

    Packets compare equal to packets and dicts with the same fields (``sender`` is ignored).

    Raises:
        InvalidType: a field name is not a string (``InvalidType`` is a ``TypeError``).
    """

    # The fields are the instance's own __dict__, so reading ``p.x`` is Python's ordinary attribute lookup
    # (done in C), not a call of __getattr__; the methods are made data descriptors below (_shield), so a
    # field named like one (``keys``, ``get``) cannot hide it.  sender, _size and _cost are slots.
    __slots__ = ("__dict__", "_cost", "_size", "sender")

    _fields: dict[str, Any]  # the fields: the instance __dict__ (a property, set below)
    _size: int  # encoded size in bytes of a received packet (0 for packets built locally)
    _cost: int  # estimated size in memory of a received packet, for back-pressure (0 if built locally)
    sender: Any

    def __init__(self, _fields: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        data = dict(_fields) if _fields is not None else {}
        if fields:
            data.update(fields)
        for key in data:
            if type(key) is not str:
                raise InvalidType(
                    f"Packet field names must be strings, got {key!r} ({type(key).__name__}); "
                    "nest a dict inside a field if you need other keys"
                )
        _set_fields(self, data)
        _set_size(self, 0)
        _set_cost(self, 0)
        _set_sender(self, None)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _shield(cls)  # a subclass's own methods win over fields too

    @property
    def wire_size(self) -> int:
        """Bytes this packet's payload took on the wire (0 for a packet you built yourself).  Small packets
        sent in a burst share one frame (a BATCH, see docs/PROTOCOL.md): each then counts its equal share of
        that frame's body, rounded up.

        A field named ``wire_size`` is reachable as ``p["wire_size"]``.
        """
        return self._size

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup (methods, slots, then the fields) found nothing.
        raise AttributeError(f"packet has no field {name!r} (fields: {', '.join(self._fields) or 'none'})")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("sender", "_size", "_cost"):
            object.__setattr__(self, name, value)
        elif hasattr(type(self), name):
            raise AttributeError(f"{name!r} is a Packet method; set the field with p[{name!r}] = ...")
        else:
            self._fields[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            raise InvalidType(f"Packet field names must be strings, got {key!r} ({type(key).__name__})")
        self._fields[key] = value

    def __delitem__(self, key: str) -> None:
        del self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Packet):
            return self._fields == other._fields
        if isinstance(other, Mapping):
            return self._fields == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        body = ", ".join(
            f"{k}={v!r}" if k.isidentifier() else f"**{{{k!r}: {v!r}}}" for k, v in self._fields.items()
        )
        return f"Packet({body})"

    def __getstate__(self) -> dict[str, Any]:
        return self._fields

    def __setstate__(self, state: dict[str, Any]) -> None:
        _set_fields(self, dict(state))
        _set_size(self, 0)
        _set_cost(self, 0)
        _set_sender(self, None)

    def to_dict(self) -> dict[str, Any]:
        """Return a new plain ``dict`` of the fields (``sender`` is not included)."""
        return dict(self._fields)


class EncodedPacket:
    """A packet already encoded and framed, to send to many clients without encoding it again.

    Make one with :meth:`Servo.encode() <sprocket.Servo.encode>` (which checks its size once) and pass it
    to ``client.send_packet()`` or ``servo.sendall_packet()`` as often as you like.  Immutable.
    """

    __slots__ = ("frame", "size")

    frame: bytes
    size: int

    def __init__(self, frame: bytes, size: int) -> None:
        object.__setattr__(self, "frame", frame)
        object.__setattr__(self, "size", size)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an EncodedPacket cannot be changed")

    def __repr__(self) -> str:
        return f"<EncodedPacket {self.size} bytes>"


def _shield(cls: type) -> None:
    # Turn every public method of cls (its own and inherited, e.g. keys, get, update) into a data descriptor
    # that returns the bound method, so that it wins over an instance __dict__ entry of the same name, as a
    # method always won over a field when the fields were not the __dict__.  property(partial(MethodType,
    # f)) does it in C.  Special methods (__x__) are looked up on the type by Python itself.
    for klass in reversed(cls.__mro__[:-1]):
        for name, value in list(vars(klass).items()):
            if not name.startswith("__") and isinstance(value, types.FunctionType):
                setattr(cls, name, property(functools.partial(types.MethodType, value), doc=value.__doc__))


_shield(Packet)
# What the fields are: the instance __dict__ (a property, so a field named _fields cannot hide it).
_dict_descriptor = vars(Packet)["__dict__"]
Packet._fields = property(operator.attrgetter("__dict__"))  # type: ignore[assignment]

# Slot descriptors, bound once: the I/O thread builds one Packet per received message.
_new = object.__new__
_set_fields = _dict_descriptor.__set__
_set_size = Packet._size.__set__  # type: ignore[attr-defined]
_set_cost = Packet._cost.__set__  # type: ignore[attr-defined]
_set_sender = Packet.sender.__set__  # type: ignore[attr-defined]


def packet_setters() -> tuple[Any, Any, Any, Any, Any]:
    """(object.__new__, and the setters of _fields, _size, _cost, sender): for building received Packets
    fast."""
    return _new, _set_fields, _set_size, _set_cost, _set_sender
