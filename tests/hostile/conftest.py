"""The hostile suite's measurement recorder.

Tests call ``reliability.record(...)`` with what they tried and what they measured.  When the environment
variable ``SPROCKET_RELIABILITY_JSON`` names a file, the session writes every record there at the end,
together with each test's outcome (passed, failed, xfailed...) and the machine it ran on;
``scripts/reliability_report.py`` turns that file into docs/RELIABILITY.md.  Without the variable the
records are simply dropped, so the suite costs nothing extra in CI.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

RELIABILITY_ENV = "SPROCKET_RELIABILITY_JSON"


@dataclass
class Record:
    area: str
    attack: str
    tried: str
    outcome: str
    test: str
    metrics: dict[str, Any] = field(default_factory=dict)


_records: list[Record] = []
_outcomes: dict[str, dict[str, Any]] = {}
_started = time.time()


class Reliability:
    """What one test hands to the report: one row per attack or fault it exercised."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def record(self, area: str, attack: str, *, tried: str, outcome: str, **metrics: Any) -> None:
        """Add a row: ``area`` groups rows (Hostile input, Faults...), ``tried`` says what was done with
        counts and sizes, ``outcome`` what was measured; ``metrics`` are the raw numbers."""
        _records.append(Record(area, attack, tried, outcome, self.nodeid, _plain(metrics)))


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Iterator[Reliability]:
    yield Reliability(request.node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _outcomes.setdefault(report.nodeid, {"status": "passed", "duration": 0.0})
    entry["duration"] = round(entry["duration"] + report.duration, 3)
    if hasattr(report, "wasxfail"):
        entry["status"] = "xpassed" if report.passed else "xfailed"
        entry["xfail_reason"] = report.wasxfail
    elif report.failed:
        entry["status"] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        entry["status"] = "skipped"


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get(RELIABILITY_ENV)
    if not path:
        return
    rows = []
    for record in _records:
        row = asdict(record)
        row.update(_outcomes.get(record.test, {"status": "unknown"}))
        rows.append(row)
    data = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "duration_s": round(time.time() - _started, 1),
        "machine": _machine(),
        "exitstatus": int(exitstatus),
        "rows": rows,
        "tests": _outcomes,
    }
    with open(path, "w") as out:
        json.dump(data, out, indent=1, sort_keys=False)
