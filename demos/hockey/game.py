"""Sprocket Hockey's window: draws what the server says, predicts your own mallet, plays the sounds.

Everything network-related is done by ``NetworkedGame``: this file is input, drawing and sound.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pygame

from sprocket import Packet
from sprocket.errors import ClosedError
from sprocket.game import (
    LobbyRefused,
    NetworkedGame,
    PlayerDropped,
    PlayerJoined,
    PlayerLeft,
    PlayerResumed,
    RoomInfo,
    RoomLeft,
)

from .bot import plain_reason
from .rooms import APP, RoomPlan
from .rules import HEIGHT, HUD, LEFT_SIDE, WIDTH, WIN_SCORE, Mallet, Match, Puck, move

ASSETS = Path(__file__).resolve().parents[2] / "assets"
BLUE, RED, AMBER = (90, 200, 255), (255, 96, 140), (255, 196, 90)
WHITE, DIM = (236, 240, 255), (150, 160, 185)
SHADOW = (4, 5, 12)
#: The key hints at the bottom, by what the screen shows.  None of them during play: the rink is yours.
HINTS = {
    "ready": "SPACE: ready    WASD / arrows: move    F3: network    Esc: quit",
    "waiting": "WASD / arrows: move    F3: network    Esc: quit",
    "watch": "F3: network    Esc: quit",
    "lost": "R: reconnect    Esc: quit",
}


class HockeyGame(NetworkedGame):
    """One player's window.  Your mallet is predicted; the other mallet and the puck are interpolated.

    On a rooms server (``./play --server``, ``--host``) it follows ``plan`` (a
    :class:`~demos.hockey.rooms.RoomPlan`; by default it quick-joins a hockey room) and shows the room's
    code while a seat is empty; if the plan fails (a full room, a wrong code) the window stops, with the
    reason in :attr:`failure`.  With ``keep_window`` the window stays open when the game ends (the menu
    draws in it next).
    """

    title = "Sprocket Hockey"
    size = (WIDTH, HEIGHT)
    fps = 60
    rule = staticmethod(move)
    show_connection_status = False  # this game draws its own connecting / connection-lost screens

    def __init__(self, *args: Any, where: str = "", join_hint: str = "", plan: RoomPlan | None = None,
                 keep_window: bool = False, **kwargs: Any) -> None:  # fmt: skip
        kwargs.setdefault("app", APP)
        super().__init__(*args, **kwargs)
        self.plan = plan if plan is not None else RoomPlan()
        self.keep_window = keep_window
        self.where = where  # shown while connecting, e.g. "127.0.0.1:7777"
        # Shown in the lobby while a seat is empty: how a friend joins this game (only the host knows).
        self.join_hint = join_hint or "Waiting for a second player to join."
        self.was_connected = False  # in the game at least once: a later failure is a lost connection
        self.images = {
            name: pygame.image.load(ASSETS / "images" / f"{name}.png").convert_alpha()
            for name in ("rink", "mallet_blue", "mallet_red", "puck", "spark", "title", "icon")
        }
        pygame.display.set_icon(self.images["icon"])
        if kwargs.get("name"):  # several windows on one screen: each says whose it is
            pygame.display.set_caption(f"{self.title} \u2014 {kwargs['name']}")
        self.spark = self.images["spark"].copy()
        self.spark = self.spark.premul_alpha()
        self.fonts = {size: pygame.font.Font(None, size) for size in (22, 28, 40, 64, 120)}
        self.sounds = _load_sounds()
        self.particles: list[list[float]] = []  # x, y, vx, vy, life
        self.trail: list[tuple[float, float]] = []
        self.banner: tuple[str, tuple[int, int, int], float] | None = None  # text, colour, seconds left
        self.disconnected: str | None = None
        self.random = random.Random(1)
        self.overlay.margin = (8, HUD + 8)  # below the score bar, in the corner away from your mallet

    # -- input ----------------------------------------------------------------------------------------

    def input(self) -> dict[str, int]:
        keys = pygame.key.get_pressed()
        x = (keys[pygame.K_d] or keys[pygame.K_RIGHT]) - (keys[pygame.K_a] or keys[pygame.K_LEFT])
        y = (keys[pygame.K_s] or keys[pygame.K_DOWN]) - (keys[pygame.K_w] or keys[pygame.K_UP])
        return {"x": int(x), "y": int(y)}  # ints: one byte each on the wire

    def on_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT and self.keep_window:
            # The window's close button ends the game (NetworkedGame quits) and, posted again, the menu too.
            pygame.event.post(pygame.event.Event(pygame.QUIT))
        if event.type != pygame.KEYDOWN:
            return
        if event.key == pygame.K_ESCAPE:
            self.quit()
        elif event.key == pygame.K_SPACE and self.connected:
            self.sprocket.send(ready=True)
        elif event.key == pygame.K_r and self.disconnected:
            self.disconnected = None
            self.reconnect()

    # -- what the server tells us ---------------------------------------------------------------------

    def on_packet(self, packet: Packet) -> None:
        sfx = packet.get("sfx")
        self.play(sfx)
        if sfx == "hit":
            self.burst(packet.get("x", 0), packet.get("y", 0), 14)
        elif sfx == "wall":
            self.burst(packet.get("x", 0), packet.get("y", 0), 5)
        elif sfx == "goal":
            colour = BLUE if packet.get("side") == LEFT_SIDE else RED
            self.banner = ("GOAL!", colour, 1.4)

    def on_player_join(self, player: PlayerJoined) -> None:
        if player.id != self.net.id:
            self.banner = (f"{player.name or 'A player'} joined", WHITE, 1.5)

    def on_player_leave(self, player: PlayerLeft) -> None:
        self.banner = (f"{player.name or 'A player'} left", WHITE, 2.0)

    def on_player_drop(self, player: PlayerDropped) -> None:
        self.banner = None  # the match's "away" screen says who and for how long

    def on_player_resume(self, player: PlayerResumed) -> None:
        self.banner = (f"{player.name or 'Your opponent'} is back", WHITE, 2.0)

    def on_room_joined(self, room: RoomInfo) -> None:
        self.banner = (f"Room {room.code}", WHITE, 2.0)

    def on_room_left(self, left: RoomLeft) -> None:
        self.plan.left(left)

    def on_lobby_error(self, refusal: LobbyRefused) -> None:
        self.plan.refused(refusal)

    def on_disconnect(self, reason: str) -> None:
        if self.net.reconnecting:
            return  # the server let our old seat go; the Sprocket is joining again by itself
        self.disconnected = reason

    def on_connect(self) -> None:
        self.disconnected = None
        self.was_connected = True

    @property
    def failure(self) -> str | None:
        """Why the game cannot go on, in words: the room could not be joined (the server's reason), or
        the connection is down for good ("could not connect to ...: ..." when it never came up, "lost
        the connection to ...: ..." after); None while connected or connecting."""
        if self.plan.failure is not None:
            return self.plan.failure
        if self.disconnected is None:
            return None
        where = self.where or f"{self.sprocket.host}:{self.sprocket.port}"
        if self.was_connected:
            return f"lost the connection to {where}: {self.disconnected}"
        return f"could not connect to {where}: {plain_reason(self.disconnected)}"

    # -- per frame ------------------------------------------------------------------------------------

    def update(self, dt: float) -> None:
        try:
            self.plan.step(self.lobby)  # in a rooms server's lobby: ask for our room
        except ClosedError:
            pass  # the connection is over: the screen says why
        if self.plan.failure is not None:
            self.quit()  # the room cannot be joined: whoever started the game shows why
        for p in self.particles:
            p[0] += p[2] * dt
            p[1] += p[3] * dt
            p[2] *= 0.9
            p[3] *= 0.9
            p[4] -= dt
        self.particles = [p for p in self.particles if p[4] > 0]
        puck = self.find(Puck)
        if puck is not None:
            self.trail = [*self.trail[-7:], (puck.x, puck.y)]
        if self.banner is not None:
            text, colour, left = self.banner
            self.banner = (text, colour, left - dt) if left > dt else None

    def draw(self, screen: pygame.Surface) -> None:
        screen.fill((10, 12, 24))
        screen.blit(self.images["rink"], (0, HUD))
        match = self.find(Match)
        for i, (x, y) in enumerate(self.trail[:-1]):
            alpha = 20 + 14 * i
            glow = pygame.Surface((36, 36), pygame.SRCALPHA)
            pygame.draw.circle(glow, (*AMBER, alpha), (18, 18), 6 + i)
            screen.blit(glow, (x - 18, y - 18))
        for entity in self.entities.values():
            if isinstance(entity, Mallet):
                image = self.images["mallet_blue" if entity.side == LEFT_SIDE else "mallet_red"]
                screen.blit(image, (entity.x - 36, entity.y - 36))
            elif isinstance(entity, Puck):
                screen.blit(self.images["puck"], (entity.x - 22, entity.y - 22))
        for x, y, _, _, life in self.particles:
            size = max(2, int(16 * min(1.0, life * 3)))
            screen.blit(pygame.transform.smoothscale(self.spark, (size, size)), (x - size / 2, y - size / 2),
                        special_flags=pygame.BLEND_ADD)  # fmt: skip
        # Layers, bottom to top: the rink, the puck and mallets, the score bar, then every text and veil
        # (so that no mallet or puck ever covers "GOAL!", the lobby or "press SPACE").
        self.draw_hud(screen, match)
        self.draw_centre(screen, match)
        self.draw_hint(screen, match)

    def draw_hud(self, screen: pygame.Surface, match: Match | None) -> None:
        pygame.draw.rect(screen, (14, 16, 32), (0, 0, WIDTH, HUD))
        pygame.draw.line(screen, (70, 60, 130), (0, HUD - 1), (WIDTH, HUD - 1), 2)
        # Before the first snapshot (connecting, or it failed) there are no seats to show at all.
        left_name = (match.left_name or "waiting...") if match else ""
        right_name = (match.right_name or "waiting...") if match else ""
        self.text(screen, left_name, 28, BLUE, (24, 20), anchor="topleft")
        self.text(screen, right_name, 28, RED, (WIDTH - 24, 20), anchor="topright")
        if match is not None:
            self.text(screen, f"{match.left}", 64, BLUE, (WIDTH / 2 - 60, 34))
            self.text(screen, ":", 64, DIM, (WIDTH / 2, 32))
            self.text(screen, f"{match.right}", 64, RED, (WIDTH / 2 + 60, 34))
            me = self.my_entity
            if isinstance(me, Mallet):
                you = "you: BLUE" if me.side == LEFT_SIDE else "you: RED"
                self.text(screen, you, 22, BLUE if me.side == LEFT_SIDE else RED, (WIDTH / 2 - 190, 34))
            elif self.connected:
                self.text(screen, "spectating", 22, DIM, (WIDTH / 2 - 190, 34))
        rtt = self.sprocket.rtt if self.connected else None  # no stale ping while the link is down
        self.text(
            screen, f"ping {rtt * 1000:.0f} ms" if rtt is not None else "", 22, DIM, (WIDTH / 2 + 190, 34)
        )

    def hint(self, match: Match | None) -> str | None:
        """The key hint for this screen, or None (during play, and while connecting or reconnecting)."""
        if self.disconnected:
            return HINTS["lost"]
        if match is None or self.reconnecting:
            return None
        me = self.my_entity
        if not isinstance(me, Mallet):
            return HINTS["watch"]  # a spectator has no SPACE to press
        if match.phase not in ("lobby", "over"):
            return None
        ready = match.left_ready if me.side == LEFT_SIDE else match.right_ready
        return HINTS["waiting"] if ready else HINTS["ready"]  # no "SPACE: ready" once it is pressed

    def draw_hint(self, screen: pygame.Surface, match: Match | None) -> None:
        text = self.hint(match)
        if text is None:
            return
        if self.keep_window:
            text = text.replace("Esc: quit", "Esc: menu")  # started from the menu: Esc goes back to it
        hint = self.fonts[22].render(text, True, (150, 160, 190))
        box = hint.get_rect(center=(WIDTH // 2, HEIGHT - 38)).inflate(24, 10)  # inside the bottom rail
        pill = pygame.Surface(box.size, pygame.SRCALPHA)
        pygame.draw.rect(pill, (8, 10, 22, 210), pill.get_rect(), border_radius=12)
        screen.blit(pill, box)
        screen.blit(hint, hint.get_rect(center=box.center))

    def draw_centre(self, screen: pygame.Surface, match: Match | None) -> None:
        cx, cy = WIDTH / 2, HUD + (HEIGHT - HUD) / 2
        if self.reconnecting:
            # Our connection dropped: the game is frozen as it was while the Sprocket gets it back.
            self.shade(screen)
            self.text(screen, f"Reconnecting\u2026 ({int(self.away_for or 0.0)} s)", 64, AMBER, (cx, cy - 40))
            reason = (self.sprocket.error or "").split("; reconnecting")[0]
            self.text(screen, reason, 28, WHITE, (cx, cy + 10))
            grace = self.sprocket.grace
            if grace is not None and (self.away_for or 0.0) > grace:
                # The server has let the seat go by now: say what will happen instead of promising it.
                note = f"The server held your seat for {grace:g} s; you will join again as a new player."
            else:
                note = "Your seat and the score are kept while you are away."
            self.text(screen, note, 28, DIM, (cx, cy + 50))
            return
        if self.disconnected:
            self.shade(screen)
            headline = "Connection lost" if self.was_connected else "Could not connect"
            self.text(screen, headline, 64, RED, (cx, cy - 50))
            self.text(screen, self.disconnected, 28, WHITE, (cx, cy + 5))
            back = "go back to the menu" if self.keep_window else "quit"
            self.text(screen, f"Press R to try again, Esc to {back}", 28, DIM, (cx, cy + 50))
            return
        if match is None:
            self.shade(screen)
            screen.blit(self.images["title"], self.images["title"].get_rect(center=(cx, cy - 40)))
            self.text(screen, f"Connecting to {self.where}..." if self.where else "Connecting...", 28, WHITE,
                      (cx, cy + 130))  # fmt: skip
            return
        phase = match.phase
        if phase == "lobby":
            self.shade(screen, 150)
            title = self.images["title"]
            small = pygame.transform.smoothscale(
                title, (title.get_width() * 2 // 3, title.get_height() * 2 // 3)
            )
            screen.blit(small, small.get_rect(center=(cx, cy - 110)))
            for i, (name, ready, away, colour) in enumerate(
                (
                    (match.left_name, match.left_ready, match.left_away, BLUE),
                    (match.right_name, match.right_ready, match.right_away, RED),
                )
            ):
                status = ("READY" if ready else "press SPACE") if name else "waiting for a player..."
                if name and away > 0:
                    status = f"reconnecting... {int(away)} s"
                x = cx - 170 if i == 0 else cx + 170
                self.text(screen, name or "empty", 40, colour if name else DIM, (x, cy + 40))
                self.text(screen, status, 28, (140, 255, 170) if ready else DIM, (x, cy + 80))
            if not (match.left_name and match.right_name):
                self.text(screen, self.join_hint, 22, DIM, (cx, cy + 150))
                room = self.lobby.room
                if room is not None:
                    self.text(screen, f"Room code  {room.code}   (for Join with a code)", 28, AMBER,
                              (cx, cy + 182))  # fmt: skip
            else:
                self.text(screen, f"First to {WIN_SCORE} wins.  Both press SPACE to start.", 28, WHITE,
                          (cx, cy + 150))  # fmt: skip
        elif phase == "countdown":
            n = math.ceil(match.timer)
            self.text(screen, str(n) if n > 0 else "GO!", 120, AMBER, (cx, cy - 130))  # above the puck
        elif phase == "away":
            self.shade(screen)
            gone = [
                (name or "A player", int(left))
                for name, left in ((match.left_name, match.left_away), (match.right_name, match.right_away))
                if left > 0
            ]
            who = " and ".join(name for name, _ in gone) or "A player"
            self.text(screen, f"{who} lost connection", 64, WHITE, (cx, cy - 50))
            seconds = max((left for _, left in gone), default=0)
            self.text(screen, f"Waiting for them to come back: {seconds} s", 40, AMBER, (cx, cy + 10))
            hint = "Same seats, same score: play resumes after a countdown."
            self.text(screen, hint, 28, DIM, (cx, cy + 55))
        elif phase == "paused":
            self.shade(screen)
            self.text(screen, "Opponent left", 64, WHITE, (cx, cy - 20))
            self.text(screen, "The game resumes when a player takes the empty side.", 28, DIM, (cx, cy + 30))
        elif phase == "over":
            self.shade(screen, 140)
            won = match.left_name if match.winner == LEFT_SIDE else match.right_name
            colour = BLUE if match.winner == LEFT_SIDE else RED
            me = self.my_entity
            mine = isinstance(me, Mallet) and me.side == match.winner
            self.text(
                screen, "You win!" if mine else f"{won or 'Somebody'} wins!", 120, colour, (cx, cy - 30)
            )
            self.text(screen, f"{match.left} : {match.right}", 40, WHITE, (cx, cy + 45))
            self.text(screen, "Press SPACE for a rematch", 28, DIM, (cx, cy + 90))
        if self.banner is not None and phase != "over":
            text, colour, _ = self.banner
            size = 120 if text == "GOAL!" else 40
            self.text(screen, text, size, colour, (cx, HUD + 34 if size == 40 else cy))

    def close(self) -> None:
        """Close the connection, and the window unless ``keep_window``.  Idempotent."""
        if self.keep_window:
            self.sprocket.close()
        else:
            super().close()

    # -- small helpers --------------------------------------------------------------------------------

    def find(self, kind: type) -> Any:
        """The first entity of that type, or None."""
        return next((e for e in self.entities.values() if isinstance(e, kind)), None)

    def text(self, screen: pygame.Surface, text: str, size: int, colour: tuple[int, int, int],
             pos: tuple[float, float], anchor: str = "center") -> None:  # fmt: skip
        """Draw ``text`` with a dark drop shadow (readable over the rink, the puck and the mallets)."""
        font = self.fonts[size]
        surface = font.render(text, True, colour)
        rect = surface.get_rect(**{anchor: (int(pos[0]), int(pos[1]))})
        if size >= 28:
            shadow = font.render(text, True, SHADOW)
            offset = max(2, size // 20)
            for dx, dy in ((offset, offset), (-1, offset), (offset, -1)):
                screen.blit(shadow, rect.move(dx, dy))
        screen.blit(surface, rect)

    def shade(self, screen: pygame.Surface, alpha: int = 170) -> None:
        veil = pygame.Surface((WIDTH, HEIGHT - HUD), pygame.SRCALPHA)
        veil.fill((6, 8, 18, alpha))
        screen.blit(veil, (0, HUD))

    def burst(self, x: float, y: float, count: int) -> None:
        for _ in range(count):
            angle = self.random.uniform(0, math.tau)
            speed = self.random.uniform(80, 380)
            self.particles.append([x, y, math.cos(angle) * speed, math.sin(angle) * speed, 0.45])

    def play(self, name: Any) -> None:
        sound = self.sounds.get(name) if isinstance(name, str) else None
        if sound is not None:
            sound.play()


def _load_sounds() -> dict[str, Any]:
    try:
        pygame.mixer.init()
    except pygame.error:
        return {}  # no sound device: play silently
    sounds = {}
    for name in ("hit", "wall", "goal", "win", "beep", "join"):
        try:
            sounds[name] = pygame.mixer.Sound(ASSETS / "sounds" / f"{name}.wav")
        except (pygame.error, FileNotFoundError):
            continue
    sounds["go"] = sounds.get("join")
    return sounds
