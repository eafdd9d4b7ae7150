"""Step 00, a plain Django project: the pages exist, and their WebSocket cannot open yet."""

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


def test_room_page_script_uses_the_browser_websocket_api(client):
    html = client.get("/chat/lobby/").content.decode()
    for piece in ["new WebSocket(", "window.location", "onopen", "onmessage", "onerror", "onclose",
                  "readyState", "JSON.stringify", "JSON.parse"]:
        assert piece in html, f"the room page's script should use {piece}: see chat/templates/chat/room.html"


def test_room_name_reaches_the_script_escaped(client):
    html = client.get("/chat/%3Cb%3Ehi/").content.decode()
    assert "<b>hi" not in html, (
        "the room name came out as raw HTML: pass it to the script with "
        '{{ room_name|json_script:"room-name" }}, which escapes it'
    )
    assert "\\u003Cb\\u003Ehi" in html, 'the room name should be in the page through json_script "room-name"'


def test_room_page_never_writes_network_text_as_html(client):
    html = client.get("/chat/lobby/").content.decode()
    assert "innerHTML" not in html, (
        "text from the WebSocket must be shown with textContent or a textarea's value, "
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
@pytest.mark.until("00")
def test_event_log_shows_the_failed_handshake(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("close code=1006", "with no WebSocket server, the page should log close code=1006")
    events = page.events()
    assert events[0] == "error", f"the browser fires error before close when a handshake fails: {events}"
    assert page.text("connection-state") == "3 CLOSED", "readyState should end at 3 (CLOSED)"
