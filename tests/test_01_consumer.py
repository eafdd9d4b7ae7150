"""Step 01, the handshake and the consumer: daphne accepts, and a consumer answers JSON with JSON."""

import base64
import hashlib
import json
import logging

import fuzz
import pytest
from conftest import STEP, handshake, receive_json, recv_close, recv_json
from hypothesis import given

# Every way a frame can be wrong, and the error code chat/protocol.py answers it with.
BAD_FRAMES = {
    "not_json": "hello",
    "not_an_object": '["hello"]',
    "missing_message": '{"text": "hello"}',
    "message_not_a_string": '{"message": 42}',
    "empty_frame": "",
    "empty_message": '{"message": "   "}',
    "too_big": json.dumps({"message": "x" * 5000}),
    "binary_frame": b"\x00\x01hello",
    "too_deep": "[" * 2000 + "]" * 2000,  # deeper than json.loads can recurse, yet under 4 KiB
    "bad_unicode": '{"message": "\\ud800"}',  # valid JSON for a lone surrogate, which is no character
}
# Every error code a frame may get (chat/protocol.py's table); connection errors come from step 02 on.
FRAME_ERRORS = set(BAD_FRAMES) | {"too_fast", "bad_recipient", "recipient_busy"}


def test_daphne_comes_first_in_installed_apps(settings):
    assert settings.INSTALLED_APPS[0] == "daphne", (
        'put "daphne" first in INSTALLED_APPS: then `manage.py runserver` is daphne\'s, '
        "which speaks WebSocket; Django's own runserver answers a handshake with 404"
    )


def test_asgi_application_points_at_mysite_asgi(settings):
    assert getattr(settings, "ASGI_APPLICATION", None) == "mysite.asgi.application", (
        'set ASGI_APPLICATION = "mysite.asgi.application" so daphne\'s runserver serves your router'
    )


async def test_consumer_accepts_the_handshake(connect):
    communicator = await connect()
    assert communicator.accepted, "connect() should call self.accept(): that answers the handshake with 101"


async def test_consumer_answers_json_with_json(connect):
    communicator = await connect()
    await communicator.send_to(text_data=json.dumps({"message": "hello"}))
    reply = await receive_json(communicator, "receive() should send a JSON reply with self.send()")
    assert reply.get("message") == "hello", f'the reply should carry the message back: {reply}'


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
        pytest.fail('disconnect() logs "disconnect: code 1001", but settings.py\'s LOGGING does not let '
                    'INFO from the "chat" loggers through to the console: add a "chat" logger at INFO')
    pytest.fail('disconnect(close_code) should log "disconnect: code <n>" with logger.info, as connect() '
                "and receive() log theirs (chat/consumers.py)")


@pytest.mark.parametrize("error", BAD_FRAMES)
async def test_bad_frame_gets_an_error_event_and_the_connection_stays_open(connect, error):
    communicator = await connect()
    frame = BAD_FRAMES[error]
    # The raw ASGI event, as daphne delivers a frame (send_to() refuses an empty one).
    key = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", key: frame})
    reply = await receive_json(communicator, "a bad frame should be answered with an error event")
    assert reply.get("error") == error, f"expected the error event {error!r}, got {reply}"
    assert reply.get("detail"), "an error event should say what to fix in its detail"
    await communicator.send_to(text_data='{"message": "still here"}')
    reply = await receive_json(communicator, "after an error event the connection should still work")
    assert reply.get("message") == "still here", f"after an error event, a good frame should be answered: {reply}"


async def test_a_flood_is_answered_frame_by_frame_and_mostly_dropped(connect):
    communicator = await connect()
    for number in range(100):
        await communicator.send_to(text_data=json.dumps({"message": f"flood {number}"}))
    replies = [await receive_json(communicator, "every frame of a flood should still be answered")
               for _ in range(100)]
    passed = [reply for reply in replies if "message" in reply]
    refused = [reply for reply in replies if reply.get("error") == "too_fast"]
    assert len(passed) + len(refused) == 100, f"each frame gets its echo or too_fast: {replies[:3]}..."
    assert refused, (
        "100 frames at once all went through: receive() should spend the connection's "
        "protocol.FrameBudget (self.budget.spend()) before it does anything with a frame"
    )
    assert len(passed) >= 30, f"a burst of 30 is allowed at once, but only {len(passed)} passed"


async def test_bad_frames_spend_the_budget_too(connect):
    communicator = await connect()
    for _ in range(100):
        await communicator.send_to(text_data="this is not JSON")
    replies = [await receive_json(communicator, "every bad frame of a flood should still be answered")
               for _ in range(100)]
    assert any(reply.get("error") == "too_fast" for reply in replies), (
        "100 frames of bad JSON at once all got not_json, none too_fast: spend the budget "
        "(self.budget.spend()) first in receive(), before parse_frame(), so that every frame "
        "counts, good or bad"
    )


@pytest.fixture
async def answering(connect):
    await fuzz.check_it_answers(await connect(), receive_json)


@given(frame=fuzz.frames)
@fuzz.fuzz_settings
async def test_any_frame_gets_an_answer_and_the_connection_goes_on(answering, connect, frame):
    communicator = await connect()
    await fuzz.answers_soundly(communicator, frame, receive_json, FRAME_ERRORS)
    await communicator.disconnect()


async def test_frame_at_the_size_limit_is_accepted(connect):
    from chat.protocol import MAX_FRAME_BYTES

    padding = MAX_FRAME_BYTES - len('{"message": ""}')
    frame = json.dumps({"message": "x" * padding})
    assert len(frame.encode()) == MAX_FRAME_BYTES
    communicator = await connect()
    await communicator.send_to(text_data=frame)
    reply = await receive_json(communicator)
    assert reply.get("message") == "x" * padding, "a frame of exactly MAX_FRAME_BYTES is allowed"


@pytest.mark.until("01")
async def test_every_path_reaches_the_one_consumer(connect):
    communicator = await connect("/ws/any/path/at/all/")
    assert communicator.accepted, "with no routing yet, every WebSocket path reaches ChatConsumer"


def test_handshake_answers_101_with_the_accept_key(server):
    key, _, response = handshake(server, STEP.ws_path)
    lines = response.splitlines()
    assert " 101 " in lines[0], f"the handshake should be answered with 101 Switching Protocols: {lines[0]!r}"
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
        "daphne mysite.asgi:application should accept the handshake: mysite/asgi.py's "
        '`application` must route "websocket" to a consumer'
    )


async def test_real_client_gets_its_message_back(ws_connect):
    async with ws_connect() as ws:
        await ws.send(json.dumps({"message": "over the wire"}))
        reply = await recv_json(ws, "over daphne, receive() should send a JSON reply (chat/consumers.py)")
    assert reply.get("message") == "over the wire", f"over daphne, the reply should carry the message back: {reply}"


async def test_bad_input_never_crashes_the_server(server, ws_connect):
    async with ws_connect() as ws:
        for error, frame in BAD_FRAMES.items():
            await ws.send(frame)
            reply = await recv_json(ws, f"a bad frame ({error}) should get an error event (chat/protocol.py)")
            assert reply.get("error") == error, f"over daphne, expected {error!r}: {reply}"
        await ws.send('{"message": "fine"}')
        reply = await recv_json(ws, "after the error events the connection should still work")
        assert reply.get("message") == "fine", f"after the error events, a good frame should be answered: {reply}"
    server.assert_no_traceback()


async def test_frame_over_daphnes_limit_is_dropped_by_daphne(server, ws_connect):
    async with ws_connect(max_size=None) as ws:
        await ws.send("x" * (1024 * 1024 + 1))
        rcvd = await recv_close(ws, "over 1 MiB daphne should drop the connection before the consumer sees it")
    assert rcvd is None, "over 1 MiB daphne drops the connection: the client sees 1006"
    async with ws_connect() as ws:
        await ws.send('{"message": "next"}')
        reply = await recv_json(ws, "after dropping one connection the server should keep serving")
        assert reply.get("message") == "next", f"the server should keep serving: {reply}"
    server.assert_no_traceback()


async def test_server_console_shows_the_consumer_lifecycle(server, ws_connect):
    async with ws_connect() as ws:
        await ws.send('{"message": "lifecycle"}')
        await recv_json(ws, "receive() should send a JSON reply (chat/consumers.py)")
    for line in ["connect:", "receive: 'lifecycle'", "disconnect: code 1000"]:
        server.wait_for_log(line, f"the runserver console should show {line!r}: see LOGGING in settings.py")


@pytest.mark.browser
def test_page_opens_the_socket_and_shows_the_reply(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the page should log open once the handshake succeeds")
    assert page.text("connection-state") == "1 OPEN", "readyState 1 means OPEN"
    page.send("hello from the browser")
    page.wait_for(lambda: "hello from the browser" in page.chat_log(),
                  "the reply's message should appear in #chat-log")


@pytest.mark.browser
def test_page_shows_server_errors_in_the_event_log(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the page should log open")
    page.run("socket.send('this is not JSON')")
    page.wait_for_event("← received error not_json", "an error event should show in the event log")
    page.send("and after it")
    page.wait_for_event('"message":"and after it"', "the connection should go on after an error event")
    rows = [event for event in page.events() if "not_json" in event]
    assert len(rows) == 1, (
        "room.html's onmessage should show an error event once, as one line (not the raw frame and "
        f"then its error again): {rows}"
    )


@pytest.mark.browser
def test_page_shows_the_close_code_and_wasclean(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the page should log open")
    page.run("socket.close(1000)")
    page.wait_for_event("close code=1000", "the close event should show its code")
    assert any("wasClean=true" in event for event in page.events()), (
        f"a close the page asked for should be clean (wasClean=true): {page.events()}"
    )
    assert page.text("connection-state") == "3 CLOSED", "readyState should end at 3 (CLOSED)"


@pytest.mark.browser
def test_page_logs_frames_both_ways(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the page should log open")
    page.send("both ways")
    page.wait_for_event('← received {"message": "both ways"',
                        "the reply should show in the event log as a received frame, as it came")
    sent = [event for event in page.events() if event.startswith("→ sent ")]
    assert len(sent) == 1 and sent[0].startswith('→ sent {"message":"both ways"'), (
        "room.html should log each frame it sends, as JSON.stringify made it, beside the frames it "
        f"receives: {page.events()}"
    )


@pytest.mark.browser
def test_chat_log_scrolls_to_the_newest_message(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the page should log open")
    for number in range(25):  # under the flood budget of 30 at once (protocol.py)
        page.run(f"socket.send(JSON.stringify({{message: 'line {number}'}}))")
    page.wait_for(lambda: "line 24" in page.chat_log(), "every reply should reach #chat-log")
    top, height, visible = page.run(
        "const log = document.getElementById('chat-log');"
        "return [log.scrollTop, log.scrollHeight, log.clientHeight]")
    assert height > visible, f"25 lines should overflow #chat-log ({height} px in {visible} px)"
    assert top + visible >= height - 2, (
        f"#chat-log should scroll to its newest line: it shows {top}..{top + visible} px of {height}"
    )


@pytest.mark.browser
def test_room_page_logs_no_console_errors(open_page):
    page = open_page("/chat/lobby/")
    page.console_errors()  # drop what earlier checks' pages left in the log
    page.driver.refresh()
    page.wait_for_event("open", "the page should log open")
    page.send("quiet console")
    page.wait_for(lambda: "quiet console" in page.chat_log(), "the reply should reach #chat-log")
    assert page.console_errors() == [], (
        "the browser console should stay clean on the room page (a missing favicon is a 404 there: "
        "chat/templates/chat/base.html gives the page an empty icon)"
    )
