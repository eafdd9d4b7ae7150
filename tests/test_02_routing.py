"""Step 02, routing and scope: the path picks the consumer, and the scope carries room and user."""

import contextlib
import json
import re

import pytest
from conftest import ANONYMOUS, receive_close, receive_json, recv_close, recv_json

BAD_ROOM_NAMES = {
    "accented": "café",  # \w matches é, but group names are ASCII only
    "japanese": "日本",
    "too_long": "a" * 95,
    "with_a_space": "my room",  # the path segment my%20room, decoded
    "with_a_dash": "with-dash",  # "chat_" + 95 letters would pass the 100-character group-name limit
}


def websocket_stack():
    """mysite/asgi.py's "websocket" application and every application it wraps, outermost first."""
    from channels.routing import URLRouter

    from mysite.asgi import application

    app = application.application_mapping.get("websocket")
    chain = []
    # Middleware keeps what it wraps in .inner (Channels' own) or .application (the origin check).
    while app is not None and len(chain) < 10:
        chain.append(app)
        if isinstance(app, URLRouter):
            break
        app = getattr(app, "inner", None) or getattr(app, "application", None)
    return chain


# ---------------------------------------------------------------- task 1: routing


def test_routing_lists_websocket_urlpatterns():
    try:
        from chat import routing
    except ImportError as error:
        pytest.fail(f"chat/routing.py should exist and import cleanly ({error}): it holds "
                    "websocket_urlpatterns, the WebSocket side's urlpatterns")
    assert getattr(routing, "websocket_urlpatterns", None), (
        "chat/routing.py should define websocket_urlpatterns, a list of re_path() routes: the WebSocket "
        "side's urlpatterns"
    )


def test_asgi_sends_websockets_through_the_url_router():
    from channels.routing import URLRouter

    chain = websocket_stack()
    assert chain and isinstance(chain[-1], URLRouter), (
        'mysite/asgi.py: the "websocket" entry of ProtocolTypeRouter should be URLRouter(websocket_urlpatterns) '
        f"(inside any middleware), so that the path picks the consumer; it is {[type(app).__name__ for app in chain]}"
    )


@pytest.mark.regression("step 01 sends every path to its one consumer, the room's path too")
async def test_room_path_reaches_the_chat_consumer(connect):
    communicator = await connect("/ws/chat/lobby/")
    await communicator.send_to(text_data=json.dumps({"message": "routed"}))
    reply = await receive_json(communicator, "chat/routing.py should send /ws/chat/lobby/ to ChatConsumer")
    assert reply.get("message") == "routed", f"/ws/chat/lobby/ should reach ChatConsumer, which answers: {reply}"


def test_room_page_opens_its_rooms_socket_with_an_encoded_name(client):
    page = client.get("/chat/lobby/").content.decode()
    opens = re.search(r"new WebSocket\((.*?)\);", page, re.DOTALL)
    assert opens, "chat/templates/chat/room.html should open its socket with new WebSocket(...)"
    assert re.search(r"/ws/chat/\$\{encodeURIComponent\(roomName\)\}/", opens.group(1)), (
        "chat/templates/chat/room.html should open /ws/chat/${encodeURIComponent(roomName)}/: the path "
        "chat/routing.py matches, with the room name encoded, as text that goes into a URL always is. "
        f"It opens: {opens.group(1).strip()}"
    )


# ---------------------------------------------------------------- task 2: the room name, and 4400


@pytest.mark.parametrize("kind", BAD_ROOM_NAMES)
async def test_room_name_that_cannot_be_a_group_name_is_closed_with_4400(connect, kind):
    room = BAD_ROOM_NAMES[kind]
    communicator = await connect(f"/ws/chat/{room}/", hello=False)
    reply = await receive_json(
        communicator, f"chat/consumers.py: connect() should accept the room {room!r}, then, as "
        "protocol.check_room_name() raises ProtocolError for it, send error.as_json()")
    assert reply.get("error") == "bad_room_name", (
        f'chat/consumers.py: the room {room!r} should get {{"error": "bad_room_name", ...}} first, the '
        f"ProtocolError of protocol.check_room_name(); got {reply}"
    )
    code = await receive_close(communicator, "after bad_room_name, connect() should "
                               "self.close(code=protocol.BAD_ROOM_NAME)")
    assert code == 4400, (
        f"chat/consumers.py: the room {room!r} should be closed with protocol.BAD_ROOM_NAME (4400), not {code}"
    )


async def test_a_refused_room_hears_nothing_more(connect):
    communicator = await connect("/ws/chat/my room/", hello=False)
    # A frame the browser sent before it saw the close: it must not reach receive().
    await communicator.send_to(text_data=json.dumps({"message": "too early"}))
    reply = await receive_json(communicator, "the room 'my room' should get a bad_room_name error event "
                               "(chat/consumers.py's connect())")
    assert reply.get("error") == "bad_room_name", f"expected bad_room_name for the room 'my room', got {reply}"
    code = await receive_close(communicator, "after bad_room_name, connect() should self.close(code=4400)")
    assert code == 4400, f"the room 'my room' should be closed with 4400, not {code}"
    assert await communicator.receive_nothing(timeout=0.3), (
        "after closing with 4400, connect() should `raise StopConsumer()` (chat/consumers.py): "
        "otherwise frames already on their way still reach receive(), which answers them"
    )


@pytest.mark.regression("step 01 checks no room name, so the longest works there too")
async def test_longest_room_name_still_works(connect):
    communicator = await connect(f"/ws/chat/{'a' * 94}/")
    await communicator.send_to(text_data=json.dumps({"message": "long room"}))
    reply = await receive_json(communicator, "a room name of 94 letters is allowed, and should be answered")
    assert reply.get("message") == "long room", f"a room name of 94 letters is allowed: {reply}"


@pytest.mark.regression("chat/protocol.py, with check_room_name(), arrives complete in this step")
def test_every_allowed_room_name_makes_a_valid_group_name():
    from channels.layers import BaseChannelLayer

    from chat.protocol import ProtocolError, check_room_name

    layer = BaseChannelLayer()
    for room in ["a" * 94, "a" * 95, "lobby", "café", "with-dash", "under_score", "日本"]:
        try:
            check_room_name(room)
            room_ok = True
        except ProtocolError:
            room_ok = False
        try:
            group_ok = layer.require_valid_group_name(f"chat_{room}")
        except TypeError:
            group_ok = False
        if room_ok:
            assert group_ok, f"room {room!r} passes check_room_name, but chat_{room} is no valid group name"
        if not group_ok:
            assert not room_ok, f"chat_{room} is no valid group name, so check_room_name must refuse {room!r}"


async def test_bad_rooms_over_daphne_get_4400_and_leave_no_traceback(server, ws_connect):
    import websockets

    for path in ["/ws/chat/café/", "/ws/chat/my%20room/", f"/ws/chat/{'b' * 95}/"]:
        async with ws_connect(path, hello=False) as ws:
            # A frame sent before the client sees the close must not reach receive(); it
            # may also find the connection closed already, which is fine too.
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send('{"message": "too early"}')
            error = await recv_json(ws, f"over daphne, {path} should get a bad_room_name error event first "
                                    "(chat/consumers.py's connect())")
            assert error.get("error") == "bad_room_name", (
                f"over daphne, {path} should get a bad_room_name error event first (chat/consumers.py), not {error}"
            )
            rcvd = await recv_close(ws, f"after the error event, {path} should be closed with 4400")
            assert rcvd is not None and rcvd.code == 4400, (
                f"over daphne, {path} should be closed with protocol.BAD_ROOM_NAME (4400), not {rcvd}"
            )
    server.assert_no_traceback()


@pytest.mark.browser
def test_a_socket_to_a_bad_room_is_told_why_then_closed_with_4400(open_page):
    # The room page refuses "my room" before it opens a socket (views.py); a socket
    # opened by hand, as from the browser's console, gets the consumer's answer.
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the lobby page should open its socket")
    page.run("""
        window.probe = [];
        const probe = new WebSocket(`ws://${location.host}/ws/chat/my%20room/`);
        probe.onmessage = (event) => window.probe.push(JSON.parse(event.data).error);
        probe.onclose = (event) => window.probe.push(event.code);
    """)
    page.wait_for(lambda: len(page.run("return window.probe")) >= 2,
                  "a socket to /ws/chat/my%20room/ should get an error event, then a close")
    error, code = page.run("return window.probe")[:2]
    assert error == "bad_room_name", (
        "a socket to /ws/chat/my%20room/ should get a bad_room_name error event before its close "
        f"(chat/consumers.py's connect(); chat/routing.py lets any one path segment through): got {error!r}"
    )
    # The server closes with 4400, and Chromium shows 4400, except now and then on a busy
    # machine, where it shows 1006 after the same error event: daphne (through autobahn) waits
    # under a second (1 s, counted in whole seconds of the clock, so 0 to 1 s) for the browser's
    # answer to its close, then resets the connection, and a reset that comes before Chromium
    # has answered is reported as 1006. The 4400 itself is checked in process and over daphne
    # by the other bad-room checks in this file.
    assert code in (4400, 1006), f"a bad room name should close with 4400 (1006 on a busy machine), not {code}"


# ---------------------------------------------------------------- task 3: the middleware stack


def test_asgi_wraps_the_router_in_the_origin_check_and_the_auth_middleware():
    from channels.auth import AuthMiddleware
    from channels.security.websocket import OriginValidator

    chain = websocket_stack()
    kinds = [type(app).__name__ for app in chain]
    assert any(isinstance(app, OriginValidator) for app in chain), (
        'mysite/asgi.py: the "websocket" entry should be wrapped in AllowedHostsOriginValidator(...), '
        f"which refuses handshakes from other sites' pages; it is {kinds}"
    )
    assert any(isinstance(app, AuthMiddleware) for app in chain), (
        'mysite/asgi.py: the URLRouter should be wrapped in AuthMiddlewareStack(...), which puts the '
        f'session\'s user in scope["user"]; the "websocket" entry is {kinds}'
    )


async def test_foreign_origin_is_refused(connect):
    communicator = await connect("/ws/chat/lobby/", origin="http://evil.example", accepted=False)
    assert not communicator.accepted, (
        "a handshake with Origin: http://evil.example was accepted: wrap the router in "
        "AllowedHostsOriginValidator (mysite/asgi.py), which refuses an Origin whose host is not in ALLOWED_HOSTS"
    )


async def test_handshake_without_origin_is_refused(connect):
    communicator = await connect("/ws/chat/lobby/", origin=None, accepted=False)
    assert not communicator.accepted, (
        "a handshake with no Origin header was accepted: AllowedHostsOriginValidator (mysite/asgi.py) refuses it"
    )


async def test_foreign_origin_handshake_gets_http_403(ws_connect):
    import websockets

    try:
        async with ws_connect("/ws/chat/lobby/", origin="http://evil.example", hello=False):
            pass
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403, (
            f"over daphne, a refused handshake should get HTTP 403, not {refused.response.status_code}"
        )
    else:
        pytest.fail("over daphne, a handshake from http://evil.example was accepted: wrap the router "
                    "in AllowedHostsOriginValidator (mysite/asgi.py), which answers it with HTTP 403")


# ---------------------------------------------------------------- task 4: the user in the reply


async def test_reply_names_the_anonymous_user_from_the_scope(connect):
    names = []
    for _ in range(2):
        communicator = await connect("/ws/chat/lobby/")
        for message in ("who am I?", "still me?"):
            await communicator.send_to(text_data=json.dumps({"message": message}))
            reply = await receive_json(communicator, "receive() should answer each message (chat/consumers.py)")
            names.append(reply.get("user"))
    assert all(ANONYMOUS.fullmatch(str(name)) for name in names), (
        'chat/consumers.py: each reply should carry "user": with nobody logged in, scope["user"] is an '
        f'AnonymousUser, and the name is "anonymous-" and 4 hex digits (secrets.token_hex(2)); got {names}'
    )
    assert names[0] == names[1] and names[2] == names[3], (
        f"chat/consumers.py: a connection keeps its name: draw it once, in connect() (self.username): {names}"
    )
    assert names[0] != names[2], (
        f"two connections should get two names, drawn for each in connect(), so that two windows differ: {names}"
    )


async def test_logged_in_user_is_in_the_scope(connect, alice_cookie):
    communicator = await connect("/ws/chat/lobby/", headers=[(b"cookie", alice_cookie)])
    await communicator.send_to(text_data=json.dumps({"message": "hi"}))
    reply = await receive_json(communicator, "receive() should answer the message (chat/consumers.py)")
    assert reply.get("user") == "alice", (
        'the reply to a handshake with alice\'s session cookie should carry "user": "alice": AuthMiddlewareStack '
        '(mysite/asgi.py) puts her in scope["user"], and connect() keeps scope["user"].username when '
        f"user.is_authenticated (chat/consumers.py); got {reply}"
    )


@pytest.mark.browser
def test_room_page_connects_to_its_room_and_names_the_sender(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for_event("open", "the room page should open ws://.../ws/chat/lobby/ (room.html)")
    page.send("hello, lobby")
    page.wait_for(lambda: any(row["text"] == "hello, lobby" for row in page.chat_rows()),
                  "the reply should reach #chat-log")
    row = page.chat_rows()[-1]
    assert ANONYMOUS.fullmatch(str(row["user"])), (
        "chat/templates/chat/room.html should pass the reply's sender on, showMessage({ user: data.user, "
        f"message: data.message }}), so that #chat-log shows `12:03 anonymous-3f2a: hello, lobby`: {row}"
    )
