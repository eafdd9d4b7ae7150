"""Step 00, a plain Django project: the pages exist, and their WebSocket cannot open yet."""

import re
from html.parser import HTMLParser

import pytest
from conftest import STEP, handshake

ROOM_PAGE_IDS = ["room-title", "connection-state", "chat-log", "chat-message-input",
                 "chat-message-submit", "event-log"]


def test_index_page_asks_for_a_room_name(client):
    response = client.get("/chat/")
    assert response.status_code == 200, "/chat/ should be the index page: see chat/urls.py"
    html = response.content.decode()
    for element_id in ["room-name-input", "room-name-submit"]:
        assert f'id="{element_id}"' in html, f"the index page needs an element with id {element_id}"


def test_room_page_has_the_chat_elements(client):
    response = client.get("/chat/lobby/")
    assert response.status_code == 200, "/chat/<room>/ should be the room page: see chat/urls.py"
    html = response.content.decode()
    for element_id in ROOM_PAGE_IDS:
        assert f'id="{element_id}"' in html, f"the room page needs an element with id {element_id}"


class ElementKinds(HTMLParser):
    """Reads a page's HTML into {id: (tag, type, autofocus)} for every element that has an id."""

    def __init__(self, html):
        super().__init__()
        self.kinds = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.kinds[attrs["id"]] = (tag, attrs.get("type"), "autofocus" in attrs)


# The official Channels tutorial's elements, by page, as (tag, type) and whether the page puts the
# keyboard there: its Selenium tests (part 4) type a room name, then a message, into whatever has
# the focus, press Enter, and read #chat-log's value.
OFFICIAL_KINDS = {
    "/chat/": {"room-name-input": ("input", "text", True), "room-name-submit": ("input", "button", False)},
    "/chat/lobby/": {"chat-log": ("textarea", None, False), "chat-message-input": ("input", "text", True),
                     "chat-message-submit": ("input", "button", False)},
}
SHOWN = {("input", "text"): '<input type="text">', ("input", "button"): '<input type="button">',
         ("textarea", None): "<textarea>"}


def test_pages_keep_the_official_tutorials_element_kinds(client):
    for path, elements in OFFICIAL_KINDS.items():
        template = "index.html" if path == "/chat/" else "room.html"
        kinds = ElementKinds(client.get(path).content.decode()).kinds
        for element_id, (tag, kind, focused) in elements.items():
            found = kinds.get(element_id)
            assert found and found[:2] == (tag, kind), (
                f"#{element_id} on {path} should be a {SHOWN[tag, kind]}, as in the official Channels tutorial, "
                f"whose tests rely on it (chat/templates/chat/{template}); found: "
                + (f"<{found[0]}{f' type={found[1]!r}' if found[1] else ''}>" if found else "no such element")
            )
            if focused:
                assert found[2], (
                    f"#{element_id} on {path} should have autofocus, so that what is typed on the page goes "
                    f"there (chat/templates/chat/{template})"
                )


def test_room_page_script_uses_the_browser_websocket_api(client):
    html = client.get("/chat/lobby/").content.decode()
    for piece in ["new WebSocket(", "window.location", "onopen", "onmessage", "onerror", "onclose",
                  "readyState", "JSON.stringify", "JSON.parse"]:
        assert piece in html, f"the room page's script should use {piece}: see chat/templates/chat/room.html"


def test_room_name_reaches_the_script_through_json_script(client):
    html = client.get("/chat/lobby_2/").content.decode()
    assert '<script id="room-name" type="application/json">"lobby_2"</script>' in html, (
        'pass the room name to the script with {{ room_name|json_script:"room-name" }}, which escapes it'
    )
    # From step 08 the page also links to the login page with ?next=/chat/lobby_2/, an HTML
    # attribute that Django escapes for HTML, which is right there: only scripts are in question.
    scripts = "".join(re.findall(r"<script(?![^>]*application/json)[^>]*>.*?</script>", html, re.DOTALL))
    assert "lobby_2" not in scripts, (
        "the room name should be in the page through json_script only: {{ room_name }} typed into the "
        "script (const roomName = \"{{ room_name }}\") is escaped for HTML, not for JavaScript. "
        "Read it back with JSON.parse(document.getElementById(\"room-name\").textContent)"
    )


def test_index_page_checks_names_with_the_rule_of_chat_rooms(client):
    from chat.rooms import ROOM_NAME_REGEX

    html = client.get("/chat/").content.decode()
    assert f'pattern="{ROOM_NAME_REGEX}"' in html, (
        "#room-name-input should carry chat/rooms.py's ROOM_NAME_REGEX as its pattern, so the browser "
        "refuses a name the server would refuse"
    )


@pytest.mark.parametrize("room", ["my%20room", "caf%C3%A9", "%3Cb%3Ehi", "a" * 95])
def test_a_room_name_that_breaks_the_rule_gets_400_and_the_rule(client, room):
    from chat.rooms import ROOM_NAME_RULE

    response = client.get(f"/chat/{room}/")
    html = response.content.decode()
    assert response.status_code == 400, (
        f"/chat/{room}/ should be refused with 400 by views.room, using chat/rooms.py's rule"
    )
    assert ROOM_NAME_RULE in html, "the 400 page should say what a room name may be"
    assert "<b>hi" not in html, "the refused name must be shown escaped, never as HTML"


def test_room_page_never_writes_network_text_as_html(client):
    html = client.get("/chat/lobby/").content.decode()
    assert "innerHTML" not in html, (
        "text from the WebSocket must be shown with textContent (room.html, base.html), "
        "never innerHTML, or another user's message could run script in your page"
    )


@pytest.mark.until("00")
def test_plain_django_cannot_accept_the_handshake(server):
    _, _, response = handshake(server, STEP.ws_path)
    status = response.splitlines()[0]
    assert " 101 " not in status, "step 00 should not speak WebSocket yet: that is step 01's job"
    assert " 404 " in status, f"Django's own runserver should answer the handshake with 404, not {status!r}"


@pytest.mark.browser
def test_index_form_opens_the_room_page(open_page):
    page = open_page("/chat/")
    page.find("room-name-input").send_keys("lobby\n")
    page.wait_for(lambda: page.driver.current_url.endswith("/chat/lobby/"),
                  "pressing Enter in #room-name-input should go to /chat/lobby/")
    assert page.text("room-title") == "lobby", "the room page should show its room name in #room-title"


@pytest.mark.browser
def test_index_form_refuses_a_bad_name_where_it_is_typed(open_page):
    page = open_page("/chat/")
    page.find("room-name-input").send_keys("my room\n")
    page.wait_for(lambda: "cannot be a room" in page.text("room-name-error"),
                  "#room-name-error should explain the rule when the name breaks it")
    assert page.driver.current_url.endswith("/chat/"), "a bad name must not leave the index page"


@pytest.mark.browser
@pytest.mark.until("00")
def test_event_log_shows_the_failed_handshake(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("close code=1006", "with no WebSocket server, the page should log close code=1006")
    events = page.events()
    assert events[0] == "error", f"the browser fires error before close when a handshake fails: {events}"
    assert page.text("connection-state") == "3 CLOSED", "readyState should end at 3 (CLOSED)"


@pytest.mark.browser
@pytest.mark.until("00")
def test_the_failed_handshake_is_the_consoles_only_error(open_page):
    page = open_page("/chat/lobby/")
    page.console_errors()  # drop what earlier checks' pages left in the log
    page.driver.refresh()
    page.wait_for_event("close code=1006", "with no WebSocket server, the page should log close code=1006")
    errors = page.console_errors()
    # The one error is this step's lesson: Chromium reports the refused handshake.
    assert [error for error in errors if "WebSocket connection to" not in error] == [], (
        "the failed handshake should be the console's only error (a missing favicon is a 404: "
        f"chat/templates/chat/base.html gives the page an empty icon): {errors}"
    )
    assert any("WebSocket connection to" in error for error in errors), (
        f"the browser console should report the failed WebSocket handshake: {errors}"
    )
