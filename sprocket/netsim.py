"""Compatibility name of the lag simulator, which now lives in :mod:`sprocket.testing`.

``from sprocket.netsim import LagProxy`` and ``python -m sprocket.netsim ...`` keep working; new code
should use ``from sprocket.testing import LagProxy`` and ``sprocket netsim ...``.  Nothing in the core
imports this module.
"""

from __future__ import annotations

import sys

from sprocket.testing.lag import MAX_QUEUED_BYTES, LagProxy, RelayedConnection
from sprocket.testing.lag_cli import main

__all__ = ["MAX_QUEUED_BYTES", "LagProxy", "RelayedConnection", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m sprocket.netsim"))
