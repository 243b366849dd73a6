"""LAN discovery: servers announce themselves with UDP broadcasts; browsers list what they hear.

A server's :class:`Announcer` sends a small datagram (docs/PROTOCOL.md, "LAN discovery") every
``interval`` seconds (0.5 by default) to the broadcast address and discovery port (``255.255.255.255``
and 7778 by default: the local subnet), with the server's name, game (app), port, rooms, players and
maximum; when it stops cleanly it sends a goodbye so browsers drop it at once.  A :class:`ServerBrowser`
listens on the discovery port and keeps the list (:class:`ServerInfo`); an entry not heard from for
``expire_after`` seconds (3 by default) disappears.  So that a list fills in at once rather than within
an announcement interval, a browser that starts sends a *query* (to the same broadcast address, on the
discovery port plus one) and every announcer hearing it answers straight away, to the browser only
(rate-limited, and never with more bytes than the query had: no amplification).
:func:`find_servers` listens for a while and returns the list (for scripts); :class:`ServerBrowser` is
non-blocking (``start``/``poll``/``close``: for a menu).

Why UDP broadcast and not DNS-SD/mDNS (``zeroconf``): the standard library is enough, it needs no new
dependency, and it is testable on loopback (a broadcast to ``127.255.255.255`` reaches every socket bound
to the discovery port on this machine), whereas mDNS is multicast to 224.0.0.251, which the project's tests
must never send.  The cost: broadcasts do not cross routers (neither does mDNS, in practice).

Every datagram is untrusted: at most :data:`MAX_DATAGRAM` bytes, the :data:`MAGIC` prefix, then a JSON
object whose every field is checked; the server's address is the datagram's source address, never a
field.  Each source address is rate-limited (a token bucket), each address may list at most
``max_per_address`` servers and the list at most ``max_servers``.  Nothing a datagram holds can raise in
your thread: a bad one is dropped and counted in :class:`DiscoveryStats`.

No pygame, no threads in the browser (it reads its sockets in ``poll()``); the announcer has one daemon
thread.  Never sends anywhere but the addresses it is given.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sprocket.errors import ClosedError, ConnectionFailed, InvalidArgument, ProtocolError, UsageError

from ._checks import InvalidType, check_count, check_number, describe
from .server import GameServer

log = logging.getLogger("sprocket")

__all__ = [
    "DEFAULT_BROADCAST",
    "DISCOVERY_PORT",
    "MAGIC",
    "MAX_DATAGRAM",
    "Announcement",
    "Announcer",
    "DiscoveryStats",
    "ServerBrowser",
    "ServerInfo",
    "ServerStatus",
    "ServerTable",
    "decode_announcement",
    "encode_announcement",
    "encode_query",
    "find_servers",
    "is_query",
]

DISCOVERY_PORT = 7778  # the UDP port browsers listen on (the game's DEFAULT_PORT, 7777, plus one)
DEFAULT_BROADCAST = "255.255.255.255"  # the local subnet; tests pass 127.255.255.255 (loopback) instead
MAGIC = b"SPKD"  # every discovery datagram starts with these 4 bytes
VERSION = 1
MAX_DATAGRAM = 512  # bytes; a longer datagram is dropped (counted as oversized)
MAX_NAME = 64  # characters of a server name or app
MAX_ID = 32  # characters of an announcer id
MAX_COUNT = 1_000_000  # the largest rooms / players / max_players accepted
KINDS = ("announce", "goodbye")
_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
_ANNOUNCE_KEYS = frozenset({"v", "kind", "id", "name", "app", "port", "rooms", "players", "max_players"})
_GOODBYE_KEYS = frozenset({"v", "kind", "id", "port"})
_READS_PER_POLL = 256  # datagrams read by one poll(): a flood cannot stall a menu's frame
_QUERY_KEYS = frozenset({"v", "kind", "pad"})
# An announcer answers queries at most this often: per source address (a token bucket: rate, burst),
# and in all (the same); more are dropped unanswered.
ANSWER_RATE, ANSWER_BURST = 5.0, 10
ANSWER_TOTAL_RATE, ANSWER_TOTAL_BURST = 50.0, 100
_READS_PER_WAKE = 64  # queries read by the announcer each time its socket is ready


@dataclass(frozen=True)
class Announcement:
    """One discovery datagram's content (see docs/PROTOCOL.md, "LAN discovery").

    ``kind`` is ``"announce"`` or ``"goodbye"`` (a goodbye carries only ``id`` and ``port``; the other
    fields keep their defaults).  ``id`` names the announcing instance (lowercase letters and digits, at
    most 32), so that a restarted server on the same port replaces its old entry.
    """

    kind: str
    id: str
    port: int
    name: str = ""
    app: str = ""
    rooms: int = 1
    players: int = 0
    max_players: int | None = None


@dataclass(frozen=True)
class ServerInfo:
    """A server a browser has heard: where it is and what it runs.

    ``address`` is the source address of its datagrams (never a field it sent); ``port`` its game port;
    ``max_players`` None when it has no limit; ``last_seen`` the browser clock's time (``time.monotonic``
    unless you injected another) of its latest announcement.
    """

    name: str
    address: str
    port: int
    app: str
    rooms: int
    players: int
    max_players: int | None
    last_seen: float
    id: str


@dataclass
class DiscoveryStats:
    """What a browser did with the datagrams it read (each one lands in exactly one counter after
    ``received``): ``accepted`` announcements, ``goodbyes``, ``junk`` (not a valid datagram), ``oversized``
    (over :data:`MAX_DATAGRAM`), ``rate_limited`` (its source sent too fast), ``full`` (a new server
    refused: the list or its address's share of it is full).  ``expired``: entries dropped for silence."""

    received: int = 0
    accepted: int = 0
    goodbyes: int = 0
    junk: int = 0
    oversized: int = 0
    rate_limited: int = 0
    full: int = 0
    expired: int = 0


@dataclass(frozen=True)
class ServerStatus:
    """What an :class:`Announcer` announces about its server at a moment (its ``status`` callable returns
    one): the game ``port``, ``app``, ``players``, ``max_players`` (None: no limit) and ``rooms``."""

    port: int
    app: str = ""
    players: int = 0
    max_players: int | None = None
    rooms: int = 1


# -- the datagram -----------------------------------------------------------------------------------------


def _check_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidType(f"{name} must be a str, got {describe(value)}")
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(
            f"{name} must be printable text of at most {limit} characters, got {describe(value)}"
        )
    return value


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidType(f"{name} must be an int, got {describe(value)}")
    if not low <= value <= high:
        raise InvalidArgument(f"{name} must be from {low} to {high}, got {value!r}")
    return value


def _check_id(value: object) -> str:
    text = _check_text(value, "id", MAX_ID)
    if not text or not set(text) <= _ID_CHARS:
        raise InvalidArgument(f"id must be 1 to {MAX_ID} lowercase letters and digits, got {text!r}")
    return text


def _checked(a: Announcement) -> dict[str, Any]:
    """The announcement's wire fields, each checked (raises InvalidArgument / InvalidType)."""
    if a.kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}, got {describe(a.kind)}")
    fields: dict[str, Any] = {
        "v": VERSION,
        "kind": a.kind,
        "id": _check_id(a.id),
        "port": _check_int(a.port, "port", 1, 65535),
    }
    if a.kind == "announce":
        fields["name"] = _check_text(a.name, "name", MAX_NAME)
        fields["app"] = _check_text(a.app, "app", MAX_NAME)
        fields["rooms"] = _check_int(a.rooms, "rooms", 0, MAX_COUNT)
        fields["players"] = _check_int(a.players, "players", 0, MAX_COUNT)
        if a.max_players is not None:
            _check_int(a.max_players, "max_players", 0, MAX_COUNT)
        fields["max_players"] = a.max_players
    return fields


def encode_announcement(announcement: Announcement) -> bytes:
    """The datagram for ``announcement``: :data:`MAGIC`, then its fields as compact JSON with sorted keys,
    ASCII only (``\\uXXXX`` escapes), UTF-8.

    Raises:
        InvalidArgument: a field is out of range (``InvalidType`` for a wrong type), or the datagram
            would be over :data:`MAX_DATAGRAM` bytes (a name full of escaped characters).
    """
    text = json.dumps(_checked(announcement), separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    data = MAGIC + text.encode("ascii")
    if len(data) > MAX_DATAGRAM:
        raise InvalidArgument(f"the announcement is {len(data)} bytes, over the {MAX_DATAGRAM}-byte limit")
    return data


def decode_announcement(data: bytes) -> Announcement:
    """Parse and check one datagram (untrusted bytes).

    Raises:
        ProtocolError: it is over :data:`MAX_DATAGRAM` bytes, lacks :data:`MAGIC`, is not a JSON object
            of the documented fields (no unknown key, no missing one), is of another version, or a field
            is of the wrong type or out of range.  Nothing else escapes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidType(f"data must be bytes, got {describe(data)}")
    data = bytes(data)
    if len(data) > MAX_DATAGRAM:
        raise ProtocolError(f"a {len(data)}-byte discovery datagram (the limit is {MAX_DATAGRAM})")
    if not data.startswith(MAGIC):
        raise ProtocolError("not a discovery datagram (no SPKD prefix)")
    body = data[len(MAGIC) :]
    if body[:1] != b"{":
        raise ProtocolError("a discovery datagram's body must be a JSON object")
    try:
        fields = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ProtocolError(f"a discovery datagram that is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ProtocolError("a discovery datagram's body must be a JSON object")
    if fields.get("v") != VERSION or isinstance(fields.get("v"), bool):
        raise ProtocolError(f"discovery version {describe(fields.get('v'))}, not {VERSION}")
    kind = fields.get("kind")
    keys = _ANNOUNCE_KEYS if kind == "announce" else _GOODBYE_KEYS if kind == "goodbye" else None
    if keys is None:
        raise ProtocolError(f"discovery kind {describe(kind)}, not one of {', '.join(KINDS)}")
    if set(fields) != keys:
        raise ProtocolError(f"a {kind} datagram's fields must be {', '.join(sorted(keys))}")
    fields.pop("v")
    try:
        announcement = Announcement(**fields)
        _checked(announcement)
    except InvalidArgument as exc:
        raise ProtocolError(f"a bad discovery datagram: {exc}") from None
    return announcement


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


def encode_query() -> bytes:
    """A browser's query datagram: :data:`MAGIC`, then ``{"kind":"query","pad":"...","v":1}`` padded with
    spaces in ``pad`` to exactly :data:`MAX_DATAGRAM` bytes (an announcer answers a query only with a
    datagram no longer than it: see docs/PROTOCOL.md, "LAN discovery").  Raises nothing."""
    head = MAGIC + b'{"kind":"query","pad":"'
    tail = b'","v":1}'
    return head + b" " * (MAX_DATAGRAM - len(head) - len(tail)) + tail


def is_query(data: bytes) -> bool:
    """Whether ``data`` (untrusted bytes) is a valid query datagram: at most :data:`MAX_DATAGRAM` bytes,
    :data:`MAGIC`, then a JSON object of exactly ``v`` (1), ``kind`` (``"query"``) and ``pad`` (a str).
    Raises nothing."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_DATAGRAM or not data.startswith(MAGIC):
        return False
    try:
        fields = json.loads(bytes(data[len(MAGIC) :]).decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError, ProtocolError):
        return False
    return (
        isinstance(fields, dict)
        and set(fields) == _QUERY_KEYS
        and fields["kind"] == "query"
        and fields["v"] == VERSION
        and not isinstance(fields["v"], bool)
        and isinstance(fields["pad"], str)
    )


# -- the list, pure (an injected clock) ------------------------------------------------------------------


class _Bucket:
    __slots__ = ("tokens", "when")

    def __init__(self, tokens: float, when: float) -> None:
        self.tokens = tokens
        self.when = when


class _Limiter:
    """Token buckets per source address (at most ``max_sources`` remembered, the least recently heard
    forgotten first) and, unless ``total_rate`` is None, one for all sources together."""

    def __init__(
        self, rate: float, burst: int, total_rate: float | None, total_burst: int, max_sources: int
    ) -> None:
        self.rate, self.burst = rate, burst
        self.total_rate, self.total_burst = total_rate, total_burst
        self.max_sources = max_sources
        self._buckets: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()
        self._total: _Bucket | None = None

    def allow(self, address: str, now: float) -> bool:
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._buckets.popitem(last=False)
            bucket = self._buckets[address] = _Bucket(float(self.burst), now)
        else:
            self._buckets.move_to_end(address)
            _refill(bucket, self.rate, self.burst, now)
        total = self._total
        if self.total_rate is not None:
            if total is None:
                total = self._total = _Bucket(float(self.total_burst), now)
            else:
                _refill(total, self.total_rate, self.total_burst, now)
        if bucket.tokens < 1.0 or (total is not None and total.tokens < 1.0):
            return False
        bucket.tokens -= 1.0
        if total is not None:
            total.tokens -= 1.0
        return True


def _refill(bucket: _Bucket, rate: float, cap: int, now: float) -> None:
    bucket.tokens = min(float(cap), bucket.tokens + max(0.0, now - bucket.when) * rate)
    bucket.when = now


class ServerTable:
    """The list of servers heard, fed datagrams with their source and the time: pure (no socket, no
    clock of its own), so the expiry and the limits are tested in memory.

    Args:
        expire_after: seconds of silence after which a server is dropped (> 0; default 3).
        max_servers: the most servers listed (>= 1; default 256); a new one beyond is refused.
        max_per_address: the most servers (ports) listed for one source address (>= 1; default 32).
        rate: datagrams per second accepted from one source address (> 0; default 20) ...
        burst: ... with bursts of up to this many (>= 1; default 40).
        max_sources: source addresses whose rate is tracked (>= 1; default 1024; the least recently
            heard is forgotten beyond).

    Raises:
        InvalidArgument: an argument out of range (``InvalidType`` for a wrong type).
    """

    def __init__(
        self,
        *,
        expire_after: float = 3.0,
        max_servers: int = 256,
        max_per_address: int = 32,
        rate: float = 20.0,
        burst: int = 40,
        max_sources: int = 1024,
    ) -> None:
        self.expire_after = check_number(
            expire_after, "expire_after", positive=True, what="a number of seconds"
        )
        self.max_servers = check_count(max_servers, "max_servers")
        self.max_per_address = check_count(max_per_address, "max_per_address")
        self.rate = check_number(rate, "rate", positive=True, what="a number of datagrams per second")
        self.burst = check_count(burst, "burst")
        self.max_sources = check_count(max_sources, "max_sources")
        self.stats = DiscoveryStats()
        self._servers: dict[tuple[str, int], ServerInfo] = {}
        self._per_address: collections.Counter[str] = collections.Counter()
        self._limiter = _Limiter(self.rate, self.burst, None, 0, self.max_sources)

    def feed(self, data: bytes, address: str, now: float) -> None:
        """Take one datagram from source ``address`` at time ``now``.  Never raises for what ``data``
        holds: a bad, oversized, too-frequent or unlistable datagram is dropped and counted."""
        stats = self.stats
        stats.received += 1
        if not self._allow(address, now):
            stats.rate_limited += 1
            return
        if len(data) > MAX_DATAGRAM:
            stats.oversized += 1
            return
        try:
            a = decode_announcement(data)
        except ProtocolError:
            stats.junk += 1
            return
        key = (address, a.port)
        known = self._servers.get(key)
        if a.kind == "goodbye":
            if known is not None and known.id == a.id:
                self._remove(key)
            stats.goodbyes += 1
            return
        if known is None:
            self._expire(now)
            if len(self._servers) >= self.max_servers or self._per_address[address] >= self.max_per_address:
                stats.full += 1
                return
            self._per_address[address] += 1
        self._servers[key] = ServerInfo(
            a.name, address, a.port, a.app, a.rooms, a.players, a.max_players, now, a.id
        )
        stats.accepted += 1

    def servers(self, now: float) -> list[ServerInfo]:
        """The servers heard within ``expire_after`` seconds before ``now`` (the older ones are dropped),
        by name, then address and port."""
        self._expire(now)
        return sorted(self._servers.values(), key=lambda s: (s.name, s.address, s.port))

    def __len__(self) -> int:
        return len(self._servers)

    def _remove(self, key: tuple[str, int]) -> None:
        del self._servers[key]
        self._per_address[key[0]] -= 1
        if self._per_address[key[0]] <= 0:
            del self._per_address[key[0]]

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._servers.items() if now - s.last_seen > self.expire_after]:
            self._remove(key)
            self.stats.expired += 1

    def _allow(self, address: str, now: float) -> bool:
        return self._limiter.allow(address, now)


# -- the browser -------------------------------------------------------------------------------------------


def _check_address(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidType(f"{name} must be an IPv4 address as a str, got {describe(value)}")
    if value == "":
        return value
    try:
        socket.inet_aton(value)
    except OSError:
        raise InvalidArgument(
            f"{name} must be an IPv4 address such as 127.255.255.255, got {value!r}"
        ) from None
    if value.count(".") != 3:
        raise InvalidArgument(f"{name} must be a dotted IPv4 address (a.b.c.d), got {value!r}")
    return value


def _check_port(value: object, name: str, minimum: int = 0) -> int:
    return _check_int(value, name, minimum, 65535)


class ServerBrowser:
    """Lists the servers announcing on the LAN, without blocking: for a menu.

    ``start()`` opens the listening socket and sends a query (see ``query``): the announcers that hear it
    answer at once, so the list fills in within a round trip instead of an announcement interval; each
    ``poll()`` reads what arrived (at most 256 datagrams per socket, so a flood cannot stall your frame)
    and returns the current list; ``close()`` (or the end of a ``with`` block) closes it.  Usable without
    pygame, from any one thread.

    Args:
        port: the discovery port to listen on (default :data:`DISCOVERY_PORT`; 0 picks a free one, see
            :attr:`port`).
        bind: the address to listen on: ``""`` (default) hears broadcasts from the whole LAN;
            ``"127.255.255.255"`` hears only this machine's loopback broadcasts; a unicast address hears
            announcements sent straight to it.
        clock: the time source (default ``time.monotonic``); ``last_seen`` and the expiry use it.
        query: where to send the query when starting (and on :meth:`refresh`), on the discovery port plus
            one: an address or a sequence of them; None (default): ``bind`` if it is an address (e.g.
            ``"127.255.255.255"``), else :data:`DEFAULT_BROADCAST` (the LAN); ``()``: send none (only
            listen).
        table_options: ``expire_after``, ``max_servers``, ``max_per_address``, ``rate``, ``burst``,
            ``max_sources`` (see :class:`ServerTable`).

    Raises:
        InvalidArgument: a bad argument (``InvalidType`` for a wrong type).
    """

    def __init__(
        self,
        *,
        port: int = DISCOVERY_PORT,
        bind: str = "",
        clock: Callable[[], float] = time.monotonic,
        query: str | Sequence[str] | None = None,
        **table_options: Any,
    ) -> None:
        self._want_port = _check_port(port, "port")
        self.bind = _check_address(bind, "bind")
        if query is None:
            targets = [self.bind or DEFAULT_BROADCAST]
        else:
            targets = [query] if isinstance(query, str) else list(query)
        self.query = [_check_address(a, "query") for a in targets]
        if "" in self.query:
            raise InvalidArgument("query must be IPv4 addresses, not ''")
        self.queries_sent = 0  # query datagrams sent (one per address per start() or refresh())
        if not callable(clock):
            raise InvalidType(f"clock must be a function returning seconds, got {describe(clock)}")
        self.clock = clock
        self.table = ServerTable(**table_options)
        self._sock: socket.socket | None = None
        self._query_sock: socket.socket | None = None  # sends the queries; the answers come back to it
        self._closed = False

    @property
    def stats(self) -> DiscoveryStats:
        """The counts of datagrams read, accepted and dropped (by reason)."""
        return self.table.stats

    @property
    def port(self) -> int:
        """The port listened on (the one picked when ``port=0``).

        Raises:
            UsageError: not started yet.
        """
        if self._sock is None:
            raise UsageError("the ServerBrowser is not started: call start() first")
        return int(self._sock.getsockname()[1])

    def start(self) -> ServerBrowser:
        """Open the listening socket (several browsers on one machine may share the port); returns self.

        Raises:
            ClosedError: it was closed.
            UsageError: it is already started.
            ConnectionFailed: the socket cannot be bound (the reason says why).
        """
        if self._closed:
            raise ClosedError("the ServerBrowser is closed")
        if self._sock is not None:
            raise UsageError("the ServerBrowser is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT") and os.name != "nt":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.bind, self._want_port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            where = f"{self.bind or '*'}:{self._want_port}"
            raise ConnectionFailed(
                f"cannot listen for LAN servers on {where}: {exc.strerror or exc}"
            ) from None
        self._sock = sock
        if self.query:
            query = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                query.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                query.bind(("", 0))
                query.setblocking(False)
            except OSError as exc:  # no query, then: the announcements still come
                query.close()
                log.warning("LAN discovery: cannot send queries: %s", exc)
            else:
                self._query_sock = query
                self.refresh()
        return self

    def refresh(self) -> None:
        """Ask the announcers to answer now (a query to each ``query`` address, on the discovery port
        plus one); their answers arrive in :meth:`poll`.  :meth:`start` does it once.  Nothing is sent
        without query addresses, or when the discovery port is 65535.

        Raises:
            ClosedError: it was closed.
            UsageError: it is not started.
        """
        self._socket()
        sock = self._query_sock
        port = self.port + 1
        if sock is None or port > 65535:
            return
        data = encode_query()
        for address in self.query:
            try:
                sock.sendto(data, (address, port))
                self.queries_sent += 1
            except OSError as exc:  # no route (no network yet): the announcements still come
                log.debug("LAN discovery: cannot query %s: %s", address, exc)

    def poll(self) -> list[ServerInfo]:
        """Read the datagrams that arrived (without waiting) and return the servers listed now, by name.

        Raises:
            ClosedError: it was closed.
            UsageError: it is not started.
        """
        self._read(0.0)
        return self.table.servers(self.clock())

    @property
    def servers(self) -> list[ServerInfo]:
        """The servers listed as of the last read (expired ones dropped), without reading the socket."""
        return self.table.servers(self.clock())

    def wait(self, timeout: float) -> list[ServerInfo]:
        """Listen for ``timeout`` seconds (blocking this thread), then return the list.

        Raises:
            InvalidArgument: ``timeout`` is negative or not finite.
            ClosedError / UsageError: as :meth:`poll`.
        """
        timeout = check_number(timeout, "timeout", minimum=0.0, what="a number of seconds")
        deadline = time.monotonic() + timeout
        while True:
            self._read(0.0)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._read(left)
        return self.table.servers(self.clock())

    def _socket(self) -> socket.socket:
        if self._closed:
            raise ClosedError("the ServerBrowser is closed")
        if self._sock is None:
            raise UsageError("the ServerBrowser is not started: call start() first")
        return self._sock

    def _read(self, wait: float) -> None:
        socks = [self._socket()]
        if self._query_sock is not None:
            socks.append(self._query_sock)
        if wait > 0:
            socks, _, _ = select.select(socks, [], [], wait)
        for sock in socks:
            for _ in range(_READS_PER_POLL):
                try:
                    data, source = sock.recvfrom(MAX_DATAGRAM + 1)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # an ICMP error reported on the socket, say: not the datagram's fault
                    log.debug("LAN discovery: %s", exc)
                    continue
                self.table.feed(data, str(source[0]), self.clock())

    def fileno(self) -> int:
        """The listening socket's descriptor, for ``select()`` in your own loop (ready: call :meth:`poll`).
        The answers to queries arrive on another socket: select on :meth:`filenos` to wait for both.

        Raises:
            ClosedError: it was closed.
            UsageError: it is not started.
        """
        return self._socket().fileno()

    def filenos(self) -> list[int]:
        """The descriptors of the listening socket and of the query socket (if any), for ``select()``:
        when one is ready, call :meth:`poll`.

        Raises:
            ClosedError: it was closed.
            UsageError: it is not started.
        """
        fds = [self._socket().fileno()]
        if self._query_sock is not None:
            fds.append(self._query_sock.fileno())
        return fds

    def close(self) -> None:
        """Close the sockets (idempotent)."""
        self._closed = True
        for sock in (self._sock, self._query_sock):
            if sock is not None:
                sock.close()
        self._sock = self._query_sock = None

    def __enter__(self) -> ServerBrowser:
        return self.start() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_servers(
    timeout: float = 1.0,
    *,
    port: int = DISCOVERY_PORT,
    bind: str = "",
    query: str | Sequence[str] | None = None,
    **table_options: Any,
) -> list[ServerInfo]:
    """Query, then listen for ``timeout`` seconds (default 1: servers that do not answer queries announce
    twice a second) and return the servers heard, by name.  ``port``, ``bind``, ``query`` and the table
    options are :class:`ServerBrowser`'s.

    Raises:
        InvalidArgument: a bad argument (``InvalidType`` for a wrong type).
        ConnectionFailed: the discovery port cannot be listened on.
    """
    timeout = check_number(timeout, "timeout", minimum=0.0, what="a number of seconds")
    with ServerBrowser(port=port, bind=bind, query=query, **table_options) as browser:
        return browser.wait(timeout)


# -- the announcer -----------------------------------------------------------------------------------------


def _answerable(address: str, port: int, broadcasts: Sequence[str]) -> bool:
    """Whether a query from ``address``:``port`` may be answered: a unicast source (never 0.x, a
    multicast or the limited broadcast address, nor an address this announcer broadcasts to) and a
    port.  A spoofed source must not turn an answer into a broadcast."""
    if port == 0 or address in broadcasts:
        return False
    try:
        first = int(address.split(".", 1)[0])
    except ValueError:
        return False
    return 0 < first < 224 and address != "255.255.255.255"


def status_of(server: GameServer, rooms: Callable[[], int] | None = None) -> Callable[[], ServerStatus]:
    """A ``status`` callable for an :class:`Announcer` reading a :class:`GameServer`: its port, the
    Servo's ``app`` (or the class name), its players (away ones included), the Servo's ``max_clients``,
    and ``rooms()`` (default: 1)."""
    settings = server.servo.settings
    app = settings.app or type(server).__name__
    port = server.port

    def status() -> ServerStatus:
        return ServerStatus(port, app, len(server.players), settings.max_clients, rooms() if rooms else 1)

    return status


class Announcer:
    """Announces a server on the LAN: a datagram every ``interval`` seconds until :meth:`close`, which
    sends a goodbye, and (``answer``) an immediate answer to a browser's query.  One daemon thread; with
    the browsers' queries, the library's only sender of discovery traffic.

    Answering: it listens on the discovery port plus one, on its ``bind`` address (and, when that is a
    specific address, also on each ``address`` it sends to that is one of this machine's, such as a
    broadcast address like ``127.255.255.255``).  A valid query (:func:`is_query`) is answered with the
    current announcement, sent to the query's source address and port only, if the query was at least as
    long as the answer (no amplification) and within the rate limits: 5 answers a second per source
    address (bursts of 10) and 50 a second in all (bursts of 100).  Anything else is dropped unanswered.
    If the query port cannot be bound (another program holds it), it only announces (logged).

    Args:
        server: the :class:`GameServer` to announce (its port, app, players; see :func:`status_of`), or a
            ``status`` callable returning a :class:`ServerStatus` (for a server of another kind, e.g. a
            rooms server).  A callable that raises is logged once and skipped that round.
        name: the name shown in the lists (default: this machine's host name; at most 64 characters).
        rooms: for a GameServer, a callable giving its number of rooms (default: 1).
        address: where to send: a broadcast address (default :data:`DEFAULT_BROADCAST`; on one machine
            ``127.255.255.255``) or a unicast address, or a sequence of them.
        discovery_port: the port browsers listen on (default :data:`DISCOVERY_PORT`).
        interval: seconds between announcements (> 0; default 0.5).
        bind: the local address to send from (default: the server's own listening address when it is a
            specific one, else any); browsers list the server at this address.
        answer: answer browsers' queries (default True).

    Raises:
        InvalidArgument: a bad argument (``InvalidType`` for a wrong type).
    """

    def __init__(
        self,
        server: GameServer | Callable[[], ServerStatus],
        *,
        name: str | None = None,
        rooms: Callable[[], int] | None = None,
        address: str | Sequence[str] = DEFAULT_BROADCAST,
        discovery_port: int = DISCOVERY_PORT,
        interval: float = 0.5,
        bind: str | None = None,
        answer: bool = True,
    ) -> None:
        if not isinstance(answer, bool):
            raise InvalidType(f"answer must be True or False, got {describe(answer)}")
        self.answer = answer
        if isinstance(server, GameServer):
            self._status = status_of(server, rooms)
            if bind is None:
                host = getattr(server.servo, "host", "") or ""
                bind = "" if host in ("0.0.0.0", "") else str(host)
        elif callable(server):
            self._status = server
        else:
            raise InvalidType(f"server must be a GameServer or a status function, got {describe(server)}")
        if rooms is not None and not callable(rooms):
            raise InvalidType(f"rooms must be a function returning a number of rooms, got {describe(rooms)}")
        self.name = _check_text(socket.gethostname()[:MAX_NAME] if name is None else name, "name", MAX_NAME)
        addresses = [address] if isinstance(address, str) else list(address)
        if not addresses:
            raise InvalidArgument("address must name at least one address to send to")
        self.addresses = [_check_address(a, "address") for a in addresses]
        if "" in self.addresses:
            raise InvalidArgument("address must be an IPv4 address, not ''")
        self.discovery_port = _check_port(discovery_port, "discovery_port", 1)
        self.interval = check_number(interval, "interval", positive=True, what="a number of seconds")
        self.bind = _check_address("" if bind is None else bind, "bind")
        self.id = os.urandom(6).hex()
        self.sent = 0  # announcements sent
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._port: int | None = None  # the game port last announced (the goodbye's)
        self._warned: set[str] = set()
        self._listen: list[socket.socket] = []  # where queries arrive (the sending socket among them)
        self._wake: tuple[socket.socket, socket.socket] | None = None  # close() interrupts the wait
        self._latest: bytes | None = None  # the last announcement sent: what a query is answered
        self._limiter = _Limiter(ANSWER_RATE, ANSWER_BURST, ANSWER_TOTAL_RATE, ANSWER_TOTAL_BURST, 1024)
        self.answered = 0  # queries answered
        self.unanswered = 0  # datagrams on the query port not answered (invalid, too short, too many)

    def start(self) -> Announcer:
        """Send the first announcement now and the next ones every ``interval`` from a daemon thread.

        Raises:
            UsageError: already started, or closed.
            ConnectionFailed: the sending socket cannot be opened or bound.
        """
        if self._thread is not None or self._stop.is_set():
            raise UsageError("an Announcer starts once")
        query_port = self.discovery_port + 1 if self.answer and self.discovery_port < 65535 else 0
        sock: socket.socket | None = None
        if query_port:
            try:
                sock = self._open(self.bind, query_port)
            except OSError as exc:
                self._warn("query port", f"LAN discovery: cannot answer queries on port {query_port} of "
                           f"{self.bind or '*'} ({exc.strerror or exc}); announcing only")  # fmt: skip
                query_port = 0
        if sock is None:
            try:
                sock = self._open(self.bind, 0)
            except OSError as exc:
                raise ConnectionFailed(
                    f"cannot announce from {self.bind or '*'}: {exc.strerror or exc}"
                ) from None
        self._sock = sock
        if query_port:
            self._listen.append(sock)
            if self.bind:  # a specific address does not hear broadcasts: listen on those it sends to
                for address in dict.fromkeys(self.addresses):
                    try:
                        self._listen.append(self._open(address, query_port, send=False))
                    except OSError as exc:  # not one of this machine's addresses: nothing comes there
                        log.debug("LAN discovery: no queries heard on %s:%s: %s", address, query_port, exc)
            self._wake = socket.socketpair()
            for s in (*self._listen, *self._wake):
                s.setblocking(False)
        self._announce()
        self._thread = threading.Thread(target=self._run, name="sprocket-announcer", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _open(address: str, port: int, *, send: bool = True) -> socket.socket:
        """A UDP socket bound to ``address``:``port``; raises OSError if it cannot be bound."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if send:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if port:  # several announcers on one machine share the query port (each hears broadcasts)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop.is_set():
            left = next_at - time.monotonic()
            if left <= 0:
                self._announce()
                next_at = max(next_at + self.interval, time.monotonic())
                continue
            if self._wake is None:
                self._stop.wait(left)
                continue
            try:
                ready, _, _ = select.select([*self._listen, self._wake[0]], [], [], left)
            except (OSError, ValueError):  # closed under us: close() is under way
                return
            for sock in ready:
                if sock is not self._wake[0]:
                    self._answer(sock)

    def _answer(self, sock: socket.socket) -> None:
        for _ in range(_READS_PER_WAKE):
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("LAN discovery: %s", exc)
                return
            latest, out = self._latest, self._sock
            address, port = str(source[0]), int(source[1])
            if (
                latest is None
                or out is None
                or len(data) < len(latest)  # the answer is never longer than the query: no amplification
                or not _answerable(address, port, self.addresses)
                or not is_query(data)
                or not self._limiter.allow(address, time.monotonic())
            ):
                self.unanswered += 1
                continue
            try:
                out.sendto(latest, (address, port))
                self.answered += 1
            except OSError as exc:
                log.debug("LAN discovery: cannot answer %s:%s: %s", address, port, exc)

    def _announce(self) -> None:
        try:
            status = self._status()
            if not isinstance(status, ServerStatus):
                raise InvalidType(f"status() must return a ServerStatus, got {describe(status)}")
            data = encode_announcement(
                Announcement(
                    "announce",
                    self.id,
                    status.port,
                    self.name,
                    status.app[:MAX_NAME],
                    status.rooms,
                    status.players,
                    status.max_players,
                )
            )
        except Exception as exc:  # the user's status callable: logged once, never kills the thread
            self._warn("status", f"LAN discovery: cannot announce this round: {exc!r}")
            return
        self._port = status.port
        self._latest = data
        self._send(data)
        self.sent += 1

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        for address in self.addresses:
            try:
                sock.sendto(data, (address, self.discovery_port))
            except OSError as exc:  # no route, no network yet: try again next round
                self._warn(f"send {address}", f"LAN discovery: cannot send to {address}: {exc}")

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    def close(self) -> None:
        """Stop announcing and send a goodbye, so browsers drop this server at once (idempotent; from any
        thread)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        if self._port is not None:
            self._send(encode_announcement(Announcement("goodbye", self.id, self._port)))
        for sock in {*self._listen, *(self._wake or ()), *([self._sock] if self._sock else [])}:
            sock.close()
        self._listen = []
        self._wake = None
        self._sock = None

    def __enter__(self) -> Announcer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()
