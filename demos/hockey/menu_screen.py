"""The demo's menu, drawn with pygame in the game's window: it feeds a :class:`~demos.hockey.menu.MenuModel`
keys, typed text and mouse clicks, the servers a :class:`~sprocket.game.ServerBrowser` hears on the LAN, and
the rooms of the server being looked at (a short lobby connection that lists them once a second).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pygame

from sprocket import Sprocket, SprocketError
from sprocket.game import GameClient, RoomList, ServerBrowser
from sprocket.game.app import quiet_sound
from sprocket.game.discovery import DISCOVERY_PORT

from .bot import plain_reason
from .menu import MAIN_ITEMS, Choice, MenuModel
from .rooms import APP, ROOM_TYPE
from .rules import HEIGHT, HUD, WIDTH

ASSETS = Path(__file__).resolve().parents[2] / "assets"
BLUE, RED, AMBER = (90, 200, 255), (255, 96, 140), (255, 196, 90)
WHITE, DIM, FAINT = (236, 240, 255), (150, 160, 185), (95, 104, 130)
GREEN = (140, 255, 170)
SHADOW = (4, 5, 12)
LIST_EVERY = 1.0  # seconds between two room listings asked of the server shown

LABELS = {
    "name": "Name",
    "quick": "Quick match vs a bot",
    "find": "Find a game",
    "host": "Host a game",
    "code": "Join with a code",
    "quit": "Quit",
}
ABOUT = {
    "name": "Type your name: the other player sees it on the score bar.",
    "quick": "You against a bot, right here (the server runs on this machine).",
    "find": "Games announced on your local network, and their open rooms.",
    "host": "Host rooms here that others see in Find a game, and play in the first.",
    "code": "Join a friend's room: type its 5-letter code and their server's address.",
    "quit": "",
}
KEYS = {
    pygame.K_UP: "up",
    pygame.K_DOWN: "down",
    pygame.K_LEFT: "left",
    pygame.K_RIGHT: "right",
    pygame.K_RETURN: "enter",
    pygame.K_KP_ENTER: "enter",
    pygame.K_ESCAPE: "escape",
    pygame.K_BACKSPACE: "backspace",
    pygame.K_TAB: "tab",
}


def browse_bind(broadcast: str) -> str:
    """Where the menu's LAN browser listens: ``127.255.255.255`` (this machine's loopback broadcasts
    only) when announcements go to a loopback address, else everywhere (``""``)."""
    return "127.255.255.255" if broadcast.startswith("127.") else ""


class MenuScreen:
    """The menu in a window of the game's size.  :meth:`run` returns the player's :class:`Choice`;
    :meth:`step` runs one frame (tests drive it).  The window stays open between a game and the menu
    (the game runs with ``keep_window``); :meth:`close` closes the browser and any lobby connection,
    not the window.

    Args:
        model: the menu's state (kept across games: the name, the screen, the error to show).
        discovery_port: the UDP port the LAN browser listens on (``--discovery-port``).
        bind: the address it listens on (see :func:`browse_bind`).

    Raises:
        pygame.error: the window cannot be opened (main() checks the display first).
    """

    def __init__(self, model: MenuModel, *, discovery_port: int = DISCOVERY_PORT, bind: str = "") -> None:
        self.model = model
        quiet_sound()
        pygame.init()
        self.screen = pygame.display.set_mode((WIDTH, HEIGHT))
        self.images = {
            name: pygame.image.load(ASSETS / "images" / f"{name}.png").convert_alpha()
            for name in ("rink", "title", "icon", "mallet_blue", "mallet_red", "puck")
        }
        self.fonts = {size: pygame.font.Font(None, size) for size in (22, 26, 30, 36, 44, 64)}
        title = self.images["title"]
        self.title = pygame.transform.smoothscale(
            title, (title.get_width() * 3 // 5, title.get_height() * 3 // 5)
        )
        self.backdrop = self._backdrop()
        self.clock = pygame.time.Clock()
        self.rects: list[pygame.Rect] = []  # where each row of the current screen was drawn (for the mouse)
        self.frame = 0
        self.browser: ServerBrowser | None = None
        try:
            self.browser = ServerBrowser(port=discovery_port, bind=bind).start()
        except SprocketError as exc:
            model.browse_error = f"Cannot look for games on the network: {exc}"
        self.net: GameClient | None = None  # the lobby connection to the server shown
        self.net_for: tuple[str, int] | None = None
        self.listed_at = -math.inf
        self.show()

    def show(self) -> None:
        """Make the window the menu's again (after a game): caption, icon, key repeat, text input."""
        if not pygame.display.get_init():
            pygame.display.init()
        if pygame.display.get_surface() is None:
            self.screen = pygame.display.set_mode((WIDTH, HEIGHT))
        else:
            self.screen = pygame.display.get_surface()
        pygame.display.set_caption("Sprocket Hockey")
        pygame.display.set_icon(self.images["icon"])
        pygame.key.set_repeat(400, 40)
        pygame.key.start_text_input()

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self) -> Choice:
        """Show the menu until the player chooses; closing the window is ``quit``."""
        self.show()
        while True:
            choice = self.step()
            if choice is not None:
                pygame.key.set_repeat()
                self._close_net()
                return choice

    def step(self, events: list[pygame.event.Event] | None = None) -> Choice | None:
        """One frame: the events (``pygame.event.get()`` unless given), the LAN list, the rooms of the
        server shown, the drawing.  Returns the player's choice, or None."""
        self.clock.tick(60)
        choice = None
        for event in pygame.event.get() if events is None else events:
            choice = self.event(event) or choice
        model = self.model
        if self.browser is not None:
            try:
                model.set_servers(self.browser.poll())
            except SprocketError as exc:  # cannot happen on an open browser; shown rather than raised
                model.browse_error = str(exc)
        self._rooms()
        self.draw()
        pygame.display.flip()
        self.frame += 1
        return choice

    def event(self, event: pygame.event.Event) -> Choice | None:
        """One pygame event: keys, typed text, the mouse, the window's close button."""
        model = self.model
        if event.type == pygame.QUIT:
            return Choice("quit", model.name)
        if event.type == pygame.KEYDOWN and event.key in KEYS:
            return model.key(KEYS[event.key])
        if event.type == pygame.TEXTINPUT:
            model.type(event.text)
        elif event.type == pygame.MOUSEMOTION:
            row = self._row_at(event.pos)
            if row is not None:
                model.cursor = row
                if model.screen == "code":
                    model.field_index = row
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            row = self._row_at(event.pos)
            if row is not None:
                return model.click(row)
        return None

    def close(self) -> None:
        """Stop listening for LAN servers and close the lobby connection (the window stays)."""
        self._close_net()
        if self.browser is not None:
            self.browser.close()

    def _row_at(self, pos: tuple[int, int]) -> int | None:
        return next((i for i, rect in enumerate(self.rects) if rect.collidepoint(pos)), None)

    # -- the server shown: its rooms, over a lobby connection ---------------------------------------------

    def _rooms(self) -> None:
        model = self.model
        server = model.server if model.screen == "server" else None
        where = (server.address, server.port) if server is not None else None
        if where != self.net_for:
            self._close_net()
            self.net_for = where
            if where is not None:
                sprocket = Sprocket(where[0], where[1], name=model.name, app=APP, reconnect=False,
                                    connect_timeout=4.0)  # fmt: skip
                self.net = GameClient(sprocket)
                self.listed_at = -math.inf
        net = self.net
        if net is None or server is None:
            return
        try:
            items = net.poll()
            if net.ready:
                # A hello, not a lobby: a plain HockeyServer with one match.  We were seated for a moment;
                # leave at once (the game joins it properly).
                model.set_single()
                self._close_net(keep_target=True)
                return
            if net.lobby.available:
                now = time.monotonic()
                if now - self.listed_at >= LIST_EVERY:
                    net.lobby.list_rooms(ROOM_TYPE)
                    self.listed_at = now
                for item in items:
                    if isinstance(item, RoomList):
                        model.set_rooms(list(item.rooms))
            elif net.error is not None and not net.sprocket.connected:
                model.server_error = f"Cannot reach {server.name}: {plain_reason(net.error)}"
                self._close_net(keep_target=True)
        except SprocketError as exc:
            model.server_error = f"Cannot reach {server.name}: {exc}"
            self._close_net(keep_target=True)

    def _close_net(self, keep_target: bool = False) -> None:
        if self.net is not None:
            self.net.sprocket.close()
            self.net = None
        if not keep_target:
            self.net_for = None

    # -- drawing ------------------------------------------------------------------------------------------

    def _backdrop(self) -> pygame.Surface:
        surface = pygame.Surface((WIDTH, HEIGHT)).convert()
        surface.fill((10, 12, 24))
        surface.blit(self.images["rink"], (0, HUD))
        veil = pygame.Surface((WIDTH, HEIGHT), pygame.SRCALPHA)
        veil.fill((6, 8, 18, 200))
        surface.blit(veil, (0, 0))
        return surface

    def draw(self) -> None:
        """Draw the current screen."""
        screen = self.screen
        screen.blit(self.backdrop, (0, 0))
        self.rects = []
        model = self.model
        getattr(self, f"_draw_{model.screen}")(screen)
        if model.error:  # below every screen's rows (the main screen's line about the row gives way)
            error = model.error[:1].upper() + model.error[1:]
            self.text(screen, error, 30, RED, (WIDTH / 2, HEIGHT - 76))
        hints = {  # words, not arrow glyphs: pygame's default font has none
            "main": "Type: your name    Up / Down: choose    Enter: select    Esc: quit",
            "find": "Up / Down: choose    Enter: see its rooms    Esc: back",
            "server": "Up / Down: choose    Enter: join    Esc: back",
            "code": "Tab / Up / Down: next field    Enter: join    Esc: back",
        }
        self.text(screen, hints[model.screen], 22, FAINT, (WIDTH / 2, HEIGHT - 30))

    def _heading(self, screen: pygame.Surface, title: str, subtitle: str) -> None:
        screen.blit(self.title, self.title.get_rect(center=(WIDTH // 2, 62)))
        self.text(screen, title, 44, WHITE, (WIDTH / 2, 138))
        self.text(screen, subtitle, 26, DIM, (WIDTH / 2, 172))

    def _draw_main(self, screen: pygame.Surface) -> None:
        model = self.model
        screen.blit(self.title, self.title.get_rect(center=(WIDTH // 2, 92)))
        for image, x in (("mallet_blue", 120), ("mallet_red", WIDTH - 120)):
            screen.blit(self.images[image], self.images[image].get_rect(center=(x, 92)))
        top = 200
        for i, item in enumerate(MAIN_ITEMS):
            selected = model.cursor == i
            rect = pygame.Rect(0, 0, 460, 50)
            rect.center = (WIDTH // 2, top + i * 60)
            self.rects.append(rect)
            if item == "name":
                self.pill(screen, rect, selected, colour=BLUE)
                self.text(screen, "Name", 30, DIM, (rect.left + 22, rect.centery), anchor="midleft")
                caret = "_" if selected and (self.frame // 30) % 2 == 0 else " "
                self.text(
                    screen, model.name + caret, 36, WHITE, (rect.left + 110, rect.centery), anchor="midleft"
                )
            else:
                self.pill(screen, rect, selected)
                self.text(screen, LABELS[item], 36, AMBER if selected else WHITE, rect.center)
        about = ABOUT[MAIN_ITEMS[model.cursor]] if 0 <= model.cursor < len(MAIN_ITEMS) else ""
        if not model.error:
            self.text(screen, about, 26, DIM, (WIDTH / 2, top + len(MAIN_ITEMS) * 60 + 4))

    def _draw_find(self, screen: pygame.Surface) -> None:
        model = self.model
        self._heading(
            screen, "Find a game", "Servers on your network \u2014 the list keeps itself up to date"
        )
        top = 222
        if model.browse_error:
            self.text(screen, model.browse_error, 26, RED, (WIDTH / 2, top))
        elif not model.servers:
            dots = "." * (1 + (self.frame // 20) % 3)
            self.text(screen, f"Looking for games on the network{dots}", 30, DIM, (WIDTH / 2, top + 20))
            self.text(screen, "A friend hosts one with Host a game (or ./play --host).", 26, FAINT,
                      (WIDTH / 2, top + 56))  # fmt: skip
        rows = model.rows()
        y = top + (100 if not model.servers else 0)
        for i, row in enumerate(rows):
            selected = model.cursor == i
            rect = pygame.Rect(0, 0, 720 if row != "back" else 240, 54 if row != "back" else 44)
            rect.midtop = (WIDTH // 2, y)
            self.rects.append(rect)
            self.pill(screen, rect, selected)
            if row == "back":
                self.text(screen, "Back", 30, AMBER if selected else WHITE, rect.center)
            else:
                s = model.servers[int(row[7:])]
                colour = AMBER if selected else WHITE
                self.text(screen, s.name, 36, colour, (rect.left + 22, rect.centery - 8), anchor="midleft")
                self.text(screen, f"{s.address}:{s.port}", 22, DIM, (rect.left + 22, rect.centery + 15),
                          anchor="midleft")  # fmt: skip
                rooms = f"{s.rooms} room{'s' if s.rooms != 1 else ''}"
                playing = f"{s.players} playing"
                self.text(screen, f"{rooms}   {playing}", 30, GREEN if s.players else DIM,
                          (rect.right - 22, rect.centery), anchor="midright")  # fmt: skip
            y += rect.height + 10
            if y > HEIGHT - 150 and i < len(rows) - 2:
                break  # a long list: the first ones, and Back

    def _draw_server(self, screen: pygame.Surface) -> None:
        model = self.model
        server = model.server
        if server is None:
            return
        self._heading(screen, server.name, f"{server.address}:{server.port}")
        top = 214
        if model.server_error:
            self.text(screen, model.server_error, 28, RED, (WIDTH / 2, top + 10))
            top += 50
        elif model.server_kind is None:
            self.text(screen, "Asking for its rooms\u2026", 30, DIM, (WIDTH / 2, top + 10))
            top += 50
        elif model.server_kind == "rooms" and not model.rooms:
            self.text(screen, "No open rooms yet: Quick join opens one.", 28, DIM, (WIDTH / 2, top + 10))
            top += 44
        y = top
        for i, row in enumerate(model.rows()):
            selected = model.cursor == i
            wide = row != "back"
            rect = pygame.Rect(0, 0, 640 if wide else 240, 50 if wide else 44)
            rect.midtop = (WIDTH // 2, y)
            self.rects.append(rect)
            self.pill(screen, rect, selected)
            colour = AMBER if selected else WHITE
            if row == "back":
                self.text(screen, "Back", 30, colour, rect.center)
            elif row == "quick":
                self.text(screen, "Quick join", 36, colour, (rect.left + 22, rect.centery), anchor="midleft")
                self.text(screen, "a free seat, or a new room", 26, DIM, (rect.right - 22, rect.centery),
                          anchor="midright")  # fmt: skip
            elif row == "join":
                self.text(screen, "Join its match", 36, colour, rect.center)
            else:
                room = (model.rooms or [])[int(row[5:])]
                full = room.full
                self.text(screen, f"Room {room.code}", 36, DIM if full else colour,
                          (rect.left + 22, rect.centery), anchor="midleft")  # fmt: skip
                self.text(
                    screen, room.state or "", 26, DIM, (rect.left + 250, rect.centery), anchor="midleft"
                )
                seats = "full" if full else f"{room.players}/{room.max_players}"
                self.text(screen, seats, 30, RED if full else GREEN, (rect.right - 22, rect.centery),
                          anchor="midright")  # fmt: skip
            y += rect.height + 10
            if y > HEIGHT - 150 and i < len(model.rows()) - 2:
                break

    def _draw_code(self, screen: pygame.Surface) -> None:
        model = self.model
        self._heading(screen, "Join with a code", "Your friend's room code, and the server it is on")
        field = model.field_index
        # The code: five letter boxes.
        self.text(screen, "Room code", 30, DIM, (WIDTH / 2, 226))
        box_w, gap = 64, 14
        left = WIDTH // 2 - (5 * box_w + 4 * gap) // 2
        code_rect = pygame.Rect(left - 10, 246, 5 * box_w + 4 * gap + 20, 84)
        self.rects.append(code_rect)
        for i in range(5):
            box = pygame.Rect(left + i * (box_w + gap), 256, box_w, 64)
            active = field == 0 and i == min(len(model.code), 4)
            self.pill(screen, box, active, colour=AMBER if field == 0 else DIM)
            if i < len(model.code):
                self.text(screen, model.code[i], 64, WHITE, box.center)
        # The address.
        self.text(screen, "Server address", 30, DIM, (WIDTH / 2, 362))
        address_rect = pygame.Rect(0, 0, 460, 52)
        address_rect.midtop = (WIDTH // 2, 380)
        self.rects.append(address_rect)
        self.pill(screen, address_rect, field == 1, colour=BLUE)
        caret = "_" if field == 1 and (self.frame // 30) % 2 == 0 else " "
        shown = model.address + caret if model.address or field == 1 else "e.g. 192.168.1.5"
        self.text(screen, shown, 36, WHITE if model.address else FAINT, address_rect.center)
        found = len(model.servers)
        if found:
            servers = f"{found} server{'s' if found != 1 else ''}"
            note = f"Left / Right: pick one of the {servers} found on the network"
        else:
            note = "No server found on the network: type the address"
        self.text(screen, note, 22, DIM, (WIDTH / 2, 446))
        for i, (label, x) in enumerate((("Join", WIDTH // 2 - 130), ("Back", WIDTH // 2 + 130)), start=2):
            rect = pygame.Rect(0, 0, 240, 44)
            rect.midtop = (x, 480)
            self.rects.append(rect)
            self.pill(screen, rect, field == i)
            self.text(screen, label, 30, AMBER if field == i else WHITE, rect.center)

    # -- small helpers ------------------------------------------------------------------------------------

    def pill(self, screen: pygame.Surface, rect: pygame.Rect, selected: bool,
             colour: tuple[int, int, int] = AMBER) -> None:  # fmt: skip
        """A row's rounded box: brighter, with a coloured edge, when selected."""
        box = pygame.Surface(rect.size, pygame.SRCALPHA)
        pygame.draw.rect(box, (28, 32, 62, 235) if selected else (16, 18, 36, 215), box.get_rect(),
                         border_radius=14)  # fmt: skip
        edge = colour if selected else (60, 64, 110)
        pygame.draw.rect(box, (*edge, 255), box.get_rect(), width=2, border_radius=14)
        screen.blit(box, rect)

    def text(self, screen: pygame.Surface, text: str, size: int, colour: tuple[int, int, int],
             pos: tuple[float, float], anchor: str = "center") -> None:  # fmt: skip
        """Draw ``text`` with a drop shadow (as the game does)."""
        if not text:
            return
        font = self.fonts.get(size)
        if font is None:
            font = self.fonts[size] = pygame.font.Font(None, size)
        surface = font.render(text, True, colour)
        rect = surface.get_rect(**{anchor: (int(pos[0]), int(pos[1]))})
        if size >= 30:
            shadow = font.render(text, True, SHADOW)
            screen.blit(shadow, rect.move(2, 2))
        screen.blit(surface, rect)
