"""The benchmark runner: ``python -m benchmarks [GROUP ...] [--quick] [--runs N]``.

Runs each group's measurements ``runs`` times, every measurement in fresh processes, the three libraries
back to back within a run; prints the table and writes results/latest.json and results/latest.md (a full
run) or results/raw-<time>.json/.md (a quick or partial run; git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from . import (
    bandwidth,
    capacity,
    cluster,
    discovery,
    fanout,
    framecost,
    gamefeel,
    latency,
    memory,
    report,
    resume,
    rooms,
    throughput,
)
from .common import (
    HERE,
    IMPL_LABELS,
    IMPLS,
    PODSIXNET_VERSION,
    PROFILE,
    REPO_ROOT,
    BenchError,
    ensure_podsixnet,
)

GROUPS = (
    "throughput", "latency", "fanout", "capacity", "memory", "bandwidth", "framecost", "gamefeel", "resume",
    "discovery", "rooms", "cluster",
)  # fmt: skip
ALIASES = {
    "fan-out": "fanout",
    "mem": "memory",
    "tput": "throughput",
    "frame-cost": "framecost",
    "reconnect": "resume",
    "game-feel": "gamefeel",
    "feel": "gamefeel",
    "lan": "discovery",
    "room": "rooms",
    "redis": "cluster",
}
MODULES: dict[str, Any] = {
    "throughput": throughput,
    "latency": latency,
    "fanout": fanout,
    "capacity": capacity,
    "memory": memory,
    "bandwidth": bandwidth,
    "framecost": framecost,
    "gamefeel": gamefeel,
    "resume": resume,
    "discovery": discovery,
    "rooms": rooms,
    "cluster": cluster,
}
RESULTS = HERE / "results"


def log(message: str) -> None:
    print(message, flush=True)


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import msgpack

    import sprocket

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "sprocket"],
                cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
            ).stdout.strip()
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sprocket": sprocket.__version__,
        "git_commit": commit,
        "sprocket_uncommitted_changes": dirty,
        "msgpack": ".".join(map(str, msgpack.version)),
        "podsixnet": PODSIXNET_VERSION,
    }


def _summary(metrics: dict[str, float]) -> str:
    keys = [k for k in metrics if not k.startswith("delivered")][:4]
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in keys)


def run_group(
    group: str, params: dict[str, Any], runs: int, impls: list[str], record: Callable[..., None]
) -> None:
    """Measure one group ``runs`` times; ``record(impl, run, metrics)`` collects each result."""
    mod = MODULES[group]
    # Groups with no raw/PodSixNet counterpart (the game layer) measure sprocket only; their baselines
    # are sprocket's own (full snapshots, the bare networking loop), measured inside run_once.
    impls = [i for i in impls if i in getattr(mod, "IMPLS", IMPLS)]
    for run in range(1, runs + 1):
        if group == "fanout":
            steps: list[tuple[str, dict[str, Any]]] = [
                (f"@{n}", {**params, "n_clients": n}) for n in params["client_counts"]
            ]
        elif hasattr(mod, "steps"):
            steps = mod.steps(params)
        else:
            steps = [("", params)]
        for suffix, step_params in steps:
            for impl in impls:
                started = time.monotonic()
                step_name = (suffix[1:] + " clients" if group == "fanout" else suffix[1:]) if suffix else ""
                what = f"{group}{' ' + step_name if step_name else ''} {IMPL_LABELS[impl]}"
                try:
                    if group == "capacity":
                        metrics = capacity.run_ramp(impl, step_params, log)
                    elif group == "rooms":
                        metrics = rooms.run_ramp(impl, step_params, log)
                    else:
                        metrics = mod.run_once(impl, step_params)
                except BenchError as exc:
                    log(f"  run {run}/{runs} {what}: FAILED: {exc}")
                    record(impl, run, {}, error=f"{what} run {run}: {str(exc)[:500]}")
                    continue
                metrics = {f"{k}{suffix}": v for k, v in metrics.items()}
                record(impl, run, metrics)
                log(f"  run {run}/{runs} {what}: {_summary(metrics)}  ({time.monotonic() - started:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="sprocket vs a raw-socket baseline vs PodSixNet, side by side (see benchmarks/README.md)",
    )
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 1-2 minutes)")
    parser.add_argument("--runs", type=int, default=None, help="repetitions per figure (default 3; quick 1)")
    parser.add_argument(
        "--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)} (debugging)"
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="ROLES",
        help="run workers of these roles (comma-separated: server, client, host) under py-spy; the raw "
        "profiles go to results/raw-profiles-<time>/ (pip install py-spy)",
    )
    parser.add_argument(
        "--profile-gil", action="store_true", help="with --profile: sample only the GIL holder"
    )
    parser.add_argument(
        "--profile-rate", type=int, default=250, help="with --profile: py-spy samples/s (default 250)"
    )
    args = parser.parse_args(argv)
    groups = [ALIASES.get(g, g) for g in args.groups] or list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    groups = [g for g in GROUPS if g in groups]
    impls = [i for i in IMPLS if i in args.impls.split(",")]
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    full = groups == list(GROUPS) and not args.quick and impls == list(IMPLS) and runs >= 3

    if "podsixnet" in impls and any("podsixnet" in getattr(MODULES[g], "IMPLS", IMPLS) for g in groups):
        ensure_podsixnet(log)
    started_at = dt.datetime.now(dt.timezone.utc)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    if args.profile:
        profile_dir = RESULTS / f"raw-profiles-{stamp}"
        profile_dir.mkdir(parents=True, exist_ok=True)
        roles = tuple(args.profile.split(","))
        PROFILE.update(roles=roles, dir=profile_dir, gil=args.profile_gil, rate=args.profile_rate)
        log(f"profiling {args.profile} workers into {profile_dir.relative_to(REPO_ROOT)}")
    load_before = _loadavg()
    if load_before > 0.5:
        log(f"warning: load average {load_before:.2f} at start: other work on this machine skews results")
    params = {g: MODULES[g].defaults(args.quick) for g in groups}
    data: dict[str, dict[str, dict[str, list[float]]]] = {g: {} for g in groups}
    errors: list[str] = []
    t0 = time.monotonic()
    log(f"sprocket benchmarks: {', '.join(groups)}; {runs} run(s) each{'; quick' if args.quick else ''}")
    for group in groups:
        log(f"{group}:")
        group_start = time.monotonic()

        def record(
            impl: str, run: int, metrics: dict[str, float], error: str | None = None, group: str = group
        ) -> None:
            # One slot per run (NaN until measured), so run i of every library stays paired for the ratios.
            if error is not None:
                errors.append(error)
            per_impl = data[group].setdefault(impl, {})
            for key, value in metrics.items():
                per_impl.setdefault(key, [math.nan] * runs)[run - 1] = float(value)

        run_group(group, params[group], runs, impls, record)
        log(f"  ({time.monotonic() - group_start:.0f} s)")
    duration = time.monotonic() - t0

    rows = report.rows_for(groups, params)
    lines = report.build(rows, data)
    print()
    print(report.text_table(lines))
    print(f"figures: median (min..max) of {runs} run(s), each in fresh processes; total {duration:.0f} s")
    for error in errors:
        print(f"error: {error}")

    command = "python -m benchmarks" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    result = {
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "command": command,
        "quick": args.quick,
        "runs": runs,
        "groups": groups,
        "machine": machine(),
        "load_average": {"before": load_before, "after": _loadavg()},
        "params": params,
        "table": [line.as_dict() for line in lines],
        "runs_data": data,
        "errors": errors,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "latest" if full else f"raw-{stamp}"
    json_path = RESULTS / f"{stem}.json"
    md_path = RESULTS / f"{stem}.md"
    json_path.write_text(json.dumps(_finite(result), indent=1) + "\n", encoding="utf-8")
    md_path.write_text(_markdown_page(result, lines), encoding="utf-8")
    print(f"wrote {json_path.relative_to(REPO_ROOT)} and {md_path.relative_to(REPO_ROOT)}")
    return 1 if errors else 0


def _loadavg() -> float:
    """The 1-minute load average (how busy the machine was besides us), or NaN."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return math.nan


def _finite(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _markdown_page(result: dict[str, Any], lines: list[report.Line]) -> str:
    m = result["machine"]
    page = [
        "# Benchmark results: sprocket vs raw sockets vs PodSixNet",
        "",
        f"- date: {result['date']} (UTC); whole run took {result['duration_s']:.0f} s",
        f"- command: `{result['command']}`" + (" (quick smoke run)" if result["quick"] else ""),
        f"- machine: {m['nproc']} CPU(s), {m['cpu_model']}; {m['implementation']} {m['python']}; "
        f"{m['platform']}",
        f"- 1-minute load average: {result['load_average']['before']:.2f} before the run (other work on the "
        f"machine), {result['load_average']['after']:.2f} after",
        f"- versions: sprocket {m['sprocket']} (commit {m['git_commit']}"
        f"{' plus uncommitted changes' if m['sprocket_uncommitted_changes'] else ''}), "
        f"msgpack {m['msgpack']}, PodSixNet {m['podsixnet']}",
        f"- each figure: median (min..max) of {result['runs']} run(s), every run in fresh processes; "
        "ratios are sprocket ÷ baseline, computed per run pair (measured back to back), then the median",
        "",
        report.markdown(lines),
        "How to read it: see [../README.md](../README.md).  Higher is better for packets/s and clients; "
        "lower is better for times, CPU, late deliveries and memory.",
        "",
    ]
    if result["errors"]:
        page += ["## Errors", "", *(f"- {e}" for e in result["errors"]), ""]
    return "\n".join(page)


if __name__ == "__main__":
    sys.exit(main())
