"""LAN discovery's query: a browser that starts asks, announcers answer at once (to it only, rate-limited,
never more bytes than asked).  Real sockets on loopback only (127.255.255.255 or 127.0.0.x; never
255.255.255.255, never 224.x); the limits in memory with an injected clock."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprocket.game import Announcer, ServerBrowser, ServerInfo, ServerStatus, find_servers
from sprocket.game.discovery import (
    ANSWER_BURST,
    ANSWER_TOTAL_BURST,
    MAGIC,
    MAX_DATAGRAM,
    _answerable,
    _Limiter,
    encode_query,
    is_query,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)
LOOPBACK_BROADCAST = "127.255.255.255"
NEVER = 3600.0  # an announcement interval no test waits for: only the first (at start) and answers count


def _status(port: int) -> Callable[[], ServerStatus]:
    return lambda: ServerStatus(port, "hockey", 1, 2, 1)


def _free_pair() -> int:
    """A UDP port P with P + 1 free too (the discovery port and its query port), on this machine."""
    for _ in range(50):
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            try:
                b.bind(("", port + 1))
            except OSError:
                continue
            return int(port)
    raise AssertionError("no two free UDP ports in a row")


def _listed(browser: ServerBrowser, count: int) -> Callable[[], list[ServerInfo] | None]:
    def check() -> list[ServerInfo] | None:
        servers = browser.poll()
        return servers if len(servers) == count else None

    return check


def _announcers(port: int, hosts: list[str]) -> list[Announcer]:
    return [
        Announcer(_status(7000 + i), name=f"Server {host}", address=LOOPBACK_BROADCAST, discovery_port=port,
                  interval=NEVER, bind=host).start()
        for i, host in enumerate(hosts)
    ]  # fmt: skip


# -- the datagram and the limits, in memory -----------------------------------------------------------------


def test_the_query_is_padded_to_the_largest_datagram_and_recognised() -> None:
    query = encode_query()
    assert len(query) == MAX_DATAGRAM and query.startswith(MAGIC) and is_query(query)
    fields = json.loads(query[len(MAGIC) :])
    assert fields["kind"] == "query" and fields["v"] == 1 and set(fields) == {"v", "kind", "pad"}
    short = MAGIC + b'{"kind":"query","pad":"","v":1}'
    assert is_query(short)  # valid, but an announcer answers it only if no shorter than the answer
    for bad in (
        b"",
        MAGIC,
        query + b" ",  # over MAX_DATAGRAM
        MAGIC + b'{"kind":"query","pad":"","v":2}',
        MAGIC + b'{"kind":"query","pad":1,"v":1}',
        MAGIC + b'{"kind":"query","pad":"","v":true}',
        MAGIC + b'{"kind":"announce","pad":"","v":1}',
        MAGIC + b'{"kind":"query","pad":"","v":1,"x":0}',
        MAGIC + b'["query"]',
        MAGIC + b'{"kind":"query","pad":"\xff","v":1}',
        b"XXXX" + query[4:],
    ):
        assert not is_query(bad), bad


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=MAX_DATAGRAM + 8))
def test_any_bytes_are_a_query_or_not_without_raising(data: bytes) -> None:
    assert is_query(data) in (True, False)


def test_answers_are_limited_per_source_and_in_all() -> None:
    limiter = _Limiter(5.0, ANSWER_BURST, 50.0, ANSWER_TOTAL_BURST, max_sources=1024)
    assert sum(limiter.allow("127.0.0.9", 0.0) for _ in range(30)) == ANSWER_BURST
    assert limiter.allow("127.0.0.9", 0.1) is False  # half a token back after 0.1 s
    assert limiter.allow("127.0.0.9", 0.2) is True  # one whole token after 0.2 s (5 a second)
    # Many sources: each has its burst, but all together no more than the total's.
    granted = sum(limiter.allow(f"10.0.{i // 250}.{i % 250}", 0.2) for i in range(1000))
    assert granted == ANSWER_TOTAL_BURST - 1  # full again by 0.2 s (50 a second), less the answer at 0.2
    small = _Limiter(5.0, 10, 50.0, 100, max_sources=2)
    for address in ("a", "b", "c"):
        small.allow(address, 0.0)
    assert list(small._buckets) == ["b", "c"]  # bounded: the least recently heard is forgotten


def test_no_answer_to_a_source_that_would_make_it_a_broadcast() -> None:
    broadcasts = [LOOPBACK_BROADCAST]
    assert _answerable("127.0.0.1", 40000, broadcasts)
    for address, port in (
        ("127.0.0.1", 0),
        (LOOPBACK_BROADCAST, 40000),
        ("255.255.255.255", 40000),
        ("0.0.0.0", 40000),
        ("224.0.0.251", 5353),
        ("239.1.2.3", 40000),
        ("not-an-address", 1),
    ):
        assert not _answerable(address, port, broadcasts), address


# -- over sockets, on loopback ------------------------------------------------------------------------------


def test_a_browser_opened_later_lists_three_servers_from_their_answers(no_leaks: None) -> None:
    port = _free_pair()
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    announcers = _announcers(port, hosts)  # they announced once, at start, to nobody
    try:
        with ServerBrowser(port=port, bind=LOOPBACK_BROADCAST) as browser:
            found = wait_until(_listed(browser, 3), 5.0, "three servers listed from their answers")
            assert [(s.address, s.port) for s in found] == [(h, 7000 + i) for i, h in enumerate(hosts)]
            assert browser.queries_sent == 1 and browser.stats.accepted == 3
            # (an announcer counts its answer just after sending it: wait for the count, not the answer)
            wait_until(lambda: [a.answered for a in announcers] == [1, 1, 1], 5.0, "three answers counted")
            assert [a.sent for a in announcers] == [1, 1, 1]
            # refresh() asks again: each answers once more.
            browser.refresh()
            wait_until(lambda: browser.poll() and browser.stats.accepted == 6, 5.0, "three more answers")
    finally:
        for a in announcers:
            a.close()


def test_a_query_sent_to_one_server_is_answered_by_it_alone(no_leaks: None) -> None:
    port = _free_pair()
    announcers = _announcers(port, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    try:
        with ServerBrowser(port=port, bind=LOOPBACK_BROADCAST, query="127.0.0.3") as browser:
            [server] = wait_until(_listed(browser, 1), 5.0, "the one server asked")
            assert server.address == "127.0.0.3"
            wait_until(lambda: [a.answered for a in announcers] == [0, 1, 0], 5.0, "its answer counted")
        # find_servers queries too: the list is complete long before its second of listening ends.
        servers = find_servers(0.3, port=port, bind=LOOPBACK_BROADCAST)
        assert [s.address for s in servers] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    finally:
        for a in announcers:
            a.close()


def test_a_browser_with_no_query_waits_for_announcements(no_leaks: None) -> None:
    port = _free_pair()
    [announcer] = _announcers(port, ["127.0.0.2"])
    try:
        with ServerBrowser(port=port, bind=LOOPBACK_BROADCAST, query=()) as browser:
            assert browser.queries_sent == 0 and browser.filenos() == [browser.fileno()]
            browser.refresh()  # nothing to send to
            assert browser.queries_sent == 0 and browser.wait(0.2) == [] and announcer.answered == 0
    finally:
        announcer.close()


def test_short_junk_and_flooding_queries_are_not_answered(no_leaks: None) -> None:
    port = _free_pair()
    [announcer] = _announcers(port, ["127.0.0.2"])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as asker:
            asker.bind(("127.0.0.9", 0))
            target = ("127.0.0.2", port + 1)
            asker.sendto(MAGIC + b'{"kind":"query","pad":"","v":1}', target)  # shorter than the answer
            asker.sendto(b"junk", target)
            asker.sendto(MAGIC + b'{"kind":"announce"}' + b" " * 600, target)
            wait_until(lambda: announcer.unanswered == 3, 5.0, "three datagrams refused")
            assert announcer.answered == 0
            for _ in range(30):
                asker.sendto(encode_query(), target)
            wait_until(lambda: announcer.answered + announcer.unanswered == 33, 5.0, "thirty queries read")
            assert ANSWER_BURST <= announcer.answered < 30  # the burst, and what trickled back since
            answers = []
            while select.select([asker], [], [], 0)[0]:
                answers.append(asker.recv(MAX_DATAGRAM + 1))
            assert len(answers) == announcer.answered
            assert all(len(a) <= len(encode_query()) and a.startswith(MAGIC) for a in answers)
    finally:
        announcer.close()


def test_an_announcer_not_answering_only_announces(no_leaks: None) -> None:
    port = _free_pair()
    announcer = Announcer(_status(7000), address=LOOPBACK_BROADCAST, discovery_port=port, interval=NEVER,
                          bind="127.0.0.2", answer=False).start()  # fmt: skip
    try:
        with ServerBrowser(port=port, bind=LOOPBACK_BROADCAST) as browser:
            assert browser.wait(0.2) == [] and announcer.answered == 0
    finally:
        announcer.close()
    with pytest.raises(TypeError):
        Announcer(_status(7000), answer="yes")  # type: ignore[arg-type]


def test_the_protocol_states_the_query_limits() -> None:
    from pathlib import Path

    from sprocket.game import discovery

    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    section = doc[doc.index("**The query**") : doc.index("## Worked examples")]
    assert f"{discovery.ANSWER_RATE:g} answers a second (bursts of {discovery.ANSWER_BURST})" in section
    assert f"{discovery.ANSWER_TOTAL_RATE:g} a second (bursts of {discovery.ANSWER_TOTAL_BURST})" in section
    assert f"exactly {MAX_DATAGRAM} bytes" in section and "discovery port plus one" in section
