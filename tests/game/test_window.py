"""NetworkedGame's window: no display is an error (not an invisible game), no sound card is quiet, and a
window shown at another size than the game draws (the session's side-by-side windows)."""

from __future__ import annotations

import re
import socket
import sys
from typing import Any

import pygame
import pytest

from sprocket.errors import InvalidArgument, SprocketError
from sprocket.game.app import NetworkedGame, NoDisplay, check_display, sound_available

pytestmark = pytest.mark.timeout(60)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Clicks(NetworkedGame):
    size = (960, 640)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, tuple[int, int]]] = []

    def on_event(self, event: pygame.event.Event) -> None:
        if event.type in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEMOTION):
            self.seen.append((event.type, event.pos))

    def draw(self, screen: pygame.Surface) -> None:
        screen.fill((0, 0, 0))
        screen.fill((255, 0, 0), (600, 400, 40, 40))  # a red square in game coordinates


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is how Linux finds a display")
def test_no_display_raises_nodisplay_before_sdl_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NoDisplay, match="no display found: set DISPLAY") as caught:
        check_display()
    assert isinstance(caught.value, SprocketError)
    with pytest.raises(NoDisplay):
        NetworkedGame("127.0.0.1", closed_port())  # the window is never opened on nothing


def test_an_explicit_video_driver_is_always_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.delenv("DISPLAY", raising=False)
    check_display()  # tests and CI run headless on purpose


def test_an_explicit_audio_driver_counts_as_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    assert sound_available()


def test_a_scaled_window_shows_the_game_scaled_and_gives_mouse_positions_in_game_coordinates() -> None:
    game = Clicks("127.0.0.1", closed_port(), window_size=(480, 320))
    try:
        assert game.screen.get_size() == (960, 640)  # the game draws at its own size
        window = pygame.display.get_surface()
        assert window.get_size() == (480, 320)
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(310, 210), button=1))
        game.step(dt=1 / 60)
        assert (pygame.MOUSEBUTTONDOWN, (620, 420)) in game.seen
        assert window.get_at((310, 210))[:3] == (255, 0, 0)  # the red square, halved
        assert window.get_at((250, 190))[:3] == (0, 0, 0)
    finally:
        game.close()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"window_size": (0, 100)}, "window_size must be two ints > 0"),
        ({"window_size": "big"}, "window_size must be (width, height)"),
        ({"window_pos": (1.5, 2)}, "window_pos must be two ints"),
    ],
)
def test_bad_window_arguments_are_invalid_arguments(options: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(says)):
        NetworkedGame("127.0.0.1", closed_port(), **options)
