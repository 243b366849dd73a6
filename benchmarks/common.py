"""Helpers shared by the benchmark groups: the worker protocol, measurements, PodSixNet set-up.

Every measurement runs in fresh processes.  The runner starts a worker as
``python -m benchmarks.<group> <role> <impl> '<json params>'``; the worker reports on stdout with lines
``@@{"kind": ..., ...}`` (anything else on stdout, such as PodSixNet's own prints, is ignored), and the
runner side of this module (:class:`Worker`) reads them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PODSIXNET_VERSION = "0.11.0"
PODSIXNET_DIR = HERE / ".venv-podsixnet"  # git-ignored; made by ensure_podsixnet()
PODSIXNET_SITE = PODSIXNET_DIR / "site-packages"

IMPLS = ("sprocket", "raw", "podsixnet")
IMPL_LABELS = {"sprocket": "sprocket", "raw": "raw", "podsixnet": "PodSixNet"}

Params = dict[str, Any]

# -- worker side ---------------------------------------------------------------------------------------

_OUT: IO[str] = sys.stdout


def emit(kind: str, **data: Any) -> None:
    """Report one message to the runner (worker side)."""
    _OUT.write("@@" + json.dumps({"kind": kind, **data}) + "\n")
    _OUT.flush()


def worker_main(
    roles: Mapping[tuple[str, str], Callable[[Params], None]], argv: list[str] | None = None
) -> None:
    """Entry point of a group module: ``<role> <impl> <json params>`` picks the function to run."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        raise SystemExit("usage: python -m benchmarks.<group> ROLE IMPL JSON_PARAMS (run by the runner)")
    role, impl, raw_params = args
    func = roles.get((role, impl)) or roles.get((role, "*"))
    if func is None:
        raise SystemExit(f"no role {role!r} for impl {impl!r}")
    params: Params = json.loads(raw_params)
    params.setdefault("impl", impl)
    func(params)


def rss_kb() -> int:
    """This process's resident set size in KiB, from /proc/self/status (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds() -> float:
    """CPU time (user + system) of this whole process, every thread included."""
    return time.process_time()


def cpu_split() -> tuple[float, float]:
    """(user, system) CPU seconds of this whole process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime, usage.ru_stime)


def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline`` (returns at once if it has)."""
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def wait_for(predicate: Callable[[], bool], timeout: float, poll: Callable[[], object], step: float) -> bool:
    """Call ``poll()`` and test ``predicate()`` every ``step`` seconds until true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        poll()
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``values``, linearly interpolated; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def snapshot_state(tick: int, count: int) -> list[list[float]]:
    """A deterministic world of ``count`` entities at ``tick``: ``[id, x, y, vx, vy]`` each."""
    return [
        [i, round((i * 37 + tick * 3.5) % 800.0, 2), round((i * 53 + tick * 1.25) % 600.0, 2), 3.5, 1.25]
        for i in range(count)
    ]


def load_podsixnet() -> None:
    """Make PodSixNet importable in this worker (it lives in benchmarks/.venv-podsixnet) and quiet.

    PodSixNet prints on stdout (e.g. "connection" on every accept); the worker's reports keep the real
    stdout, everything else printed goes to /dev/null.  asyncore/asynchat deprecation warnings are silenced.
    """
    global _OUT
    if not (PODSIXNET_SITE / "PodSixNet").is_dir():
        raise SystemExit(f"PodSixNet is not installed in {PODSIXNET_SITE}; run python -m benchmarks first")
    sys.path.insert(0, str(PODSIXNET_SITE))
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    _OUT = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker


# -- runner side ---------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A worker failed, timed out or reported something unexpected."""


# Set by the runner's --profile option: run workers of these roles under py-spy, writing here.
PROFILE: dict[str, Any] = {"roles": (), "dir": None, "gil": False, "rate": 250}


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Worker:
    """One worker process started by the runner, with its reports read by a background thread."""

    def __init__(self, module: str, role: str, impl: str, params: Params) -> None:
        self.name = f"{module}/{role}/{impl}"
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by finish()
        env = dict(os.environ)
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
        command = [sys.executable, "-m", f"benchmarks.{module}", role, impl, json.dumps(params)]
        spy = _py_spy()
        if role in PROFILE["roles"] and PROFILE["dir"] is not None and spy is not None:
            out = (
                Path(PROFILE["dir"])
                / f"{module}-{role}-{impl}-{params.get('n_clients', '')}-{time.time_ns()}.txt"
            )
            gil = ["--gil"] if PROFILE["gil"] else []
            command = [
                spy,
                "record",
                "--threads",
                *gil,
                "-r",
                str(PROFILE["rate"]),
                "-f",
                "raw",
                "-o",
                str(out),
                "--",
                *command,
            ]
        self.proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                try:
                    self._messages.put(json.loads(line[2:]))
                except ValueError:
                    continue
        self._messages.put(None)  # end of output

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """Wait for the next report of ``kind`` (other kinds in between are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{self.name}: no {kind!r} report within {timeout:g} s{self._stderr_tail()}")
            try:
                message = self._messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if message is None:
                self._messages.put(None)
                self.proc.wait(5)
                raise BenchError(
                    f"{self.name}: exited ({self.proc.returncode}) before reporting {kind!r}"
                    f"{self._stderr_tail()}"
                )
            if message.get("kind") == kind:
                return message
            if message.get("kind") == "error":
                raise BenchError(f"{self.name}: {message.get('error')}")

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:]
        except (OSError, ValueError):
            return ""
        return f"\n--- stderr of {self.name} ---\n{text}" if text.strip() else ""

    def finish(self, timeout: float = 15.0) -> None:
        """Wait for the process to exit; kill it (this process only) if it does not."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)


@contextlib.contextmanager
def workers() -> Any:
    """Collect the workers started in a block; whatever happens, none outlives it."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.kill()
        for worker in started:
            with contextlib.suppress(OSError, ValueError):
                worker._stderr.close()


def split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal non-negative counts (the first ones take the rest)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def ensure_podsixnet(log: Callable[[str], None]) -> None:
    """Install PodSixNet (and asyncore/asynchat back-ports if this Python lacks them) into
    benchmarks/.venv-podsixnet/site-packages with this interpreter's pip, unless already there."""
    marker = PODSIXNET_SITE / f"podsixnet-{PODSIXNET_VERSION}.dist-info"
    if marker.is_dir():
        return
    log(f"installing PodSixNet {PODSIXNET_VERSION} into {PODSIXNET_SITE.relative_to(REPO_ROOT)} ...")
    packages = [f"podsixnet=={PODSIXNET_VERSION}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import asynchat  # noqa: F401
            import asyncore  # noqa: F401
        except ImportError:  # Python 3.12+ removed them
            packages += ["pyasyncore", "pyasynchat"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(PODSIXNET_SITE), "--upgrade", *packages],
        check=True,
    )  # fmt: skip


def median_min_max(values: Iterable[float]) -> tuple[float, float, float]:
    """(median, min, max) of the finite values; NaNs if there are none."""
    finite = sorted(v for v in values if v is not None and not math.isnan(v))
    if not finite:
        return (math.nan, math.nan, math.nan)
    mid = len(finite) // 2
    median = finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2
    return (median, finite[0], finite[-1])


def run_server_and_hosts(
    module: str, impl: str, params: Params, connect_timeout: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a ``server`` worker and ``params["hosts"]`` client-host workers sharing ``params["n_clients"]``
    connections; return the server's result and every host's result (runner side)."""
    with workers() as started:
        srv = Worker(module, "server", impl, params)
        started.append(srv)
        port = srv.expect("ready", 20)["port"]
        hosts = [
            Worker(module, "host", impl, {**params, "n": count, "port": port})
            for count in split(params["n_clients"], params["hosts"])
            if count
        ]
        started.extend(hosts)
        for host in hosts:
            host.expect("connected", connect_timeout)
        res = srv.expect("result", params["seconds"] + 90)
        results = [host.expect("result", params["timeout"] + 30) for host in hosts]
        for worker in (*hosts, srv):
            worker.finish()
    return res, results
