"""Values to bytes and back: the msgpack codec with extension types, the type registry, and opt-in pickle.

The default codec, ``"msgpack"``, is data-only: decoding hostile bytes can produce plain values
(None, bool, int, float, str, bytes, list, dict, tuple, set, frozenset) and instances of the types *you*
registered — never run code or build an arbitrary object.  Every decoding failure, whatever its cause,
surfaces as :class:`~sprocket.errors.DecodeError`.

``"pickle"`` sends anything picklable but lets the peer run code on your machine; use it only between
machines you trust.  Both ends must choose the same codec; the handshake checks.

This module never touches a socket or a thread.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import enum
import itertools
import pickle
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgpack
from msgpack import unpackb as _unpackb

from .errors import DecodeError, InvalidArgument, PacketTooLarge, RegistrationError, UnsendableValue
from .packet import Packet

__all__ = ["CODECS", "Codec", "MsgpackCodec", "PickleCodec", "get_codec", "register", "registered_types"]

T = TypeVar("T", bound=type)

# Extension type codes (documented in docs/PROTOCOL.md).
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_REGISTERED = 4
EXT_BIGINT = 5

# How many extension values may nest inside one another.  Plain arrays and maps are bounded by msgpack's
# own stack limit; extension values recurse through Python, so we bound them ourselves.
MAX_EXT_DEPTH = 32

# Decode budgets: what one packet may ask of the decoder, so that no packet within max_packet_size costs
# more than a few tens of milliseconds of CPU or a few times its size in memory (docs/PROTOCOL.md, "Decode
# budgets").  Over a budget is a DecodeError: the peer that sent it is disconnected, everyone else carries on.
MAX_CONTAINERS = 100_000  # arrays + maps in one packet (counted in payloads of COUNT_FROM bytes and more)
MAX_EXT_VALUES = 20_000  # extension values (tuples, sets, frozensets, big ints, registered types) per packet
MAX_EQUAL_HASHES = 8  # distinct keys of a set or non-string map that may share one hash value
CHECK_HASHES_FROM = 32  # sets and non-string maps smaller than this are too small to flood
# Memory estimate of a decoded packet, for back-pressure.  Payloads of COUNT_FROM bytes and more have their
# arrays and maps counted: BYTES_FACTOR x the size plus CONTAINER_BYTES per array or map (an empty map is one
# byte on the wire and about 70 in memory; a short string three bytes and about 50; a float nine and 24).
# Smaller ones are not counted (it would cost every small packet a Python call per map): SMALL_FACTOR x
# their size, which a packet of empty maps exceeds by at most 4.5x (by 4096 x 72 bytes at the most).
COUNT_FROM = 4096
BYTES_FACTOR = 8
# A BATCH frame (several small packets in one frame, see docs/PROTOCOL.md) is kept under COUNT_FROM bytes, so
# that decoding one costs no more, and no more memory, than one small packet: SMALL_FACTOR x its size.
MAX_BATCH_BYTES = COUNT_FROM - 1
CONTAINER_BYTES = 64
SMALL_FACTOR = 16


@dataclasses.dataclass(frozen=True)
class _Registered:
    name: str
    cls: type
    to_data: Callable[[Any], Any]
    from_data: Callable[[Any], Any]


_by_type: dict[type, _Registered] = {}
_by_name: dict[str, _Registered] = {}
_registry_lock = threading.Lock()


def register(
    cls: T | None = None,
    *,
    name: str | None = None,
    to_dict: Callable[[Any], Any] | None = None,
    from_dict: Callable[[Any], Any] | None = None,
) -> Any:
    """Make a class of your own sendable with the default codec; returns the class (usable as a decorator).

    Supported out of the box: dataclasses, NamedTuples, Enums, and any class with a ``to_dict(self)``
    method and a ``from_dict(cls, data)`` classmethod.  Pass ``to_dict``/``from_dict`` functions to adapt any
    other class.  The value's data must itself be sendable.

    Both ends must register the type under the same ``name`` (default: the class's ``__qualname__``)
    before sending or receiving it; receiving an unregistered name disconnects the sender with a reason
    that names it.  Registering the same name again replaces the earlier entry (handy when reloading).

    Usage: ``sprocket.register(Point)``, ``@sprocket.register``, or ``@sprocket.register(name="pt")``.

    Raises:
        RegistrationError: ``cls`` is not a class, or sprocket does not know how to convert it and no
            ``to_dict``/``from_dict`` were given.
    """
    if cls is None:
        return lambda c: register(c, name=name, to_dict=to_dict, from_dict=from_dict)
    if not isinstance(cls, type):
        raise RegistrationError(f"sprocket.register() takes a class, got {cls!r}")
    to_data, from_data = _converters(cls, to_dict, from_dict)
    entry = _Registered(name or cls.__qualname__, cls, to_data, from_data)
    with _registry_lock:
        old = _by_name.get(entry.name)
        if old is not None:
            _by_type.pop(old.cls, None)
        _by_type[cls] = entry
        _by_name[entry.name] = entry
    return cls


def registered_types() -> dict[str, type]:
    """Return a copy of the registry: registered name -> class."""
    with _registry_lock:
        return {name: entry.cls for name, entry in _by_name.items()}


def _converters(
    cls: type, to_dict: Callable[[Any], Any] | None, from_dict: Callable[[Any], Any] | None
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    if to_dict is not None or from_dict is not None:
        if to_dict is None or from_dict is None:
            raise RegistrationError(f"register({cls.__name__}): give both to_dict and from_dict, or neither")
        return to_dict, from_dict
    if issubclass(cls, enum.Enum):
        return (lambda v: v.value), cls
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        return (lambda v: {n: getattr(v, n) for n in names}), (lambda d: cls(**d))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return (lambda v: list(v)), (lambda d: cls(*d))
    hook_to = getattr(cls, "to_dict", None)
    hook_from = getattr(cls, "from_dict", None)
    if callable(hook_to) and callable(hook_from):
        return (lambda v: v.to_dict()), hook_from
    raise RegistrationError(
        f"sprocket does not know how to send {cls.__qualname__}: make it a dataclass, NamedTuple or Enum, "
        "give it to_dict(self) and a from_dict(cls, data) classmethod, or pass to_dict=/from_dict= "
        "to sprocket.register()"
    )


class Codec(abc.ABC):
    """Turns a packet's fields (a ``dict`` with string keys) into bytes and back.

    Subclasses implement :meth:`encode` and :meth:`decode`; ``name`` is what the handshake compares.
    """

    name: str = ""
    #: True if the codec's payloads are single msgpack values, so that several of them after a msgpack
    #: array header are one valid value: such packets may travel several to a BATCH frame
    #: (:meth:`decode_batch`).  Custom codecs leave it False and every packet has a DATA frame of its own.
    batches: bool = False

    @abc.abstractmethod
    def encode(self, fields: Mapping[str, Any]) -> bytes:
        """Encode a mapping of fields.  Raises :class:`UnsendableValue` naming the field that failed."""

    @abc.abstractmethod
    def decode(self, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Decode one payload into a ``dict`` with string keys.  Raises :class:`DecodeError` on failure."""

    def decode_sized(self, data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], int]:
        """Decode one payload; return the fields and an estimate of their size in memory, in bytes.

        The estimate drives back-pressure (``max_inbox_bytes``).  Raises :class:`DecodeError` on failure.
        """
        return self.decode(data), BYTES_FACTOR * len(data)

    def decode_batch(self, data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        """Decode a BATCH frame's payload into the fields of its packets, in order.

        Raises:
            DecodeError: always, unless the codec sets ``batches`` (and overrides this method).
        """
        raise DecodeError(f"the {self.name!r} codec does not take BATCH frames")


def _unsendable(value: Any) -> UnsendableValue:
    t = type(value)
    name = f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
    if t.__module__ in ("builtins", "datetime", "decimal", "fractions", "uuid", "pathlib") or isinstance(
        value, (types.FunctionType, types.MethodType, types.ModuleType, type)
    ):
        # Not a class of the user's own (a function, complex, datetime...): registering it would not work.
        return UnsendableValue(
            f"cannot send a value of type {name}: convert it to plain data first (numbers, strings, lists, "
            "dicts...), e.g. a datetime as its timestamp()"
        )
    how = (
        f"sprocket.register({t.__qualname__})"
        if _converters_known(t)
        else f"sprocket.register({t.__qualname__}, to_dict=..., from_dict=...)"
    )
    return UnsendableValue(
        f"cannot send a value of type {name}: register it with {how} on both ends (dataclass, NamedTuple, "
        "Enum, or a class with to_dict/from_dict), or convert it to plain data (numbers, strings, lists, "
        "dicts...)"
    )


def _converters_known(cls: type) -> bool:
    # True if register(cls) would work without converters.
    try:
        _converters(cls, None, None)
    except RegistrationError:
        return False
    return True


def _default(value: Any) -> Any:
    # Called by msgpack for every value it has no native encoding for.  With strict_types=True this
    # includes tuples and subclasses of the native types (IntEnum, namedtuples, OrderedDict...).
    t = type(value)
    entry = _by_type.get(t)
    if entry is not None:
        return msgpack.ExtType(EXT_REGISTERED, _pack([entry.name, entry.to_data(value)]))
    if t is tuple:
        return msgpack.ExtType(EXT_TUPLE, _pack(list(value)))
    if t is set:
        return msgpack.ExtType(EXT_SET, _pack(list(value)))
    if t is frozenset:
        return msgpack.ExtType(EXT_FROZENSET, _pack(list(value)))
    if t is int or (isinstance(value, int) and not isinstance(value, (bool, enum.Enum))):
        # Only reached for ints outside 64 bits (or int subclasses): keep them exact.
        return msgpack.ExtType(EXT_BIGINT, str(int(value)).encode())
    if isinstance(value, Packet):
        return value.to_dict()
    if isinstance(value, dict) and not isinstance(value, enum.Enum):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    if not isinstance(value, enum.Enum):
        for base in (str, bytes, float):
            if isinstance(value, base):
                return base(value)  # type: ignore[arg-type]  # a subclass travels as its base type
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise _unsendable(value)


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)


class _DecodeState(threading.local):
    """Per-thread budget counters of the packet being decoded (extension values decode recursively)."""

    depth = 0
    exts = 0
    containers = 0
    counting = False  # count arrays and maps (payloads of COUNT_FROM bytes and more)
    any_keys = False  # maps may have non-string keys (second pass, each map checked in Python)


_state = _DecodeState()


def _ext_hook(code: int, data: bytes) -> Any:
    state = _state
    if state.depth >= MAX_EXT_DEPTH:
        raise DecodeError(f"extension values nested deeper than {MAX_EXT_DEPTH}")
    if state.counting:  # (a payload under COUNT_FROM bytes cannot hold MAX_EXT_VALUES: no need to count)
        state.exts += 1
        if state.exts > MAX_EXT_VALUES:
            raise DecodeError(
                f"over the decode budget: more than {MAX_EXT_VALUES} extension values in one packet"
            )
    state.depth += 1
    try:
        if code == EXT_TUPLE:
            return tuple(_unpack_list(data))
        if code == EXT_SET:
            return set(_distinct_hashes(_unpack_list(data), "set"))
        if code == EXT_FROZENSET:
            return frozenset(_distinct_hashes(_unpack_list(data), "frozenset"))
        if code == EXT_BIGINT:
            if len(data) > 4300:  # CPython's own int-from-str digit limit
                raise DecodeError("big integer too long")
            return int(data.decode("ascii"))
        if code == EXT_REGISTERED:
            item = _unpack(data)
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise DecodeError("malformed registered-type value")
            entry = _by_name.get(item[0])
            if entry is None:
                raise DecodeError(
                    f"received a value of unregistered type {item[0]!r}; call sprocket.register() for it "
                    "on both ends"
                )
            try:
                return entry.from_data(item[1])
            except Exception as exc:
                raise DecodeError(f"could not rebuild a {item[0]!r} from the data received: {exc}") from exc
        raise DecodeError(f"unknown extension type {code}")
    finally:
        state.depth -= 1


def _distinct_hashes(keys: list[Any], what: str) -> list[Any]:
    """Return ``keys`` unless many of them share one hash value (a hash-flooding attack: building a set
    or dict of n such keys costs n*n/2 comparisons; 40,000 ints k*(2**61-1) all hash to 0).

    Strings and bytes are safe by construction (their hashes are salted per process); ints, floats and
    tuples are not.  Distinct hash values make insertion cheap however they collide in the table's low
    bits, so only equal hash values are counted.
    """
    if len(keys) < CHECK_HASHES_FROM:
        return keys
    try:
        counts = collections.Counter(map(hash, keys))
    except TypeError as exc:
        raise DecodeError(f"a {what} holds an unhashable value ({exc})") from None
    if max(counts.values()) > MAX_EQUAL_HASHES:
        raise DecodeError(f"a {what} of {len(keys)} keys with colliding hashes (hash flooding)")
    return keys


def _count_container(value: Any) -> Any:
    state = _state
    state.containers += 1
    if state.containers > MAX_CONTAINERS:
        raise DecodeError(f"over the decode budget: more than {MAX_CONTAINERS} arrays and maps in one packet")
    return value


def _checked_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    # Maps with keys other than strings: hash-checked before the dict is built, and counted.
    _count_container(None)
    if any(type(key) is not str for key, _ in pairs):
        _distinct_hashes([key for key, _ in pairs], "map")
    try:
        return dict(pairs)
    except TypeError as exc:
        raise DecodeError(f"a map key is unhashable ({exc})") from None


def _unpack(data: bytes | bytearray | memoryview) -> Any:
    # timestamp=1: msgpack's own timestamp extension (-1) decodes to a plain float of seconds.
    # First pass: string (and bytes) map keys only, maps built in C: their hashes are salted per process,
    # so they cannot be flooded.  A packet with other keys fails with ValueError and decode_value decodes
    # it again with any_keys set.
    state = _state
    if state.any_keys:
        return _unpack_any_keys(data)
    if state.counting:
        return msgpack.unpackb(
            data, ext_hook=_ext_hook, raw=False, use_list=True, timestamp=1,
            list_hook=_count_container, object_hook=_count_container,
        )  # fmt: skip
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, use_list=True, timestamp=1)


def _unpack_any_keys(data: bytes | bytearray | memoryview) -> Any:
    # Maps with any keys (ints, tuples...): each map goes through _checked_map.
    return msgpack.unpackb(
        data, ext_hook=_ext_hook, strict_map_key=False, raw=False, use_list=True, timestamp=1,
        list_hook=_count_container, object_pairs_hook=_checked_map,
    )  # fmt: skip


def _unpack_list(data: bytes) -> list[Any]:
    value = _unpack(data)
    if not isinstance(value, list):
        raise DecodeError("malformed collection value")
    return value


def decode_value(data: bytes | bytearray | memoryview) -> tuple[Any, int]:
    """Decode one msgpack value within the decode budgets; return it with an estimate of its size in memory.

    Raises:
        DecodeError: the bytes are not valid msgpack, or over a decode budget (see the MAX_* constants).
    """
    size = len(data)
    if size < COUNT_FROM:
        # The fast path of every small packet: maps with string keys only, built in C, nothing counted.
        # (MsgpackCodec.decode_sized repeats these lines, to save a call per packet.)
        try:
            return _unpackb(
                data, ext_hook=_ext_hook, raw=False, use_list=True, timestamp=1
            ), SMALL_FACTOR * size
        except Exception as exc:
            return _small_failed(data, exc)
    return _decode_counted(data, False)


def _small_failed(data: bytes | bytearray | memoryview, exc: Exception) -> tuple[Any, int]:
    # The fast path of a small payload raised `exc`: a map with keys other than strings is decoded again,
    # checking each such map; anything else is a DecodeError.
    if isinstance(exc, ValueError):  # DecodeError (from the ext hook) is one too
        if "not allowed for map key" not in str(exc):
            raise DecodeError(f"undecodable payload (ValueError: {exc})") from exc
    else:  # msgpack raises many types for junk: ValueError, StackError, TypeError...
        raise DecodeError(f"undecodable payload ({type(exc).__name__}: {exc})") from exc
    return _decode_counted(data, True)


def _decode_counted(data: bytes | bytearray | memoryview, any_keys: bool) -> tuple[Any, int]:
    # The counting path: payloads of COUNT_FROM bytes and more, and small ones with non-string map keys.
    size = len(data)
    state = _state
    state.exts = state.containers = 0
    state.counting = True
    state.any_keys = any_keys
    try:
        try:
            value = _unpack(data)
        except ValueError as exc:
            if any_keys or "not allowed for map key" not in str(exc):
                raise
            state.exts = state.containers = 0
            state.any_keys = True
            value = _unpack(data)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"undecodable payload ({type(exc).__name__}: {exc})") from exc
    finally:
        # Whatever happened (a budget exceeded part-way included), the next packet starts from zero.
        containers = state.containers
        state.any_keys = state.counting = False
        state.exts = state.containers = 0
    return value, BYTES_FACTOR * size + CONTAINER_BYTES * containers


class MsgpackCodec(Codec):
    """The default, data-only codec: msgpack plus tuples, sets, frozensets, big ints and registered types.

    Safe against a hostile peer: decoding never runs code and never builds an unregistered class.
    """

    name = "msgpack"
    batches = True

    def __init__(self) -> None:
        self._local = threading.local()

    def encode(self, fields: Mapping[str, Any]) -> bytes:
        """Encode a mapping of fields.  Raises :class:`UnsendableValue` naming the field that failed."""
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = self._local.packer = msgpack.Packer(
                default=_default, strict_types=True, use_bin_type=True, autoreset=True
            )
        try:
            return packer.pack(fields if type(fields) is dict else dict(fields))
        except UnsendableValue as exc:
            raise _name_field(fields, exc) from None
        except (TypeError, ValueError, OverflowError) as exc:
            # The packer was interrupted mid-value; start the next call from a clean one.
            self._local.packer = None
            raise UnsendableValue(f"cannot encode packet: {exc}") from exc

    def decode(self, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Decode one payload into a ``dict`` with string keys, within the decode budgets.

        Raises:
            DecodeError: corrupt or hostile bytes, an unregistered type, or over a decode budget.
        """
        return self.decode_sized(data)[0]

    def decode_sized(self, data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], int]:
        """:meth:`decode`, plus an estimate of the packet's size in memory (see :func:`decode_value`)."""
        size = len(data)
        if size < COUNT_FROM:  # decode_value's fast path, inlined: this runs for every packet received
            try:
                value = _unpackb(data, ext_hook=_ext_hook, raw=False, use_list=True, timestamp=1)
                cost = SMALL_FACTOR * size
            except Exception as exc:
                value, cost = _small_failed(data, exc)
        else:
            value, cost = _decode_counted(data, False)
        if type(value) is not dict:
            raise DecodeError(f"a packet must be a map of fields, got {type(value).__name__}")
        for key in value:
            if type(key) is not str:
                raise DecodeError(f"packet field names must be strings, got {type(key).__name__}")
        return value, cost

    def decode_batch(self, data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        """Decode a BATCH frame's payload (a msgpack array of packets, at most ``MAX_BATCH_BYTES``) into
        the fields of its packets, in order.  Decoding it costs no more than one payload of that size.

        Raises:
            DecodeError: over ``MAX_BATCH_BYTES``; not an array of 1 or more packets with nothing after it;
                a packet that :meth:`decode` would refuse.
        """
        return _decode_batch(data)


def _decode_batch(data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
    # MsgpackCodec.decode_batch: the whole batch in one unpackb (in C), then checks over all of it at once.
    size = len(data)
    if size > MAX_BATCH_BYTES:
        raise DecodeError(f"a BATCH frame of {size} bytes is over the limit of {MAX_BATCH_BYTES}")
    any_keys = False
    try:
        value = _unpackb(data, ext_hook=_ext_hook, raw=False, use_list=True, timestamp=1)
    except Exception as exc:
        value, _ = _small_failed(data, exc)  # a map with keys other than strings somewhere, or junk
        any_keys = True
    if type(value) is not list:
        raise DecodeError(f"a BATCH body must be an array of packets, got {type(value).__name__}")
    if not value:
        raise DecodeError("a BATCH frame holding no packets")
    if set(map(type, value)) != {dict}:
        bad = next(item for item in value if type(item) is not dict)
        raise DecodeError(f"a packet must be a map of fields, got {type(bad).__name__}")
    # The fast path builds maps with str or bin keys only; without a bin marker anywhere, all are str.
    if any_keys or b"\xc4" in data or b"\xc5" in data or b"\xc6" in data:  # bin 8, bin 16, bin 32
        kinds = set(map(type, itertools.chain.from_iterable(value)))
        if kinds != {str}:
            bad_kind = next(kind for kind in kinds if kind is not str)
            raise DecodeError(f"packet field names must be strings, got {bad_kind.__name__}")
    return value


def _check_fields(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError(f"a packet must be a map of fields, got {type(value).__name__}")
    for key in value:
        if type(key) is not str:
            raise DecodeError(f"packet field names must be strings, got {type(key).__name__}")
    return value


def _name_field(fields: Mapping[str, Any], exc: UnsendableValue) -> UnsendableValue:
    # Re-encode field by field to tell the user *which* field holds the bad value.
    for key, value in fields.items():
        try:
            _pack(value)
        except UnsendableValue:
            return UnsendableValue(f"field {key!r}: {exc}")
        except Exception:
            continue
    return exc


class PickleCodec(Codec):
    """Sends anything picklable.  UNSAFE with untrusted peers: unpickling can run arbitrary code.

    Use it only on a network where you trust every machine (both ends pass ``codec="pickle"``).
    """

    name = "pickle"

    def encode(self, fields: Mapping[str, Any]) -> bytes:
        """Pickle the fields.  Raises :class:`UnsendableValue` if they cannot be pickled."""
        try:
            return pickle.dumps(dict(fields), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise UnsendableValue(f"cannot pickle packet: {exc}") from exc

    def decode(self, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Unpickle one payload.  Raises :class:`DecodeError` if it is not a pickled dict of fields."""
        try:
            value = pickle.loads(data)
        except Exception as exc:
            raise DecodeError(f"undecodable pickle payload ({type(exc).__name__}: {exc})") from exc
        return _check_fields(value)


def encode_packet(codec: Codec, fields: Mapping[str, Any], limit: int) -> bytes:
    """Encode a packet's fields for sending, refusing it before anything goes out if it is too big.

    Raises:
        UnsendableValue: a value cannot be encoded (the message names the field).
        PacketTooLarge: the encoded packet is over ``limit`` bytes.
    """
    payload = codec.encode(fields)
    if len(payload) > limit:
        raise packet_too_large(len(payload), limit)
    return payload


def packet_too_large(size: int, limit: int) -> PacketTooLarge:
    """The error for a packet of ``size`` bytes encoded, over ``limit`` (see :func:`encode_packet`)."""
    return PacketTooLarge(
        f"packet is {size} bytes encoded, over max_packet_size ({limit}); send less per packet "
        "or raise max_packet_size on both ends"
    )


CODECS: dict[str, type[Codec]] = {"msgpack": MsgpackCodec, "pickle": PickleCodec}


def get_codec(codec: str | Codec) -> Codec:
    """Return a codec instance for a name (``"msgpack"`` or ``"pickle"``) or pass an instance through.

    Raises:
        InvalidArgument: unknown codec name.
    """
    if isinstance(codec, Codec):
        return codec
    try:
        return CODECS[codec]()
    except KeyError:
        raise InvalidArgument(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}") from None
