"""LAN discovery (issue 13): the datagram, the list's expiry and limits in memory with an injected clock,
and announcers and browsers over real sockets — on loopback only (127.255.255.255 or 127.0.0.x; never
255.255.255.255, never 224.x)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprocket import ClosedError, InvalidArgument, ProtocolError, Servo, SprocketError, UsageError
from sprocket.game import (
    Announcer,
    GameBot,
    GameServer,
    ServerBrowser,
    ServerInfo,
    ServerStatus,
    find_servers,
)
from sprocket.game.discovery import (
    MAGIC,
    MAX_DATAGRAM,
    Announcement,
    ServerTable,
    decode_announcement,
    encode_announcement,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)
LOOPBACK_BROADCAST = "127.255.255.255"
ROOT = Path(__file__).resolve().parents[2]


def _announce(port: int = 7777, name: str = "Ada's hockey", id: str = "a1", players: int = 1) -> bytes:
    return encode_announcement(Announcement("announce", id, port, name, "hockey", 1, players, 2))


def _raw(fields: dict[str, Any]) -> bytes:
    return MAGIC + json.dumps(fields).encode()


GOOD = {"v": 1, "kind": "announce", "id": "a1", "name": "x", "app": "y", "port": 7777, "rooms": 1,
        "players": 0, "max_players": 2}  # fmt: skip


# -- the datagram -----------------------------------------------------------------------------------------


def test_announcement_round_trips() -> None:
    a = Announcement("announce", "3f9a1c2b", 7777, "Ada\u2019s h\u00f6ckey", "sprocket-hockey-1", 3, 2, None)
    data = encode_announcement(a)
    assert data.startswith(MAGIC) and data.isascii()
    assert decode_announcement(data) == a
    bye = Announcement("goodbye", "3f9a1c2b", 7777)
    assert decode_announcement(encode_announcement(bye)) == bye


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"SPKD",
        b"hello",
        b"SPKD[1]",
        b"SPKD{bad json",
        b"SPKD\xff\xfe{}",
        MAGIC + b"{" * 400 + b"}" * 400,
        MAGIC + b'{"a":' * 100 + b"1" + b"}" * 100,
        _raw({**GOOD, "v": 2}),
        _raw({**GOOD, "v": True}),
        _raw({**GOOD, "kind": "hello"}),
        _raw({**GOOD, "extra": 1}),
        _raw({k: v for k, v in GOOD.items() if k != "players"}),
        _raw({**GOOD, "port": 0}),
        _raw({**GOOD, "port": 70000}),
        _raw({**GOOD, "port": True}),
        _raw({**GOOD, "port": 7777.0}),
        _raw({**GOOD, "players": -1}),
        _raw({**GOOD, "players": 10**7}),
        _raw({**GOOD, "max_players": "2"}),
        _raw({**GOOD, "name": "a\nb"}),
        _raw({**GOOD, "name": "\x1b[2J"}),
        _raw({**GOOD, "name": "n" * 65}),
        _raw({**GOOD, "name": ["x"]}),
        _raw({**GOOD, "id": ""}),
        _raw({**GOOD, "id": "ABC"}),
        MAGIC + json.dumps(GOOD).replace("2}", "NaN}").encode(),
        MAGIC + json.dumps(GOOD).encode() + b" " * MAX_DATAGRAM,
    ],
)
def test_bad_datagrams_raise_protocol_error(data: bytes) -> None:
    assert decode_announcement(_raw(GOOD)).name == "x"  # the template itself is good
    with pytest.raises(ProtocolError):
        decode_announcement(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_DATAGRAM + 8))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    for candidate in (data, MAGIC + data, MAGIC + b"{" + data):
        try:
            decode_announcement(candidate)
        except ProtocolError:
            pass


def test_encode_refuses_bad_fields() -> None:
    with pytest.raises(InvalidArgument, match="name"):
        encode_announcement(Announcement("announce", "a1", 7777, "n" * 65))
    with pytest.raises(InvalidArgument, match="port"):
        encode_announcement(Announcement("announce", "a1", 0))
    with pytest.raises(TypeError, match="players"):
        encode_announcement(Announcement("announce", "a1", 7777, players=True))
    with pytest.raises(InvalidArgument, match="kind"):
        encode_announcement(Announcement("hello", "a1", 7777))


# -- the list in memory: expiry, goodbyes, limits -----------------------------------------------------------


def test_a_server_is_forgotten_after_expire_after_seconds_of_silence() -> None:
    table = ServerTable(expire_after=3.0)
    table.feed(_announce(7777), "10.0.0.5", now=100.0)
    table.feed(_announce(7778, name="B", id="b2"), "10.0.0.6", now=100.0)
    table.feed(_announce(7778, name="B", id="b2", players=2), "10.0.0.6", now=102.5)  # B keeps announcing
    [a, b] = table.servers(now=102.9)
    assert (a.address, a.port, a.name, a.players, a.max_players, a.last_seen) == (
        "10.0.0.5", 7777, "Ada's hockey", 1, 2, 100.0
    )  # fmt: skip
    assert (b.name, b.players, b.last_seen) == ("B", 2, 102.5)
    assert [s.name for s in table.servers(now=103.1)] == ["B"]  # A was silent for 3.1 s
    assert table.servers(now=105.6) == []
    assert table.stats.expired == 2


def test_goodbye_drops_a_server_at_once_but_only_with_its_id() -> None:
    table = ServerTable()
    table.feed(_announce(7777, id="a1"), "10.0.0.5", now=0.0)
    table.feed(encode_announcement(Announcement("goodbye", "zz9", 7777)), "10.0.0.5", now=0.1)
    assert len(table.servers(now=0.1)) == 1  # another instance's goodbye does not remove it
    table.feed(encode_announcement(Announcement("goodbye", "a1", 7777)), "10.0.0.6", now=0.1)
    assert len(table.servers(now=0.1)) == 1  # nor does one from another address
    table.feed(encode_announcement(Announcement("goodbye", "a1", 7777)), "10.0.0.5", now=0.2)
    assert table.servers(now=0.2) == []
    assert table.stats.goodbyes == 3


def test_a_flood_from_one_source_is_rate_limited_and_others_still_heard() -> None:
    table = ServerTable(rate=20.0, burst=40)
    for i in range(1000):
        table.feed(_announce(7777, players=i % 5), "10.0.0.66", now=50.0)
    assert (table.stats.accepted, table.stats.rate_limited) == (40, 960)
    table.feed(_announce(7777, name="Other"), "10.0.0.7", now=50.0)
    assert {s.address for s in table.servers(now=50.0)} == {"10.0.0.66", "10.0.0.7"}
    for _ in range(100):
        table.feed(_announce(7777), "10.0.0.66", now=51.0)  # one second later: 20 more tokens
    assert table.stats.accepted == 41 + 20


def test_the_list_is_capped_overall_and_per_address() -> None:
    table = ServerTable(max_servers=10, max_per_address=4)
    for port in range(1000, 1010):
        table.feed(_announce(port), "10.0.0.5", now=0.0)
    assert len(table) == 4 and table.stats.full == 6
    for host in range(20):
        table.feed(_announce(7777), f"10.0.1.{host}", now=0.0)
    assert len(table) == 10 and table.stats.full == 6 + 14
    table.feed(_announce(1000, players=2), "10.0.0.5", now=1.0)  # a listed server still updates
    assert [s.players for s in table.servers(now=1.0) if s.port == 1000] == [2]
    # Once entries expire, new servers fit again.
    table.feed(_announce(9999), "10.0.2.1", now=10.0)
    assert [s.address for s in table.servers(now=10.0)] == ["10.0.2.1"]


def test_junk_and_oversized_datagrams_are_counted_not_raised() -> None:
    table = ServerTable()
    table.feed(b"\x00" * 10, "10.0.0.5", now=0.0)
    table.feed(MAGIC + b"{" + b" " * MAX_DATAGRAM + b"}", "10.0.0.5", now=0.0)
    table.feed(_raw({**GOOD, "port": -5}), "10.0.0.5", now=0.0)
    assert (table.stats.received, table.stats.junk, table.stats.oversized, len(table)) == (3, 2, 1, 0)


def test_the_rate_table_is_bounded() -> None:
    table = ServerTable(max_sources=8, max_servers=1000, max_per_address=1)
    for host in range(100):
        table.feed(_announce(), f"10.0.{host // 250}.{host % 250}", now=0.0)
    assert len(table._limiter._buckets) == 8 and len(table) == 100


def test_table_arguments_are_checked() -> None:
    for bad in ({"expire_after": 0}, {"max_servers": 0}, {"rate": -1.0}, {"burst": 1.5}, {"max_sources": 0}):
        with pytest.raises(InvalidArgument):
            ServerTable(**bad)


# -- over sockets, on loopback ----------------------------------------------------------------------------


@pytest.fixture
def browser(no_leaks: None) -> Iterator[ServerBrowser]:
    with ServerBrowser(port=0, bind=LOOPBACK_BROADCAST) as b:
        yield b


def _status(port: int, players: int = 0) -> Callable[[], ServerStatus]:
    return lambda: ServerStatus(port, "hockey", players, 2, 3)


def _listed(browser: ServerBrowser, count: int) -> Callable[[], list[ServerInfo] | None]:
    def check() -> list[ServerInfo] | None:
        servers = browser.poll()
        return servers if len(servers) == count else None

    return check


def test_three_servers_on_loopback_are_found_and_a_stopped_one_forgotten(browser: ServerBrowser) -> None:
    silent = {"127.0.0.3": False}

    def status_of(host: str, port: int) -> Callable[[], ServerStatus]:
        def status() -> ServerStatus:
            if silent.get(host):
                raise RuntimeError("this server stopped announcing")
            return ServerStatus(port, "hockey", 1, 2, 3)

        return status

    announcers = [
        Announcer(status_of(f"127.0.0.{i}", 7000 + i), name=f"Server {i}", address=LOOPBACK_BROADCAST,
                  discovery_port=browser.port, interval=0.1, bind=f"127.0.0.{i}").start()
        for i in (1, 2, 3)
    ]  # fmt: skip
    try:
        found = wait_until(_listed(browser, 3), 5.0, "three servers listed")
        assert [(s.name, s.address, s.port, s.app, s.rooms, s.players, s.max_players) for s in found] == [
            (f"Server {i}", f"127.0.0.{i}", 7000 + i, "hockey", 3, 1, 2) for i in (1, 2, 3)
        ]
        # A clean stop says goodbye: dropped at once, though its entry would live for seconds.
        announcers[0].close()
        assert wait_until(_listed(browser, 2), 5.0, "the closed server dropped")[0].name == "Server 2"
        assert browser.stats.goodbyes == 1 and browser.stats.expired == 0
        # One that goes silent without a goodbye is forgotten after expire_after (3 s).
        silent["127.0.0.3"] = True
        last = wait_until(_listed(browser, 1), 10.0, "the silent server forgotten")
        assert last[0].name == "Server 2" and browser.stats.expired == 1
    finally:
        for a in announcers:
            a.close()


def test_announcing_straight_to_a_unicast_browser(no_leaks: None) -> None:
    browser = ServerBrowser(port=0, bind="127.0.0.1").start()
    announcer = Announcer(_status(7777), name="direct", address=["127.0.0.1"], discovery_port=browser.port,
                          bind="127.0.0.2")  # fmt: skip
    with browser, announcer:
        [server] = wait_until(_listed(browser, 1), 5.0, "the server listed")
        assert (server.name, server.address, server.port) == ("direct", "127.0.0.2", 7777)


def test_find_servers_lists_a_game_server_and_its_players(no_leaks: None) -> None:
    probe = ServerBrowser(port=0, bind=LOOPBACK_BROADCAST).start()
    port = probe.port
    probe.close()  # a free port to listen on, found the same way find_servers binds
    game = GameServer(Servo("127.0.0.2", 0, app="demo-1", max_clients=4)).start()
    bot = None
    try:
        with Announcer(game, name="Game", address=LOOPBACK_BROADCAST, discovery_port=port, interval=0.1):
            bot = GameBot("127.0.0.2", game.port, app="demo-1").start()
            wait_until(lambda: len(game.players) == 1, 5.0, "the bot seated")

            def seen() -> list[ServerInfo] | None:
                servers = find_servers(0.3, port=port, bind=LOOPBACK_BROADCAST)
                return servers if servers and servers[0].players == 1 else None

            [info] = wait_until(seen, 10.0, "the game server listed with its player")
            assert (info.name, info.address, info.port, info.app, info.rooms, info.max_players) == (
                "Game", "127.0.0.2", game.port, "demo-1", 1, 4
            )  # fmt: skip
    finally:
        if bot is not None:
            bot.stop()
        game.close()


def test_junk_oversized_and_a_flood_over_sockets_are_counted(browser: ServerBrowser) -> None:
    target = (LOOPBACK_BROADCAST, browser.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        attacker.bind(("127.0.0.9", 0))
        attacker.sendto(b"junk", target)
        attacker.sendto(MAGIC + b"{" + b"x" * 2000, target)
        for port in range(1, 121):
            attacker.sendto(_announce(port, id="ee"), target)
        with Announcer(_status(7777), name="honest", address=LOOPBACK_BROADCAST,
                       discovery_port=browser.port, interval=0.1, bind="127.0.0.4"):  # fmt: skip

            def honest_listed() -> bool:
                return any(s.name == "honest" for s in browser.poll())

            wait_until(honest_listed, 5.0, "the honest server listed beside the flood")
            wait_until(lambda: browser.poll() and browser.stats.received >= 122, 5.0, "the flood read")
    stats = browser.stats
    assert (stats.junk, stats.oversized) == (1, 1)
    assert stats.rate_limited >= 120 - 40 - 2  # the burst of 40 (minus the two bad ones) got through
    assert sum(1 for s in browser.servers if s.address == "127.0.0.9") <= 32  # max_per_address


def test_a_raising_status_is_skipped_and_the_announcer_carries_on(browser: ServerBrowser) -> None:
    calls = {"n": 0}

    def flaky() -> ServerStatus:
        calls["n"] += 1
        if calls["n"] % 2:
            raise RuntimeError("boom")
        return ServerStatus(7777)

    with Announcer(flaky, name="flaky", address=LOOPBACK_BROADCAST, discovery_port=browser.port,
                   interval=0.05, bind="127.0.0.1") as announcer:  # fmt: skip
        wait_until(_listed(browser, 1), 5.0, "the flaky server listed")
        wait_until(lambda: announcer.sent >= 3, 5.0, "three announcements")


def test_browser_and_announcer_arguments_and_lifecycle(no_leaks: None) -> None:
    for bad in ({"port": -1}, {"port": 70000}, {"bind": "nowhere"}, {"bind": 127}, {"clock": 3}):
        with pytest.raises(InvalidArgument):
            ServerBrowser(**bad)
    for kwargs in ({"interval": 0}, {"name": "n" * 65}, {"address": []}, {"address": "x.y"},
                   {"discovery_port": 0}, {"rooms": 3}):  # fmt: skip
        with pytest.raises(InvalidArgument):
            Announcer(_status(7777), **kwargs)
    with pytest.raises(TypeError):
        Announcer(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        find_servers(-1.0)
    browser = ServerBrowser(port=0, bind="127.0.0.1")
    with pytest.raises(UsageError):
        browser.poll()
    with pytest.raises(UsageError):
        _ = browser.port
    with pytest.raises(UsageError):
        browser.fileno()
    browser.start()
    assert browser.fileno() >= 0
    with pytest.raises(UsageError):
        browser.start()
    browser.close()
    browser.close()
    with pytest.raises(ClosedError):
        browser.poll()
    with pytest.raises(ClosedError):
        browser.start()
    announcer = Announcer(_status(7777), address="127.0.0.1", discovery_port=9, bind="127.0.0.1")
    announcer.close()
    with pytest.raises(UsageError):
        announcer.start()


def test_binding_a_taken_port_or_an_address_not_ours_is_a_sprocket_error(no_leaks: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:  # no SO_REUSEADDR: the port is taken
        holder.bind(("127.0.0.1", 0))
        with pytest.raises(SprocketError, match="cannot listen"):
            ServerBrowser(port=holder.getsockname()[1], bind="127.0.0.1").start()
    with pytest.raises(SprocketError, match="cannot announce"):
        Announcer(_status(7777), address="127.0.0.1", bind="0.0.0.1").start()  # fails at bind: nothing sent


# -- the commands: sprocket serve --announce, ./play --server / --host ---------------------------------------


def _run_until_listed(command: list[str], browser: ServerBrowser, host: str) -> ServerInfo:
    """Start ``command``, wait for it to be listed from ``host``, Ctrl-C it, and wait for its goodbye."""
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:

        def listed() -> list[ServerInfo]:
            return [s for s in browser.poll() if s.address == host]

        [info] = wait_until(listed, 30.0, f"{command[2]} listed")
        # Ctrl-C once it has finished starting (it announces before it prints this): a Ctrl-C in the middle
        # of starting the announcer stops it cleanly too, but may come before it can say goodbye.
        assert process.stdout is not None
        while "Ctrl-C to stop" not in process.stdout.readline():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
        wait_until(lambda: not listed(), 5.0, "the stopped server dropped")  # its goodbye: at once
        assert browser.stats.goodbyes == 1
        return info
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_announce_lists_the_server_and_says_goodbye_on_ctrl_c(browser: ServerBrowser) -> None:
    command = ["-m", "sprocket.game.serve", "demos.hockey:HockeyServer", "--host", "127.0.0.2", "--port", "0",
               "--announce", "--broadcast", LOOPBACK_BROADCAST, "--discovery-port", str(browser.port),
               "--server-name", "Rink"]  # fmt: skip
    info = _run_until_listed(command, browser, "127.0.0.2")
    assert (info.name, info.app, info.players, info.rooms) == ("Rink", "sprocket-hockey-1", 0, 1)


def test_play_server_announces_by_default(browser: ServerBrowser) -> None:
    command = ["-m", "demos.hockey", "--server", "--port", "0", "--broadcast", LOOPBACK_BROADCAST,
               "--discovery-port", str(browser.port)]  # fmt: skip
    info = _run_until_listed(command, browser, "127.0.0.1")
    assert info.name == socket.gethostname()[:64] and info.app == "sprocket-hockey-1"


def test_announce_options_of_serve_and_play() -> None:
    from demos.hockey.__main__ import parse

    assert parse(["--host"]).announce and parse(["--server"]).announce
    assert not parse(["--host", "--no-announce"]).announce
    args = parse(["--server", "--broadcast", "127.255.255.255", "--discovery-port", "9999"])
    assert (args.broadcast, args.discovery_port) == ("127.255.255.255", 9999)
    for bad in (["--broadcast", "everyone"], ["--broadcast", "10.1"], ["--discovery-port", "70000"]):
        result = subprocess.run([sys.executable, "-m", "sprocket.game.serve", "x:Y", *bad], cwd=ROOT,
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert result.returncode == 2 and "usage:" in result.stderr, result.stderr
