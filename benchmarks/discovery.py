"""LAN discovery (issue 13): how soon a browser lists a server that starts, on loopback only.

One worker process holds a :class:`~sprocket.game.ServerBrowser` listening on ``127.255.255.255`` (a free
port) and, each round, starts ``servers`` real :class:`~sprocket.game.GameServer` s on 127.0.0.2,
127.0.0.3, ... (each a Servo on its own address and a free port, and an :class:`~sprocket.game.Announcer`
sending from that address to the loopback broadcast), then reads the browser's socket (``select`` on
:meth:`ServerBrowser.fileno`, no polling interval) until every one is listed.  Figures, over
``rounds`` rounds:

* server start -> listed: from just before the GameServer is made to the browser listing it, p50 and
  max over every server of every round;
* a round's servers all listed: from the first start to the last one listed;
* browser opened -> every running server listed: a new browser on the same port, opened at a random
  moment of the announcement cycle while the servers run: how long a "Find a game" menu is empty on
  opening.  The browser's query (sent as it opens) is answered at once by every announcer; the baseline
  in the same run, a browser sending no query (``query=()``), waits for the next announcements (bounded
  by the announcement interval, 0.5 s);
* server closed -> dropped from the list (its goodbye), p50.

Discovery traffic goes only to 127.255.255.255 (never 255.255.255.255 nor 224.x).  Sprocket only.
"""

from __future__ import annotations

import functools
import random
import select
import time
from collections.abc import Callable

from sprocket import Servo
from sprocket.game import Announcer, GameServer, ServerBrowser

from .common import Params, Worker, emit, percentile, worker_main, workers

MODULE = "discovery"
IMPLS = ("sprocket",)
BROADCAST = "127.255.255.255"


def defaults(quick: bool) -> Params:
    return {
        "servers": 3 if quick else 5,
        "rounds": 5 if quick else 20,
        "interval": 0.5,
        "seed": 1,
        "timeout": 120.0,
    }


def _until(browser: ServerBrowser, done: Callable[[], bool], deadline: float) -> float:
    """Read the browser until ``done()`` is true; the time it became true (monotonic)."""
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("servers not listed in time")
        select.select(browser.filenos(), [], [], left)
        browser.poll()
    return time.monotonic()


def _all_seen(browser: ServerBrowser, hosts: list[str], seen: dict[str, float]) -> bool:
    """Note when each host is first listed; True once all are."""
    now = time.monotonic()
    for server in browser.servers:
        seen.setdefault(server.address, now)
    return all(h in seen for h in hosts)


def rounds(p: Params) -> None:
    n, interval = int(p["servers"]), float(p["interval"])
    hosts = [f"127.0.0.{2 + i}" for i in range(n)]
    found_ms: list[float] = []
    round_ms: list[float] = []
    open_ms: list[float] = []
    open_noquery_ms: list[float] = []
    bye_ms: list[float] = []
    deadline = time.monotonic() + float(p["timeout"])
    phase = random.Random(p["seed"])
    with ServerBrowser(port=0, bind=BROADCAST) as browser:
        for _ in range(int(p["rounds"])):
            started: dict[str, float] = {}
            running: list[tuple[GameServer, Announcer]] = []
            try:
                for host in hosts:
                    started[host] = time.monotonic()
                    game = GameServer(Servo(host, 0)).start()
                    announcer = Announcer(game, name=f"bench {host}", address=BROADCAST,
                                          discovery_port=browser.port, interval=interval).start()  # fmt: skip
                    running.append((game, announcer))
                seen: dict[str, float] = {}
                _until(browser, functools.partial(_all_seen, browser, hosts, seen), deadline)
                found_ms += [(seen[h] - started[h]) * 1000 for h in hosts]
                round_ms.append((max(seen.values()) - min(started.values())) * 1000)
                # A menu opens at any moment of the announcers' cycle: a seeded random phase of it.
                time.sleep(phase.uniform(0.0, interval))
                for query, into in ((None, open_ms), ((), open_noquery_ms)):
                    opened = time.monotonic()
                    with ServerBrowser(port=browser.port, bind=BROADCAST, query=query) as fresh:
                        listed = _until(fresh, lambda fresh=fresh: len(fresh.servers) >= n, deadline)
                    into.append((listed - opened) * 1000)
                    time.sleep(phase.uniform(0.0, interval))
                closing = time.monotonic()
                for _game, announcer in running:
                    announcer.close()  # its goodbye
                gone = _until(browser, lambda: not browser.servers, deadline)
                bye_ms.append((gone - closing) * 1000)
            finally:
                for game, announcer in running:
                    announcer.close()
                    game.close()
    emit(
        "result",
        found_p50_ms=percentile(found_ms, 50),
        found_max_ms=max(found_ms),
        round_p50_ms=percentile(round_ms, 50),
        open_p50_ms=percentile(open_ms, 50),
        open_max_ms=max(open_ms),
        open_noquery_p50_ms=percentile(open_noquery_ms, 50),
        open_noquery_max_ms=max(open_noquery_ms),
        open_ratio=percentile(open_ms, 50) / percentile(open_noquery_ms, 50),
        goodbye_p50_ms=percentile(bye_ms, 50),
        junk=browser.stats.junk + browser.stats.oversized + browser.stats.rate_limited,
    )


ROLES = {("rounds", "*"): rounds}


def run_once(impl: str, params: Params) -> dict[str, float]:
    """One measurement in a fresh process (runner side)."""
    with workers() as started:
        worker = Worker(MODULE, "rounds", impl, params)
        started.append(worker)
        res = worker.expect("result", params["timeout"] + 30)
        worker.finish(20)
    return {k: float(v) for k, v in res.items() if k != "kind" and isinstance(v, (int, float))}


if __name__ == "__main__":
    worker_main(ROLES)
