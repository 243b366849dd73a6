"""``python -m sprocket``: the same as the ``sprocket`` command (see :mod:`sprocket.cli`)."""

from __future__ import annotations

import sys

from sprocket.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m sprocket"))
