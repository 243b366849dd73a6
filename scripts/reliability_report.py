#!/usr/bin/env python3
"""Run the hostile-input / fault / load suite and write docs/RELIABILITY.md from what it measured.

    .venv/bin/python scripts/reliability_report.py                 # run the suite, write the report
    .venv/bin/python scripts/reliability_report.py --json out.json # keep the raw measurements too
    .venv/bin/python scripts/reliability_report.py --from-json out.json   # only render

The tests record their numbers through the ``reliability`` fixture (tests/hostile/conftest.py), which
writes them to the file named by SPROCKET_RELIABILITY_JSON; nothing in the table is written by hand.
Exits with pytest's exit status (the report is written either way).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python scripts/reliability_report.py"
AREAS = [
    "Hostile input (in memory)",
    "Hostile input (sockets)",
    "Slow-loris and floods",
    "Faults",
    "Load",
    "Who gets in",
    "Round two: decoding",
    "Round two: fairness",
    "Round two: memory",
    "Round two: admission",
]
RESULT = {
    "passed": "pass",
    "xfailed": "**known bug** (xfail)",
    "xpassed": "pass (xfail mark can go)",
    "failed": "**FAIL**",
    "error": "**ERROR**",
    "skipped": "skipped",
}


# The hostile suite, and the resume and game-feel tests of the game layer that record through its fixture.
SUITE = [
    "tests/hostile",
    "tests/game/test_resume.py",
    "tests/demos/test_hockey_resume.py",
    "tests/demos/test_game_feel.py",
]


def run_suite(json_path: Path, pytest_args: list[str]) -> int:
    env = dict(os.environ, SPROCKET_RELIABILITY_JSON=str(json_path))
    env.setdefault("SDL_VIDEODRIVER", "dummy")
    command = [sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider", *pytest_args]
    print("+", " ".join(command), file=sys.stderr)
    return subprocess.run(command, cwd=REPO, env=env).returncode


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev


def render(data: dict[str, Any]) -> str:
    machine = data["machine"]
    tests = data["tests"]
    counts: dict[str, int] = {}
    for outcome in tests.values():
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [
        "# Reliability and security, measured",
        "",
        "What sprocket does when peers are hostile, processes die, networks stall and load piles up. Every "
        "row below was written by the test that measured it (`tests/hostile/`, and the resume and game-feel "
        "tests of `tests/game` and `tests/demos`), not by hand.",
        "",
        f"- Generated: {data['generated']} at commit `{git_revision()}` (working tree as it was)",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}, "
        f"Python {machine['python']}",
        f"- Suite: `{' '.join(SUITE)}` ran in {data['duration_s']} s: {summary}",
        f"- Regenerate: `{COMMAND}` (runs `pytest` on those with "
        "`SPROCKET_RELIABILITY_JSON` set and rewrites this file)",
        "",
        "Rules the suite follows: real sockets on 127.0.0.1, real threads and processes, no mocks of the "
        "network, no sleeps used for synchronisation, a timeout on every test; time bounds are lower bounds "
        "(a timeout really applied) or generous deadlines, never speed thresholds.",
        "",
    ]
    rows = data["rows"]
    areas = AREAS + sorted({r["area"] for r in rows} - set(AREAS))
    for area in areas:
        in_area = [r for r in rows if r["area"] == area]
        if not in_area:
            continue
        lines += [
            f"## {area}",
            "",
            "| Attack or fault | What was tried | Outcome measured | Result |",
            "|---|---|---|---|",
        ]
        for r in in_area:
            result = RESULT.get(r.get("status", "unknown"), r.get("status", "unknown"))
            lines.append(f"| {cell(r['attack'])} | {cell(r['tried'])} | {cell(r['outcome'])} | {result} |")
        lines.append("")
    bugs = [(nodeid, t) for nodeid, t in tests.items() if t["status"] in ("xfailed", "xpassed")]
    lines += ["## Known bugs (tests marked xfail)", ""]
    if not bugs:
        lines.append("None.")
    for nodeid, t in sorted(bugs):
        state = "still failing" if t["status"] == "xfailed" else "now passes: remove the mark"
        lines.append(f"- `{nodeid}`: {cell(t.get('xfail_reason', ''))} ({state})")
    failed = [nodeid for nodeid, t in tests.items() if t["status"] in ("failed", "error")]
    if failed:
        lines += ["", "## Failures in this run", ""] + [f"- `{nodeid}`" for nodeid in sorted(failed)]
    lines += [
        "",
        "## Longer runs",
        "",
        "- Soak: `.venv/bin/python scripts/soak.py --duration 600 --clients 50` (exits non-zero on any loss, "
        "reordering, disconnect, leak or memory growth).",
        "- Fuzzing: `SPROCKET_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/hostile/test_fuzz_*.py`; "
        "with atheris installed, `.venv/bin/python -m tests.hostile.fuzz_atheris -max_total_time=600`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "RELIABILITY.md")
    parser.add_argument("--json", type=Path, help="also keep the raw measurements in this file")
    parser.add_argument("--from-json", type=Path, help="render an existing measurements file, run nothing")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = parser.parse_args(argv)
    status = 0
    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = (args.json or Path(tmp) / "reliability.json").resolve()
            status = run_suite(path, args.pytest_args)
            if not path.exists():
                print("the suite wrote no measurements", file=sys.stderr)
                return status or 1
            data = json.loads(path.read_text())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(data))
    print(f"wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return status


if __name__ == "__main__":
    sys.exit(main())
