"""Tests for the generated Sprocket Hockey assets (assets/make_assets.py and its output)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import array
import importlib.util
import pathlib
import sys
import types
import wave

import pygame
import pytest

ASSETS = pathlib.Path(__file__).resolve().parents[2] / "assets"

# name -> (size, has transparency)
IMAGES: dict[str, tuple[tuple[int, int] | None, bool]] = {
    "rink.png": ((960, 576), False),
    "mallet_blue.png": ((72, 72), True),
    "mallet_red.png": ((72, 72), True),
    "puck.png": ((44, 44), True),
    "spark.png": ((16, 16), True),
    "icon.png": ((32, 32), True),
    "title.png": (None, True),
}
SOUNDS = ("hit.wav", "wall.wav", "goal.wav", "win.wav", "beep.wav", "join.wav")
FULL_SCALE = 32767


def _load_module() -> types.ModuleType:
    """Import assets/make_assets.py (assets/ is not a package)."""
    spec = importlib.util.spec_from_file_location("sprocket_make_assets", ASSETS / "make_assets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[pathlib.Path]]:
    """Regenerate everything into a fresh temporary directory once for this module."""
    out = tmp_path_factory.mktemp("assets")
    paths = _load_module().make_all(out)
    return out, paths


def _distinct_colours(surf: pygame.Surface, step: int = 3) -> set[tuple[int, ...]]:
    w, h = surf.get_size()
    return {tuple(surf.get_at((x, y))) for y in range(0, h, step) for x in range(0, w, step)}


def _check_image(path: pathlib.Path, size: tuple[int, int] | None, transparent: bool) -> None:
    assert path.is_file(), path
    surf = pygame.image.load(str(path))
    if size is not None:
        assert surf.get_size() == size, path
    else:
        assert surf.get_width() > 64 and surf.get_height() > 32, path
    colours = _distinct_colours(surf, 1 if surf.get_width() <= 72 else 3)
    assert len(colours) >= 20, f"{path.name} looks blank ({len(colours)} colours)"
    alphas = {c[3] for c in colours}
    assert max(alphas) == 255, f"{path.name} has no opaque pixels"
    if transparent:
        assert surf.get_flags() & pygame.SRCALPHA, f"{path.name} should have an alpha channel"
        assert 0 in alphas, f"{path.name} should have transparent pixels"
        w, h = surf.get_size()
        corners = [surf.get_at(p)[3] for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
        assert max(corners) == 0, f"{path.name} corners should be transparent"
    else:
        assert alphas == {255}, f"{path.name} should be opaque"


def _check_sound(path: pathlib.Path) -> None:
    assert path.is_file(), path
    with wave.open(str(path), "rb") as wf:
        assert wf.getframerate() == 22050
        assert wf.getnchannels() == 1
        assert wf.getsampwidth() == 2
        n = wf.getnframes()
        assert n > 0
        data = array.array("h", wf.readframes(n))
    if sys.byteorder == "big":
        data.byteswap()
    peak = max(abs(v) for v in data)
    assert 0 < peak < FULL_SCALE, f"{path.name} peak {peak} (silent or clipping)"
    assert peak <= 0.95 * FULL_SCALE, f"{path.name} peak {peak} too close to full scale"
    # Short fades: the first and last samples are (near) silent, so no clicks.
    assert abs(data[0]) < 0.02 * FULL_SCALE and abs(data[-1]) < 0.02 * FULL_SCALE, path.name
    assert n / 22050 <= 2.0, f"{path.name} is unexpectedly long"


def test_make_all_writes_every_file(generated: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    """make_all writes exactly the expected images and sounds and returns their paths."""
    out, paths = generated
    expected = {out / "images" / n for n in IMAGES} | {out / "sounds" / n for n in SOUNDS}
    assert set(paths) == expected
    assert len(paths) == len(expected)
    for p in expected:
        assert p.is_file() and p.stat().st_size > 0, p


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_generated_image(generated: tuple[pathlib.Path, list[pathlib.Path]], name: str) -> None:
    """Each freshly generated PNG loads, has the right size and is not blank."""
    out, _ = generated
    size, transparent = IMAGES[name]
    _check_image(out / "images" / name, size, transparent)


@pytest.mark.parametrize("name", SOUNDS)
def test_generated_sound(generated: tuple[pathlib.Path, list[pathlib.Path]], name: str) -> None:
    """Each freshly generated WAV is 22050 Hz mono 16-bit, non-empty and unclipped."""
    out, _ = generated
    _check_sound(out / "sounds" / name)


def test_sound_lengths(generated: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    """Effects are short; the goal and win jingles have their intended lengths."""
    out, _ = generated

    def seconds(name: str) -> float:
        with wave.open(str(out / "sounds" / name), "rb") as wf:
            return wf.getnframes() / wf.getframerate()

    assert seconds("hit.wav") < 0.3
    assert seconds("wall.wav") < 0.3
    assert 0.6 <= seconds("goal.wav") <= 1.0
    assert 1.2 <= seconds("win.wav") <= 1.8


def test_generation_is_deterministic(
    generated: tuple[pathlib.Path, list[pathlib.Path]], tmp_path: pathlib.Path
) -> None:
    """Two runs produce byte-identical files (fixed seeds, generic smoothscale)."""
    out, paths = generated
    again = _load_module().make_all(tmp_path)
    for first, second in zip(paths, again, strict=True):
        assert first.relative_to(out) == second.relative_to(tmp_path)
        assert first.read_bytes() == second.read_bytes(), first.name


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_committed_image(name: str) -> None:
    """The PNGs committed in assets/images exist and pass the same checks."""
    size, transparent = IMAGES[name]
    _check_image(ASSETS / "images" / name, size, transparent)


@pytest.mark.parametrize("name", SOUNDS)
def test_committed_sound(name: str) -> None:
    """The WAVs committed in assets/sounds exist and pass the same checks."""
    _check_sound(ASSETS / "sounds" / name)


def test_committed_docs_and_size() -> None:
    """LICENSE and README are present and assets/ stays small."""
    assert (ASSETS / "LICENSE").is_file()
    assert "CC0" in (ASSETS / "LICENSE").read_text(encoding="utf-8")
    assert (ASSETS / "README.md").is_file()
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < 1_500_000, f"assets/ is {total} bytes"
