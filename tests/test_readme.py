"""The README's examples run as pasted (ports swapped for free ones)."""

from __future__ import annotations

import doctest
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(90)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def block(starting: str) -> str:
    (found,) = [b for b in BLOCKS if b.startswith(starting)]
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_ten_line_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block("from sprocket import Servo, Sprocket"), "README", "exec"), {})
    out = capsys.readouterr().out
    assert re.fullmatch(r"3 Player 1 <Client 1 127\.0\.0\.1:\d+>\n", out), out


def test_the_packet_session_is_a_passing_doctest() -> None:
    text = block(">>> from sprocket import Packet")
    test = doctest.DocTestParser().get_doctest(text, {}, "README-packets", "README.md", 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize().failed == 0 and runner.summarize().attempted >= 4


def test_register_example_runs() -> None:
    namespace: dict[str, object] = {}
    exec(compile(block("from dataclasses import dataclass"), "README", "exec"), namespace)
    from sprocket.codec import MsgpackCodec

    codec = MsgpackCodec()
    shot = namespace["Shot"](1.0, 2.0)  # type: ignore[operator]
    assert codec.decode(codec.encode({"s": shot})) == {"s": shot}


CLIENT_CHECK = """
import time

deadline = time.monotonic() + 30
while not (game.connected and game.my_entity is not None and game.net.predictor is not None
           and game.net.predictor.acked > 0):
    assert time.monotonic() < deadline, f"not in the game after 30 s: {game.sprocket.error}"
    game.step()
print(f"in the game as client {game.net.id}, controlling entity {game.me}, "
      f"inputs applied: {game.net.predictor.acked}")
game.run(frames=10)
game.close()
"""


def test_the_game_layer_example_runs(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "shared.py").write_text(block("# shared.py"))
    (tmp_path / "server.py").write_text(
        block("# server.py").replace("port=7777", f"host='127.0.0.1', port={port}")
    )
    client = block("# client.py").replace("7777", str(port))
    start_line = f'MyGame("127.0.0.1", {port}).run()'
    assert start_line in client
    # Keep the window, step it until it is really in the game, then run() it briefly as the README does.
    client = client.replace(start_line, f'game = MyGame("127.0.0.1", {port})') + CLIENT_CHECK
    (tmp_path / "client.py").write_text(client)
    server = subprocess.Popen([sys.executable, "server.py"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the README's server never listened"
                time.sleep(0.05)  # polling a port with a deadline
        result = subprocess.run(
            [sys.executable, "client.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        # It connected, the server gave it an entity, and the server applied its inputs (packets both ways).
        assert re.fullmatch(r"in the game as client 1, controlling entity \d+, inputs applied: [1-9]\d*\n",
                            result.stdout), result.stdout + result.stderr  # fmt: skip
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
    finally:
        server.terminate()
        server.wait(10)


def test_the_testing_your_game_example_passes_as_pasted(tmp_path: Path) -> None:
    # A user's own directory: the fixtures come from the installed sprocket's pytest11 entry point, and
    # SDL's dummy drivers from the networked_game fixture (the variables are removed here on purpose).
    (tmp_path / "test_hockey.py").write_text(block("# test_hockey.py"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "PYTEST_")) and k != "DISPLAY"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hockey.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=80,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^3 passed\b", result.stdout, re.M), result.stdout


def test_the_network_drops_example_resumes_with_its_callbacks(capsys: pytest.CaptureFixture[str]) -> None:
    from sprocket import Servo, Sprocket
    from sprocket.testing import LagProxy, wait_until

    code = block("servo = Servo(grace=30,")
    # The example's default ports, swapped for a free one behind a proxy that can cut the link.
    server_part, client_part = code.replace("Servo(grace=30,", 'Servo("127.0.0.1", 0, grace=30,', 1).split(
        "s = Sprocket(", 1
    )
    namespace: dict[str, Any] = {"Servo": Servo, "Sprocket": Sprocket}
    exec(compile(server_part, "README", "exec"), namespace)
    servo = namespace["servo"]
    with LagProxy("127.0.0.1", servo.port) as proxy:
        client_part = "s = Sprocket(" + client_part.replace('"127.0.0.1"', f'"127.0.0.1", {proxy.port}', 1)
        exec(compile(client_part, "README", "exec"), namespace)
        s = namespace["s"]
        got: list[Any] = []
        try:
            s.wait_connected()
            wait_until(lambda: (servo.get(), len(servo.clients) == 1)[1], 10, "the client joined")
            client = servo.clients[0]
            proxy.disconnect_all()
            client.send(note="sent while it was away")
            wait_until(lambda: (servo.get(), got.extend(s.get()), got)[2], 15, "the packet sent while away")
            assert [p.note for p in got] == ["sent while it was away"]
            assert servo.clients == [client] and client.connected and s.connected
        finally:
            s.close()
            servo.close()
    said = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    server_said = [line for line in said if line.startswith("None")]  # the example's client has no name
    client_said = [line for line in said if not line.startswith("None")]
    assert server_said == ["None dropped", "None is back"], said
    assert client_said == ["reconnecting", "back, nothing lost"], said
