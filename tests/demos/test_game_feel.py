"""Game feel (issue 12): what the hockey demo's windows DRAW when a mallet hits the puck.

The figures come from :mod:`benchmarks.feel`: a real HockeyServer, a LagProxy and two real HockeyGame
windows (SDL dummy drivers) stepped frame by frame with a fixed dt, each played by a scripted striker,
each recording the positions its ``draw()`` uses.  The properties are counted in frames and pixels, never
in seconds: with world prediction the puck answers a hit in the frame of the hit and is not drawn inside
the mallet (both properties fail on the code before world prediction, commit 9bbb45e: 15 of 39 contacts
answered within a frame, 382 overlapping frames per 100 contacts).  The figures also go to the
reliability report (``reliability`` fixture).

The analysis itself is pure and tested in memory first, on hand-made frame records.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from benchmarks.feel import (
    OVERLAP_PX,
    RESPONSE_WINDOW,
    Feel,
    FrameRecord,
    Rig,
    Striker,
    analyse,
)
from demos.hockey.rules import LEFT_SIDE, MALLET_R, PUCK_R
from tests.hostile.conftest import Reliability, reliability  # noqa: F401  (the figures go there)

REACH = MALLET_R + PUCK_R  # 50 px: the drawn circles touch at this centre distance


def frame(
    me: tuple[float, float], puck: tuple[float, float], phase: str = "play", **kw: object
) -> FrameRecord:
    fields: dict[object, object] = {
        "phase": phase,
        "me": me,
        "puck": puck,
        "other": None,
        "own_correction": (0.0, 0.0),
        "world_correction": None,
    }
    fields.update(kw)
    return FrameRecord(**fields)  # type: ignore[arg-type]


def strike(puck_moves_after: int, frames: int = 30, speed: float = 9.0) -> list[FrameRecord]:
    """A mallet driven along y = 300 at ``speed`` px/frame into a puck at x = 200, which starts moving
    away at 20 px/frame ``puck_moves_after`` frames after the mallet reaches it."""
    records = []
    hit: int | None = None
    puck_x = 200.0
    for i in range(frames):
        me_x = 100.0 + speed * i
        if hit is None and me_x + REACH >= puck_x:
            hit = i
        if hit is not None and i >= hit + puck_moves_after:
            puck_x = max(puck_x, me_x + REACH) + 20.0
        records.append(frame((me_x, 300.0), (puck_x, 300.0)))
    return records


# -- the analysis, in memory --------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_puck_that_moves_off_in_the_frame_of_the_hit_answers_in_0_frames_and_never_overlaps() -> None:
    feel = analyse(strike(puck_moves_after=0), reach=REACH)
    assert feel.contacts == 1
    assert feel.responses == [0]
    assert feel.overlap_frames == 0 and feel.unanswered == 0


@pytest.mark.timeout(10)
def test_a_puck_that_stays_put_while_the_mallet_drives_in_is_late_and_overlapped() -> None:
    feel = analyse(strike(puck_moves_after=6), reach=REACH)
    assert feel.contacts == 1
    assert feel.responses == [6]
    # The mallet goes 9 px a frame into the still puck: 4, 13, 22, 31, 40 and 49 px deep.
    assert feel.overlap_frames == 6
    assert feel.max_overlap == pytest.approx(49.0)


@pytest.mark.timeout(10)
def test_a_puck_coming_at_the_mallet_answers_when_it_turns_back() -> None:
    # A still mallet at x = 100; the puck comes at it 6 px a frame, is drawn 4, 10 and 16 px deep, then
    # turns back: 3 frames after the contact.  Moving towards the mallet is no answer.
    xs = [170.0, 164.0, 158.0, 152.0, 146.0, 140.0, 134.0, 150.0, 170.0, 190.0]
    feel = analyse([frame((100.0, 300.0), (x, 300.0)) for x in xs], reach=REACH)
    assert feel.contacts == 1 and feel.responses == [3]
    assert feel.overlap_frames == 3


@pytest.mark.timeout(10)
def test_a_puck_that_never_moves_is_unanswered_not_averaged() -> None:
    records = [frame((100.0 + 2 * i, 300.0), (200.0, 300.0)) for i in range(RESPONSE_WINDOW + 40)]
    feel = analyse(records, reach=REACH)
    assert feel.contacts == 1 and feel.responses == [] and feel.unanswered == 1
    assert math.isnan(feel.metrics()["response_p50_frames"])


@pytest.mark.timeout(10)
def test_only_play_counts_and_a_teleported_puck_is_no_answer() -> None:
    still = [frame((100.0 + 9 * i, 300.0), (200.0, 300.0), phase="countdown") for i in range(30)]
    assert analyse(still, reach=REACH).contacts == 0  # the mallet went through it, but not in play
    records = strike(puck_moves_after=100, frames=15)
    last = records[-1].me
    assert last is not None
    records.append(frame(last, (700.0, 300.0)))  # a face-off: the puck jumps 500 px away
    feel = analyse(records, reach=REACH)
    assert feel.contacts == 1 and feel.responses == [] and feel.unanswered == 1


@pytest.mark.timeout(10)
def test_the_other_mallet_overlaps_are_counted_apart() -> None:
    records = [frame((100.0, 100.0), (400.0, 300.0), other=(400.0 + d, 300.0)) for d in (60.0, 45.0, 30.0)]
    feel = analyse(records, reach=REACH)
    assert feel.overlap_other_frames == 2  # 5 px and 20 px deep; 60 px apart is no overlap
    assert feel.overlap_frames == 0


@pytest.mark.timeout(10)
def test_correction_sizes_and_steps() -> None:
    offsets = [(0.0, 0.0), (8.0, 6.0), (4.0, 3.0), (0.0, 0.0)]
    records = [frame((100.0, 100.0), (600.0, 300.0), world_correction=o) for o in offsets]
    feel = analyse(records, reach=REACH)
    assert feel.world_reported and feel.world_corrections == [10.0, 5.0]
    assert feel.world_correction_steps == [10.0, 5.0]  # what the offset moved the drawing, per frame
    assert feel.own_corrections == []
    none = analyse([frame((100.0, 100.0), (600.0, 300.0))], reach=REACH)
    assert not none.world_reported and math.isnan(none.metrics()["world_correcting_pct"])


@pytest.mark.timeout(10)
def test_figures_fold_over_windows() -> None:
    total = Feel().add(analyse(strike(0), reach=REACH)).add(analyse(strike(6), reach=REACH))
    metrics = total.metrics()
    assert metrics["contacts"] == 2 and metrics["response_max_frames"] == 6
    assert metrics["response_within_1_pct"] == 50.0
    assert metrics["overlap_frames_per_100_contacts"] == 300.0


@pytest.mark.timeout(10)
def test_the_striker_drives_through_then_backs_off() -> None:
    striker = Striker()
    me, puck = (300.0, 352.0), (400.0, 352.0)  # left side, the puck ahead on our half
    keys = striker.decide(me, puck, LEFT_SIDE)
    assert keys["x"] > 0.9  # at it, full speed
    touching = (puck[0] - REACH, puck[1])
    held = [striker.decide(touching, puck, LEFT_SIDE) for _ in range(Striker.follow_through + 1)]
    assert all(k == held[0] for k in held[:-1]) and held[0]["x"] > 0  # keys held through the puck
    assert held[-1]["x"] < 0  # then back home
    assert OVERLAP_PX == 2.0


# -- the demo, for real -------------------------------------------------------------------------------

PLAY_FRAMES = 900  # per window: 15 s of play at 60 frames per second


@pytest.fixture(scope="module")
def at_0_ms() -> Iterator[tuple[Feel, list[Feel], dict[str, float]]]:
    """Both windows' figures after PLAY_FRAMES frames of play each, with no added lag."""
    with Rig(lag=0.0, jitter=0.0, seed=7) as rig:
        records = rig.run(PLAY_FRAMES, timeout=90.0)
        drills = rig.server.drills
        extra = {"late_frames": float(rig.late_frames), "frames": float(rig.frames), "drills": float(drills)}
    windows = [analyse(r) for r in records]
    total = Feel()
    for w in windows:
        total.add(w)
    yield total, windows, extra


@pytest.mark.timeout(120)
def test_the_harness_sees_both_windows_strike_the_puck(
    at_0_ms: tuple[Feel, list[Feel], dict[str, float]],
) -> None:
    total, windows, extra = at_0_ms
    assert extra["drills"] >= 5  # the server put the puck in front of the players
    for w in windows:
        assert w.frames >= PLAY_FRAMES
        assert w.contacts >= 5, f"a window struck the puck only {w.contacts} times in {w.frames} frames"
    assert total.contacts >= 20


@pytest.mark.timeout(120)
def test_the_puck_moves_off_within_one_frame_of_the_hit(
    at_0_ms: tuple[Feel, list[Feel], dict[str, float]],
    reliability: Reliability,  # noqa: F811
) -> None:
    total, _, extra = at_0_ms
    m = total.metrics()
    within = sum(1 for r in total.responses if r <= 1)
    reliability.record(
        "Game feel",
        "demo: contact -> the drawn puck moving off, no added lag",
        tried=f"{total.contacts} contacts of a drawn mallet with the drawn puck in {total.frames} frames of "
        "play over two HockeyGame windows (fixed dt, 60 FPS)",
        outcome=f"{within} of them answered within 1 frame (p50 {m['response_p50_frames']:g}, max "
        f"{m['response_max_frames']:g} frames), {total.unanswered} unanswered",
        **m,
        **extra,
    )
    # Every contact counts: one never answered is a failure too.
    assert within >= 0.9 * total.contacts, (
        f"only {within} of {total.contacts} contacts answered within a frame: {sorted(total.responses)}"
    )


@pytest.mark.timeout(120)
def test_the_puck_is_not_drawn_inside_the_mallet(
    at_0_ms: tuple[Feel, list[Feel], dict[str, float]],
    reliability: Reliability,  # noqa: F811
) -> None:
    total, _, _ = at_0_ms
    per_100 = total.per_100_contacts(total.overlap_frames)
    reliability.record(
        "Game feel",
        f"demo: the drawn puck more than {OVERLAP_PX:g} px inside the drawn mallet, no added lag",
        tried=f"{total.contacts} contacts, {total.contact_frames} frames with the circles touching",
        outcome=f"{total.overlap_frames} frames overlapping ({per_100:.1f} per 100 contacts; deepest "
        f"{total.max_overlap:.1f} px)",
        overlap_frames=total.overlap_frames,
        per_100_contacts=per_100,
        max_overlap_px=total.max_overlap,
    )
    # Before world prediction: about 4 frames per contact (382-401 per 100).  With it, on a quiet machine,
    # none (the benchmark's figure); but the server ticks in real time, so on a machine busy with other
    # work mispredictions add some (28 per 100 was seen in CI with two other test runs going).  The bound,
    # one frame per contact at most, tells the two apart whatever the load; the README's figures come from
    # `python -m benchmarks gamefeel`, not from here.  Not zero by design: a puck squeezed against a wall
    # by a mallet is inside it on the server too, and a correction gliding back may cross the mallet.
    assert per_100 <= 100.0, f"{total.overlap_frames} overlapping frames in {total.contacts} contacts"
