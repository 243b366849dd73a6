"""Load: many clients at 60 Hz with sequence numbers while the server broadcasts at 30 Hz.

This is the short run of ``scripts/soak.py`` (which can run for hours): its server process checks every
client's sequence, its client processes check every broadcast, and it exits non-zero on any loss,
duplicate, reordering, unexpected disconnect, leaked thread or descriptor, or memory growth.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.hostile.conftest import Reliability
from tests.hostile.helpers import REPO

pytestmark = pytest.mark.timeout(90)

CLIENTS, SECONDS = 50, 5


def test_fifty_clients_lose_nothing(reliability: Reliability) -> None:
    command = [
        sys.executable, "scripts/soak.py", "--duration", str(SECONDS), "--clients", str(CLIENTS),
        "--workers", "2", "--json",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=80)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    reliability.record(
        "Load",
        f"{CLIENTS} clients at 60 Hz, server broadcasting at 30 Hz (scripts/soak.py)",
        tried=f"{SECONDS} s, {CLIENTS} clients in 2 processes, {summary['packets_up']} packets up, "
        f"{summary['broadcasts']} broadcasts x {CLIENTS} clients",
        outcome=f"{summary['problem_count']} lost/duplicated/reordered; {summary['packets_up_checked']} "
        f"packets and {summary['broadcast_deliveries']} broadcast deliveries checked in order; "
        f"achieved {summary['achieved_rate']:g} Hz per client; server RSS +{summary['rss_growth_mib']} MiB "
        f"after warm-up; {summary['leaked_fds']} descriptors and {summary['leaked_threads']} threads leaked",
        **{k: summary[k] for k in ("packets_up", "broadcast_deliveries", "achieved_rate", "rss_growth_mib")},
    )
    assert result.returncode == 0, summary["problems"]
    assert summary["ok"] and summary["problem_count"] == 0
    assert summary["packets_up"] == summary["packets_up_checked"] > 0
    assert summary["broadcast_deliveries"] >= CLIENTS * (summary["broadcasts"] - 1) > 0
    assert summary["left"] == {"closed": CLIENTS}
    assert summary["leaked_fds"] <= 0 and summary["leaked_threads"] <= 0
