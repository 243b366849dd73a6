"""Sprocket Hockey across dropped connections: same seat, same score, the match plays on to the end."""

from __future__ import annotations

from typing import Any

import pytest

from demos.hockey.bot import HockeyBot
from demos.hockey.rules import Match
from demos.hockey.server import HockeyServer
from sprocket import Packet, Servo
from sprocket.testing import LagProxy
from tests.conftest import wait_until
from tests.hostile.conftest import Reliability, reliability  # noqa: F401  (the figures go there)

pytestmark = pytest.mark.timeout(300)

WIN = 2


class OneMatch(HockeyServer):
    """First to three, one match only (no rematch), and a log of the connection hooks."""

    win_score = WIN

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, int]] = []
        self.phases: list[str] = []
        self.play_ticks = 0  # ticks spent in the "play" phase

    def on_join(self, client: Any) -> None:
        self.log.append(("join", client.id))
        super().on_join(client)

    def on_leave(self, client: Any, reason: str) -> None:
        self.log.append(("leave", client.id))
        super().on_leave(client, reason)

    def on_drop(self, client: Any, reason: str) -> None:
        self.log.append(("drop", client.id))
        super().on_drop(client, reason)

    def on_resume(self, client: Any) -> None:
        self.log.append(("resume", client.id))
        super().on_resume(client)

    def on_packet(self, client: Any, packet: Packet) -> None:
        if self.match.winner != -1:
            return  # the match is over: no rematch, so the final score stays up
        super().on_packet(client, packet)

    def simulate(self, dt: float) -> None:
        super().simulate(dt)
        self.play_ticks += self.match.phase == "play"
        if not self.phases or self.phases[-1] != self.match.phase:
            self.phases.append(self.match.phase)


def seen_match(bot: HockeyBot) -> Match | None:
    latest = bot.net.latest
    if latest is None:
        return None
    return next((e for e in latest.entities.values() if isinstance(e, Match)), None)


def test_a_match_finishes_while_one_player_is_cut_every_few_seconds(
    reliability: Reliability,  # noqa: F811
) -> None:
    server = OneMatch(Servo("127.0.0.1", 0, timeout=5.0)).start()
    proxy = LagProxy("127.0.0.1", server.port, lag=0.05, jitter=0.01, seed=5).start()
    # The sharp bot, which scores, plays through the link that is cut; the other stands in its goal.
    cut = HockeyBot("127.0.0.1", proxy.port, name="cut", skill=1.0).start()
    steady = HockeyBot("127.0.0.1", server.port, name="steady", skill=0.0).start()
    cuts = 0
    try:
        wait_until(lambda: cut.me is not None and steady.me is not None, 10, "both bots in the game")
        cut_id, cut_entity = cut.net.id, cut.me
        wait_until(lambda: server.match.phase == "play", 20, "the match to start")
        while server.match.phase != "over":
            # Cut after every ~5 s of play; every other cut also holds the link for a second, so the
            # match really waits for the player ("away") before counting down again.
            due = server.play_ticks + 300
            wait_until(
                lambda t=due: server.play_ticks >= t or server.match.phase == "over", 60, "5 s of play"
            )
            if server.match.phase == "over":
                break
            if cuts % 2:
                proxy.stall(1.0)
            proxy.disconnect_all()
            cuts += 1
            wait_until(lambda n=cuts: server.log.count(("resume", cut_id)) >= n, 20, f"resume number {cuts}")
            assert cut.running, cut.stopped_reason
            assert cuts < 60, f"the match should have ended by now ({server.match.left}:{server.match.right})"
        final = (server.match.left, server.match.right)
        assert max(final) == WIN and server.match.winner in (0, 1)
        # Every client's score equals the server's, value for value.
        for bot in (cut, steady):
            wait_until(
                lambda b=bot: (m := seen_match(b)) is not None and (m.left, m.right) == final, 10,
                f"{bot.sprocket.name}'s score to be the server's {final}",
            )  # fmt: skip
            match = seen_match(bot)
            assert (
                match is not None
                and (match.left, match.right) == final
                and match.winner == server.match.winner
            )
        # The cut player kept its seat all along: no leave, one join each, same id and mallet.
        assert [k for k, _ in server.log].count("leave") == 0
        assert [k for k, _ in server.log].count("join") == 2
        assert (cut.net.id, cut.me) == (cut_id, cut_entity)
        assert cuts >= 1 and server.log.count(("drop", cut_id)) == cuts
        assert "away" in server.phases  # the match waited for the cut player at least once
        reliability.record(
            "Resume",
            "demo: a hockey match with one player's link cut after every 5 s of play",
            tried=f"{cuts} cuts (every other one held 1 s) during a first-to-{WIN} match between two bots",
            outcome=f"the match finished {final[0]}:{final[1]}; both clients showed the server's score; "
            "no leave, same seat",
            cuts=cuts,
        )
    finally:
        cut.stop()
        steady.stop()
        proxy.close()
        server.stop()


def test_the_match_waits_for_a_dropped_player_and_counts_down_when_they_are_back() -> None:
    server = OneMatch(Servo("127.0.0.1", 0, timeout=5.0)).start()
    proxy = LagProxy("127.0.0.1", server.port).start()
    a = HockeyBot("127.0.0.1", proxy.port, name="a").start()
    b = HockeyBot("127.0.0.1", server.port, name="b").start()
    try:
        wait_until(lambda: server.match.phase == "play", 20, "the match to start")
        side = next(s for s, c in server.sides.items() if c.id == a.net.id)
        proxy.stall(2.0)
        proxy.disconnect_all()
        wait_until(lambda: server.match.phase == "away", 10, "the match to wait for the dropped player")
        match = server.match
        away = match.left_away if side == 0 else match.right_away
        assert 0 < away <= 30 and (match.right_away if side == 0 else match.left_away) == 0
        wait_until(lambda: seen_match(b) is not None and seen_match(b).phase == "away", 10, "b to see it")
        wait_until(lambda: server.match.phase == "countdown", 20, "the countdown after the return")
        assert server.sides[side].id == a.net.id
        assert server.match.left_away == server.match.right_away == 0
        wait_until(lambda: server.match.phase == "play", 10, "play to go on")
    finally:
        a.stop()
        b.stop()
        proxy.close()
        server.stop()


def test_when_the_dropped_player_does_not_come_back_the_side_is_freed() -> None:
    server = OneMatch(Servo("127.0.0.1", 0, timeout=5.0, grace=1.0)).start()
    proxy = LagProxy("127.0.0.1", server.port).start()
    a = HockeyBot("127.0.0.1", proxy.port, name="a").start()
    b = HockeyBot("127.0.0.1", server.port, name="b").start()
    try:
        wait_until(lambda: server.match.phase == "play", 20, "the match to start")
        old_id = a.net.id
        proxy.stall(4.0)  # away longer than the 1 s grace period
        proxy.disconnect_all()
        wait_until(lambda: server.match.phase == "away", 10, "the match to wait")
        wait_until(lambda: server.match.phase == "paused", 10, "the grace period to end")
        assert len(server.sides) == 1 and ("leave", old_id) in server.log
        # Its Sprocket finds the session gone and joins afresh: a new player takes the empty side, and
        # the match (score kept) counts down again, as when anyone takes an empty side.
        wait_until(lambda: server.match.phase == "countdown", 20, "the new player to take the side")
        wait_until(lambda: a.net.ready and a.net.id not in (None, old_id), 10, "the bot's fresh join")
        assert len(server.sides) == 2 and a.running
    finally:
        a.stop()
        b.stop()
        proxy.close()
        server.stop()
