"""Step 01, the handshake and the consumer: daphne accepts, and a consumer answers JSON with JSON."""

import base64
import hashlib
import json
import logging

import pytest
from conftest import STEP, handshake, receive_json, recv_json

# Every way a frame can be wrong that chat/protocol.py's parse_frame() knows in step 01, and the
# error code it answers with.
BAD_FRAMES = {
    "not_json": "hello",
    "not_an_object": '["hello"]',
    "missing_message": '{"text": "hello"}',
    "message_not_a_string": '{"message": 42}',
    "empty_message": '{"message": "   "}',
    "binary_frame": b"\x00\x01hello",
}
# What the room page needs before its event log can show `open`.
OPENS = ('the room page should log `open`: that takes "daphne" first in INSTALLED_APPS (mysite/settings.py), '
         "ChatConsumer.as_asgi() for \"websocket\" in mysite/asgi.py, and self.accept() in connect()")


# ---------------------------------------------------------------- task 1: the settings


def test_daphne_comes_first_in_installed_apps(settings):
    assert settings.INSTALLED_APPS[0] == "daphne", (
        'mysite/settings.py: "daphne" should be the first entry of INSTALLED_APPS (it is '
        f"{settings.INSTALLED_APPS[0]!r}): then `manage.py runserver` is daphne's, which speaks "
        "WebSocket; Django's own runserver answers a handshake with 404"
    )


def test_asgi_application_points_at_mysite_asgi(settings):
    found = getattr(settings, "ASGI_APPLICATION", None)
    assert found == "mysite.asgi.application", (
        f'mysite/settings.py: ASGI_APPLICATION should be "mysite.asgi.application" (it is {found!r}), '
        "so that daphne's runserver serves the application of mysite/asgi.py"
    )


# ---------------------------------------------------------------- task 2: the consumer and the router


async def test_consumer_accepts_the_handshake(connect):
    communicator = await connect()
    assert communicator.accepted, (
        "chat/consumers.py: ChatConsumer.connect() should call self.accept(), which answers the handshake with 101"
    )


@pytest.mark.until("01")
async def test_every_path_reaches_the_one_consumer(connect):
    communicator = await connect("/ws/any/path/at/all/")
    assert communicator.accepted, (
        'with no routing yet, every WebSocket path reaches ChatConsumer: mysite/asgi.py\'s "websocket" '
        "entry is ChatConsumer.as_asgi() itself"
    )


def test_handshake_answers_101_with_the_accept_key(server):
    key, _, response = handshake(server, STEP.ws_path)
    lines = response.splitlines()
    assert " 101 " in lines[0], (
        f"the runserver answered the handshake to {STEP.ws_path} with {lines[0]!r}, not 101 Switching "
        'Protocols: it takes "daphne" first in INSTALLED_APPS (mysite/settings.py), a "websocket" entry '
        "for ChatConsumer.as_asgi() in mysite/asgi.py's ProtocolTypeRouter, and self.accept() in connect()"
    )
    headers = {name.lower(): value.strip() for name, value in
               (line.split(":", 1) for line in lines[1:] if line)}
    # RFC 6455: base64(SHA-1(key + this fixed GUID)) proves the server read this very handshake.
    expected = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    assert headers.get("sec-websocket-accept") == expected, (
        "the 101 should carry Sec-WebSocket-Accept, computed from this handshake's key (daphne does it)"
    )
    assert headers.get("upgrade", "").lower() == "websocket", "the 101 should say Upgrade: websocket"


def test_daphne_serves_mysite_asgi_application_directly(start_server):
    """`daphne mysite.asgi:application`, as in production, not only through runserver."""
    server = start_server()
    _, _, response = handshake(server, STEP.ws_path)
    assert " 101 " in response.splitlines()[0], (
        f"`daphne mysite.asgi:application` answered the handshake with {response.splitlines()[0]!r}, not 101: "
        'mysite/asgi.py\'s `application` should be a ProtocolTypeRouter whose "websocket" entry is '
        "ChatConsumer.as_asgi(), and connect() should call self.accept()"
    )


@pytest.mark.browser
def test_page_shows_the_close_code_and_wasclean(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", OPENS)
    page.run("socket.close(1000)")
    page.wait_for_event("close code=1000", "`socket.close(1000)` should show `close code=1000` in the event log")
    assert any("wasClean=true" in event for event in page.events()), (
        f"a close the page asked for should be clean, `wasClean=true`: {page.events()}"
    )
    assert page.text("connection-state") == "3 CLOSED", "the socket state should end at 3 CLOSED"


# ---------------------------------------------------------------- task 3: receive()


async def test_consumer_answers_json_with_json(connect):
    communicator = await connect()
    await communicator.send_to(text_data=json.dumps({"message": "hello"}))
    reply = await receive_json(communicator, 'chat/consumers.py: receive() should answer {"message": "hello"} '
                               'with self.send(text_data=json.dumps({"message": "hello"}))')
    assert reply.get("message") == "hello", (
        f'chat/consumers.py: the reply to {{"message": "hello"}} should carry "message": "hello", got {reply}'
    )


@pytest.mark.parametrize("error", BAD_FRAMES)
async def test_bad_frame_gets_an_error_event_and_the_connection_stays_open(connect, error):
    communicator = await connect()
    frame = BAD_FRAMES[error]
    if isinstance(frame, bytes):
        await communicator.send_to(bytes_data=frame)
    else:
        await communicator.send_to(text_data=frame)
    reply = await receive_json(
        communicator, f"chat/consumers.py: when protocol.parse_frame() raises protocol.ProtocolError for {frame!r}, "
        "receive() should catch it and send error.as_json()")
    assert reply.get("error") == error and reply.get("detail"), (
        f'chat/consumers.py: the frame {frame!r} should be answered with error.as_json(), '
        f'{{"error": "{error}", "detail": ...}}, the ProtocolError that parse_frame() raised; got {reply}'
    )
    await communicator.send_to(text_data='{"message": "still here"}')
    reply = await receive_json(communicator, "after an error event the connection should still answer a good "
                               "frame: receive() should `return` after sending the error event, not raise")
    assert reply.get("message") == "still here", (
        f'after an error event, {{"message": "still here"}} should be answered with its message: {reply}'
    )


async def test_real_client_gets_its_message_back(ws_connect):
    async with ws_connect() as ws:
        await ws.send(json.dumps({"message": "over the wire"}))
        reply = await recv_json(ws, "over daphne, receive() should send a JSON reply (chat/consumers.py)")
    assert reply.get("message") == "over the wire", (
        f'over daphne, the reply to {{"message": "over the wire"}} should carry its message back '
        f"(chat/consumers.py): {reply}"
    )


@pytest.mark.browser
def test_page_opens_the_socket_and_shows_the_reply(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", OPENS)
    assert page.text("connection-state") == "1 OPEN", "the socket state should read 1 OPEN (readyState 1)"
    page.send("hello from the browser")
    page.wait_for(lambda: "hello from the browser" in page.chat_log(),
                  "the reply's message should appear as a line of #chat-log: receive() should send "
                  '{"message": ...} back as JSON (chat/consumers.py)')


@pytest.mark.browser
def test_page_logs_frames_both_ways(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", OPENS)
    page.send("both ways")
    page.wait_for_event('← received {"message": "both ways"',
                        'the event log should show the reply as `← received {"message": "both ways"}`: '
                        "receive() should send json.dumps() of the reply (chat/consumers.py)")
    sent = [event for event in page.events() if event.startswith("→ sent ")]
    assert len(sent) == 1 and sent[0].startswith('→ sent {"message":"both ways"'), (
        "the event log should show the one frame the page sent, `→ sent {\"message\":\"both ways\"}` "
        f"(room.html, given): {page.events()}"
    )


@pytest.mark.browser
def test_chat_log_scrolls_to_the_newest_message(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", OPENS)
    for number in range(25):  # enough lines to overflow the log, few enough to be answered at once
        page.run(f"socket.send(JSON.stringify({{message: 'line {number}'}}))")
    page.wait_for(lambda: "line 24" in page.chat_log(),
                  "each of 25 frames should be answered and shown in #chat-log (receive(), chat/consumers.py)")
    top, height, visible = page.run(
        "const log = document.getElementById('chat-log');"
        "return [log.scrollTop, log.scrollHeight, log.clientHeight]")
    assert height > visible, f"25 lines should overflow #chat-log ({height} px in {visible} px)"
    assert top + visible >= height - 2, (
        f"#chat-log should scroll to its newest line: it shows {top}..{top + visible} px of {height} "
        "(base.html's showMessage, given)"
    )


@pytest.mark.browser
def test_page_shows_server_errors_in_the_event_log(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", OPENS)
    page.run("socket.send('this is not JSON')")
    page.wait_for_event("← received error not_json",
                        "`socket.send('this is not JSON')` should show `← received error not_json: ...` in the "
                        "event log: receive() should send the ProtocolError's error.as_json() (chat/consumers.py)")
    page.send("and after it")
    page.wait_for_event('"message": "and after it"',
                        "after the error event the connection should go on and answer the next message")
    rows = [event for event in page.events() if "not_json" in event]
    assert len(rows) == 1, (
        f"the not_json error event should show once in the event log, as one line: {rows}"
    )


@pytest.mark.browser
def test_room_page_logs_no_console_errors(open_page):
    page = open_page("/chat/lobby/")
    page.console_errors()  # drop what earlier checks' pages left in the log
    page.driver.refresh()
    page.wait_for_event("open", OPENS)
    page.send("quiet console")
    page.wait_for(lambda: "quiet console" in page.chat_log(), "the reply should reach #chat-log")
    assert page.console_errors() == [], (
        "the browser's console should show no error on the room page, once its socket is open and "
        f"answered: {page.console_errors()}"
    )


# ---------------------------------------------------------------- task 4: disconnect() and the console


async def test_disconnect_runs_with_the_close_code(connect, caplog):
    communicator = await connect()
    await communicator.disconnect(code=1001)
    if "disconnect: code 1001" in caplog.text:
        return
    # Not in the log: did disconnect() not log it, or did the logging settings drop it? Ask again
    # with the "chat" loggers' INFO let through, whatever settings.py says.
    with caplog.at_level(logging.INFO, logger="chat"):
        again = await connect()
        await again.disconnect(code=1001)
    if "disconnect: code 1001" in caplog.text:
        pytest.fail('disconnect() logs "disconnect: code 1001", but mysite/settings.py has no LOGGING that '
                    'lets INFO from the "chat" loggers through: paste the LOGGING setting that the step page '
                    "and hint 2 of task 4 give")
    pytest.fail('chat/consumers.py: disconnect(self, close_code) should log "disconnect: code 1001" for a '
                'client that closes with 1001: logger.info("disconnect: code %s", close_code)')


async def test_server_console_shows_the_consumer_lifecycle(server, ws_connect):
    async with ws_connect() as ws:
        await ws.send('{"message": "lifecycle"}')
        await recv_json(ws, "receive() should send a JSON reply (chat/consumers.py)")
    # The checks run with the step's settings, so this says whether its LOGGING lets INFO through.
    shown = logging.getLogger("chat.consumers").isEnabledFor(logging.INFO)
    for line, where in [("connect:", "connect()"), ("receive: 'lifecycle'", "receive()"),
                        ("disconnect: code 1000", "disconnect(close_code)")]:
        server.wait_for_log(line, (
            f"the runserver console should show {line!r}: chat/consumers.py's {where} should log it with "
            "logger.info (logger = logging.getLogger(__name__))" if shown else
            f"the runserver console should show {line!r}, but mysite/settings.py has no LOGGING that lets "
            'INFO from the "chat" loggers through: paste the LOGGING setting that the step page and hint 2 '
            "of task 4 give"))
