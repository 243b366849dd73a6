"""sprocket.testing: test your networked game the way sprocket tests itself.

Real servers on 127.0.0.1, real bots and clients in threads, a simulated bad network in between, and
waits with deadlines instead of sleeps.  With ``pip install "sprocket[test]"`` pytest gets fixtures for
all of it on its own (see :mod:`sprocket.testing.plugin`): ``game_server``, ``game_bots``,
``game_clients``, ``lag_proxy``, ``networked_game`` and ``wait_until``.  Without pytest, use
:class:`Harness` directly.

* :class:`LagProxy` (and :class:`RelayedConnection`): a TCP relay adding lag, jitter, stalls and
  disconnects (formerly ``sprocket.netsim``; ``sprocket netsim`` runs one from the shell).
* :func:`wait_until` / :func:`step_until`: wait for a condition (stepping a game) with a deadline;
  :class:`WaitTimeout` when it passes.
* :class:`Harness`: starts servers, bots, clients, proxies and windows, and stops them all.

Importing this package never imports pytest or pygame.
"""

from __future__ import annotations

from .harness import Harness, LeakedThreads, Target, dummy_sdl, port_of
from .lag import MAX_QUEUED_BYTES, LagProxy, RelayedConnection
from .waiting import POLL_INTERVAL, WaitTimeout, step_until, wait_until

__all__ = [
    "MAX_QUEUED_BYTES",
    "POLL_INTERVAL",
    "Harness",
    "LagProxy",
    "LeakedThreads",
    "RelayedConnection",
    "Target",
    "WaitTimeout",
    "dummy_sdl",
    "port_of",
    "step_until",
    "wait_until",
]
