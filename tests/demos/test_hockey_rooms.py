"""Many hockey rooms: ``./play --server`` and ``--host`` as rooms servers, bots and windows quick-joining or
joining by code (through the menu's code path), the menu's window finding servers on 127.0.0.x and listing
their rooms, and ``session --rooms N``.  Real sockets on 127.0.0.0/8 (discovery broadcasts only to
127.255.255.255), real processes and threads; every wait has a deadline."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygame
import pytest

from demos.hockey.bot import HockeyBot
from demos.hockey.menu import Choice, MenuModel
from demos.hockey.rooms import APP, RoomPlan, hockey_rooms, rooms_status
from sprocket import Sprocket
from sprocket.game import Announcer, GameClient, RoomInfo, RoomServer, ServerBrowser, ServerInfo
from sprocket.testing import step_until
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "demos.hockey"]
LOOPBACK_BROADCAST = "127.255.255.255"

pytestmark = pytest.mark.timeout(120)


class Lines:
    """A child process's stdout (or stderr), read line by line in a thread, so a test can wait on a line."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._stream = stream
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def find(self, pattern: str) -> re.Match[str] | None:
        return next((m for line in self.lines if (m := re.search(pattern, line))), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Watcher:
    """A plain script in a rooms server's lobby: asks for the listing and keeps the latest one."""

    def __init__(self, port: int) -> None:
        self.net = GameClient(Sprocket("127.0.0.1", port, name="watcher", app=APP))

    def rooms(self) -> list[RoomInfo]:
        self.net.poll()
        if self.net.lobby.available:
            self.net.lobby.list_rooms("hockey")
        return self.net.lobby.rooms

    def close(self) -> None:
        self.net.sprocket.close()


def full_rooms(watcher: Watcher, count: int) -> Callable[[], list[RoomInfo] | None]:
    def check() -> list[RoomInfo] | None:
        rooms = watcher.rooms()
        return rooms if len(rooms) == count and all(r.players == r.max_players == 2 for r in rooms) else None

    return check


@pytest.fixture
def stopping() -> Iterator[list[Any]]:
    """Whatever a test puts here is stopped (bots, servers) or killed (processes) at its end."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, subprocess.Popen):
            try:
                os.killpg(thing.pid, signal.SIGKILL)  # its children too (a session's), so its pipes reach EOF
            except ProcessLookupError:
                pass  # the whole group has exited
            thing.wait(10)
            for stream in (thing.stdout, thing.stderr):
                if stream is not None:
                    stream.close()
        elif isinstance(thing, (HockeyBot, RoomServer)):
            thing.stop() if isinstance(thing, HockeyBot) else thing.close()
        else:
            thing.close()


def start(command: list[str], stopping: list[Any]) -> tuple[subprocess.Popen[str], Lines, Lines]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    stopping.append(process)
    return process, Lines(process.stdout), Lines(process.stderr)


def test_play_server_hosts_many_hockey_rooms_that_bots_fill_two_by_two(stopping: list[Any]) -> None:
    process, out, err = start([*DEMO, "--server", "--bind", "127.0.0.1", "--port", "0", "--no-announce"],
                              stopping)  # fmt: skip
    found = wait_until(lambda: out.find(r"on 127\.0\.0\.1:(\d+): two-player hockey rooms.*Ctrl-C"), 30,
                       "the server's first line")  # fmt: skip
    port = int(found.group(1))
    bots = [HockeyBot("127.0.0.1", port, name=f"bot{i}") for i in range(6)]  # quick-join: the default plan
    stopping.extend(bot.start() for bot in bots)
    watcher = Watcher(port)
    stopping.append(watcher)
    rooms = wait_until(full_rooms(watcher, 3), 30, "three full hockey rooms")

    def seated() -> set[str] | None:
        codes = [bot.lobby.room.code for bot in bots if bot.lobby.room is not None]
        return set(codes) if len(codes) == 6 else None

    assert wait_until(seated, 10, "every bot told its room") == {r.code for r in rooms}
    wait_until(lambda: all(r.state.startswith("playing") for r in watcher.rooms()), 30, "three matches on")
    # A bot from the command line quick-joins too, and opens a fourth room.
    _, bot_out, _ = start([*DEMO, "--bot", "--join", f"127.0.0.1:{port}", "--name", "Cli"], stopping)
    wait_until(lambda: bot_out.find(r"Cli is in room [A-Z]{5} at 127\.0\.0\.1"), 30, "the --bot in a room")
    wait_until(lambda: len(watcher.rooms()) == 4, 10, "a fourth room")
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_play_server_announces_its_rooms_from_the_address_it_listens_on(stopping: list[Any]) -> None:
    browser = ServerBrowser(port=0, bind=LOOPBACK_BROADCAST).start()
    stopping.append(browser)
    command = [*DEMO, "--server", "--bind", "127.0.0.3", "--port", "0", "--broadcast", LOOPBACK_BROADCAST,
               "--discovery-port", str(browser.port), "--server-name", "Rink"]  # fmt: skip
    process, _, _ = start(command, stopping)
    [info] = wait_until(browser.poll, 30, "the server listed")
    assert (info.name, info.address, info.app, info.rooms, info.players) == ("Rink", "127.0.0.3", APP, 0, 0)
    bots = [HockeyBot(info.address, info.port, name=f"b{i}") for i in range(3)]  # where the list says it is
    stopping.extend(bot.start() for bot in bots)
    wait_until(lambda: [(s.rooms, s.players) for s in browser.poll()] == [(2, 3)], 30, "2 rooms, 3 players")
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    wait_until(lambda: not browser.poll(), 10, "its goodbye")


def test_a_bot_given_a_wrong_code_says_why_and_exits_1(stopping: list[Any]) -> None:
    server = hockey_rooms("127.0.0.1", 0).start()
    stopping.append(server)
    command = [*DEMO, "--bot", "--join", f"127.0.0.1:{server.port}", "--code", "zzzzz"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "could not join a room at" in result.stderr and "no room has this code" in result.stderr
    assert "Traceback" not in result.stderr


def test_play_host_is_a_rooms_server_whose_window_plays_in_the_first_room(stopping: list[Any]) -> None:
    port = free_port()
    process, out, err = start([*DEMO, "--host", "--bind", "127.0.0.1", "--port", str(port), "--no-announce",
                               "--frames", "100000", "-v"], stopping)  # fmt: skip
    wait_until(lambda: out.find(rf"Hosting on 127\.0\.0\.1:{port}\. A friend joins with"), 30, "hosting")
    watcher = Watcher(port)
    stopping.append(watcher)
    [mine] = wait_until(lambda: [r for r in watcher.rooms() if r.players == 1], 30, "the host's room")
    friend = HockeyBot("127.0.0.1", port, name="Friend")  # as ./play --join HOST does: quick-join
    stopping.append(friend.start())
    wait_until(lambda: friend.lobby.room is not None, 30, "the friend in a room")
    assert friend.lobby.room is not None and friend.lobby.room.code == mine.code  # with the host, not alone
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_join_with_a_code_through_the_menu_and_what_the_menu_shows_when_it_fails(stopping: list[Any]) -> None:
    from demos.hockey.game import HockeyGame

    server = hockey_rooms("127.0.0.1", 0).start()
    stopping.append(server)
    host = HockeyBot("127.0.0.1", server.port, name="Host", plan=RoomPlan("create", private=True))
    stopping.append(host.start())
    wait_until(lambda: host.lobby.room, 20, "the host's private room")
    assert host.lobby.room is not None
    code = host.lobby.room.code
    assert server.rooms()[0].private

    def menu_choice(typed_code: str) -> Choice:
        model = MenuModel(name="Guest", screen="code")
        model.type(typed_code.lower())
        model.key("tab")
        model.type(f"127.0.0.1:{server.port}")
        choice = model.key("enter")
        assert choice is not None and choice.plan is not None
        return choice

    def game_for(choice: Choice) -> Any:
        return HockeyGame(choice.host, choice.port, name=choice.name, plan=choice.plan, keep_window=True)

    choice = menu_choice(code)
    game = game_for(choice)
    try:
        step_until(
            game, lambda: game.lobby.room is not None and game.my_entity is not None, 20, "in the room"
        )
        assert game.lobby.room is not None and game.lobby.room.code == code
        assert sorted(game.net.players.values(), key=str) == ["Guest", "Host"]
    finally:
        game.close()
    assert pygame.display.get_surface() is not None  # keep_window: the menu draws in it next
    # A wrong code (one no room has), and a full room: the game stops at once with the server's reason.
    wrong = "".join("B" if c != "B" else "C" for c in code)
    for typed, says in ((wrong, "no room has this code"), (code, f"room {code} is full")):
        if typed == code:
            third = HockeyBot("127.0.0.1", server.port, name="Third", plan=RoomPlan("join", code=code))
            stopping.append(third.start())
            wait_until(lambda: server.rooms()[0].players == 2, 20, "the room full again")
        game = game_for(menu_choice(typed))
        try:
            game.running = True
            step_until(game, lambda: not game.running, 20, "the game to stop")  # noqa: B023
            assert game.failure is not None and says in game.failure, game.failure
        finally:
            game.close()
    pygame.display.quit()


def test_the_menu_window_finds_servers_on_loopback_and_lists_a_servers_rooms(stopping: list[Any]) -> None:
    from demos.hockey.menu_screen import MenuScreen

    model = MenuModel(name="Ada")
    screen = MenuScreen(model, discovery_port=0, bind=LOOPBACK_BROADCAST)
    stopping.append(screen)
    assert screen.browser is not None
    servers = []
    for i, name in ((2, "Rink two"), (3, "Rink three")):
        server = hockey_rooms(f"127.0.0.{i}", 0).start()
        stopping.append(server)
        announcer = Announcer(rooms_status(server), name=name, address=LOOPBACK_BROADCAST, interval=0.1,
                              discovery_port=screen.browser.port, bind=f"127.0.0.{i}")  # fmt: skip
        stopping.append(announcer.start())
        servers.append(server)
    bots = [HockeyBot("127.0.0.2", servers[0].port, name=f"b{i}") for i in range(3)]
    stopping.extend(bot.start() for bot in bots)

    def frames_until(condition: Callable[[], Any], what: str, *keys: int) -> Any:
        screen.step([pygame.event.Event(pygame.KEYDOWN, key=key) for key in keys])
        return wait_until(lambda: screen.step() or condition(), 20, what)

    frames_until(lambda: True, "a frame", pygame.K_DOWN, pygame.K_RETURN)
    assert model.screen == "find"
    frames_until(lambda: len(model.servers) == 2, "both servers listed")
    assert [(s.name, s.address) for s in model.servers] == [
        ("Rink three", "127.0.0.3"),
        ("Rink two", "127.0.0.2"),
    ]
    frames_until(
        lambda: model.rooms and len(model.rooms) == 2, "Rink two's rooms", pygame.K_DOWN, pygame.K_RETURN
    )
    assert model.server is not None and model.server.name == "Rink two" and model.server_kind == "rooms"
    assert sorted(r.players for r in model.rooms or []) == [1, 2]
    assert model.rows() == ["quick", "room:0", "room:1", "back"]
    # Enter on the room with a free seat: a join by its code.
    free = next(i for i, r in enumerate(model.rooms or []) if r.players == 1)
    model.cursor = 1 + free
    choice = screen.step([pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN)])
    assert choice is not None and choice.plan is not None and choice.plan.kind == "join"
    assert (choice.host, choice.port, choice.plan.code) == (
        "127.0.0.2",
        servers[0].port,
        model.rooms[free].code,
    )
    model.screen = "code"  # the last screen draws too
    screen.step([pygame.event.Event(pygame.TEXTINPUT, text="abc")])
    assert model.code == "ABC"
    screen.close()
    pygame.display.quit()


def test_every_screen_of_the_menu_draws_in_every_state(stopping: list[Any]) -> None:
    from demos.hockey.menu_screen import MenuScreen

    model = MenuModel(name="Ada")
    screen = MenuScreen(model, discovery_port=0, bind=LOOPBACK_BROADCAST)
    stopping.append(screen)
    rink = ServerInfo("Rink", "127.0.0.2", 7801, APP, 2, 3, None, 0.0, "rink")
    rooms = [
        RoomInfo("ABCDE", "hockey", None, 2, 2, "playing 1:0"),
        RoomInfo("FGHJK", "hockey", None, 1, 2, ""),
    ]
    states: list[dict[str, Any]] = [
        {"screen": "main"},
        {"screen": "main", "error": "could not connect to 127.0.0.9:7777: Connection refused"},
        {"screen": "find"},
        {"screen": "find", "servers": [rink] * 12},  # more than fit: the first ones, and Back
        {"screen": "find", "browse_error": "Cannot look for games on the network: address in use"},
        {"screen": "server", "server": rink, "server_kind": None},
        {"screen": "server", "server": rink, "server_kind": "rooms", "rooms": []},
        {"screen": "server", "server": rink, "server_kind": "rooms", "rooms": rooms * 6},
        {"screen": "server", "server": rink, "server_kind": "single"},
        {"screen": "server", "server": rink, "server_error": "Cannot reach Rink: Connection refused"},
        {
            "screen": "code",
            "code": "ABC",
            "address": "",
            "field_index": 1,
            "error": "A join code is 5 letters",
        },
    ]
    for state in states:
        fresh = MenuModel(name="Ada")
        for name, value in state.items():
            setattr(fresh, name, value)
        screen.model = fresh
        screen.draw()
        assert len(screen.rects) == len(fresh.rows()) or fresh.screen in ("find", "server"), state
    screen.close()
    pygame.display.quit()


def test_session_rooms_fills_n_rooms_with_bots(stopping: list[Any]) -> None:
    port = free_port()
    session = [sys.executable, "-m", "sprocket.game.session", "demos.hockey"]
    command = [*session, "--windows", "0", "--rooms", "3", "--port", str(port)]
    process, out, err = start(command, stopping)
    started = r"session: server on 127\.0\.0\.1:\d+ \(3 rooms of 'hockey'\), 0 window\(s\), 6 bot\(s\)"
    wait_until(lambda: out.find(started), 60, "the session to start")
    watcher = Watcher(port)
    stopping.append(watcher)
    wait_until(full_rooms(watcher, 3), 30, "three full hockey rooms")
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_session_rooms_and_bots_do_not_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    from sprocket.game import session

    with pytest.raises(SystemExit) as exited:
        session.main(["demos.hockey", "--rooms", "2", "--bots", "1"])
    assert exited.value.code == 2 and "--rooms fills its rooms with bots itself" in capsys.readouterr().err


def test_closing_the_window_during_a_game_from_the_menu_closes_the_menu_too(stopping: list[Any]) -> None:
    from demos.hockey.game import HockeyGame
    from demos.hockey.menu_screen import MenuScreen

    server = hockey_rooms("127.0.0.1", 0).start()
    stopping.append(server)
    model = MenuModel(name="Ada")
    screen = MenuScreen(model, discovery_port=0, bind=LOOPBACK_BROADCAST)
    stopping.append(screen)
    game = HockeyGame("127.0.0.1", server.port, name="Ada", keep_window=True)
    try:
        game.running = True
        step_until(game, lambda: game.lobby.room is not None, 20, "the game in a room")
        pygame.event.post(pygame.event.Event(pygame.QUIT))  # the window's close button
        step_until(game, lambda: not game.running, 5, "the game to end")
    finally:
        game.close()
    assert screen.run() == Choice("quit", "Ada")  # the menu's first frame: the window is closing
    screen.close()
    pygame.display.quit()


def test_the_menu_joins_a_plain_hockey_server_as_it_is(stopping: list[Any]) -> None:
    """A server of one match (sprocket serve demos.hockey:HockeyServer --announce): no rooms to list; the
    menu finds out from its hello, leaves at once, and offers to join its match."""
    from demos.hockey.menu_screen import MenuScreen
    from demos.hockey.server import HockeyServer
    from sprocket import Servo

    model = MenuModel(name="Ada", screen="find")
    screen = MenuScreen(model, discovery_port=0, bind=LOOPBACK_BROADCAST)
    stopping.append(screen)
    assert screen.browser is not None
    match = HockeyServer(Servo("127.0.0.5", 0, app=APP))
    match.start()
    try:
        announcer = Announcer(match, name="Solo", address=LOOPBACK_BROADCAST, interval=0.1,
                              discovery_port=screen.browser.port)  # fmt: skip
        stopping.append(announcer.start())
        wait_until(lambda: screen.step() or model.servers, 20, "the server listed")
        screen.step([pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN)])
        wait_until(lambda: screen.step() or model.server_kind == "single", 20, "its hello")
        wait_until(lambda: not match.players, 10, "the menu's look to leave its seat")
        assert model.rows() == ["join", "back"]
        choice = screen.step([pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN)])
        assert choice is not None and (choice.action, choice.host, choice.port) == (
            "join",
            "127.0.0.5",
            match.port,
        )
    finally:
        match.stop()
    screen.close()
    pygame.display.quit()
