"""Game feel: what the hockey demo's two windows draw when a mallet hits the puck (issue 12).

One worker process per step runs :class:`benchmarks.feel.Rig`: a real ``HockeyServer`` (the demo's rules
and physics, a match that never ends, and a drill that puts the puck down still in front of each player in
turn about once a second), a ``LagProxy`` with the step's added round trip (0 ms, then 150 ± 30 ms), and
two real ``HockeyGame`` windows under SDL's dummy drivers, each played by a scripted striker and stepped
frame by frame with a fixed dt of 1/60 s, paced at 60 FPS.  Each window records what its ``draw()`` uses;
:func:`benchmarks.feel.analyse` turns the frames of play into the figures (definitions in
:mod:`benchmarks.feel`):

* contact -> the drawn puck moving off the mallet, in frames (p50, mean, p90, max; % within 1 frame);
* frames where the drawn puck is more than 2 px inside the drawn own mallet, per 100 contacts (and the
  same with the other player's mallet, which stays interpolated: drawn in the past);
* the display corrections while they decay: size (px) and how far they move the drawing per frame
  (px/frame), p50 and p99, for the puck (world prediction) and the own mallet.

Frames and pixels only: the figures do not depend on how fast the machine is, except through
``late_frames_pct`` (frames the 60 FPS pacing could not keep on time), reported beside them.  There is no
raw-socket or PodSixNet counterpart: sprocket only.
"""

from __future__ import annotations

from .common import Params, Worker, emit, worker_main, workers

MODULE = "gamefeel"
IMPLS = ("sprocket",)
LAGS = ((0.0, 0.0), (150.0, 30.0))  # (added round trip, jitter) in ms, one step each, strikers steering
KEYS_LAG = (150.0, 30.0)  # and one more step with strikers pressing keys (``@150ms-keys``)


def defaults(quick: bool) -> Params:
    return {
        "play_frames": 600 if quick else 1800,  # per window: 10 s (quick) or 30 s of play at 60 FPS
        "seed": 1,
        "timeout": 150.0,
    }


def steps(params: Params) -> list[tuple[str, Params]]:
    """One step per network condition (metric names get ``@0ms`` / ``@150ms``), and ``@150ms-keys``
    (strikers pressing keys, not steering)."""
    out = [(f"@{lag:g}ms", {**params, "lag_ms": lag, "jitter_ms": jitter, "keys": False})
           for lag, jitter in LAGS]  # fmt: skip
    lag, jitter = KEYS_LAG
    out.append((f"@{lag:g}ms-keys", {**params, "lag_ms": lag, "jitter_ms": jitter, "keys": True}))
    return out


def feel(p: Params) -> None:
    from .feel import RigError, measure

    try:
        figures = measure(p["lag_ms"] / 1000, p["jitter_ms"] / 1000, p["play_frames"], seed=p["seed"],
                          timeout=p["timeout"], keys=p.get("keys", False))  # fmt: skip
    except RigError as exc:
        emit("error", error=str(exc))
        return
    emit("result", **figures)


ROLES = {("feel", "*"): feel}


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One step in a fresh process (runner side)."""
    with workers() as started:
        worker = Worker(MODULE, "feel", impl, params)
        started.append(worker)
        res = worker.expect("result", params["timeout"] + 60)
        worker.finish(20)
    return {k: float(v) for k, v in res.items() if k != "kind" and isinstance(v, (int, float))}


if __name__ == "__main__":
    worker_main(ROLES)
