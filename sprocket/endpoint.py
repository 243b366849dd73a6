"""What :class:`~sprocket.Sprocket` and :class:`~sprocket.Servo` share: the user-thread side.

An :class:`Endpoint` owns one :class:`~sprocket.iothread.IOThread` and offers ``get()``, ``events()``,
``close()`` and the ``with`` statement on top of it; it closes the thread when it is garbage-collected or
when the interpreter exits.  Subclasses say what a connection event means to them (``_seen``) and which
user callback it runs (``_callback``).

This module never touches a socket: it only reads the inbox and asks the I/O thread to stop.
"""

from __future__ import annotations

import atexit
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from .errors import ClosedError
from .iothread import IOThread
from .packet import Packet
from .settings import Settings

log = logging.getLogger("sprocket")
_release_gil = time.sleep  # sleep(0) returns at once, but releases the GIL while it does
_clock = time.perf_counter
# get() finding nothing this soon after it last found nothing is taken for a busy polling loop.
BUSY_POLL_GAP = 50e-6
_last_empty = 0  # id() of the endpoint whose get() last found nothing, in any thread

__all__ = ["Endpoint"]


class Endpoint:
    """The user-thread side of a Sprocket or a Servo.

    Subclasses call :meth:`_start` with their I/O thread at the end of their constructor.
    """

    _io: IOThread
    settings: Settings
    _closed: bool = False
    _empty_at: float = -1.0  # when get() last found nothing (perf_counter)

    def _start(self, io: IOThread) -> None:
        self._io = io
        io.start()
        # Closing on garbage collection and at interpreter exit; the thread holds no reference to self.
        self._finalizer = weakref.finalize(self, _IOStopper(io))

    def get(self) -> list[Packet]:
        """Return every packet received since the last call (maybe none), oldest first.  Never blocks.

        Connection callbacks run inside this call, in order: a join/connect callback runs before that
        peer's first packet is returned; a leave/disconnect callback waits for the next call when packets
        that came before it are being returned now, so you always process a peer's last packets before
        hearing that it left.  If a callback raises, the exception propagates and the packets taken so far
        are returned by the next call instead of being lost.

        Raises:
            ClosedError: this object was closed.
        """
        self._check_open()
        take = self._io.inbox.take_packets
        packets = take(self._seen, self._callback)
        if not packets:
            # Polled again at once after finding nothing: a loop calling get() with no sleep.  Read the
            # socket here if the I/O thread is idle in select() (IOThread.read_now): handing what arrives
            # over from the I/O thread would cost two thread wake-ups per packet (the I/O thread's for the
            # GIL, then this thread's, asleep waiting for the GIL meanwhile), which cost more than the whole
            # read.  Otherwise, or if nothing came, let the I/O thread have the GIL for a moment, or the loop
            # would hold it until Python's switch interval (5 ms) forced a hand-off.  (A game loop polls far
            # less often and never pays for this.)
            global _last_empty
            now = _clock()
            me = id(self)
            if now - self._empty_at < BUSY_POLL_GAP:
                # Only a loop polling this endpoint alone reads here: a process polling many in turn (a
                # host of client bots) would pay the I/O thread's wake-up as well for every packet read.
                if _last_empty == me and self._io.read_now():  # its recv() released the GIL too
                    packets = take(self._seen, self._callback)
                else:
                    _release_gil(0)
            self._empty_at = now
            _last_empty = me
        return packets

    def events(self) -> list[Any]:
        """Return everything since the last call, in order: packets and connection events.  Never blocks.

        Use it instead of ``get()`` when you prefer one ``match``/``isinstance`` loop to callbacks; the
        callbacks are not run for the events it returns.

        Raises:
            ClosedError: this object was closed.
        """
        self._check_open()
        return self._io.inbox.take_all(self._seen)

    def close(self) -> None:
        """Flush what is queued (up to ``close_timeout``), say goodbye, and stop the I/O thread.

        Leaves no thread or socket behind.  Idempotent; ``get()``/``send()`` raise ClosedError afterwards.
        """
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        self._io.stop(wait=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"this {type(self).__name__} is closed; make a new one")

    def _stats(self) -> dict[str, int]:
        io = self._io
        stats = dict(io.stats)
        stats["packets_in"] = io.inbox.packets_out
        return stats

    def _seen(self, event: Any) -> None:
        """Update user-thread bookkeeping for a connection event (e.g. the clients list)."""

    def _callback(self, event: Any) -> None:
        """Run the user's callback for a connection event."""


def run_callback(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Call ``callback(*args)`` if one was given."""
    if callback is not None:
        callback(*args)


class _IOStopper:
    """Finalizer callable: stop an I/O thread without referencing its owner.

    From the garbage collector it must not block, so it only asks the thread to stop (the thread still
    says goodbye and closes its sockets).  At interpreter exit, weakref.finalize runs it from atexit,
    where waiting (up to ``close_timeout``) lets queued packets go out first.
    """

    def __init__(self, io: IOThread) -> None:
        self.io = io

    def __call__(self) -> None:
        self.io.stop(wait=_exiting)


_exiting = False


class _Anchor:
    pass


_anchor = _Anchor()
# weakref.finalize registers its atexit hook when the first finalizer is made.  Make one now, then
# register ours after it: atexit runs handlers last-registered-first, so _mark_exit runs before the
# finalizers, which then know they may wait for the flush.
weakref.finalize(_anchor, lambda: None)


@atexit.register
def _mark_exit() -> None:
    global _exiting
    _exiting = True
