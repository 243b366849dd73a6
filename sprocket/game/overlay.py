"""The F3 network overlay: what people debug netcode with, drawn readably over the game.

Pygame-only drawing; the numbers come from :class:`~sprocket.game.client.GameClient` and the frame
clock.  It never touches the network itself.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # the library prints nothing
import pygame

if TYPE_CHECKING:
    from .client import GameClient

__all__ = ["NetOverlay"]


def _kb(n: float) -> str:
    return f"{n / 1024:5.1f} KB/s"


class NetOverlay:
    """A translucent panel of live network figures; toggle it with :meth:`toggle` (F3 in NetworkedGame)."""

    def __init__(self, font_size: int = 18, position: tuple[int, int] = (8, 8)) -> None:
        self.visible = False
        self.position = position
        self.font_size = font_size
        self._font: pygame.font.Font | None = None

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
            ("connection", "ok" if s.connected else (s.error or "connecting...")),
        ]
        return rows

    def draw(self, surface: pygame.Surface, net: GameClient, fps: float) -> None:
        """Draw the panel near the top-left corner of ``surface`` (at :attr:`position`) if visible."""
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
        surface.blit(panel, self.position)
