"""The demo's menu as a state machine (keys in, a Choice out) and the room plan, in memory: no window, no
sockets.  The menu drawn in a window, against real servers, is in test_hockey_rooms.py."""

from __future__ import annotations

from typing import Any

import pytest

from demos.hockey.menu import MAIN_ITEMS, MAX_NAME, Choice, MenuModel, parse_address
from demos.hockey.rooms import RoomPlan
from sprocket.errors import InvalidArgument
from sprocket.game import LobbyRefused, RoomInfo, RoomLeft, ServerInfo

pytestmark = pytest.mark.timeout(30)


def server(name: str, address: str, port: int = 7777, app: str = "sprocket-hockey-1") -> ServerInfo:
    return ServerInfo(name, address, port, app, 1, 0, None, 0.0, name.lower())


def room(code: str, players: int = 1, state: str = "waiting") -> RoomInfo:
    return RoomInfo(code, "hockey", None, players, 2, state)


def press(model: MenuModel, *keys: str) -> Choice | None:
    """Press the keys in turn; the first Choice made (the keys after it are not pressed)."""
    for key in keys:
        choice = model.key(key)
        if choice is not None:
            return choice
    return None


def test_enter_on_the_first_screen_is_a_quick_match_as_you() -> None:
    model = MenuModel()
    assert model.screen == "main" and model.selected == "quick"  # Enter at once: what ./play did before
    assert press(model, "enter") == Choice("quick", "You")


def test_the_name_field_takes_typing_and_backspace_and_goes_into_every_choice() -> None:
    model = MenuModel()
    press(model, "up")
    assert model.selected == "name"
    press(model, "backspace", "backspace", "backspace")
    model.type("Ada\x07 Lovelace and more letters")  # a control character is dropped
    assert model.name == "Ada Lovelace and" and len(model.name) == MAX_NAME
    press(model, "backspace")
    assert press(model, "enter") is None and model.selected == "quick"  # Enter leaves the field
    assert press(model, "down", "down", "enter") == Choice("host", "Ada Lovelace an")


def test_typing_on_the_first_screen_edits_the_name_whatever_row_is_selected() -> None:
    model = MenuModel()
    assert model.selected == "quick"
    model.type("Ada")  # the default "You" is a placeholder: the first letter replaces it
    assert model.name == "Ada" and model.selected == "quick"  # still on Quick match: Enter plays
    press(model, "backspace")
    assert model.name == "Ad"
    assert press(model, "enter") == Choice("quick", "Ad")
    given = MenuModel(name="Bea")  # a name given on the command line is kept and added to
    given.type("trice")
    assert given.name == "Beatrice"


def test_an_empty_name_plays_as_you() -> None:
    assert press(MenuModel(name="  "), "enter") == Choice("quick", "You")


def test_arrows_wrap_around_and_escape_or_quit_ends_the_menu() -> None:
    model = MenuModel()
    press(model, "up", "up")
    assert model.selected == MAIN_ITEMS[-1] == "quit"
    press(model, "down")
    assert model.selected == "name"
    assert press(model, "escape") == Choice("quit", "You")
    assert press(MenuModel(cursor=MAIN_ITEMS.index("quit")), "enter") == Choice("quit", "You")


def test_find_a_game_lists_servers_live_and_keeps_the_selection_as_the_list_changes() -> None:
    model = MenuModel()
    press(model, "down", "enter")
    assert model.screen == "find" and model.rows() == ["back"]  # nothing heard yet
    ada, bob, carl = server("Ada", "127.0.0.2"), server("Bob", "127.0.0.3"), server("Carl", "127.0.0.4")
    model.set_servers([ada, bob])
    press(model, "down")
    assert model.selected == "server:1"
    model.set_servers([ada, carl, bob])  # Carl appears above Bob: Bob stays selected
    assert model.selected == "server:2" and model.servers[2] is bob
    model.set_servers([ada, carl, bob, server("Chess", "127.0.0.5", app="chess-2")])
    assert [s.name for s in model.servers] == ["Ada", "Carl", "Bob"]  # another game is not listed
    assert press(model, "escape") is None and model.screen == "main" and model.selected == "find"


def test_a_rooms_server_shows_quick_join_and_its_rooms_and_a_room_is_joined_by_its_code() -> None:
    model = MenuModel(name="Ada")
    press(model, "down", "enter")
    model.set_servers([server("Rink", "127.0.0.2", 7800)])
    assert press(model, "enter") is None and model.screen == "server" and model.server is not None
    assert model.rows() == ["back"]  # its rooms are not known yet
    model.set_rooms([room("ABCDE", 1), room("FGHJK", 2, "playing 1:0")])
    assert model.rows() == ["quick", "room:0", "room:1", "back"]
    press(model, "down")
    model.set_rooms([room("MNPQR", 1), room("ABCDE", 1), room("FGHJK", 2)])  # a new room above: same pick
    assert model.selected == "room:1"
    assert press(model, "enter") == Choice("join", "Ada", "127.0.0.2", 7800, RoomPlan("join", code="ABCDE"))
    model.screen, model.cursor = "server", 3
    assert press(model, "enter") is None and "full" in (model.error or "")  # FGHJK: refused here already
    assert press(model, "up", "up", "up", "enter") == Choice("join", "Ada", "127.0.0.2", 7800, RoomPlan())
    model.screen = "server"
    assert press(model, "escape") is None and model.screen == "find" and model.server is None


def test_a_single_match_server_is_joined_as_it_is() -> None:
    model = MenuModel(screen="find")
    model.set_servers([server("Solo", "127.0.0.9")])
    press(model, "enter")
    model.set_single()
    assert model.rows() == ["join", "back"]
    choice = press(model, "enter")
    assert choice is not None and (choice.action, choice.host, choice.port) == ("join", "127.0.0.9", 7777)


def test_join_with_a_code_types_the_code_and_the_address_and_makes_a_join_choice() -> None:
    model = MenuModel(name="Bo", cursor=MAIN_ITEMS.index("code"))
    press(model, "enter")
    assert model.screen == "code" and model.field_index == 0
    model.type("ab-c i1l0 d e f")  # lower case, dashes, spaces and letters a code never has: dropped
    assert model.code == "ABCDE"  # five letters at most
    press(model, "backspace")
    model.type("z")
    assert press(model, "enter") is None and model.field_index == 1  # on to the address
    model.type("127.0.0.1:7801\n")
    assert model.address == "127.0.0.1:7801"
    assert press(model, "enter") == Choice("join", "Bo", "127.0.0.1", 7801, RoomPlan("join", code="ABCDZ"))
    # With the address already there (picked from the LAN, or typed before), Enter after the code joins.
    again = MenuModel(name="Bo", screen="code", address="127.0.0.1:7801")
    again.type("QRSTU")
    assert press(again, "enter") == Choice("join", "Bo", "127.0.0.1", 7801, RoomPlan("join", code="QRSTU"))


def test_join_with_a_code_says_what_is_wrong_instead_of_joining() -> None:
    model = MenuModel(screen="code", code="ABC", address="127.0.0.1", field_index=1)
    assert press(model, "enter") is None
    assert model.error is not None and "5 letters" in model.error and model.field_index == 0
    model.type("DE")
    model.address, model.field_index = "no such host!", 1
    assert press(model, "enter") is None and model.error is not None and "address" in model.error
    press(model, "backspace")  # any key clears the error
    assert model.error is None


def test_the_code_screen_picks_the_address_from_the_lan_list() -> None:
    model = MenuModel(cursor=MAIN_ITEMS.index("code"))
    model.set_servers([server("Ada", "127.0.0.2"), server("Bob", "127.0.0.3", 7900)])
    press(model, "enter")
    assert model.address == "127.0.0.2"  # the first server found, filled in
    press(model, "tab", "right")
    assert model.address == "127.0.0.3:7900"
    press(model, "right")
    assert model.address == "127.0.0.2"
    press(model, "left")
    assert model.address == "127.0.0.3:7900"
    press(model, "down", "right")
    assert model.field_index == 3  # Join and Back side by side
    press(model, "left", "right")
    assert model.field_index == 3 and press(model, "enter") is None and model.screen == "main"


def test_clicks_select_and_press_a_row() -> None:
    model = MenuModel()
    assert model.click(MAIN_ITEMS.index("host")) == Choice("host", "You")
    assert model.click(99) is None
    model.click(MAIN_ITEMS.index("code"))
    assert model.screen == "code"
    assert model.click(1) is None and model.field_index == 1


def test_addresses_as_typed() -> None:
    assert parse_address("192.168.1.5") == ("192.168.1.5", 7777)
    assert parse_address(" rink.local:7800 ") == ("rink.local", 7800)
    for bad in ("", ":7777", "host:", "host:0", "host:70000", "host:12ab", "a b", "[::1]:7777"):
        assert parse_address(bad) is None, bad


# -- the room plan: what a window or a bot asks for in a rooms server's lobby ------------------------------


class FakeLobby:
    """The Lobby attributes a plan reads, and the requests it records."""

    def __init__(self) -> None:
        self.available = False
        self.room: RoomInfo | None = None
        self.pending: str | None = None
        self.sent: list[tuple[str, Any]] = []

    def quick_join(self, type: str) -> None:
        self.sent.append(("quick", type))
        self.pending = "quick"

    def join(self, code: str) -> None:
        self.sent.append(("join", code))
        self.pending = "join"

    def create(self, type: str, *, private: bool = True) -> None:
        self.sent.append(("create", private))
        self.pending = "create"


def test_a_plan_asks_once_per_lobby_and_not_on_a_plain_server() -> None:
    lobby, plan = FakeLobby(), RoomPlan()
    assert not plan.step(lobby)  # type: ignore[arg-type]  # a plain HockeyServer: no lobby, nothing sent
    lobby.available = True
    assert plan.step(lobby) and not plan.step(lobby)  # type: ignore[arg-type]
    lobby.pending = None  # answered, but the answer is not seen yet: still one request
    assert not plan.step(lobby)  # type: ignore[arg-type]
    lobby.room = room("ABCDE")
    assert not plan.step(lobby) and lobby.sent == [("quick", "hockey")]  # type: ignore[arg-type]


def test_a_quick_plan_joins_again_after_its_room_closed_or_the_session_was_lost() -> None:
    lobby, plan = FakeLobby(), RoomPlan()
    lobby.available = True
    plan.step(lobby)  # type: ignore[arg-type]
    lobby.room, lobby.pending = room("ABCDE"), None
    plan.step(lobby)  # type: ignore[arg-type]
    plan.left(RoomLeft("ABCDE", "the room closed: it failed", True))
    lobby.room = None
    assert plan.step(lobby) and plan.failure is None  # type: ignore[arg-type]
    lobby.available, lobby.pending = False, None  # the session was lost: a fresh connection
    plan.step(lobby)  # type: ignore[arg-type]
    lobby.available = True
    assert plan.step(lobby) and plan.asked == 3  # type: ignore[arg-type]


def test_a_plan_for_one_room_fails_with_the_servers_reason_and_asks_no_more() -> None:
    lobby, plan = FakeLobby(), RoomPlan("join", code="ABCDE")
    lobby.available = True
    plan.step(lobby)  # type: ignore[arg-type]
    lobby.pending = None
    plan.refused(LobbyRefused("join?", "full", "room ABCDE is full (2 players)"))
    assert plan.failure == "room ABCDE is full (2 players)"
    assert not plan.step(lobby) and lobby.sent == [("join", "ABCDE")]  # type: ignore[arg-type]
    created = RoomPlan("create", private=True)
    created.left(RoomLeft("FGHJK", "the room closed: its game failed", True))
    assert created.failure == "the room closed: its game failed"


def test_a_bad_plan_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        RoomPlan("spectate")
    with pytest.raises(InvalidArgument):
        RoomPlan("join")
