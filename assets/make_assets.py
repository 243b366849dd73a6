"""Generate the art and sound for the Sprocket Hockey demo.

Everything here is drawn with pygame and synthesised with the standard library, with fixed
random seeds, so running the script again reproduces the committed files::

    python assets/make_assets.py [--out DIR]

The default output directory is the folder this script lives in (``assets/``); images go to
``images/`` and sounds to ``sounds/`` below it.  The script runs headless (SDL dummy drivers).
"""

from __future__ import annotations

import argparse
import array
import math
import os
import pathlib
import random
import sys
import wave
from collections.abc import Callable, Sequence

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame

# --------------------------------------------------------------------------- geometry & palette

RINK_W, RINK_H = 960, 576
GOAL_H = 180
MALLET_R = 32
PUCK_R = 18
MALLET_SIZE = 72
PUCK_SIZE = 44
SPARK_SIZE = 16
ICON_SIZE = 32

RGB = tuple[int, int, int]

BG_CENTRE: RGB = (20, 27, 52)
BG_EDGE: RGB = (5, 7, 16)
HOLE: RGB = (3, 4, 10)

LINE: RGB = (140, 105, 255)  # neutral neon violet for walls and centre markings
LINE_HOT: RGB = (215, 200, 255)

BLUE: RGB = (30, 150, 255)
BLUE_HOT: RGB = (175, 230, 255)
RED: RGB = (255, 40, 95)
RED_HOT: RGB = (255, 185, 205)
PUCK: RGB = (255, 196, 40)
PUCK_HOT: RGB = (255, 246, 205)

SAMPLE_RATE = 22050

IMAGE_NAMES = (
    "rink.png",
    "mallet_blue.png",
    "mallet_red.png",
    "puck.png",
    "spark.png",
    "icon.png",
    "title.png",
)
SOUND_NAMES = ("hit.wav", "wall.wav", "goal.wav", "win.wav", "beep.wav", "join.wav")


# --------------------------------------------------------------------------- small helpers


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _mix(c1: Sequence[int], c2: Sequence[int], t: float) -> RGB:
    t = min(1.0, max(0.0, t))
    return (
        round(_lerp(c1[0], c2[0], t)),
        round(_lerp(c1[1], c2[1], t)),
        round(_lerp(c1[2], c2[2], t)),
    )


def _scale(c: Sequence[int], k: float) -> RGB:
    return (min(255, round(c[0] * k)), min(255, round(c[1] * k)), min(255, round(c[2] * k)))


def _smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def _soften(surf: pygame.Surface) -> pygame.Surface:
    """One separable [1 2 1] / 4 blur pass built from shifted, scaled blits (no numpy needed)."""
    rgba = bool(surf.get_flags() & pygame.SRCALPHA)
    add = pygame.BLEND_RGBA_ADD if rgba else pygame.BLEND_ADD
    mult = pygame.BLEND_RGBA_MULT if rgba else pygame.BLEND_MULT
    out = surf
    for dx, dy in ((1, 0), (0, 1)):
        quarter = out.copy()
        quarter.fill((64, 64, 64, 64), special_flags=mult)
        half = out.copy()
        half.fill((128, 128, 128, 128), special_flags=mult)
        acc = pygame.Surface(out.get_size(), out.get_flags(), out)
        acc.fill((0, 0, 0, 0))
        acc.blit(half, (0, 0), special_flags=add)
        acc.blit(quarter, (dx, dy), special_flags=add)
        acc.blit(quarter, (-dx, -dy), special_flags=add)
        # Edge rows/columns only received part of the kernel; copy them from the source.
        w, h = out.get_size()
        edges = ((0, 0, 1, h), (w - 1, 0, 1, h)) if dx else ((0, 0, w, 1), (0, h - 1, w, 1))
        for edge in edges:
            r = pygame.Rect(edge)
            acc.fill((0, 0, 0, 0), r)
            acc.blit(out, r.topleft, r, special_flags=add)
        out = acc
    return out


def _blur(surf: pygame.Surface, passes: int) -> pygame.Surface:
    """Soft blur with radius ~2**passes px: a small Gaussian pyramid down, then bilinear back up."""
    sizes: list[tuple[int, int]] = []
    out = surf
    for _ in range(passes):
        sizes.append(out.get_size())
        w, h = out.get_size()
        out = pygame.transform.smoothscale(_soften(out), (max(1, w // 2), max(1, h // 2)))
    out = _soften(out)
    for size in reversed(sizes):
        out = pygame.transform.smoothscale(out, size)
    return out


def _dim(surf: pygame.Surface, k: float) -> pygame.Surface:
    """Return a copy of an opaque RGB surface with every channel multiplied by ``k`` (<= 1)."""
    out = surf.copy()
    v = max(0, min(255, round(255 * k)))
    out.fill((v, v, v), special_flags=pygame.BLEND_MULT)
    return out


def _add(dst: pygame.Surface, src: pygame.Surface, k: float = 1.0) -> None:
    """Additively blend an opaque light layer onto ``dst`` with gain ``k`` (k may exceed 1)."""
    while k > 1e-3:
        step = min(1.0, k)
        dst.blit(_dim(src, step) if step < 1.0 else src, (0, 0), special_flags=pygame.BLEND_ADD)
        k -= step


def _down(surf: pygame.Surface, size: tuple[int, int]) -> pygame.Surface:
    """Supersample down to ``size`` with repeated halving (box filter) for clean antialiasing."""
    out = surf
    while out.get_width() >= size[0] * 2 and out.get_height() >= size[1] * 2:
        out = pygame.transform.smoothscale(out, (out.get_width() // 2, out.get_height() // 2))
    if out.get_size() != size:
        out = pygame.transform.smoothscale(out, size)
    return out


def _alpha_layer(size: tuple[int, int], colour: Sequence[int]) -> pygame.Surface:
    """A fully transparent SRCALPHA surface whose (invisible) RGB is ``colour``.

    Blurring or smoothscaling such a layer only spreads alpha, so soft edges keep their hue
    instead of fading through black.
    """
    surf = pygame.Surface(size, pygame.SRCALPHA)
    surf.fill((colour[0], colour[1], colour[2], 0))
    return surf


def _radial_disc(
    surf: pygame.Surface,
    centre: tuple[float, float],
    radius: float,
    profile: Callable[[float], tuple[int, int, int, int]],
    light: tuple[float, float] = (0.0, 0.0),
) -> None:
    """Paint a disc from the outside in; ``profile(t)`` gives RGBA at relative radius ``t``.

    ``light`` shifts the centre of the smaller rings towards a light source (as a fraction of
    the radius) which gives a cheap off-centre dome shading.
    """
    steps = max(2, int(radius))
    for i in range(steps, 0, -1):
        t = i / steps
        r = radius * t
        cx = centre[0] + light[0] * radius * (1.0 - t)
        cy = centre[1] + light[1] * radius * (1.0 - t)
        pygame.draw.circle(surf, profile(t), (cx, cy), max(1.0, r))


def _vignette_alpha(glow: pygame.Surface, inner: float, outer: float) -> None:
    """Fade ``glow``'s alpha smoothly to zero between radius ``inner`` and ``outer`` (in place)."""
    w, h = glow.get_size()
    mask = pygame.Surface((w, h), pygame.SRCALPHA)
    mask.fill((255, 255, 255, 0))
    steps = max(2, int(outer - inner))
    for i in range(steps + 1):
        t = i / steps
        r = outer - (outer - inner) * t
        pygame.draw.circle(mask, (255, 255, 255, round(255 * _smoothstep(t))), (w / 2, h / 2), r)
    glow.blit(mask, (0, 0), special_flags=pygame.BLEND_RGBA_MULT)


# --------------------------------------------------------------------------- images


def make_rink() -> pygame.Surface:
    """Draw the 960x576 rink: dark table with air holes, neon walls, markings and goals."""
    w, h = RINK_W, RINK_H
    ss = 4  # supersampling factor for the crisp line art
    rng = random.Random(1234)
    cy = h / 2
    goal_top, goal_bot = cy - GOAL_H / 2, cy + GOAL_H / 2

    # Base: radial vignette computed at low resolution and scaled up smoothly.
    lw, lh = w // 8, h // 8
    low = pygame.Surface((lw, lh))
    for y in range(lh):
        for x in range(lw):
            dx = (x + 0.5 - lw / 2) / (lw / 2)
            dy = (y + 0.5 - lh / 2) / (lh / 2)
            d = math.sqrt(dx * dx * 0.85 + dy * dy * 1.1)
            low.set_at((x, y), _mix(BG_CENTRE, BG_EDGE, _smoothstep(d / 1.25) ** 0.9))
    base = pygame.transform.smoothscale(_blur(low, 1), (w, h))

    # Subtle low-frequency mottling, like a worn table surface.
    mott = pygame.Surface((w // 32, h // 32))
    for y in range(mott.get_height()):
        for x in range(mott.get_width()):
            v = rng.randint(0, 5)
            mott.set_at((x, y), (v, v, v + 1))
    mott = _blur(pygame.transform.smoothscale(mott, (w // 4, h // 4)), 2)
    _add(base, pygame.transform.smoothscale(mott, (w, h)))

    # Faint team-coloured light pooling near each goal.
    pool = pygame.Surface((w // 4, h // 4))
    pool.fill((0, 0, 0))
    pygame.draw.circle(pool, _scale(BLUE, 0.22), (0, pool.get_height() // 2), 70)
    pygame.draw.circle(pool, _scale(RED, 0.22), (pool.get_width(), pool.get_height() // 2), 70)
    _add(base, pygame.transform.smoothscale(_blur(pool, 4), (w, h)), 0.8)

    # Air holes on a regular grid (drawn supersampled so they are round and soft).
    holes = pygame.transform.smoothscale(base, (w * 2, h * 2))
    spacing = 24
    inner = pygame.Rect(18, 18, w - 36, h - 36)
    for gy in range(spacing // 2, h, spacing):
        for gx in range(spacing // 2, w, spacing):
            if not inner.collidepoint(gx, gy):
                continue
            pygame.draw.circle(holes, HOLE, (gx * 2, gy * 2), 3)
            pygame.draw.circle(holes, _scale(BG_CENTRE, 1.6), (gx * 2 + 1, gy * 2 + 3), 1)
    base = _down(holes, (w, h))

    # Line art (light emitting), supersampled. Everything is drawn in rink pixels * ss.
    lines = pygame.Surface((w * ss, h * ss))
    lines.fill((0, 0, 0))

    def p(v: float) -> int:
        return round(v * ss)

    inset = 5
    wall_w = 4
    radius = 44

    # Tinted areas (crease and centre circle): added to the base without any glow.
    crease_r = 110
    fills = pygame.Surface((w * ss, h * ss))
    fills.fill((0, 0, 0))
    # (goal-line x, colour, hot colour, which half of the crease circle lies inside the rink)
    sides = (
        (inset, BLUE, BLUE_HOT, {"draw_top_right": True, "draw_bottom_right": True}),
        (w - inset, RED, RED_HOT, {"draw_top_left": True, "draw_bottom_left": True}),
    )
    for gx, col, _hot, half in sides:
        pygame.draw.circle(fills, _scale(col, 0.16), (p(gx), p(cy)), p(crease_r), 0, **half)
    pygame.draw.circle(fills, _scale(LINE, 0.07), (p(w / 2), p(cy)), p(84))
    _add(base, _down(fills, (w, h)))

    # Centre line and circle.
    for colour, width in ((LINE, 4), (_mix(LINE, LINE_HOT, 0.6), 1.5)):
        pygame.draw.line(lines, colour, (p(w / 2), p(inset + 2)), (p(w / 2), p(h - inset - 2)), p(width))
        pygame.draw.circle(lines, colour, (p(w / 2), p(cy)), p(84 + width / 2), p(width))
    pygame.draw.circle(lines, LINE, (p(w / 2), p(cy)), p(8))
    pygame.draw.circle(lines, _mix(LINE, LINE_HOT, 0.6), (p(w / 2), p(cy)), p(4))

    # Face-off spots in each half.
    for fx, col in ((w * 0.25, BLUE), (w * 0.75, RED)):
        for fy in (h * 0.28, h * 0.72):
            pygame.draw.circle(lines, _scale(col, 0.8), (p(fx), p(fy)), p(14), p(2))
            pygame.draw.circle(lines, _scale(col, 0.9), (p(fx), p(fy)), p(3.5))

    # Crease arcs.
    for gx, col, hot, half in sides:
        for colour, width in ((col, 4.0), (hot, 1.5)):
            pygame.draw.circle(lines, colour, (p(gx), p(cy)), p(crease_r + width / 2), p(width), **half)

    # Boundary wall: a rounded neon tube with the goal mouths cut out of the side walls.
    wall = pygame.Surface((w * ss, h * ss))
    wall.fill((0, 0, 0))
    rect = pygame.Rect(
        p(inset - wall_w / 2), p(inset - wall_w / 2), p(w - 2 * inset + wall_w), p(h - 2 * inset + wall_w)
    )
    pygame.draw.rect(wall, LINE, rect, p(wall_w), border_radius=p(radius))
    core = rect.inflate(-p(wall_w - 1.5), -p(wall_w - 1.5))
    pygame.draw.rect(wall, _mix(LINE, LINE_HOT, 0.6), core, p(1.5), border_radius=p(radius - 1))
    for gx in (0, w - inset - wall_w):
        pygame.draw.rect(wall, (0, 0, 0), (p(gx), p(goal_top), p(inset + wall_w + 1), p(GOAL_H)))
    lines.blit(wall, (0, 0), special_flags=pygame.BLEND_ADD)

    # Goal mouths: a coloured goal line across the opening plus glowing posts.
    for gx, col, hot, _half in sides:
        pygame.draw.line(lines, col, (p(gx), p(goal_top)), (p(gx), p(goal_bot)), p(6))
        pygame.draw.line(lines, _mix(col, hot, 0.6), (p(gx), p(goal_top)), (p(gx), p(goal_bot)), p(2))
        for py in (goal_top, goal_bot):
            pygame.draw.circle(lines, col, (p(gx), p(py)), p(8))
            pygame.draw.circle(lines, hot, (p(gx), p(py)), p(4))

    crisp = _down(lines, (w, h))

    # Compose: wide soft glow, tighter glow, then the crisp tubes on top.
    _add(base, _blur(crisp, 4), 1.5)
    _add(base, _blur(crisp, 2), 1.0)
    _add(base, _blur(crisp, 1), 0.6)
    _add(base, crisp)
    return base


def make_mallet(colour: RGB, hot: RGB) -> pygame.Surface:
    """Draw a 72x72 top-down mallet (radius 32) with a neon rim, dome, knob and glow."""
    ss = 8
    size = MALLET_SIZE * ss
    c = size / 2
    r = MALLET_R * ss
    dark = _scale(colour, 0.18)
    mid = _scale(colour, 0.42)

    out = _alpha_layer((size, size), colour)

    # Outer glow (alpha only), fading out before the sprite edge.
    glow = _alpha_layer((size, size), colour)
    pygame.draw.circle(glow, (*colour, 150), (c, c), r + 1 * ss)
    glow = _blur(glow, 4)
    _vignette_alpha(glow, r, c - ss / 2)
    out.blit(glow, (0, 0))

    def body(t: float) -> tuple[int, int, int, int]:
        if t > 0.965:  # thin darker outer lip (gives a defined edge against the glow)
            return (*_mix(colour, dark, (t - 0.965) / 0.035 * 0.6), 255)
        if t > 0.80:  # neon tube rim, brightest at t ~ 0.885
            k = 1.0 - abs(t - 0.885) / 0.085
            return (*_mix(colour, hot, _smoothstep(k) ** 1.5), 255)
        if t > 0.74:  # dark groove between rim and dome
            return (*_mix(dark, colour, max(0.0, (t - 0.77) / 0.03) * 0.4), 255)
        # dome: brighter towards the middle
        return (*_mix(mid, dark, (t / 0.74) ** 1.6), 255)

    _radial_disc(out, (c, c), r, body, light=(-0.18, -0.22))

    # Knob shadow, then the knob itself.
    shadow = _alpha_layer((size, size), (0, 0, 0))
    pygame.draw.circle(shadow, (0, 0, 0, 170), (c + 2.5 * ss, c + 3.5 * ss), 13.5 * ss)
    out.blit(_blur(shadow, 3), (0, 0))

    def knob(t: float) -> tuple[int, int, int, int]:
        if t > 0.86:
            return (*_mix(hot, colour, (t - 0.86) / 0.14), 255)
        return (*_mix(_mix(colour, hot, 0.35), _scale(colour, 0.55), (t / 0.86) ** 1.3), 255)

    _radial_disc(out, (c, c), 13 * ss, knob, light=(-0.35, -0.4))

    # Specular highlights: a soft crescent on the dome and a bright spot on the knob.
    spec = _alpha_layer((size, size), (255, 255, 255))
    pygame.draw.ellipse(spec, (255, 255, 255, 70), pygame.Rect(c - 20 * ss, c - 24 * ss, 22 * ss, 12 * ss))
    pygame.draw.ellipse(spec, (255, 255, 255, 0), pygame.Rect(c - 18 * ss, c - 20 * ss, 22 * ss, 12 * ss))
    pygame.draw.ellipse(spec, (255, 255, 255, 230), pygame.Rect(c - 8 * ss, c - 9 * ss, 7 * ss, 5 * ss))
    out.blit(_blur(spec, 3), (0, 0))

    return _down(out, (MALLET_SIZE, MALLET_SIZE))


def make_puck() -> pygame.Surface:
    """Draw the 44x44 puck (radius 18): dark disc with a hot amber neon rim and glow."""
    ss = 8
    size = PUCK_SIZE * ss
    c = size / 2
    r = PUCK_R * ss
    dark = _scale(PUCK, 0.22)
    mid = _scale(PUCK, 0.45)

    out = _alpha_layer((size, size), PUCK)
    glow = _alpha_layer((size, size), PUCK)
    pygame.draw.circle(glow, (*PUCK, 170), (c, c), r + 1 * ss)
    glow = _blur(glow, 4)
    _vignette_alpha(glow, r, c - ss / 2)
    out.blit(glow, (0, 0))

    def body(t: float) -> tuple[int, int, int, int]:
        if t > 0.95:
            return (*_mix(PUCK, dark, (t - 0.95) / 0.05 * 0.5), 255)
        if t > 0.72:
            k = 1.0 - abs(t - 0.835) / 0.115
            return (*_mix(PUCK, PUCK_HOT, _smoothstep(k) ** 1.5), 255)
        if t > 0.64:
            return (*dark, 255)
        if t > 0.42:
            return (*_mix(dark, mid, 0.35), 255)
        if t > 0.30:  # inner ring
            return (*_mix(PUCK, PUCK_HOT, 0.3), 255)
        return (*_mix(mid, dark, t / 0.3), 255)

    _radial_disc(out, (c, c), r, body)

    spec = _alpha_layer((size, size), (255, 255, 255))
    pygame.draw.ellipse(spec, (255, 255, 255, 150), pygame.Rect(c - 11 * ss, c - 13 * ss, 11 * ss, 6 * ss))
    out.blit(_blur(spec, 3), (0, 0))
    return _down(out, (PUCK_SIZE, PUCK_SIZE))


def make_spark() -> pygame.Surface:
    """A 16x16 soft particle: white-hot core fading to transparent warm edges."""
    n = SPARK_SIZE
    out = pygame.Surface((n, n), pygame.SRCALPHA)
    c = (n - 1) / 2
    for y in range(n):
        for x in range(n):
            d = math.hypot(x - c, y - c) / (n / 2)
            a = math.exp(-(d * d) * 5.0) * max(0.0, 1.0 - d) ** 0.6
            core = math.exp(-(d * d) * 18.0)
            col = _mix((255, 200, 120), (255, 255, 255), core)
            out.set_at((x, y), (*col, round(255 * min(1.0, 1.12 * a))))
    return out


def make_icon() -> pygame.Surface:
    """A 32x32 window icon: a tiny rink with both mallets and the puck."""
    ss = 8
    size = ICON_SIZE * ss
    out = _alpha_layer((size, size), BG_EDGE)
    box = pygame.Rect(ss, ss, size - 2 * ss, size - 2 * ss)
    pygame.draw.rect(out, (*BG_CENTRE, 255), box, border_radius=7 * ss)

    left = _alpha_layer((size, size), BLUE)
    pygame.draw.rect(left, (*BLUE, 255), box, 2 * ss, border_radius=7 * ss)
    left.fill((0, 0, 0, 0), pygame.Rect(size // 2, 0, size // 2, size))
    right = _alpha_layer((size, size), RED)
    pygame.draw.rect(right, (*RED, 255), box, 2 * ss, border_radius=7 * ss)
    right.fill((0, 0, 0, 0), pygame.Rect(0, 0, size // 2, size))
    out.blit(left, (0, 0))
    out.blit(right, (0, 0))
    pygame.draw.line(out, (*_scale(LINE, 0.8), 255), (size // 2, 3 * ss), (size // 2, size - 3 * ss), ss)

    for cx, col, hot in ((9.5, BLUE, BLUE_HOT), (22.5, RED, RED_HOT)):
        pygame.draw.circle(out, (*col, 255), (cx * ss, 19 * ss), 5 * ss)
        pygame.draw.circle(out, (*hot, 255), (cx * ss, 19 * ss), 2.5 * ss)
    pygame.draw.circle(out, (*PUCK, 255), (16 * ss, 11 * ss), 3.5 * ss)
    pygame.draw.circle(out, (*PUCK_HOT, 255), (16 * ss, 11 * ss), 1.5 * ss)
    return _down(out, (ICON_SIZE, ICON_SIZE))


def _render_tracked(font: pygame.font.Font, text: str, tracking: int) -> pygame.Surface:
    """Render ``text`` letter by letter with an even ``tracking`` gap between the glyphs' ink.

    The default font has no kerning, so pairs such as "KE" look loose in a big wordmark;
    spacing by ink width looks even at any size.
    """
    glyphs = []
    for ch in text:
        g = font.render(ch, True, (255, 255, 255))
        ink = g.get_bounding_rect()
        glyphs.append(g.subsurface(pygame.Rect(ink.x, 0, ink.width, g.get_height())))
    width = sum(g.get_width() for g in glyphs) + tracking * (len(glyphs) - 1)
    out = pygame.Surface((width, font.get_height()), pygame.SRCALPHA)
    x = 0
    for g in glyphs:
        out.blit(g, (x, 0))
        x += g.get_width() + tracking
    return out


def make_title() -> pygame.Surface:
    """The "SPROCKET HOCKEY" wordmark in pygame's default font with a neon glow."""
    if not pygame.font.get_init():
        pygame.font.init()
    big = pygame.font.Font(None, 150)
    small = pygame.font.Font(None, 110)
    word1 = _render_tracked(big, "SPROCKET", 8)
    word2 = _render_tracked(small, "HOCKEY", 10)
    margin = 64
    width = max(word1.get_width(), word2.get_width()) + 2 * margin
    gap = -12
    height = word1.get_height() + word2.get_height() + gap + 2 * margin
    # Render on black, additive light, then convert brightness to alpha-friendly RGBA.
    light = pygame.Surface((width, height))
    light.fill((0, 0, 0))
    spots = (
        (word1, BLUE, BLUE_HOT, ((width - word1.get_width()) // 2, margin)),
        (word2, RED, RED_HOT, ((width - word2.get_width()) // 2, margin + word1.get_height() + gap)),
    )
    crisp = pygame.Surface((width, height))
    crisp.fill((0, 0, 0))
    for word, col, hot, pos in spots:
        tinted = word.copy()
        tinted.fill((*_mix(col, hot, 0.55), 255), special_flags=pygame.BLEND_RGBA_MULT)
        halo = word.copy()
        halo.fill((*col, 255), special_flags=pygame.BLEND_RGBA_MULT)
        crisp.blit(tinted, pos)
        light.blit(halo, pos)
    out = pygame.Surface((width, height))
    out.fill((0, 0, 0))
    _add(out, _blur(light, 4), 1.6)
    _add(out, _blur(light, 2), 1.2)
    _add(out, _blur(light, 1), 0.6)
    _add(out, crisp)
    # Turn the black background into transparency: alpha = brightest channel, colour unpremultiplied.
    rgba = pygame.Surface((width, height), pygame.SRCALPHA)
    for y in range(height):
        for x in range(width):
            r, g, b, _ = out.get_at((x, y))
            m = max(r, g, b)
            if m == 0:
                rgba.set_at((x, y), (0, 0, 0, 0))
            else:
                rgba.set_at((x, y), (r * 255 // m, g * 255 // m, b * 255 // m, m))
    return rgba


# --------------------------------------------------------------------------- sounds


def _silence(seconds: float) -> list[float]:
    return [0.0] * int(seconds * SAMPLE_RATE)


def _tone(
    buf: list[float],
    start: float,
    dur: float,
    freq: float,
    partials: Sequence[tuple[float, float]],
    attack: float,
    decay: float,
    gain: float = 1.0,
    vibrato: float = 0.0,
    release: float = 0.03,
) -> None:
    """Mix an additive tone into ``buf``: ``partials`` are (frequency ratio, amplitude)."""
    i0 = int(start * SAMPLE_RATE)
    n = min(int(dur * SAMPLE_RATE), len(buf) - i0)
    phases = [0.0] * len(partials)
    two_pi = 2.0 * math.pi
    for i in range(n):
        t = i / SAMPLE_RATE
        env = min(1.0, t / attack) if attack > 0 else 1.0
        env *= math.exp(-t * decay)
        tail = dur - t
        if tail < release:
            env *= max(0.0, tail / release)
        f = freq * (1.0 + vibrato * math.sin(two_pi * 5.5 * t) * min(1.0, t / 0.15))
        s = 0.0
        for k, (ratio, amp) in enumerate(partials):
            fk = f * ratio
            if fk >= SAMPLE_RATE / 2:
                continue
            phases[k] += two_pi * fk / SAMPLE_RATE
            s += amp * math.sin(phases[k])
        buf[i0 + i] += gain * env * s


def _finish(buf: list[float], peak: float, fade_in: float = 0.002, fade_out: float = 0.02) -> list[float]:
    """Normalise to ``peak`` (< 1) and apply short linear fades so there are no clicks."""
    top = max(abs(v) for v in buf) or 1.0
    k = peak / top
    out = [v * k for v in buf]
    n_in = max(1, int(fade_in * SAMPLE_RATE))
    n_out = max(1, int(fade_out * SAMPLE_RATE))
    for i in range(min(n_in, len(out))):
        out[i] *= i / n_in
    n = len(out)
    for i in range(min(n_out, n)):
        out[n - 1 - i] *= i / n_out
    return out


def _write_wav(path: pathlib.Path, samples: Sequence[float]) -> None:
    data = array.array("h", (max(-32767, min(32767, round(v * 32767))) for v in samples))
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(SAMPLE_RATE)
        wf.writeframes(data.tobytes())


def synth_hit() -> list[float]:
    """Mallet on puck: a short pitched thock with a noisy click, ~0.14 s."""
    rng = random.Random(11)
    buf = _silence(0.14)
    phase = 0.0
    lp = 0.0
    for i in range(len(buf)):
        t = i / SAMPLE_RATE
        f = 170.0 + 950.0 * math.exp(-t * 70.0)
        phase += 2.0 * math.pi * f / SAMPLE_RATE
        body = math.sin(phase) * math.exp(-t * 32.0)
        lp += 0.45 * (rng.uniform(-1.0, 1.0) - lp)
        click = lp * math.exp(-t * 160.0)
        sub = 0.5 * math.sin(2.0 * math.pi * 95.0 * t) * math.exp(-t * 28.0)
        buf[i] = body + 0.9 * click + sub
    return _finish(buf, 0.85, fade_in=0.0005, fade_out=0.02)


def synth_wall() -> list[float]:
    """Puck off a wall: a soft, bright tick, ~0.08 s."""
    rng = random.Random(12)
    buf = _silence(0.08)
    prev = 0.0
    for i in range(len(buf)):
        t = i / SAMPLE_RATE
        tone = math.sin(2.0 * math.pi * 1250.0 * t) + 0.5 * math.sin(2.0 * math.pi * 2630.0 * t)
        n = rng.uniform(-1.0, 1.0)
        hp = n - prev
        prev = n
        buf[i] = tone * math.exp(-t * 85.0) + 0.35 * hp * math.exp(-t * 400.0)
    return _finish(buf, 0.45, fade_in=0.0005, fade_out=0.015)


def synth_goal() -> list[float]:
    """Goal scored: a bright rising arpeggio that rings into a chord, ~0.85 s."""
    buf = _silence(0.85)
    bell = ((1.0, 1.0), (2.0, 0.35), (3.0, 0.12), (4.01, 0.06))
    notes = (523.25, 659.25, 783.99, 1046.5)
    for k, f in enumerate(notes):
        start = 0.07 * k
        _tone(buf, start, 0.85 - start, f, bell, attack=0.004, decay=3.2, gain=1.0, vibrato=0.003)
    # a soft low horn underneath for body
    horn = ((1.0, 1.0), (2.0, 0.5), (3.0, 0.33), (4.0, 0.25), (5.0, 0.2))
    _tone(buf, 0.0, 0.6, 261.63, horn, attack=0.02, decay=3.5, gain=0.45, release=0.2)
    return _finish(buf, 0.7, fade_out=0.08)


def synth_win() -> list[float]:
    """Match won: a short brassy fanfare ending on a held major chord, ~1.5 s."""
    buf = _silence(1.5)
    brass = tuple((float(n), 1.0 / n) for n in range(1, 8))
    g4, c5, e5, g5, c6 = 392.0, 523.25, 659.25, 783.99, 1046.5
    seq = ((g4, 0.00, 0.13), (c5, 0.14, 0.13), (e5, 0.28, 0.13), (g5, 0.42, 0.22), (e5, 0.66, 0.12))
    for f, start, dur in seq:
        _tone(buf, start, dur, f, brass, attack=0.01, decay=2.0, gain=0.8, release=0.03)
    for f, gain in ((g5, 0.55), (c6, 0.8), (c5, 0.5), (e5, 0.45)):
        _tone(buf, 0.8, 0.7, f, brass, attack=0.015, decay=1.6, gain=gain, vibrato=0.004, release=0.25)
    return _finish(buf, 0.7, fade_out=0.1)


def synth_beep() -> list[float]:
    """Countdown beep: a clean 880 Hz soft square, ~0.16 s."""
    buf = _silence(0.16)
    soft_square = ((1.0, 1.0), (3.0, 0.22), (5.0, 0.08))
    _tone(buf, 0.0, 0.16, 880.0, soft_square, attack=0.004, decay=4.0, release=0.04)
    return _finish(buf, 0.38, fade_out=0.01)


def synth_join() -> list[float]:
    """Player joined: a friendly two-note rising chime, ~0.6 s."""
    buf = _silence(0.6)
    bell = ((1.0, 1.0), (2.0, 0.3), (3.01, 0.1))
    _tone(buf, 0.0, 0.45, 659.25, bell, attack=0.004, decay=7.0)
    _tone(buf, 0.13, 0.47, 987.77, bell, attack=0.004, decay=6.0)
    return _finish(buf, 0.55, fade_out=0.05)


# --------------------------------------------------------------------------- driver


def make_all(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Generate every image and sound under ``out_dir`` and return the written paths.

    Images go to ``out_dir/images`` and sounds to ``out_dir/sounds``; both are created if
    needed. The output is deterministic.
    """
    out_dir = pathlib.Path(out_dir)
    img_dir = out_dir / "images"
    snd_dir = out_dir / "sounds"
    img_dir.mkdir(parents=True, exist_ok=True)
    snd_dir.mkdir(parents=True, exist_ok=True)

    backend = pygame.transform.get_smoothscale_backend()
    pygame.transform.set_smoothscale_backend("GENERIC")  # identical output on every CPU
    try:
        images: dict[str, pygame.Surface] = {
            "rink.png": make_rink(),
            "mallet_blue.png": make_mallet(BLUE, BLUE_HOT),
            "mallet_red.png": make_mallet(RED, RED_HOT),
            "puck.png": make_puck(),
            "spark.png": make_spark(),
            "icon.png": make_icon(),
            "title.png": make_title(),
        }
    finally:
        pygame.transform.set_smoothscale_backend(backend)

    written: list[pathlib.Path] = []
    for name in IMAGE_NAMES:
        path = img_dir / name
        pygame.image.save(images[name], str(path))
        written.append(path)

    sounds: dict[str, Callable[[], list[float]]] = {
        "hit.wav": synth_hit,
        "wall.wav": synth_wall,
        "goal.wav": synth_goal,
        "win.wav": synth_win,
        "beep.wav": synth_beep,
        "join.wav": synth_join,
    }
    for name in SOUND_NAMES:
        path = snd_dir / name
        _write_wav(path, sounds[name]())
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python assets/make_assets.py [--out DIR]``."""
    parser = argparse.ArgumentParser(description="Generate Sprocket Hockey images and sounds.")
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parent,
        help="output directory (default: the assets/ folder containing this script)",
    )
    args = parser.parse_args(argv)
    paths = make_all(args.out)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({total / 1024:.0f} KiB) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
