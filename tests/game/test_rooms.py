"""Rooms and the lobby: a RoomServer on a real socket, real bots (GameBot) in real threads.

Each test waits on the condition it needs (wait_until), never on a guessed time.  The bots are ticked by
one pump thread (not one thread each), so 40 of them do not crowd the server off the machine's cores.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprocket import Client, Servo, Sprocket
from sprocket.errors import InvalidArgument
from sprocket.game import (
    Entity,
    GameBot,
    GameClient,
    GameServer,
    LobbyRefused,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomList,
    RoomServer,
    RoomType,
    messages,
    rooms,
)
from sprocket.game.rooms import CODE_ALPHABET, CodeLimiter, new_code, normalize_code
from sprocket.testing import LagProxy
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(120)


class Dot(Entity, type_name="rooms.Dot"):
    x: float = 0.0


def rule(state: Dot, inp: dict[str, float], dt: float) -> Dot:
    """The game rule: move right at dx units per tick."""
    state.x += inp.get("dx", 0.0)
    return state


class DotRoom(GameServer):
    """One match: each player drives a Dot.  Sets room_state for the listings."""

    rule = staticmethod(rule)
    tick_rate = 30.0
    snapshot_rate = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.room_state = "waiting"
        self.joins: list[int] = []

    def on_join(self, client: Client) -> None:
        if client.name == "boom":
            raise RuntimeError("a bug in on_join")
        self.joins.append(client.id)
        self.control(client, self.world.spawn(Dot()))
        self.room_state = "playing" if len(self.players) >= 2 else "waiting"
        if client.name == "verbose":
            self.room_state = "x" * 33  # over the 32 characters a listing shows

    def on_leave(self, client: Client, reason: str) -> None:
        entity = self.players[client].entity
        if entity is not None and entity in self.world:
            self.world.despawn(entity)


class Player(GameBot):
    """Records what the lobby tells it; moves right while ``moving``."""

    rule = staticmethod(rule)

    def __init__(self, *args: Any, quick: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quick = quick
        self.moving = True
        self.joined: list[RoomInfo] = []
        self.left: list[RoomLeft] = []
        self.refusals: list[LobbyRefused] = []
        self.listings: list[list[RoomInfo]] = []
        self.resumes = 0

    def on_connect(self) -> None:
        if self.quick is not None:
            self.lobby.quick_join(self.quick)

    def on_room_joined(self, room: RoomInfo) -> None:
        self.joined.append(room)

    def on_room_left(self, left: RoomLeft) -> None:
        self.left.append(left)

    def on_room_list(self, rooms: list[RoomInfo]) -> None:
        self.listings.append(rooms)

    def on_lobby_error(self, refusal: LobbyRefused) -> None:
        self.refusals.append(refusal)

    def on_resume(self) -> None:
        self.resumes += 1

    def decide(self, entities: dict[int, Entity]) -> dict[str, float]:
        return {"dx": 1.0 if self.moving else 0.0}


class Pump:
    """Ticks many bots from one thread at about 30 Hz (pacing, not synchronisation)."""

    def __init__(self) -> None:
        self.bots: list[Player] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, port: int, name: str, **kwargs: Any) -> Player:
        bot = Player("127.0.0.1", port, name=name, ping_interval=0.2, **kwargs)
        with self.lock:
            self.bots.append(bot)
        return bot

    def _run(self) -> None:
        dt = 1.0 / 30.0
        while not self._stop.is_set():
            with self.lock:
                bots = list(self.bots)
            for bot in bots:
                bot.tick(dt)
            self._stop.wait(dt)

    def call(self, bot: Player, request: Any) -> None:
        """Run ``request(bot)`` between two ticks (the bots are not thread-safe)."""
        with self.lock:
            request(bot)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        for bot in self.bots:
            bot.sprocket.close()


@pytest.fixture
def pump() -> Iterator[Pump]:
    p = Pump()
    yield p
    p.close()


def room_server(**options: Any) -> RoomServer:
    kinds = {"duel": RoomType(DotRoom, max_players=2), "party": RoomType(DotRoom, max_players=8)}
    servo = Servo("127.0.0.1", 0, ping_interval=0.2)
    return RoomServer(kinds, servo, **options).start()


def in_room(bot: Player) -> bool:
    return bot.lobby.room is not None and bot.net.ready and bot.me is not None


# -- pure parts -------------------------------------------------------------------------------------------


def test_codes_are_five_unambiguous_letters_and_never_taken_ones() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 5 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("ILO0123456789") & set(CODE_ALPHABET)
    taken = set(list(codes)[:100])
    assert all(new_code(taken) not in taken for _ in range(50))
    assert normalize_code(" abc-de ") == "ABCDE"
    assert normalize_code("ABCDI") is None and normalize_code("ABCD") is None and normalize_code(5) is None


def test_the_code_limiter_allows_a_few_tries_per_window_per_connection() -> None:
    limiter = CodeLimiter(attempts=5, window=10.0)
    assert [limiter.allow("a", 100.0 + i) for i in range(5)] == [0.0] * 5
    assert limiter.allow("a", 105.0) == pytest.approx(5.0)  # refused: the first try ages out at 110
    assert limiter.allow("b", 105.0) == 0.0  # another connection has its own count
    assert limiter.allow("a", 110.0) == 0.0
    limiter.forget("a")
    with pytest.raises(InvalidArgument):
        CodeLimiter(attempts=0)


def test_room_server_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        RoomServer({}, port=0)
    with pytest.raises(InvalidArgument):
        RoomType(object)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        RoomServer({"x" * 40: DotRoom}, port=0)


# -- over the network -------------------------------------------------------------------------------------


def test_forty_bots_quick_join_twenty_full_rooms(pump: Pump) -> None:
    server = room_server()
    try:
        bots = [pump.add(server.port, f"b{i}", quick="duel") for i in range(40)]
        wait_until(lambda: all(in_room(b) for b in bots), 60, "40 bots in rooms")
        wait_until(lambda: len(server.rooms()) == 20 and all(r.players == 2 for r in server.rooms()), 10,
                   "20 full rooms")  # fmt: skip
        server.stop()  # quiet now: its rooms can be read from this thread
        seated: collections.Counter[int] = collections.Counter()
        for info in server.rooms():
            game = server.room_server(info.code)
            assert game is not None and len(game.players) == 2 <= info.max_players
            seated.update(client.id for client in game.players)
        assert len(seated) == 40 and set(seated.values()) == {1}  # nobody seated twice
        by_code = collections.Counter(b.lobby.room.code for b in bots if b.lobby.room is not None)
        assert len(by_code) == 20 and set(by_code.values()) == {2}
        assert all(b.joined and len(b.joined) == 1 for b in bots)
    finally:
        server.close()


def test_a_private_room_is_joined_by_its_code_and_never_listed(pump: Pump) -> None:
    server = room_server()
    try:
        host = pump.add(server.port, "host")
        wait_until(lambda: host.lobby.available, 10, "the host in the lobby")
        pump.call(host, lambda b: b.lobby.create("duel", private=True, name="friends only"))
        wait_until(lambda: in_room(host), 10, "the host in its room")
        room = host.lobby.room
        assert room is not None and room.private and room.name == "friends only"
        guest = pump.add(server.port, "guest")
        wait_until(lambda: guest.lobby.available, 10, "the guest in the lobby")
        pump.call(guest, lambda b: b.lobby.list_rooms())
        wait_until(lambda: guest.listings, 10, "a listing")
        assert guest.listings[-1] == []  # private rooms are never listed
        pump.call(guest, lambda b: b.lobby.join(room.code.lower()))
        wait_until(lambda: in_room(guest), 10, "the guest in the host's room")
        assert guest.lobby.room is not None and guest.lobby.room.code == room.code
        wait_until(lambda: set(host.net.players) == {host.net.id, guest.net.id}, 10, "both see each other")
        # A third is refused: the room is full, and it says so.
        third = pump.add(server.port, "third")
        wait_until(lambda: third.lobby.available, 10, "the third in the lobby")
        pump.call(third, lambda b: b.lobby.join(room.code))
        wait_until(lambda: third.refusals, 10, "the refusal")
        assert third.refusals[-1].error == "full" and third.lobby.room is None
    finally:
        server.close()


def test_a_wrong_code_is_refused_and_guessing_is_rate_limited(pump: Pump) -> None:
    server = room_server(code_attempts=3, code_window=60.0)
    try:
        bot = pump.add(server.port, "guesser")
        wait_until(lambda: bot.lobby.available, 10, "the bot in the lobby")
        for _ in range(4):
            pump.call(bot, lambda b: b.lobby.join("ZZZZZ"))
        wait_until(lambda: len(bot.refusals) == 4, 10, "four refusals")
        assert [r.error for r in bot.refusals] == ["no_room", "no_room", "no_room", "rate"]
        assert "wait" in bot.refusals[-1].reason and bot.lobby.room is None
        assert not bot.net.ready  # still in the lobby, no game
        pump.call(bot, lambda b: b.lobby.quick_join("nope"))
        wait_until(lambda: len(bot.refusals) == 5, 10, "the unknown type refused")
        assert bot.refusals[-1].error == "unknown_type"
    finally:
        server.close()


def test_an_empty_room_is_disposed_after_its_timeout(pump: Pump) -> None:
    server = room_server(empty_timeout=0.3)
    try:
        bot = pump.add(server.port, "lonely", quick="duel")
        wait_until(lambda: in_room(bot), 10, "the bot in a room")
        code = bot.lobby.room.code  # type: ignore[union-attr]
        assert [r.code for r in server.rooms()] == [code]
        pump.call(bot, lambda b: b.lobby.leave())
        wait_until(lambda: bot.left, 10, "the bot back in the lobby")
        assert bot.lobby.room is None and not bot.left[-1].closed
        wait_until(lambda: server.rooms() == [], 10, "the empty room disposed")
        pump.call(bot, lambda b: b.lobby.join(code))
        wait_until(lambda: bot.refusals, 10, "the refusal")
        assert bot.refusals[-1].error == "closed"
    finally:
        server.close()


def test_a_raising_hook_closes_only_its_room(pump: Pump) -> None:
    server = room_server()
    try:
        a = pump.add(server.port, "a")
        c = pump.add(server.port, "c", quick="party")
        wait_until(lambda: a.lobby.available and in_room(c), 10, "a in the lobby, c in a room")
        pump.call(a, lambda b: b.lobby.create("party", private=False))
        wait_until(lambda: in_room(a), 10, "a in its own room")
        code = a.lobby.room.code  # type: ignore[union-attr]
        other = c.lobby.room.code  # type: ignore[union-attr]
        assert code != other
        boom = pump.add(server.port, "boom")
        wait_until(lambda: boom.lobby.available, 10, "boom in the lobby")
        pump.call(boom, lambda b: b.lobby.join(code))
        wait_until(lambda: a.left and boom.left, 10, "both told the room closed")
        assert a.left[-1].closed and "failed" in a.left[-1].reason and a.lobby.room is None
        assert boom.left[-1].closed
        assert [r.code for r in server.rooms()] == [other]
        # The other room plays on: c's entity keeps moving.
        moved = c.entities[c.me].x  # type: ignore[index]
        wait_until(lambda: c.entities[c.me].x > moved + 5, 10, "c still playing")  # type: ignore[index]
        assert c.lobby.room is not None and not c.left
        # And a, back in the lobby on the same connection, can play again.
        pump.call(a, lambda b: b.lobby.quick_join("party"))
        wait_until(lambda: in_room(a) and a.lobby.room.code == other, 10, "a in c's room")  # type: ignore[union-attr]
    finally:
        server.close()


def test_a_player_moves_between_rooms_on_one_connection(pump: Pump) -> None:
    server = room_server()
    try:
        bot = pump.add(server.port, "mover", quick="duel")
        wait_until(lambda: in_room(bot), 10, "the bot in a room")
        first = bot.lobby.room.code  # type: ignore[union-attr]
        cid = bot.net.id
        wait_until(lambda: bot.entities.get(bot.me or -1) and bot.entities[bot.me].x > 5, 10, "it moves")  # type: ignore[union-attr,index]
        ready_after_asking: list[bool] = []
        pump.call(
            bot, lambda b: (b.lobby.create("duel", private=True), ready_after_asking.append(b.net.ready))
        )
        assert ready_after_asking == [False]  # no input may follow the request: it would reach the next room
        wait_until(lambda: len(bot.joined) == 2 and in_room(bot), 10, "the bot in a second room")
        second = bot.lobby.room.code  # type: ignore[union-attr]
        assert second != first and bot.net.id == cid and not bot.left  # moved: no RoomLeft, same connection
        # Its inputs go on in the new room (the numbering carries on: nobody kicks it), and it moves there.
        wait_until(
            lambda: bot.entities.get(bot.me or -1) and bot.entities[bot.me].x > 5, 10, "it moves again"
        )  # type: ignore[union-attr,index]
        pump.call(bot, lambda b: b.lobby.leave())
        wait_until(lambda: bot.left and bot.lobby.room is None, 10, "back in the lobby")
        assert bot.left[-1].code == second and not bot.net.ready
        pump.call(bot, lambda b: b.lobby.join(first))
        wait_until(lambda: in_room(bot) and bot.lobby.room.code == first, 10, "back in the first room")  # type: ignore[union-attr]
        assert bot.sprocket.connected and bot.net.id == cid
        server.stop()
        for info in server.rooms():
            game = server.room_server(info.code)
            assert game is not None
            ids = [client.id for client in game.players]
            assert ids == ([cid] if info.code == first else [])
    finally:
        server.close()


def test_the_listing_follows_joins_and_leaves(pump: Pump) -> None:
    server = room_server()
    try:
        watcher = pump.add(server.port, "watcher")
        wait_until(lambda: watcher.lobby.available, 10, "the watcher in the lobby")

        def listed() -> list[tuple[str, int, str]]:
            pump.call(watcher, lambda b: b.lobby.list_rooms("party"))
            rooms = watcher.listings[-1] if watcher.listings else []
            return [(r.type, r.players, r.state) for r in rooms]

        a = pump.add(server.port, "a", quick="party")
        wait_until(lambda: listed() == [("party", 1, "waiting")], 5, "one player listed")
        b = pump.add(server.port, "b", quick="party")
        wait_until(lambda: listed() == [("party", 2, "playing")], 5, "two players listed")
        pump.call(a, lambda bot: bot.lobby.leave())
        wait_until(lambda: listed()[:1] == [("party", 1, "playing")], 5, "one left")
        pump.call(b, lambda bot: bot.lobby.leave())
        wait_until(lambda: listed()[:1] == [("party", 0, "playing")], 5, "nobody left")
    finally:
        server.close()


def test_a_resume_inside_a_room_keeps_the_seat(pump: Pump) -> None:
    server = room_server()
    proxy = LagProxy("127.0.0.1", server.port).start()
    try:
        bot = pump.add(proxy.port, "roamer", quick="duel")
        wait_until(lambda: in_room(bot), 10, "the bot in a room")
        code, cid, entity = bot.lobby.room.code, bot.net.id, bot.me  # type: ignore[union-attr]
        proxy.disconnect_all()
        wait_until(lambda: bot.resumes == 1 and bot.net.ready, 20, "the resume")
        assert bot.net.id == cid and bot.me == entity and bot.lobby.room is not None
        assert bot.lobby.room.code == code and not bot.left and len(bot.joined) == 1
        start = bot.entities[entity].x  # type: ignore[index]
        wait_until(lambda: bot.entities[entity].x > start + 5, 10, "it plays on in its room")  # type: ignore[index]
        server.stop()
        game = server.room_server(code)
        assert game is not None and [c.id for c in game.players] == [cid] and game.joins == [cid]
    finally:
        proxy.close()
        server.close()


def test_a_bot_on_a_plain_game_server_has_no_lobby() -> None:
    """A GameServer run on its own is still a one-room server: the lobby is never used."""
    game = DotRoom(Servo("127.0.0.1", 0)).start()
    bot = Player("127.0.0.1", game.port, name="solo")
    try:

        def playing() -> bool:
            bot.tick(1 / 30)
            return bot.net.ready

        wait_until(playing, 10, "the bot in the game")
        assert bot.net.ready and not bot.lobby.available and bot.lobby.room is None
    finally:
        bot.sprocket.close()
        game.close()


# -- the docs say what the code does ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_rooms_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if b.startswith("# rooms.py")]
    exec(compile(example, "README", "exec"), {})
    out = capsys.readouterr().out
    assert out == "2 rooms\n"


def test_the_protocol_documents_every_lobby_message_and_error() -> None:
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    lobby = doc[doc.index("### Lobby (rooms)") : doc.index("## Worked examples")]
    for kind in sorted(messages.LOBBY_REQUESTS | messages.LOBBY_REPLIES):
        assert f'| `"{kind}"` |' in lobby, kind
    for word in (rooms.FULL, rooms.NO_ROOM, rooms.CLOSED, rooms.RATE, rooms.MAX_ROOMS, rooms.UNKNOWN_TYPE,
                 rooms.BAD_REQUEST, rooms.NOT_IN_ROOM):  # fmt: skip
        assert f"`{word}`" in lobby, word
    assert rooms.CODE_ALPHABET in lobby and f"at most {messages.MAX_ROOM_TEXT} characters" in lobby


def test_bad_lobby_requests_are_refused_and_a_bad_lobby_reply_closes_the_client(pump: Pump) -> None:
    server = room_server(max_rooms=1)
    raw = Sprocket("127.0.0.1", server.port, name="raw")
    try:
        raw.wait_connected(10)
        got: list[Any] = []

        def answer(count: int) -> bool:
            got.extend(p for p in raw.get() if p.get("_g") == messages.L_ERROR)
            return len(got) >= count

        for kind in ([1], {"a": 1}, 3.5, None, b"quick"):  # game kinds of any type: ignored, nothing breaks
            raw.send(_g=kind, type="duel")
        raw.send(_g=messages.L_QUICK, type=["duel"])
        raw.send(_g=messages.L_JOIN, code=[1, 2])
        raw.send(_g=messages.L_CREATE, type="duel", name="x" * 100)
        raw.send(_g=messages.L_CREATE, type="duel", private="yes")
        raw.send(_g=messages.L_EXIT)
        wait_until(lambda: answer(5), 10, "five refusals")
        assert [p["error"] for p in got] == [
            "unknown_type",
            "no_room",
            "bad_request",
            "bad_request",
            "not_in_room",
        ]
        assert server.rooms() == []
        # max_rooms: the second room is refused.
        a = pump.add(server.port, "a", quick="duel")
        with pytest.raises(InvalidArgument):  # the client checks first: this never leaves it
            pump.call(a, lambda bot: bot.lobby.create("duel", name="x" * 100))
        wait_until(lambda: in_room(a), 10, "a in the one room")
        pump.call(a, lambda b: b.lobby.create("duel", private=True))
        wait_until(lambda: a.refusals, 10, "the refusal")
        assert a.refusals[-1].error == "max_rooms" and a.lobby.room is not None
        wait_until(lambda: a.net.ready, 10, "a playing on in its room after the refusal")
    finally:
        raw.close()
        server.close()


def test_a_malformed_lobby_message_closes_the_connection() -> None:
    servo = Servo("127.0.0.1", 0)
    bot = Player("127.0.0.1", servo.port, name="victim")
    try:
        wait_until(lambda: (servo.events(), servo.clients)[1], 10, "the bot connected")
        servo.clients[0].send(_g=messages.L_ROOM, code=5, type="duel", players=1, max=2, state="")

        def closed() -> bool:
            bot.tick(1 / 30)
            return bot.net.error is not None

        wait_until(closed, 10, "the bot closing the connection")
        assert "'code'" in (bot.net.error or "") and bot.lobby.room is None
    finally:
        bot.sprocket.close()
        servo.close()


def test_the_hockey_server_runs_unchanged_as_a_room_type() -> None:
    """Two hockey rooms on one port: the demo's HockeyServer as it is, its bots quick-joining."""
    from demos.hockey.bot import HockeyBot
    from demos.hockey.server import HockeyServer

    class Joiner(HockeyBot):
        def on_connect(self) -> None:
            self.lobby.quick_join("hockey")

    servo = Servo("127.0.0.1", 0, app="sprocket-hockey-1")
    server = RoomServer({"hockey": RoomType(HockeyServer, max_players=2)}, servo).start()
    bots = [Joiner("127.0.0.1", server.port, name=f"h{i}", app="sprocket-hockey-1").start() for i in range(4)]
    try:
        wait_until(lambda: all(b.net.ready and b.me is not None for b in bots), 20, "four hockey players")
        assert sorted(r.players for r in server.rooms()) == [2, 2]
        assert len({b.lobby.room.code for b in bots if b.lobby.room}) == 2
        assert all(len(b.entities) >= 4 for b in bots)  # the match, the puck and two mallets in each room
    finally:
        for bot in bots:
            bot.stop()
        server.close()


def test_a_state_string_over_32_characters_is_not_listed(pump: Pump) -> None:
    server = room_server()
    try:
        bot = pump.add(server.port, "verbose", quick="party")
        wait_until(lambda: in_room(bot), 10, "the bot in a room")
        wait_until(lambda: [r.state for r in server.rooms()] == [""], 10, "the state left out")
        pump.call(bot, lambda b: b.lobby.list_rooms())
        wait_until(lambda: bot.listings, 10, "a listing")  # and the client takes it (not malformed)
        assert [r.state for r in bot.listings[-1]] == [""] and bot.net.error is None
    finally:
        server.close()


def test_the_lobby_from_a_plain_script() -> None:
    """No hooks: a GameClient polled by hand; the answers come out of poll() and into client.lobby."""
    server = room_server()
    net = GameClient(Sprocket("127.0.0.1", server.port, name="script"))
    seen: list[Any] = []

    def until(condition: Any) -> Any:
        def poll() -> Any:
            seen.extend(net.poll())
            return condition()

        return poll

    try:
        wait_until(until(lambda: net.lobby.available), 10, "the lobby")
        assert net.lobby.types == {"duel": 2, "party": 8} and not net.ready
        net.lobby.create("party", private=False, name="open house")
        wait_until(until(lambda: net.ready), 10, "the room's game")
        joined = [item for item in seen if isinstance(item, RoomJoined)]
        assert len(joined) == 1 and joined[0].room.name == "open house" and net.lobby.room == joined[0].room
        assert net.players == {net.id: "script"}
        net.lobby.list_rooms()
        wait_until(until(lambda: any(isinstance(item, RoomList) for item in seen)), 10, "the listing")
        assert [r.name for r in net.lobby.rooms] == ["open house"]
        net.lobby.leave()
        wait_until(until(lambda: net.lobby.room is None), 10, "back in the lobby")
        assert isinstance(seen[-1], RoomLeft) and not net.ready and net.players == {}
    finally:
        net.sprocket.close()
        server.close()
