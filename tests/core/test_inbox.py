"""The inbox in memory: order, back-pressure and per-client shares, without threads or sockets."""

from __future__ import annotations

from typing import Any

import pytest

from sprocket.events import Joined, Left
from sprocket.inbox import Backlog, Inbox

pytestmark = pytest.mark.timeout(30)


class Reader:
    """Stands in for the I/O thread's reading switches."""

    def __init__(self, inbox: Inbox) -> None:
        self.all_on = True
        self.peers: dict[str, bool] = {}
        self.wakes = 0
        inbox.set_reading = self.set_all
        inbox.set_peer_reading = self.set_peer
        inbox.wake = self.wake

    def set_all(self, on: bool) -> None:
        self.all_on = on

    def set_peer(self, owner: Any, on: bool) -> None:
        self.peers[owner] = on

    def wake(self) -> None:
        self.wakes += 1


def receive(inbox: Inbox, sender: str, backlog: Backlog | None, costs: list[int]) -> None:
    """One read from ``sender`` that brought packets of these costs."""
    sink = inbox.sink(sender)
    before = inbox.bytes_in
    for n, cost in enumerate(costs):
        sink({"n": n}, 1, cost)
    inbox.appended(backlog, inbox.bytes_in - before)


def take(inbox: Inbox) -> list[Any]:
    return inbox.take_packets(lambda e: None, lambda e: None)


def test_a_flooding_client_stops_being_read_and_resumes_once_collected() -> None:
    inbox = Inbox(max_bytes=1000)
    reader = Reader(inbox)
    flood, calm = Backlog(100, "flood"), Backlog(100, "calm")
    receive(inbox, "flood", flood, [60, 60])
    assert reader.peers == {"flood": False} and reader.all_on  # only the flooder stops
    receive(inbox, "calm", calm, [10])
    assert "calm" not in reader.peers
    assert len(take(inbox)) == 3 and reader.wakes == 1  # collecting wakes the I/O thread...
    inbox.resume_where_room()  # ...which resumes the flooder
    assert reader.peers == {"flood": True} and not inbox.paused


def test_the_whole_inbox_pauses_past_max_bytes() -> None:
    inbox = Inbox(max_bytes=100)
    reader = Reader(inbox)
    receive(inbox, "a", None, [60, 60])
    assert not reader.all_on and inbox.paused
    take(inbox)
    inbox.resume_where_room()
    assert reader.all_on and not inbox.paused


def test_a_limit_of_one_byte_still_resumes() -> None:
    # Review finding: "less than half of 1" is never true, so reading stayed paused for good.
    inbox = Inbox(max_bytes=1)
    reader = Reader(inbox)
    backlog = Backlog(1, "a")
    receive(inbox, "a", backlog, [5])
    assert not reader.all_on and reader.peers == {"a": False}
    take(inbox)
    inbox.resume_where_room()
    assert reader.all_on and reader.peers == {"a": True}


def test_the_ledger_stays_short_when_nobody_is_paused() -> None:
    # Review finding: entries were only settled while someone was paused, so honest traffic grew it forever.
    inbox = Inbox(max_bytes=1 << 30)
    Reader(inbox)
    backlogs = [Backlog(1 << 20, f"c{i}") for i in range(50)]
    for _ in range(200):
        for i, backlog in enumerate(backlogs):
            receive(inbox, f"c{i}", backlog, [10])
        take(inbox)
    assert len(inbox._ledger) <= len(backlogs)
    assert all(b.held <= 10 for b in backlogs)


def test_a_leave_waits_for_the_packets_before_it() -> None:
    inbox = Inbox(max_bytes=1 << 20)
    Reader(inbox)
    inbox.put_event(Joined("a"))  # type: ignore[arg-type]
    receive(inbox, "a", None, [1, 1])
    inbox.put_event(Left("a", "bye", "closed"))  # type: ignore[arg-type]
    seen: list[Any] = []
    first = inbox.take_packets(seen.append, lambda e: None)
    assert [p["n"] for p in first] == [0, 1] and [type(e) for e in seen] == [Joined]
    assert inbox.take_packets(seen.append, lambda e: None) == [] and [type(e) for e in seen] == [Joined, Left]
