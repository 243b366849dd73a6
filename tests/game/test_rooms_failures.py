"""A room's hook raising closes that room only; join codes are rate-limited per address and server-wide.

A RoomServer on a real socket, real bots (GameBot) ticked by one pump thread (tests/game/test_rooms.py's
``Pump``), waits on conditions (wait_until), never on a guessed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sprocket import Client, Packet, Servo, Sprocket
from sprocket.game import GameServer, RoomServer, RoomType, messages
from sprocket.game.rooms import CodeLimiter
from sprocket.testing import LagProxy
from tests.conftest import wait_until
from tests.game.test_rooms import Dot, Player, Pump, in_room

pytestmark = pytest.mark.timeout(120)

HOOKS = ("on_join", "on_leave", "on_drop", "on_resume", "on_input", "rule", "on_packet", "simulate")


def trap_rule(state: Dot, inp: dict[str, Any], dt: float) -> Dot:
    """Move right; raise on an input asking for it (a bug the rule hits on one player's input)."""
    if inp.get("boom"):
        raise ZeroDivisionError("a bug in the rule")
    state.x += inp.get("dx", 0.0)
    return state


class TrapRoom(GameServer):
    """Each hook raises for a player named ``boom-<hook>`` (``rule`` and ``on_packet``: for an input or a
    packet asking for it)."""

    rule = staticmethod(trap_rule)
    tick_rate = 30.0
    snapshot_rate = 10.0

    def _trap(self, client: Client, hook: str) -> None:
        if client.name == f"boom-{hook}":
            raise RuntimeError(f"a bug in {hook}")

    def on_join(self, client: Client) -> None:
        self._trap(client, "on_join")
        self.control(client, self.world.spawn(Dot()))

    def on_leave(self, client: Client, reason: str) -> None:
        self._trap(client, "on_leave")

    def on_drop(self, client: Client, reason: str) -> None:
        self._trap(client, "on_drop")

    def on_resume(self, client: Client) -> None:
        self._trap(client, "on_resume")

    def on_input(self, client: Client, input: Any) -> None:
        self._trap(client, "on_input")
        super().on_input(client, input)

    def on_packet(self, client: Client, packet: Packet) -> None:
        if packet.get("boom"):
            raise RuntimeError("a bug in on_packet")

    def simulate(self, dt: float) -> None:
        for client in self.players:
            self._trap(client, "simulate")


class Trapper(Player):
    """Sends the input (``rule``) or the packet (``on_packet``) that springs its room's trap, when armed."""

    def __init__(self, *args: Any, hook: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hook = hook
        self.armed = False

    def decide(self, entities: dict[int, Any]) -> dict[str, Any]:
        if self.armed and self.hook == "on_packet":
            self.sprocket.send(boom=1)
        return {"dx": 1.0, "boom": self.armed and self.hook == "rule"}


@pytest.fixture
def pump() -> Iterator[Pump]:
    p = Pump()
    yield p
    p.close()


def trap_server(**options: Any) -> RoomServer:
    servo = Servo("127.0.0.1", 0, ping_interval=0.2, grace=30.0)
    return RoomServer({"trap": RoomType(TrapRoom, max_players=8)}, servo, **options).start()


def add_trapper(pump: Pump, port: int, name: str, hook: str) -> Trapper:
    bot = Trapper("127.0.0.1", port, name=name, ping_interval=0.2, hook=hook)
    with pump.lock:
        pump.bots.append(bot)
    return bot


@pytest.mark.parametrize("hook", HOOKS)
def test_a_raising_hook_or_rule_closes_only_its_room_and_keeps_the_connections(pump: Pump, hook: str) -> None:
    server = trap_server()
    proxy = LagProxy("127.0.0.1", server.port).start()
    try:
        # A bystander plays in another room all along.
        bystander = pump.add(server.port, "bystander")
        wait_until(lambda: bystander.lobby.available, 10, "the bystander in the lobby")
        pump.call(bystander, lambda b: b.lobby.create("trap", private=True))
        wait_until(lambda: in_room(bystander), 10, "the bystander in its room")
        witness = pump.add(server.port, "witness")
        wait_until(lambda: witness.lobby.available, 10, "the witness in the lobby")
        pump.call(witness, lambda b: b.lobby.create("trap", private=True))
        wait_until(lambda: in_room(witness), 10, "the witness in its room")
        code = witness.lobby.room.code  # type: ignore[union-attr]
        # The one whose hook raises comes through a proxy (so that its connection can be cut).
        name = f"boom-{hook}" if hook not in ("rule", "on_packet") else "armed"
        boom = add_trapper(pump, proxy.port, name, hook)
        wait_until(lambda: boom.lobby.available, 10, "the trapper in the lobby")
        pump.call(boom, lambda b: b.lobby.join(code))
        if hook not in ("on_join", "on_input", "simulate"):  # those spring as soon as it is in
            wait_until(lambda: in_room(boom), 10, "the trapper in the witness's room")
        if hook == "on_leave":
            pump.call(boom, lambda b: b.lobby.leave())
        elif hook in ("on_drop", "on_resume"):
            proxy.disconnect_all()
        elif hook in ("rule", "on_packet"):
            boom.armed = True
        # The witness is told its room closed, and why; it is in the lobby, on the same connection.
        wait_until(lambda: witness.left, 20, "the witness told its room closed")
        left = witness.left[-1]
        error = "ZeroDivisionError" if hook == "rule" else "RuntimeError"
        assert left.closed and left.code == code and f"failed ({error})" in left.reason
        assert witness.lobby.room is None and witness.sprocket.connected and witness.net.error is None
        assert boom.sprocket.connected or hook in ("on_drop", "on_resume")
        # The trapper was not kicked from the server either: it is in the lobby (or told it left).
        if hook not in ("on_drop", "on_resume", "on_leave"):
            wait_until(lambda: boom.left and boom.left[-1].closed, 10, "the trapper told")
        assert [r.code for r in server.rooms()] == [bystander.lobby.room.code]  # type: ignore[union-attr]
        # The other room plays on, and the witness can play again on its connection.
        moved = bystander.entities[bystander.me].x  # type: ignore[index]
        wait_until(lambda: bystander.entities[bystander.me].x > moved + 5, 10, "the bystander playing")  # type: ignore[index]
        pump.call(witness, lambda b: b.lobby.quick_join("trap"))
        wait_until(lambda: in_room(witness), 10, "the witness in a new room")
        assert not bystander.left
    finally:
        proxy.close()
        server.close()


# -- join codes: guessing does not go faster with more connections ------------------------------------------


def test_the_limiter_checks_without_counting_and_forgets_the_oldest_key() -> None:
    limiter = CodeLimiter(attempts=2, window=10.0, max_keys=2)
    assert limiter.wait("a", 0.0) == 0.0 and limiter.wait("a", 0.0) == 0.0  # nothing recorded
    limiter.record("a", 0.0)
    limiter.record("a", 1.0)
    assert limiter.wait("a", 2.0) == pytest.approx(8.0)
    limiter.record("b", 2.0)
    limiter.record("c", 2.0)  # a third key: "a", the least recently tried, is forgotten
    assert limiter.wait("a", 2.0) == 0.0
    with pytest.raises(ValueError):
        CodeLimiter(max_keys=0)


def _raw_lobby(port: int, name: str) -> Sprocket:
    raw = Sprocket("127.0.0.1", port, name=name)
    raw.wait_connected(10)
    return raw


def _refusals(raws: list[Sprocket], got: dict[int, list[str]]) -> int:
    for index, raw in enumerate(raws):
        got.setdefault(index, []).extend(p["reason"] for p in raw.get() if p.get("_g") == messages.L_ERROR)
    return sum(len(v) for v in got.values())


@pytest.mark.parametrize("scope", ["ip", "total"])
def test_many_connections_from_one_address_do_not_guess_faster(scope: str) -> None:
    """Six connections from 127.0.0.1, each well within its own limit (5 per window), try 2 codes each:
    the address's limit (or the server's) refuses what is over it."""
    limit = {"ip_code_attempts": 7} if scope == "ip" else {"total_code_attempts": 7}
    server = trap_server(code_attempts=5, code_window=60.0, **limit)
    raws = [_raw_lobby(server.port, f"guesser{i}") for i in range(6)]
    try:
        got: dict[int, list[str]] = {}
        for raw in raws:
            for _ in range(2):
                raw.send(_g=messages.L_JOIN, code="ZZZZZ")
        wait_until(lambda: _refusals(raws, got) == 12, 10, "twelve answers")
        reasons = [r for v in got.values() for r in v]
        wrong = [r for r in reasons if "no room" in r]
        limited = [r for r in reasons if "too many" in r]
        assert len(wrong) == 7 and len(limited) == 5  # only 7 codes were looked up, from 6 connections
        where = "your address" if scope == "ip" else "this server"
        assert all(where in r and "wait" in r for r in limited)
    finally:
        for raw in raws:
            raw.close()
        server.close()


def test_another_address_guesses_on_its_own_budget_but_not_past_the_servers() -> None:
    """127.0.0.1 uses up its address's budget; 127.0.0.2 still has its own, until the server-wide one ends."""
    server = RoomServer(
        {"trap": TrapRoom}, Servo("127.0.0.1", 0), ip_code_attempts=3, total_code_attempts=5, code_attempts=5
    ).start()
    here = Sprocket("127.0.0.1", server.port, name="here")
    there = Sprocket("127.0.0.1", server.port, name="there", source_address=("127.0.0.2", 0))
    try:
        here.wait_connected(10)
        there.wait_connected(10)
        got: dict[int, list[str]] = {}
        for _ in range(4):
            here.send(_g=messages.L_JOIN, code="ZZZZZ")
        wait_until(lambda: _refusals([here, there], got) == 4, 10, "four answers to 127.0.0.1")
        assert ["no room" in r for r in got[0]] == [True, True, True, False]
        assert "your address" in got[0][3]
        for _ in range(3):
            there.send(_g=messages.L_JOIN, code="ZZZZZ")
        wait_until(lambda: _refusals([here, there], got) == 7, 10, "three answers to 127.0.0.2")
        assert ["no room" in r for r in got[1]] == [True, True, False]
        assert "this server" in got[1][2]
    finally:
        here.close()
        there.close()
        server.close()


def test_the_protocol_states_the_code_limits_and_the_arithmetic() -> None:
    import inspect
    from pathlib import Path

    from sprocket.game.rooms import CODE_ALPHABET, CODE_LENGTH

    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    lobby = doc[doc.index("### Lobby (rooms)") : doc.index("## LAN discovery")]
    defaults = {k: v.default for k, v in inspect.signature(RoomServer).parameters.items()}
    assert (defaults["ip_code_attempts"], defaults["ip_code_window"]) == (20, 60.0)
    assert (defaults["total_code_attempts"], defaults["total_code_window"]) == (120, 60.0)
    assert "20 per minute per IP address" in lobby and "120 per minute for the whole server" in lobby
    codes = len(CODE_ALPHABET) ** CODE_LENGTH
    assert f"{codes:,}" in lobby and f"{120 * 60 / codes:.2%}".replace("%", " %") in lobby
