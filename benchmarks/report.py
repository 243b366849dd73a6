"""Turn the collected runs into the results table: medians with min and max, paired ratios, verdicts.

Each measurement is repeated ``runs`` times; within a run every library is measured back to back, so
run i of sprocket and run i of a baseline are a pair, and a ratio is computed per pair before taking
the median of the ratios.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

from .common import IMPL_LABELS, IMPLS, median_min_max

Runs = dict[str, dict[str, list[float]]]  # impl -> metric -> one value per run


@dataclass(frozen=True)
class Target:
    """A goal: ``kind`` is "ratio_raw", "ratio_podsixnet" (sprocket / baseline) or "value" (sprocket's)."""

    kind: str
    op: str  # ">=" or "<="
    bound: float

    def text(self) -> str:
        what = {"ratio_raw": "x raw", "ratio_podsixnet": "x PodSixNet", "value": ""}[self.kind]
        sign = "≥" if self.op == ">=" else "≤"
        return f"{sign} {self.bound:g}{what}".strip()


@dataclass(frozen=True)
class Row:
    group: str
    label: str
    metric: str
    unit: str
    digits: int = 0
    targets: tuple[Target, ...] = ()
    todo: str = ""
    note: str = ""
    ratios: bool = True
    # False: a figure of sprocket's alone (the game layer has no raw or PodSixNet counterpart; its
    # baselines are sprocket's own and appear as rows of their own).  Those columns then read "n/a".
    baselines: bool = True


@dataclass
class Cell:
    median: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": self.n}


@dataclass
class Line:
    row: Row
    cells: dict[str, Cell] = field(default_factory=dict)
    ratio_raw: Cell = field(default_factory=Cell)
    ratio_podsixnet: Cell = field(default_factory=Cell)
    verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.row.group,
            "figure": self.row.label,
            "metric": self.row.metric,
            "unit": self.row.unit,
            **{impl: self.cells[impl].as_dict() for impl in self.cells},
            "sprocket_vs_raw": self.ratio_raw.as_dict(),
            "sprocket_vs_podsixnet": self.ratio_podsixnet.as_dict(),
            "target": "; ".join(t.text() for t in self.row.targets),
            "verdict": self.verdict,
            "todo": self.row.todo,
            "note": self.row.note,
        }


def rows_for(groups: list[str], params: dict[str, dict[str, Any]]) -> list[Row]:
    """The table's rows for the groups that ran."""
    rows: list[Row] = []
    if "throughput" in groups:
        rows += [
            Row("throughput", "packets/s, end to end", "packets_per_s", "pkt/s",
                targets=(Target("ratio_raw", ">=", 0.8), Target("ratio_podsixnet", ">=", 5.0))),
            Row("throughput", "client send() calls/s", "send_calls_per_s", "calls/s"),
            Row("throughput", "server CPU per packet", "server_cpu_us_per_packet", "µs", 2),
        ]  # fmt: skip
    if "latency" in groups:
        rows += [
            Row("latency", "round trip p50", "p50_us", "µs", targets=(Target("ratio_raw", "<=", 1.3),)),
            Row("latency", "round trip p99", "p99_us", "µs", targets=(Target("ratio_raw", "<=", 2.0),)),
            Row("latency", "round trip p50, busy polling", "p50_us@busy", "µs",
                targets=(Target("ratio_raw", "<=", 1.3), Target("ratio_podsixnet", "<=", 1.0))),
            Row("latency", "round trip p99, busy polling", "p99_us@busy", "µs"),
        ]  # fmt: skip
    if "fanout" in groups:
        counts = params["fanout"]["client_counts"]
        rows += [Row("fan-out", f"late deliveries, {n} clients", f"late_pct@{n}", "%", 2) for n in counts]
        rows += [
            Row("fan-out", f"late server ticks, {n} clients", f"late_ticks_pct@{n}", "%", 2)
            for n in counts[-1:]
        ]
        rows += [
            Row("fan-out", f"server CPU, {n} clients", f"server_cpu_pct@{n}", "% core", 1) for n in counts
        ]
        rows += [
            Row("fan-out", f"client processes' CPU, {n} clients", f"clients_cpu_pct@{n}", "% core", 1)
            for n in counts[-1:]
        ]
        rows += [Row("fan-out", f"delivery p50, {n} clients", f"p50_ms@{n}", "ms", 2) for n in counts[:1]]
        rows += [Row("fan-out", f"delivery p99, {n} clients", f"p99_ms@{n}", "ms", 2) for n in counts]
    if "capacity" in groups:
        ramp = params["capacity"]["ramp"]
        rows += [
            Row("capacity", "clients fed at 20 Hz (≥95 % on time)", "max_clients", "clients",
                targets=(Target("value", ">=", 500.0),), ratios=False,
                note=f"ramp {', '.join(map(str, ramp))}; the largest step tested is the ceiling"),
        ]  # fmt: skip
        top = max(n for n in ramp if n <= 500) if any(n <= 500 for n in ramp) else ramp[0]
        rows += [Row("capacity", f"server CPU, {top} clients", f"server_cpu_pct@{top}", "% core", 1)]
    if "memory" in groups:
        rows += [
            Row("memory", "server RSS per idle client", "kib_per_client", "KiB", 2,
                targets=(Target("value", "<=", 50.0),)),
            Row("memory", "server RSS, all clients connected", "server_rss_mib", "MiB", 1),
        ]  # fmt: skip
    if "bandwidth" in groups:
        bw = params["bandwidth"]
        worlds = [
            ("hockey", "hockey demo (4 entities, 30 snapshots/s, 2 bots)"),
            ("blobs", f"{bw['blobs']} blobs, {bw['blobs_moving']} moving "
                      f"({bw['blob_snapshot_rate']:g} snapshots/s, {bw['blob_clients']} clients)"),
        ]  # fmt: skip
        for world, name in worlds:
            rows += [
                Row("bandwidth", f"{name}: snapshot bytes/s per client, deltas", f"delta_Bps@{world}", "B/s",
                    baselines=False),
                Row("bandwidth", f"{name}: snapshot bytes/s per client, full snapshots", f"full_Bps@{world}",
                    "B/s", baselines=False),
                Row("bandwidth", f"{name}: full ÷ delta", f"full_over_delta@{world}", "x", 2,
                    targets=(Target("value", ">=", 5.0),), baselines=False),
                Row("bandwidth", f"{name}: wire kbps per client, deltas", f"delta_kbps@{world}", "kbit/s", 1,
                    baselines=False),
                Row("bandwidth", f"{name}: wire kbps per client, full snapshots", f"full_kbps@{world}",
                    "kbit/s", 1, baselines=False),
            ]  # fmt: skip
    if "framecost" in groups:
        fc = params["framecost"]
        what = f"{fc['entities']} entities, {fc['fps']:g} FPS, {fc['snapshot_rate']:g} snapshots/s"
        rows += [
            Row("frame cost", f"game layer per frame, mean ({what})", "game_mean_ms", "ms", 3,
                targets=(Target("value", "<=", 0.5),), baselines=False),
            Row("frame cost", "game layer per frame, p50", "game_p50_ms", "ms", 3, baselines=False),
            Row("frame cost", "game layer per frame, p99", "game_p99_ms", "ms", 3, baselines=False),
            Row("frame cost", "game layer: poll() (receive, decode deltas), mean", "poll_ms", "ms", 3,
                baselines=False),
            Row("frame cost", "game layer: advance() + entities() (interpolate), mean", "interpolate_ms",
                "ms", 3, baselines=False),
            Row("frame cost", "game layer: send_input() (predict, send), mean", "predict_send_ms", "ms", 3,
                baselines=False),
            Row("frame cost", "bare sprocket per frame, mean (get() + the same sends, no game layer)",
                "bare_mean_ms", "ms", 3, baselines=False),
            Row("frame cost", "bare sprocket per frame, p99", "bare_p99_ms", "ms", 3, baselines=False),
            Row("frame cost", "game layer ÷ bare, mean", "game_over_bare", "x", 2, baselines=False),
            Row("frame cost", "added by the game layer (game - bare), mean", "added_ms", "ms", 3,
                baselines=False),
        ]  # fmt: skip
        hockey = f"hockey demo window, {fc['hockey_lag_ms']:g} ± {fc['hockey_jitter_ms']:g} ms"
        rows += [
            Row("frame cost", f"{hockey}, puck predicted: game layer per frame, mean", "game_mean_ms@hockey",
                "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}, puck predicted: game layer per frame, p99", "game_p99_ms@hockey",
                "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}: poll() (receive, decode, rewind + re-simulate), mean",
                "poll_ms@hockey", "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}: advance() + entities() (interpolate, draw the predicted), mean",
                "interpolate_ms@hockey", "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}: send_input() (predict the mallet and the world a tick, send), mean",
                "predict_send_ms@hockey", "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}: ticks re-simulated per snapshot, mean", "resim_ticks_mean@hockey",
                "ticks", 1, baselines=False),
            Row("frame cost", f"{hockey}: ticks re-simulated per snapshot, max", "resim_ticks_max@hockey",
                "ticks", 0, baselines=False),
            Row("frame cost", f"{hockey}, puck interpolated (no world prediction): game layer, mean",
                "off_mean_ms@hockey", "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}, puck interpolated: game layer, p99", "off_p99_ms@hockey", "ms", 3,
                baselines=False),
            Row("frame cost", f"{hockey}: world prediction's cost per frame (predicted - interpolated), mean",
                "world_prediction_ms@hockey", "ms", 3, targets=(Target("value", "<=", 1.0),),
                baselines=False),
            Row("frame cost", f"{hockey}: step() minus the game's hooks and the overlay, mean",
                "step_layer_ms@hockey", "ms", 3, baselines=False),
            Row("frame cost", f"{hockey}: the game's hooks (input, update, draw: the rendering), mean",
                "hooks_ms@hockey", "ms", 3, baselines=False),
        ]  # fmt: skip
    if "gamefeel" in groups:
        frames = params["gamefeel"]["play_frames"]
        at_most_1, near_zero = (Target("value", "<=", 1.0),), (Target("value", "<=", 10.0),)
        feel: list[tuple[str, str, str, int, tuple[Target, ...]]] = [
            (f"contacts of a drawn mallet with the drawn puck (2 windows, {frames} frames of play each)",
             "contacts", "contacts", 0, ()),
            ("contact -> drawn puck moving off, p50", "response_p50_frames", "frames", 1, ()),
            ("contact -> drawn puck moving off, p90", "response_p90_frames", "frames", 1, at_most_1),
            ("contact -> drawn puck moving off, max", "response_max_frames", "frames", 0, ()),
            ("contacts answered within 1 frame", "response_within_1_pct", "%", 1, ()),
            ("contacts never answered (within 60 frames)", "unanswered", "contacts", 0, ()),
            ("frames with the drawn puck > 2 px inside your drawn mallet, per 100 contacts",
             "overlap_frames_per_100_contacts", "frames", 1, near_zero),
            ("deepest overlap with your mallet", "max_overlap_px", "px", 1, ()),
            ("frames with the drawn puck > 2 px inside the other mallet, per 100 contacts",
             "overlap_other_per_100_contacts", "frames", 1, ()),
            ("puck correction offset while it decays, p50", "world_correction_p50_px", "px", 2, ()),
            ("puck correction offset while it decays, p99", "world_correction_p99_px", "px", 2, ()),
            ("puck correction: drawing moved per frame, p50", "world_correction_step_p50_px", "px/f", 2, ()),
            ("puck correction: drawing moved per frame, p99", "world_correction_step_p99_px", "px/f", 2, ()),
            ("frames with a puck correction in force", "world_correcting_pct", "%", 1, ()),
            ("own mallet correction offset, p50", "own_correction_p50_px", "px", 2, ()),
            ("own mallet correction offset, p99", "own_correction_p99_px", "px", 2, ()),
            ("frames the 60 FPS pacing could not keep on time", "late_frames_pct", "%", 2, ()),
            ("round trip seen by the windows", "rtt_ms", "ms", 1, ()),
        ]  # fmt: skip
        for at, where in (("@0ms", "no added lag"), ("@150ms", "150 ± 30 ms added round trip")):
            rows += [
                Row("game feel", f"{where}: {label}", metric + at, unit, digits, targets, baselines=False)
                for label, metric, unit, digits, targets in feel
            ]
    if "resume" in groups:
        rs = params["resume"]

        def resume_row(label: str, metric: str, unit: str, digits: int = 1, **kw: Any) -> Row:
            return Row("resume", label, metric, unit, digits, baselines=False, **kw)

        rows += [
            resume_row(f"cut -> Reconnected, p50 ({rs['cuts']} cuts, {rs['rate']} packets/s each way, "
                       "LagProxy with no added lag)", "reconnect_p50_ms@cuts", "ms"),
            resume_row("cut -> Reconnected, p99", "reconnect_p99_ms@cuts", "ms"),
            resume_row("cut -> first packet after the resume, client, p50", "first_client_p50_ms@cuts", "ms"),
            resume_row("cut -> first packet after the resume, client, p99", "first_client_p99_ms@cuts", "ms"),
            resume_row("cut -> first packet after the resume, server, p50", "first_server_p50_ms@cuts", "ms"),
            resume_row("cut -> first packet after the resume, server, p99", "first_server_p99_ms@cuts", "ms"),
            resume_row("of which: the reconnect delay (by design 0.05-0.1 s), p50", "backoff_p50_ms@cuts",
                       "ms"),
            resume_row("of which: the reconnect delay, share of cut -> Reconnected (p50s)",
                       "backoff_share_pct@cuts", "%"),
            resume_row("of which: connect + resume handshake + next poll, p50", "handshake_p50_ms@cuts",
                       "ms", 2),
            resume_row("of which: the drop noticed by the I/O thread, p50", "detect_p50_ms@cuts", "ms", 2),
            resume_row("packets lost, repeated or reordered, both ways", "lost_or_repeated@cuts",
                       "packets", 0, targets=(Target("value", "<=", 0.0),)),
            resume_row("resumes seen by the server", "server_resumes@cuts", "resumes", 0),
            resume_row("session anomalies (a cut without Dropped + Resumed + Reconnected, a Left, a new join "
                       "or id)", "session_anomalies@cuts", "count", 0, targets=(Target("value", "<=", 0.0),)),
            resume_row("steady state: packets/s, no session (Sprocket(reconnect=False))",
                       "packets_per_s_plain@steady", "pkt/s", 0),
            resume_row("steady state: packets/s, session (reconnect=True, the default)",
                       "packets_per_s_session@steady", "pkt/s", 0),
            resume_row("steady state: packets/s, session ÷ no session", "packets_per_s_ratio@steady", "x", 3),
            resume_row("steady state: bytes on the wire per packet, no session",
                       "wire_bytes_per_packet_plain@steady", "B", 2),
            resume_row("steady state: bytes on the wire per packet, session",
                       "wire_bytes_per_packet_session@steady", "B", 2),
            resume_row("steady state: bytes on the wire per packet, session ÷ no session",
                       "wire_bytes_per_packet_ratio@steady", "x", 4),
            resume_row("steady state: server CPU per packet, no session",
                       "server_cpu_us_per_packet_plain@steady", "µs", 2),
            resume_row("steady state: server CPU per packet, session",
                       "server_cpu_us_per_packet_session@steady", "µs", 2),
            resume_row("steady state: server CPU per packet, session ÷ no session",
                       "server_cpu_us_per_packet_ratio@steady", "x", 3),
        ]  # fmt: skip
    if "discovery" in groups:
        dp = params["discovery"]
        n, rounds = dp["servers"], dp["rounds"]

        def lan_row(label: str, metric: str, digits: int = 1, **kw: Any) -> Row:
            return Row("discovery", label, metric, "ms", digits, baselines=False, **kw)

        rows += [
            lan_row(f"server start -> listed by a browser, p50 ({n} servers on 127.0.0.x, {rounds} rounds)",
                    "found_p50_ms"),
            lan_row("server start -> listed, max", "found_max_ms"),
            lan_row(f"a round's {n} servers started -> all listed, p50", "round_p50_ms"),
            lan_row(f"browser opened -> all {n} running servers listed, p50 (announced every "
                    f"{dp['interval']:g} s)", "open_p50_ms", targets=(Target("value", "<=", 1000.0),)),
            lan_row("browser opened -> all listed, max", "open_max_ms"),
            lan_row("browser opened -> all listed, p50, baseline: no query (waits for announcements)",
                    "open_noquery_p50_ms"),
            Row("discovery", "browser opened -> all listed, p50: with query ÷ without", "open_ratio", "x", 3,
                baselines=False),
            lan_row("announcer closed -> dropped from the list (its goodbye), p50", "goodbye_p50_ms", 2),
        ]  # fmt: skip
    if "rooms" in groups:
        rp = params["rooms"]
        ramp = rp["ramp"]

        def room_row(label: str, metric: str, unit: str, digits: int = 2, **kw: Any) -> Row:
            return Row("rooms", label, metric, unit, digits, baselines=False, **kw)

        rows += [
            room_row(f"two-player hockey rooms at 60 Hz in one process (< {rp['late_limit_pct']:g} % late, "
                     "tick p99 < 16.7 ms)", "max_rooms", "rooms", 0, targets=(Target("value", ">=", 32.0),),
                     note=f"ramp {', '.join(map(str, ramp))}; the largest step tested is the ceiling"),
        ]  # fmt: skip
        for n in ramp:
            rows += [
                room_row(f"{n} rooms: late ticks", f"late_pct@{n}", "%"),
                room_row(f"{n} rooms: tick p50", f"tick_p50_ms@{n}", "ms", 3),
                room_row(f"{n} rooms: tick p99", f"tick_p99_ms@{n}", "ms", 3),
                room_row(f"{n} rooms: server CPU per room", f"cpu_per_room_pct@{n}", "% core"),
                room_row(f"{n} rooms: server RSS per room", f"rss_per_room_kib@{n}", "KiB", 0),
            ]
            if n == rp["compare_at"]:
                rows += [
                    room_row(f"{n} rooms: CPU per room, before the small-world check",
                             f"before_cpu_per_room_pct@{n}", "% core"),
                    room_row(f"{n} rooms: CPU per room, after ÷ before",
                             f"after_before_cpu_per_room_pct@{n}", "x"),
                    room_row(f"{n} rooms: tick p50, after ÷ before", f"after_before_tick_p50_ms@{n}", "x"),
                ]  # fmt: skip
            if rp["baseline"]:
                rows += [
                    room_row(f"{n} rooms: late ticks, as {n} separate servers", f"servers_late_pct@{n}", "%"),
                    room_row(f"{n} rooms: CPU per room, rooms ÷ separate servers",
                             f"ratio_cpu_per_room_pct@{n}", "x"),
                    room_row(f"{n} rooms: RSS per room, rooms ÷ separate servers",
                             f"ratio_rss_per_room_kib@{n}", "x"),
                ]  # fmt: skip
    if "cluster" in groups:
        from . import cluster

        rows += cluster.rows(params["cluster"])
    return rows


def _cell(values: list[float]) -> Cell:
    finite = [v for v in values if not math.isnan(v)]
    median, low, high = median_min_max(finite)
    return Cell(median, low, high, len(finite))


def _ratios(num: list[float], den: list[float]) -> Cell:
    if len(num) != len(den):  # a library that did not run at all
        return Cell()
    pairs = [a / b for a, b in zip(num, den, strict=True) if not (math.isnan(a) or math.isnan(b)) and b != 0]
    return _cell(pairs)


def build(rows: list[Row], data: dict[str, Runs]) -> list[Line]:
    """Compute every line of the table from the per-run values."""
    lines: list[Line] = []
    group_key = {"fan-out": "fanout", "frame cost": "framecost", "game feel": "gamefeel"}
    for row in rows:
        line = Line(row)
        runs = data.get(group_key.get(row.group, row.group), {})
        if row.todo or not runs:
            line.verdict = "TODO" if row.todo else "not run"
            lines.append(line)
            continue
        for impl in IMPLS:
            line.cells[impl] = _cell(runs.get(impl, {}).get(row.metric, []))
        sp = runs.get("sprocket", {}).get(row.metric, [])
        if row.ratios and row.baselines:
            line.ratio_raw = _ratios(sp, runs.get("raw", {}).get(row.metric, []))
            line.ratio_podsixnet = _ratios(sp, runs.get("podsixnet", {}).get(row.metric, []))
        line.verdict = _verdict(line)
        lines.append(line)
    return lines


def _verdict(line: Line) -> str:
    if not line.row.targets:
        return ""
    parts = []
    cmp = {">=": operator.ge, "<=": operator.le}
    for target in line.row.targets:
        value = {
            "ratio_raw": line.ratio_raw.median,
            "ratio_podsixnet": line.ratio_podsixnet.median,
            "value": line.cells["sprocket"].median,
        }[target.kind]
        if math.isnan(value):
            parts.append(f"no data ({target.text()})")
        elif cmp[target.op](value, target.bound):
            parts.append(f"met ({target.text()})")
        else:
            short = value / target.bound if target.op == ">=" else target.bound / value
            parts.append(f"**MISSED** {target.text()}: {_num(value, 2)} ({short:.0%} of target)")
    return "; ".join(parts)


def _num(value: float, digits: int) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_cell(cell: Cell, digits: int) -> str:
    if cell.n == 0:
        return "-"
    if cell.n == 1 or cell.low == cell.high:
        return _num(cell.median, digits)
    return f"{_num(cell.median, digits)} ({_num(cell.low, digits)}..{_num(cell.high, digits)})"


def _impl_cell(line: Line, impl: str) -> str:
    if not line.row.baselines and impl != "sprocket":
        return "n/a"
    return fmt_cell(line.cells.get(impl, Cell()), line.row.digits)


def markdown(lines: list[Line]) -> str:
    """The table in GitHub markdown."""
    head = ["group", "figure", "unit", *(IMPL_LABELS[i] for i in IMPLS), "sprocket ÷ raw",
            "sprocket ÷ PodSixNet", "target", "verdict"]  # fmt: skip
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for line in lines:
        row = line.row
        if row.todo:
            cells = [row.group, row.label, "", row.todo, "", "", "", "", "", "TODO"]
        else:
            cells = [
                row.group,
                row.label + (f" ({row.note})" if row.note else ""),
                row.unit,
                *(_impl_cell(line, impl) for impl in IMPLS),
                fmt_cell(line.ratio_raw, 2) if row.baselines else "",
                fmt_cell(line.ratio_podsixnet, 2) if row.baselines else "",
                "; ".join(t.text() for t in row.targets),
                line.verdict,
            ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def text_table(lines: list[Line]) -> str:
    """The table for a terminal: aligned columns, medians only with ranges."""
    head = ["group", "figure", *(IMPL_LABELS[i] for i in IMPLS), "÷raw", "÷P6N", "verdict"]
    rows = [head]
    for line in lines:
        row = line.row
        if row.todo:
            rows.append([row.group, row.label, row.todo, "", "", "", "", "TODO"])
            continue
        label = f"{row.label} [{row.unit}]"
        rows.append(
            [
                row.group,
                label,
                *(_impl_cell(line, impl) for impl in IMPLS),
                _num(line.ratio_raw.median, 2) if line.ratio_raw.n else "",
                _num(line.ratio_podsixnet.median, 2) if line.ratio_podsixnet.n else "",
                line.verdict.replace("**", ""),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    text = []
    for r in rows:
        text.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(text) + "\n"
