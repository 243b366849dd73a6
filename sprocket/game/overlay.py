"""The F3 network overlay: what people debug netcode with, drawn readably over the game.

Pygame-only drawing; the numbers come from :class:`~sprocket.game.client.GameClient` and the frame
clock.  It never touches the network itself.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # the library prints nothing
import pygame

from sprocket.errors import InvalidArgument

if TYPE_CHECKING:
    from .client import GameClient

__all__ = ["CORNERS", "NetOverlay"]

#: The corner names :attr:`NetOverlay.position` accepts, besides ``"auto"`` and an ``(x, y)`` pixel.
CORNERS = ("topleft", "topright", "bottomleft", "bottomright")

Position = tuple[int, int] | str


def _kb(n: float) -> str:
    return f"{n / 1024:5.1f} KB/s"


class NetOverlay:
    """A translucent panel of live network figures; toggle it with :meth:`toggle` (F3 in NetworkedGame).

    ``position``: where the panel goes — an ``(x, y)`` pixel for its top-left corner, a corner of the
    window (``"topleft"``, ``"topright"``, ``"bottomleft"``, ``"bottomright"``), or ``"auto"`` (the
    default): the top corner on the other half of the window from the entity you control (its ``x``;
    top-right when you control none), so it never covers you or your end of the play.  ``margin``:
    ``(dx, dy)`` pixels between a corner's panel and the window's edges (a game with a score bar on top
    passes ``(8, bar_height + 8)``).  Both are attributes; change them any time.  Setting ``position``
    to anything else raises :class:`~sprocket.errors.InvalidArgument` (a ``ValueError``).
    """

    def __init__(
        self, font_size: int = 18, position: Position = "auto", margin: tuple[int, int] = (8, 8)
    ) -> None:
        self.visible = False
        self.position = position
        self.margin = margin
        self.font_size = font_size
        self._font: pygame.font.Font | None = None

    @property
    def position(self) -> Position:
        """An ``(x, y)`` pixel, a corner name (:data:`CORNERS`) or ``"auto"``; see the class."""
        return self._position

    @position.setter
    def position(self, value: Position) -> None:
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
            self._position: Position = value
        elif isinstance(value, str) and (value in CORNERS or value == "auto"):
            self._position = value
        else:
            raise InvalidArgument(
                f"position must be (x, y), 'auto' or one of {', '.join(CORNERS)}; got {value!r}"
            )

    def toggle(self) -> None:
        """Show or hide the overlay."""
        self.visible = not self.visible

    def lines(self, net: GameClient, fps: float) -> list[tuple[str, str]]:
        """The (label, value) rows the overlay shows, for these figures."""
        s = net.sprocket
        rtt = f"{s.rtt * 1000:5.1f} ms" if s.rtt is not None else "  --"
        st = net.stats
        buf = net.buffer
        pred = net.predictor
        rows = [
            ("FPS", f"{fps:5.1f}"),
            ("RTT", rtt),
            ("jitter", f"{s.jitter * 1000:5.1f} ms"),
            ("down", f"{_kb(st.bytes_in_per_s)}  {st.packets_in_per_s:4.0f} pk/s"),
            ("up", f"{_kb(st.bytes_out_per_s)}  {st.packets_out_per_s:4.0f} pk/s"),
            ("snapshot", f"{net.snapshot_bytes:5.0f} B  @ {net.snapshot_rate:g} Hz"),
            ("interp delay", f"{buf.delay * 1000:5.1f} ms"),
            ("buffer depth", f"{buf.depth}" + ("  (extrapolating)" if buf.extrapolating else "")),
            ("prediction err", f"{net.prediction_error:5.2f} px" if pred is not None else "  off"),
            ("unacked inputs", f"{pred.pending}" if pred is not None else "  -"),
        ]
        world = net.world
        if world is not None:
            # World prediction: ticks replayed on the last snapshot, and the correction being shown.
            rows.append(("resim ticks", f"{world.resimulated} / snapshot"))
            rows.append(("correction", f"{world.correction:5.1f} px"))
        rows.append(("connection", "ok" if s.connected else (s.error or "connecting...")))
        # Values start at one column: padding meant for a fixed-width font would misalign them here.
        return [(label, value.strip()) for label, value in rows]

    def place(
        self, surface_size: tuple[int, int], panel_size: tuple[int, int], net: GameClient
    ) -> tuple[int, int]:
        """The top-left pixel of a ``panel_size`` panel on a ``surface_size`` window (see ``position``)."""
        position = self.position
        if isinstance(position, tuple):
            return position
        width, height = surface_size
        w, h = panel_size
        dx, dy = self.margin
        if position == "auto":
            position = "topright"
            me = net.me
            entity = net.latest.entities.get(me) if me is not None and net.latest is not None else None
            x = getattr(entity, "x", None)
            if isinstance(x, (int, float)) and x > width / 2:
                position = "topleft"
        left = dx if position.endswith("left") else width - w - dx
        top = dy if position.startswith("top") else height - h - dy
        return (left, top)

    def draw(self, surface: pygame.Surface, net: GameClient, fps: float) -> None:
        """Draw the panel on ``surface`` (where :attr:`position` says) if visible."""
        if not self.visible:
            return
        if self._font is None:
            self._font = pygame.font.Font(None, self.font_size + 4)
        font = self._font
        rows = self.lines(net, fps)
        label_w = max(font.size(label)[0] for label, _ in rows)
        value_w = max(font.size(value)[0] for _, value in rows)
        line_h = font.get_linesize()
        pad = 10
        width = label_w + value_w + pad * 3
        height = line_h * (len(rows) + 1) + pad * 2
        panel = pygame.Surface((width, height), pygame.SRCALPHA)
        panel.fill((8, 10, 20, 205))
        pygame.draw.rect(panel, (90, 200, 255, 220), panel.get_rect(), 1, border_radius=6)
        title = font.render("NETWORK  (F3)", True, (120, 220, 255))
        panel.blit(title, (pad, pad))
        for i, (label, value) in enumerate(rows, start=1):
            y = pad + i * line_h
            panel.blit(font.render(label, True, (160, 170, 190)), (pad, y))
            color = (
                (255, 120, 120) if label == "connection" and not net.sprocket.connected else (235, 240, 255)
            )
            panel.blit(font.render(value, True, color), (pad * 2 + label_w, y))
        surface.blit(panel, self.place(surface.get_size(), (width, height), net))
