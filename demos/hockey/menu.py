"""The demo's menu as a state machine: keys in, a :class:`Choice` out.  Pure: no pygame, no sockets.

``./play`` with no mode flag shows it (drawn by :mod:`demos.hockey.menu_screen`, which feeds it keys, typed
text, the LAN servers a :class:`~sprocket.game.ServerBrowser` hears and the rooms a server lists).

Screens: ``main`` (your name; Quick match vs a bot; Find a game; Host a game; Join with a code; Quit),
``find`` (the servers announcing on the LAN, live), ``server`` (one server's open rooms, live: Quick join or
a room), ``code`` (a join code and a server address, typed, or the address picked from the LAN list).
Keys are words: ``up``, ``down``, ``left``, ``right``, ``enter``, ``escape``, ``backspace``, ``tab``;
typed characters come through :meth:`MenuModel.type`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sprocket import DEFAULT_PORT
from sprocket.game import RoomInfo, ServerInfo
from sprocket.game.rooms import CODE_ALPHABET, CODE_LENGTH, normalize_code

from .rooms import APP, ROOM_TYPE, RoomPlan

__all__ = ["MAIN_ITEMS", "MAX_NAME", "Choice", "MenuModel", "parse_address"]

#: The rows of the main screen, top to bottom (``name`` is the name field).
MAIN_ITEMS = ("name", "quick", "find", "host", "code", "quit")
#: The longest player name (the rink's score bar shows 16 characters).
MAX_NAME = 16
_ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-:")
MAX_ADDRESS = 64


@dataclass(frozen=True)
class Choice:
    """What the player chose: ``action`` is ``"quick"`` (a match against a bot, hosted here), ``"host"``
    (host rooms others see, and play in one), ``"join"`` (``host``:``port``, following ``plan``) or
    ``"quit"``; ``name`` is the name typed."""

    action: str
    name: str
    host: str = ""
    port: int = DEFAULT_PORT
    plan: RoomPlan | None = None


def parse_address(text: str) -> tuple[str, int] | None:
    """``HOST`` or ``HOST:PORT`` as typed (the port defaults to 7777): (host, port), or None if it is not
    one.  Raises nothing."""
    text = text.strip()
    host, colon, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host or any(c not in _ADDRESS_CHARS for c in host.lower()) or ":" in host:
        return None
    if not colon:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        return None
    return host, int(port_text)


def server_label(server: ServerInfo) -> str:
    """One LAN server as the list shows it."""
    where = f"{server.address}:{server.port}"
    return f"{server.name}  ({where})"


@dataclass
class MenuModel:
    """The menu's state.  Feed it :meth:`key` and :meth:`type`; it answers a :class:`Choice` (or None:
    stay in the menu).  :attr:`error` is the message shown in red on the current screen (a failed
    game, a bad code); any key clears it.  Never raises for any key or text."""

    name: str = "You"
    name_edited: bool = False  # the first letter typed replaces the default "You" instead of adding to it
    screen: str = "main"
    cursor: int = 1  # the row selected on this screen (main: Quick match)
    error: str | None = None
    servers: list[ServerInfo] = field(default_factory=list)  # what the LAN browser hears now
    browse_error: str | None = None  # the LAN cannot be listened on
    server: ServerInfo | None = None  # the server whose rooms the ``server`` screen shows
    rooms: list[RoomInfo] | None = None  # its open rooms (None: not heard yet)
    server_kind: str | None = None  # "rooms" (a RoomServer), "single" (one match), None: not known yet
    server_error: str | None = None  # the server cannot be reached
    code: str = ""
    address: str = ""
    field_index: int = 0  # on the code screen: 0 the code, 1 the address, 2 Join

    # -- what the screen shows -------------------------------------------------------------------------

    def rows(self) -> list[str]:
        """The selectable rows of the current screen, as keys: main items; ``server:N``, ``back`` on the
        find screen; ``quick``, ``room:N``, ``join``, ``back`` on a server's; ``code``, ``address``,
        ``join``, ``back`` on the code screen."""
        if self.screen == "main":
            return list(MAIN_ITEMS)
        if self.screen == "find":
            return [f"server:{i}" for i in range(len(self.servers))] + ["back"]
        if self.screen == "server":
            if self.server_kind == "single":
                return ["join", "back"]
            if self.server_kind == "rooms":
                return ["quick"] + [f"room:{i}" for i in range(len(self.rooms or []))] + ["back"]
            return ["back"]
        return ["code", "address", "join", "back"]

    @property
    def selected(self) -> str:
        """The key of the selected row."""
        rows = self.rows()
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        return rows[self.cursor]

    # -- what the screen feeds in ----------------------------------------------------------------------

    def set_servers(self, servers: Sequence[ServerInfo]) -> None:
        """The LAN list changed (or not): keep the same server selected as it moves in the list."""
        chosen = self.selected if self.screen == "find" else ""
        before = self.servers[int(chosen[7:])] if chosen.startswith("server:") else None
        self.servers = [s for s in servers if s.app in (APP, "")]
        if before is not None:
            same = [
                i for i, s in enumerate(self.servers) if (s.address, s.port) == (before.address, before.port)
            ]
            self.cursor = same[0] if same else min(self.cursor, len(self.servers))

    def set_rooms(self, rooms: Sequence[RoomInfo]) -> None:
        """The open hockey rooms of the server shown (a RoomServer): keep the same room selected."""
        chosen = self.selected if self.screen == "server" else ""
        before = (self.rooms or [])[int(chosen[5:])].code if chosen.startswith("room:") else None
        self.server_kind = "rooms"
        self.rooms = [room for room in rooms if room.type == ROOM_TYPE]
        if before is not None:
            same = [i for i, room in enumerate(self.rooms) if room.code == before]
            self.cursor = 1 + same[0] if same else min(self.cursor, len(self.rooms) + 1)

    def set_single(self) -> None:
        """The server shown hosts one match (a plain HockeyServer), not rooms."""
        self.server_kind = "single"
        self.cursor = 0

    # -- input -------------------------------------------------------------------------------------------

    def type(self, text: str) -> None:
        """Characters typed: into the name on the main screen (whichever row is selected: type your name,
        then Enter plays), into the code or the address on the code screen; ignored elsewhere.  Control
        characters are dropped."""
        self.error = None
        text = "".join(c for c in text if c.isprintable())
        if self.screen == "main":
            if text:
                self._start_name()
            self.name = (self.name + text)[:MAX_NAME]
        elif self.screen == "code" and self.field_index == 0:
            letters = [c for c in text.upper() if c in CODE_ALPHABET]
            self.code = (self.code + "".join(letters))[:CODE_LENGTH]
        elif self.screen == "code" and self.field_index == 1:
            self.address = (self.address + "".join(c for c in text if c.lower() in _ADDRESS_CHARS))[
                :MAX_ADDRESS
            ]

    def key(self, key: str) -> Choice | None:
        """One key press; the :class:`Choice` it makes, or None."""
        self.error = None
        if self.screen == "code":
            return self._code_key(key)
        rows = self.rows()
        if key in ("up", "down", "tab"):
            step = -1 if key == "up" else 1
            self.cursor = (self.cursor + step) % len(rows)
        elif key == "backspace" and self.screen == "main":
            if not self._start_name():
                self.name = self.name[:-1]
        elif key == "escape":
            return self._back()
        elif key == "enter":
            return self._enter(self.selected)
        return None

    def click(self, row: int) -> Choice | None:
        """A click on row ``row`` of the current screen: select it and press Enter."""
        self.error = None
        if not 0 <= row < len(self.rows()):
            return None
        if self.screen == "code":
            self.field_index = min(row, 2)
            self.cursor = row
            return self._code_key("enter") if row >= 2 else None
        self.cursor = row
        return self._enter(self.selected)

    # -- internals -----------------------------------------------------------------------------------------

    def _start_name(self) -> bool:
        # True if this first edit cleared the default name (a placeholder, not something to append to).
        first = not self.name_edited
        self.name_edited = True
        if first and self.name == "You":
            self.name = ""
            return True
        return False

    def _choice(self, action: str, **fields: object) -> Choice:
        name = self.name.strip() or "You"
        return Choice(action, name, **fields)  # type: ignore[arg-type]

    def _go(self, screen: str, cursor: int = 0) -> None:
        self.screen, self.cursor = screen, cursor

    def _back(self) -> Choice | None:
        if self.screen == "main":
            return self._choice("quit")
        if self.screen == "server":
            self._leave_server()
            self._go("find", self.servers.index(self.server) if self.server in self.servers else 0)
        else:
            self._go("main", MAIN_ITEMS.index(self.screen))
        return None

    def _leave_server(self) -> None:
        self.server = None
        self.rooms = None
        self.server_kind = None
        self.server_error = None

    def _enter(self, row: str) -> Choice | None:
        if row == "back":
            return self._back()
        if self.screen == "main":
            if row == "name":
                self.cursor += 1  # done typing: on to Quick match
            elif row == "quick":
                return self._choice("quick")
            elif row == "host":
                return self._choice("host")
            elif row == "find":
                self._go("find")
            elif row == "code":
                self._go("code")
                self.field_index = 0
                if not self.address and self.servers:
                    self.address = _address_of(self.servers[0])
            elif row == "quit":
                return self._choice("quit")
            return None
        if self.screen == "find":
            self.server = self.servers[int(row[7:])]
            self.rooms = None
            self.server_kind = None
            self.server_error = None
            self._go("server")
            return None
        # The server screen.
        server = self.server
        if server is None:
            return None
        if row == "quick" or row == "join":
            return self._choice("join", host=server.address, port=server.port, plan=RoomPlan("quick"))
        room = (self.rooms or [])[int(row[5:])]
        if room.full:
            self.error = f"Room {room.code} is full: pick another, or Quick join"
            return None
        return self._choice(
            "join", host=server.address, port=server.port, plan=RoomPlan("join", code=room.code)
        )

    def _code_key(self, key: str) -> Choice | None:
        if key == "escape":
            return self._back()
        if key in ("up", "down", "tab"):
            self.field_index = (self.field_index + (-1 if key == "up" else 1)) % 4
        elif key == "backspace":
            if self.field_index == 0:
                self.code = self.code[:-1]
            elif self.field_index == 1:
                self.address = self.address[:-1]
        elif key in ("left", "right") and self.field_index == 1 and self.servers:
            # Pick the address from the LAN list instead of typing it.
            known = [_address_of(s) for s in self.servers]
            at = known.index(self.address) if self.address in known else (-1 if key == "right" else 0)
            self.address = known[(at + (1 if key == "right" else -1)) % len(known)]
        elif key in ("left", "right") and self.field_index >= 2:
            self.field_index = 5 - self.field_index  # Join and Back sit side by side
        elif key == "enter":
            if self.field_index == 3:
                return self._back()
            if self.field_index == 0 and not (normalize_code(self.code) and parse_address(self.address)):
                self.field_index = 1  # the address still to fill in
                return None
            return self._join_code()
        self.cursor = self.field_index
        return None

    def _join_code(self) -> Choice | None:
        code = normalize_code(self.code)
        if code is None:
            self.field_index = 0
            self.error = f"A join code is {CODE_LENGTH} letters (there is no I, L or O)"
            return None
        where = parse_address(self.address)
        if where is None:
            self.field_index = 1
            self.error = (
                "Type the server's address (like 192.168.1.5 or host:7777), or pick one with Left / Right"
            )
            return None
        return self._choice("join", host=where[0], port=where[1], plan=RoomPlan("join", code=code))


def _address_of(server: ServerInfo) -> str:
    return server.address if server.port == DEFAULT_PORT else f"{server.address}:{server.port}"
