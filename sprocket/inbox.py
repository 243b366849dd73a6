"""The hand-off from the I/O thread to the user's thread: received packets and connection events, in order.

One :class:`Inbox` per Sprocket or Servo holds the whole contract in one place:

* **Order.**  The I/O thread appends packets (through :meth:`Inbox.sink`) and connection events
  (:meth:`Inbox.put_event`) to one deque, so they come out in the order they happened: a peer's join
  before its first packet, its leave after its last.  :meth:`Inbox.take_packets` (behind ``get()``)
  holds a leave back while packets that came before it are being returned, so the user always processes
  a peer's last packets before hearing that it left.
* **Back-pressure.**  What packets cost is counted in and out — the codec's estimate of their size in
  memory, not their size on the wire (an empty map is one byte on the wire and ~70 in memory).  Past
  ``max_bytes`` not yet collected, the I/O thread stops reading every socket (TCP then pushes back on the
  senders) and resumes once the user has collected enough that less than half is left.
* **Fairness.**  On a server each client also has a :class:`Backlog` of its own: past its ``limit`` only
  that client's socket stops being read, so one flooding client cannot fill the inbox for everyone (and an
  honest client's packet never waits behind more than one backlog's worth of a flooder's).
* **Threads.**  Each counter is written by one thread only (the ``_in`` ones by the I/O thread, the
  ``_out`` ones by the user's), so no lock is needed; ``deque`` appends and pops are atomic.

This module never touches a socket and never calls user code except the ``seen``/``callback`` functions
the endpoint passes to :meth:`Inbox.take_packets`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from itertools import repeat
from typing import Any

from .packet import Packet, packet_setters

__all__ = ["Inbox"]

# (fields, size, cost) -> None: what the protocol calls for each received DATA payload.
Sink = Callable[[dict[str, Any], int, int], None]
BatchSink = Callable[[list[dict[str, Any]], int, int], None]


def _nothing(*_: Any) -> None:
    pass


class Backlog:
    """One sender's share of a server's inbox, kept by the I/O thread alone.

    ``owner`` is the I/O thread's record of that sender's socket, handed back to ``Inbox.set_peer_reading``.
    """

    __slots__ = ("held", "limit", "owner", "paused")

    def __init__(self, limit: int, owner: Any) -> None:
        self.held = 0  # cost of this sender's packets still in the inbox (as far as the ledger knows)
        self.limit = limit
        self.owner = owner
        self.paused = False

    def has_room(self) -> bool:
        """True when at most half of ``limit`` waits uncollected."""
        return self.held <= self.limit // 2


class Inbox:
    """Received packets and connection events waiting for ``get()``/``events()``.

    Args:
        max_bytes: what received packets may cost (the codec's memory estimate) while they wait uncollected,
            before reading pauses.

    The I/O thread sets :attr:`set_reading` (called with False to stop reading every socket, True to
    resume), :attr:`set_peer_reading` (the same for one sender) and :attr:`wake` (called from the user's
    thread when reading may resume) when it adopts the inbox.

    Per-sender shares cost the user's thread nothing: the I/O thread keeps a ledger of what each read
    appended, in order, and since the inbox is first in, first out, the user's one running total of what it
    collected tells which ledger entries are gone (:meth:`settle`).
    """

    def __init__(self, max_bytes: int) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self.max_bytes = max_bytes
        self.bytes_in = 0  # I/O thread: cost of the packets appended
        self.bytes_out = 0  # user thread: cost of the packets collected
        self.events_in = 0  # I/O thread: connection events appended
        self.events_out = 0  # user thread: connection events taken out
        self.packets_out = 0  # user thread: packets returned to the user
        self.reading_paused = False  # I/O thread writes; the user's thread reads
        self.peers_paused = 0  # I/O thread writes: how many senders are not read; the user's thread reads
        self.set_reading: Callable[[bool], None] = _nothing
        self.set_peer_reading: Callable[[Any, bool], None] = _nothing
        self.wake: Callable[[], None] = _nothing
        # I/O thread only: (bytes_in after the entry, backlog, cost) per read that appended packets.
        self._ledger: collections.deque[tuple[int, Backlog, int]] = collections.deque()
        self._paused_backlogs: set[Backlog] = set()

    # -- the I/O thread's side -----------------------------------------------------------------------

    def put_event(self, item: Any) -> None:
        """Append a connection event (I/O thread).  Packets go through :meth:`sink`."""
        # Count first, append second: take_packets() reads the length before this counter, so any event
        # it could pop is already counted.
        self.events_in += 1
        self.items.append(item)

    def sink(self, sender: Any) -> Sink:
        """A protocol ``data_sink`` that turns payloads into Packets from ``sender`` (I/O thread).

        The I/O thread calls :meth:`appended` after each read to apply the limits."""
        # One call per received packet, so everything it needs is bound here.
        append = self.items.append
        new, set_fields, set_size, set_cost, set_sender = packet_setters()

        def sink(fields: dict[str, Any], size: int, cost: int) -> None:
            packet = new(Packet)
            set_fields(packet, fields)
            set_size(packet, size)
            set_cost(packet, cost)
            set_sender(packet, sender)
            append(packet)
            self.bytes_in += cost

        return sink

    def batch_sink(self, sender: Any) -> BatchSink:
        """A protocol ``batch_sink``: :meth:`sink` for all the packets of one BATCH frame, each of the
        same ``size`` and ``cost`` (I/O thread)."""
        extend = self.items.extend
        new, set_fields, set_size, set_cost, set_sender = packet_setters()

        def batch_sink(packets: list[dict[str, Any]], size: int, cost: int) -> None:
            # Each step runs over the whole batch in C (map; the setters return None, so any() runs them
            # all), not once per packet in Python: building Packets is most of a small packet's cost.
            count = len(packets)
            made = list(map(new, repeat(Packet, count)))
            any(map(set_fields, made, packets))
            any(map(set_size, made, repeat(size, count)))
            any(map(set_cost, made, repeat(cost, count)))
            any(map(set_sender, made, repeat(sender, count)))
            extend(made)
            self.bytes_in += cost * count

        return batch_sink

    def appended(self, backlog: Backlog | None, cost: int) -> None:
        """After a read that appended packets costing ``cost`` from one sender (I/O thread): count them
        against that sender's ``backlog`` (if any) and pause reading where a limit is passed."""
        if backlog is not None:
            self.settle()  # amortised: each entry is settled once, so the ledger stays as long as the inbox
            self._ledger.append((self.bytes_in, backlog, cost))
            backlog.held += cost
            if backlog.held > backlog.limit and not backlog.paused:
                self._pause_peer(backlog)
                # The user may have collected it between our count and the flag becoming visible, and so
                # not woken us: look again now that the flag is set (as for the global pause below).
                self.settle()
                if backlog.has_room():
                    self.resume_where_room()
        if self.bytes_in - self.bytes_out > self.max_bytes and not self.reading_paused:
            self.reading_paused = True
            self.set_reading(False)
            # The user may have emptied the inbox between our test and the flag becoming visible, seeing
            # no pause and so not waking us: look again now that the flag is set.
            if self.has_room():
                self._resume()

    def settle(self) -> None:
        """Credit each sender with what the user has collected since the last call (I/O thread)."""
        ledger = self._ledger
        collected = self.bytes_out
        while ledger and ledger[0][0] <= collected:
            _, backlog, cost = ledger.popleft()
            backlog.held -= cost

    def resume_where_room(self) -> None:
        """Resume reading wherever the user has collected enough (I/O thread, after a wake-up)."""
        if self.reading_paused and self.has_room():
            self._resume()
        if self._paused_backlogs:
            self.settle()
            for backlog in [b for b in self._paused_backlogs if b.has_room()]:
                backlog.paused = False
                self._paused_backlogs.discard(backlog)
                self.peers_paused = len(self._paused_backlogs)
                self.set_peer_reading(backlog.owner, True)

    def forget(self, backlog: Backlog | None) -> None:
        """A sender's socket closed (I/O thread): it no longer needs resuming."""
        if backlog is not None and backlog in self._paused_backlogs:
            self._paused_backlogs.discard(backlog)
            self.peers_paused = len(self._paused_backlogs)

    def _pause_peer(self, backlog: Backlog) -> None:
        backlog.paused = True
        self._paused_backlogs.add(backlog)
        self.peers_paused = len(self._paused_backlogs)
        self.set_peer_reading(backlog.owner, False)

    def _resume(self) -> None:
        self.reading_paused = False
        self.set_reading(True)

    @property
    def paused(self) -> bool:
        """True while some socket is not read because of this inbox (all of them, or a client's)."""
        return self.reading_paused or self.peers_paused > 0

    def has_room(self) -> bool:
        """True when at most half of ``max_bytes`` waits uncollected: reading may resume."""
        return self.bytes_in - self.bytes_out <= self.max_bytes // 2

    def __len__(self) -> int:
        """Items (packets and events) waiting."""
        return len(self.items)

    @property
    def backlog(self) -> int:
        """What the packets received and not yet collected cost (the codec's estimate, in bytes)."""
        return self.bytes_in - self.bytes_out

    # -- the user's side ---------------------------------------------------------------------------------

    def _collected(self, packets: list[Packet]) -> None:
        # Count what the user took; wake the I/O thread if reading may resume.
        self.packets_out += len(packets)
        self.bytes_out += sum([p._cost for p in packets])
        if self.peers_paused or (self.reading_paused and self.has_room()):
            self.wake()

    def take_packets(self, seen: Callable[[Any], None], callback: Callable[[Any], None]) -> list[Packet]:
        """Return every waiting packet, oldest first, running ``seen`` then ``callback`` for each
        connection event in order (user thread).

        A leave/disconnect event waits for the next call when packets that came before it are being
        returned now.  If ``callback`` raises, the packets taken so far go back to the front, so the next
        call returns them instead of losing them; the exception propagates.
        """
        items = self.items
        # Fast path: read the length, then the event counter.  The I/O thread counts an event before
        # appending it, so if no event is pending now, the first n items are all packets.
        n = len(items)
        if self.events_in == self.events_out:
            popleft = items.popleft
            packets = [popleft() for _ in range(n)]
            if packets:
                self._collected(packets)
            return packets
        packets = []
        try:
            while items:
                item = items[0]
                if type(item) is Packet:
                    items.popleft()
                    packets.append(item)
                    continue
                if packets and getattr(item, "ends_connection", False):
                    break
                items.popleft()
                self.events_out += 1
                seen(item)
                try:
                    callback(item)
                except BaseException:
                    items.extendleft(reversed(packets))
                    packets = []
                    raise
        finally:
            if packets:
                self._collected(packets)
        return packets

    def take_all(self, seen: Callable[[Any], None]) -> list[Any]:
        """Return every waiting packet and connection event in order, running ``seen`` for each event
        (user thread).  No callbacks run."""
        items = self.items
        out: list[Any] = []
        packets: list[Packet] = []
        while items:
            item = items.popleft()
            if type(item) is Packet:
                packets.append(item)
            else:
                self.events_out += 1
                seen(item)
            out.append(item)
        if packets:
            self._collected(packets)
        return out
