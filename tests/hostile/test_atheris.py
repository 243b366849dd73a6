"""A short coverage-guided fuzzing campaign with atheris, when it is installed (it is optional).

The longer campaign: ``.venv/bin/python -m tests.hostile.fuzz_atheris -max_total_time=600``.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.hostile.conftest import Reliability
from tests.hostile.helpers import REPO

pytest.importorskip("atheris")

pytestmark = pytest.mark.timeout(120)

RUNS = 30_000


def test_atheris_finds_nothing(reliability: Reliability) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.hostile.fuzz_atheris", f"-runs={RUNS}", "-seed=1", "-max_len=8192"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    log = result.stderr
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    reliability.record(
        "Hostile input (in memory)",
        "Coverage-guided fuzzing (atheris/libFuzzer) of the decoder and codec",
        tried=f"{RUNS} inputs, seed 1, up to 8 KiB, at a server (before/after HELLO), a client and the codec",
        outcome=(f"no crash; {cov[-1][0]} edges covered" if cov else "no coverage figures")
        if result.returncode == 0
        else f"CRASH: {log[-500:]}",
        runs=int(done.group(1)) if done else 0,
    )
    assert result.returncode == 0, log[-3000:]
    assert done and int(done.group(1)) == RUNS
