"""Step 08, login: who is talking, and who may.

Django's own login and logout views name the speaker; a room whose name starts with "members_"
refuses an anonymous socket (an error event, then close code 4401); and since AuthMiddlewareStack
reads the session only at the handshake, a logout must close that user's open sockets itself: a
per-user group and a "session.ended" event, sent from the user_logged_out signal.

In process, users and sessions live in pytest-django's test database. Live, a user is made in the
session's shared SQLite file (conftest's live_database) and logs in through the real login page.
"""

import asyncio
import contextlib
import json
import time

import pytest
from asgiref.sync import sync_to_async
from conftest import (ANONYMOUS, LIVE_TIMEOUT, frames_within, receive_close, receive_json, recv_close,
                      recv_json, ws_open)

LOGIN_REQUIRED = 4401
PASSWORD = "through-the-looking-glass"


def user_cookie(django_user_model, name):
    """A logged-in user of the test database: (the Client that holds its session, its Cookie header)."""
    from django.test import Client

    client = Client()
    client.force_login(django_user_model.objects.create_user(name, password=PASSWORD))
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


def layer_groups():
    """The in-process layer's groups: {group name: channels in it}."""
    from channels.layers import get_channel_layer

    return {name: set(members) for name, members in getattr(get_channel_layer(), "groups", {}).items()}


def joined_since(before):
    """The groups that gained a member since `before` (layer_groups() then): the layer lives as long as
    the test process, and earlier checks may leave members behind."""
    return sorted(name for name, members in layer_groups().items() if members - before.get(name, set()))


async def closed_with(communicator, error, hint):
    """The error event, then the close code, that a refused or ended socket should get."""
    first = await receive_json(communicator, hint)
    assert first.get("error") == error, f'the socket got {first} where {{"error": "{error}", ...}} belongs: {hint}'
    code = await receive_close(communicator, hint)
    assert code == LOGIN_REQUIRED, (
        f"the socket closed with {code}: {error} closes with 4401 (protocol.LOGIN_REQUIRED, chat/protocol.py), "
        "the code a page can tell from a bad room (4400): log in, then come back"
    )


# ---------------------------------------------------------------- in process: the pages


def test_login_and_logout_are_djangos_own_views(client):
    from django.contrib.auth import views
    from django.urls import Resolver404, resolve

    for name, view in (("/accounts/login/", views.LoginView), ("/accounts/logout/", views.LogoutView)):
        try:
            found = resolve(name).func
        except Resolver404:
            found = None
        assert getattr(found, "view_class", None) is view, (
            f"{name} should be Django's own {view.__name__}: "
            'path("accounts/", include("django.contrib.auth.urls")) in mysite/urls.py'
        )
    page = client.get("/accounts/login/?next=/chat/members_lobby/")
    assert page.status_code == 200, (
        f"the login page answered {page.status_code}: LoginView renders registration/login.html, which this "
        "step writes (chat/templates/registration/login.html)"
    )
    assert b'name="next" value="/chat/members_lobby/"' in page.content, (
        "the login form should carry ?next= on, in a hidden input, so that the learner lands back in the room"
    )


def test_every_page_links_to_login_or_logs_out_with_a_post(client, django_user_model):
    page = client.get("/chat/lobby/").content.decode()
    assert '/accounts/login/?next=/chat/lobby/' in page, (
        "an anonymous visitor's room page should link to the login page, with ?next= back to the room: "
        "the account bar in chat/templates/chat/base.html shows once the URL named \"login\" exists"
    )
    client.force_login(django_user_model.objects.create_user("alice", password=PASSWORD))
    page = client.get("/chat/").content.decode()
    assert 'action="/accounts/logout/"' in page and 'method="post"' in page, (
        "a logged-in user's pages should log out with a small POST form (and its {% csrf_token %}): Django's "
        "LogoutView refuses a GET since Django 5"
    )


# ---------------------------------------------------------------- in process: names and rooms


@pytest.mark.regression("from step 02 on a logged-in user is named by the session; step 08 lets them log in")
async def test_a_logged_in_user_is_named_by_the_session(connect, django_user_model):
    from asgiref.sync import sync_to_async

    _, cookie = await sync_to_async(user_cookie)(django_user_model, "alice")
    alice = await connect("/ws/chat/lobby/", headers=[(b"cookie", cookie)])
    assert alice.user == "alice", (
        f'the socket of a logged-in user was named {alice.user!r}: connect() names it scope["user"].username, '
        "which AuthMiddlewareStack (mysite/asgi.py) loaded from the session cookie"
    )
    # A frame that claims another name changes nothing: names come from the session, never the client.
    await alice.send_to(text_data=json.dumps({"message": "who am I?", "user": "admin"}))
    heard = await receive_json(alice, "the room should echo alice's message")
    assert heard.get("user") == "alice", (
        f"a frame that said \"user\": \"admin\" came back as {heard.get('user')!r}: the consumer must take the name "
        "from scope[\"user\"], never from the frame"
    )


@pytest.mark.regression("an open room took anonymous sockets in every step before; step 08 keeps that")
async def test_an_open_room_still_takes_anonymous_sockets(connect):
    anonymous = await connect("/ws/chat/lobby/")
    assert ANONYMOUS.fullmatch(anonymous.user or ""), (
        f"an anonymous socket in an open room was named {anonymous.user!r}: keep anonymous-xxxx there"
    )


async def test_a_members_room_refuses_an_anonymous_socket_with_4401(connect, django_user_model):
    from asgiref.sync import sync_to_async

    before = layer_groups()
    anonymous = await connect("/ws/chat/members_lobby/", hello=False)
    await closed_with(anonymous, "login_required",
                      'a room named members_... is for logged-in users: connect() should accept, send '
                      '{"error": "login_required", ...} and close with 4401 (chat/consumers.py)')
    joined = joined_since(before)
    assert joined == [], (
        f"a refused socket is still in the groups {joined}: refuse it before any group_add, so that it hears "
        "nothing of the room"
    )
    _, cookie = await sync_to_async(user_cookie)(django_user_model, "alice")
    alice = await connect("/ws/chat/members_lobby/", headers=[(b"cookie", cookie)])
    await alice.send_to(text_data=json.dumps({"message": "members only"}))
    heard = await receive_json(alice, "a logged-in user should chat in a members_ room")
    assert (heard.get("user"), heard.get("message")) == ("alice", "members only"), heard


# ---------------------------------------------------------------- in process: logout ends the sockets


async def test_logout_closes_that_sessions_sockets_and_no_others(connect, django_user_model, monkeypatch):
    from asgiref.sync import sync_to_async

    import chat.consumers

    # The session check (task 3's other half) would end these sockets too, a little later: this
    # check is about the logout's own event, so the check waits an hour here.
    monkeypatch.setattr(chat.consumers, "SESSION_CHECK_SECONDS", 3600, raising=False)

    alice_client, alice = await sync_to_async(user_cookie)(django_user_model, "alice")
    # alice again, logged in elsewhere (a phone, another browser): a session of her own.
    elsewhere = await sync_to_async(another_session)(alice_client)
    _, bob = await sync_to_async(user_cookie)(django_user_model, "bob")
    tabs = [await connect(path, headers=[(b"cookie", alice)]) for path in ("/ws/chat/lobby/", "/ws/chat/members_x/")]
    phone = await connect("/ws/chat/lobby/", headers=[(b"cookie", elsewhere)])
    bobs = await connect("/ws/chat/lobby/", headers=[(b"cookie", bob)])
    # The logout view, as the page's form posts it: a sync view, in a thread, that sends the signal.
    answer = await sync_to_async(alice_client.post)("/accounts/logout/")
    assert answer.status_code == 302, f"POST /accounts/logout/ answered {answer.status_code}, not a redirect"
    for tab in tabs:
        await closed_with(tab, "session_ended",
                          "a logout should close every socket opened with that session: chat/signals.py's "
                          "user_logged_out receiver (imported in ChatConfig.ready(), chat/apps.py) sends "
                          '{"type": "session.ended", "why": ...} to the session\'s '
                          'group ("session_" + the sha256 of request.session.session_key), which each of its '
                          "sockets joined in connect(); session_ended() sends the error, then closes")
    for name, socket in (("alice's socket in her other session", phone), ("bob's socket", bobs)):
        await socket.send_to(text_data=json.dumps({"message": "still here"}))
        heard = await receive_json(socket, f"{name} should stay open and chat when alice logs out of one session")
        assert heard.get("message") == "still here", (
            f"{name} got {heard} where its own message belonged: a logout ends the sockets of the session it "
            "ends, not every session of the user, so send session.ended to the session's group, not to user_<id>"
        )
    gone = {tab.channel_name for tab in tabs}
    left = sorted(name for name, members in layer_groups().items() if members & gone)
    assert left == [], (
        f"after alice's logout her sockets are still in the groups {left}: session_ended() should leave the "
        "session's group, the user's and the room's"
    )


def another_session(client):
    """The Cookie header of a second login of the user `client` is logged in as: another browser of theirs."""
    from django.contrib.auth import get_user
    from django.test import Client

    other = Client()
    other.force_login(get_user(client))
    return f"sessionid={other.cookies['sessionid'].value}".encode()


# ---------------------------------------------------------------- in process: any other end of a session


# SESSION_CHECK_SECONDS in the in-process checks: a check every 50 ms, two small queries each.
CHECK_PERIOD = 0.05


@pytest.fixture
def quick_session_checks(monkeypatch):
    """The consumers' SESSION_CHECK_SECONDS, made CHECK_PERIOD for the in-process checks; returns the step's own."""
    import chat.consumers

    bound = getattr(chat.consumers, "SESSION_CHECK_SECONDS", None)
    if not isinstance(bound, (int, float)) or not 2 <= bound <= 10:
        found = "has no SESSION_CHECK_SECONDS" if bound is None else f"has SESSION_CHECK_SECONDS = {bound!r}"
        pytest.fail(f"chat/consumers.py {found}: a module constant there, read by the session check, should say how often, in seconds, "
                    "each logged-in socket asks whether its session still logs its user in; a few seconds, "
                    "between 2 and 10, so that a session's end reaches its sockets in seconds, not minutes, and a logout's "
                    "own event comes before the first check")
    # Every in-process check that waits on it waits three of these.
    monkeypatch.setattr(chat.consumers, "SESSION_CHECK_SECONDS", CHECK_PERIOD)
    return bound


def end_session(how, client, name):
    """End the session of the test Client `client` (logged in as `name`) the way `how` says."""
    import datetime

    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    key = client.session.session_key
    if how == "password change":
        # Django's own view, from the user's other browser: it logs out their other sessions, this one.
        other = Client_logged_in_as(name)
        answer = other.post("/accounts/password_change/", {
            "old_password": PASSWORD, "new_password1": "a-new-one-2026", "new_password2": "a-new-one-2026"})
        assert answer.status_code == 302, f"the password change page answered {answer.status_code}"
    elif how == "deactivation":
        get_user_model().objects.filter(username=name).update(is_active=False)
    elif how == "session deleted":
        Session.objects.filter(session_key=key).delete()
    elif how == "session expired":
        Session.objects.filter(session_key=key).update(expire_date=timezone.now() - datetime.timedelta(seconds=1))


def Client_logged_in_as(name):  # noqa: N802 - reads as the Client it returns
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=name))
    return client


# The ways a session ends without a logout, as a failure message says them, each with the user
# whose session ends so in the check below.
ENDINGS = {"password change": "a password change", "deactivation": "the account's deactivation",
           "session deleted": "the session's deletion", "session expired": "the session's expiry"}
ENDERS = dict(zip(ENDINGS, ("alice", "anna", "amir", "aiko")))


async def test_a_session_that_ends_without_a_logout_ends_its_sockets(connect, django_user_model,
                                                                      quick_session_checks):
    from asgiref.sync import sync_to_async

    # Four users in a members' room, whose sessions end four ways at once, and bob, whose session
    # stays good. Each end is seen by a check of the session: one wait serves all four.
    sockets, clients = {}, {}
    for how, name in ENDERS.items():
        clients[how], cookie = await sync_to_async(user_cookie)(django_user_model, name)
        sockets[how] = await connect("/ws/chat/members_x/", headers=[(b"cookie", cookie)])
    _, bob = await sync_to_async(user_cookie)(django_user_model, "bob")
    bobs = await connect("/ws/chat/members_x/", headers=[(b"cookie", bob)])
    bob_opened = time.monotonic()
    for how, name in ENDERS.items():
        await sync_to_async(end_session)(how, clients[how], name)
    for how, name in ENDERS.items():
        await closed_with(sockets[how], "session_ended",
                          f"after {ENDINGS[how]}, {name}'s session no longer logs {name} in, and no signal says so: "
                          f"every SESSION_CHECK_SECONDS (here made {CHECK_PERIOD} s: read it at each wait), a task "
                          "started in connect() should ask "
                          "django.contrib.auth.aget_user() about a fresh SessionStore(session_key), and if it is no "
                          'longer the socket\'s user, send {"type": "session.ended", ...} to the socket\'s own '
                          "channel (chat/consumers.py, check_the_session)")
        left = sorted(group for group, members in layer_groups().items() if sockets[how].channel_name in members)
        assert left == [], (f"{name}'s socket, ended by {ENDINGS[how]}, is still in the groups {left}: "
                            "session_ended() leaves them all")
    # Three of bob's checks' time since his socket opened: his session is as good as ever, and
    # each check must say so.
    await asyncio.sleep(max(0, bob_opened + 3 * CHECK_PERIOD - time.monotonic()))
    await bobs.send_to(text_data=json.dumps({"message": "bob stays"}))
    heard = await receive_json(bobs, "bob's session did not end: his socket should chat on")
    assert heard.get("message") == "bob stays", (
        f"bob's socket got {heard} where his own message belonged, while his session is as good as ever: the "
        "check should find a live session live (django.contrib.auth.aget_user() on the settings' own "
        "SessionStore(session_key))"
    )


async def test_a_closed_socket_stops_checking_its_session(connect, django_user_model, quick_session_checks):
    from asgiref.sync import sync_to_async

    _, alice = await sync_to_async(user_cookie)(django_user_model, "alice")
    before = asyncio.all_tasks()
    closed = await connect("/ws/chat/lobby/", headers=[(b"cookie", alice)])
    await closed.disconnect()
    # As daphne ends a consumer that outlives its connection, or one whose handler raised:
    # disconnect() never runs.
    cancelled = await connect("/ws/chat/kitchen/", headers=[(b"cookie", alice)])
    cancelled.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled.future
    await asyncio.sleep(3 * CHECK_PERIOD)  # a watcher left running would be awake by now
    running = [task for task in asyncio.all_tasks() - before if task is not asyncio.current_task()
               and not task.done()]
    assert running == [], (
        f"after one consumer was closed and another cancelled, {len(running)} task(s) they started still run "
        f"({running[0].get_coro()!r}): the session check's task should end with its consumer, however it ends, "
        "e.g. asyncio.current_task().add_done_callback(lambda _: watcher.cancel()) in connect(); disconnect() "
        "alone misses a consumer that is cancelled, and a check left running queries for a socket that is gone"
    )


# ---------------------------------------------------------------- in process: direct messages to a user


async def tabs_of(connect, django_user_model, name, *rooms):
    """One logged-in socket per room, all of one user (one session, as tabs of one browser)."""
    _, cookie = await sync_to_async(user_cookie)(django_user_model, name)
    return [await connect(f"/ws/chat/{room}/", headers=[(b"cookie", cookie)]) for room in rooms]


async def test_a_direct_message_reaches_every_tab_of_both_users_and_no_one_else(connect, django_user_model):
    from chat.models import Message

    alice_here, alice_there = await tabs_of(connect, django_user_model, "alice", "lobby", "kitchen")
    bob_here, bob_there = await tabs_of(connect, django_user_model, "bob", "lobby", "kitchen")
    (carol,) = await tabs_of(connect, django_user_model, "carol", "lobby")
    anonymous = await connect("/ws/chat/lobby/")
    await alice_here.send_to(text_data=json.dumps({"message": "psst", "to": "bob"}))
    said = {"message": "psst", "user": "alice", "direct": True}
    hint = ('a direct message "to" a username should go to that user\'s group, user_<id> (user_group() in '
            "chat/consumers.py, send_direct()), which every socket of theirs joined in connect()")
    for name, tab, own in (("bob's lobby tab", bob_here, False), ("bob's kitchen tab", bob_there, False),
                           ("alice's sending tab", alice_here, True), ("alice's other tab", alice_there, True)):
        got = await receive_json(tab, f"{name} should get it: {hint}; the sender's copy goes to her own group")
        # These four keys, as the task says; a key of the learner's own beside them is fine.
        wanted = {**said, "own": own}
        wrong = {key: got.get(key) for key in wanted if got.get(key) != wanted[key]}
        assert not wrong, (
            f"{name} got {got}, where {wanted} belonged: {wrong} differ. Every tab of the sender's says "
            '"own": true, every other "own": false: put the sending user in the event, and have '
            "chat_message compare it with self.user"
        )
    # Both wait at once: nothing arriving takes a wait, and one is enough.
    heard = await asyncio.gather(frames_within(carol), frames_within(anonymous))
    for name, frames in zip(("carol, another user", "an anonymous socket"), heard):
        assert frames == [], f"{name} in the same room got the direct message: {frames}"
    count = await Message.objects.acount()
    assert count == 0, f"{count} direct messages were stored: history is the room's, a direct message is not"


async def test_a_channel_name_or_an_unknown_name_in_to_reaches_nobody(connect, django_user_model):
    (alice,) = await tabs_of(connect, django_user_model, "alice", "lobby")
    (bob,) = await tabs_of(connect, django_user_model, "bob", "lobby")
    # An account switched off (is_active=False): nobody can log in as it, so nothing should reach it.
    await sync_to_async(django_user_model.objects.create_user)("gone", password="not-used", is_active=False)
    wrong = {"channel name": bob.channel_name, "unknown user": "nobody_here", "deactivated user": "gone"}
    for what, to in wrong.items():
        await alice.send_to(text_data=json.dumps({"message": f"hi, {what}", "to": to}))
        reply = await receive_json(alice, 'a "to" that names no user should get an error event')
        assert reply.get("error") == "bad_recipient" and reply.get("detail"), (
            f'a {what} in "to" got {reply}: "to" is the username of an active user, looked up in the database '
            '(is_active=True); anything else gets {"error": "bad_recipient", "detail": <why, in your words>}'
        )
    # One wait for all three: each message says what its "to" was.
    got = await frames_within(bob)
    assert got == [], f"bob's socket got {got}: a message to his channel name, an unknown or a deactivated user reaches nobody"


async def test_an_anonymous_socket_cannot_send_a_direct_message(connect, django_user_model):
    (bob,) = await tabs_of(connect, django_user_model, "bob", "lobby")
    anonymous = await connect("/ws/chat/lobby/")
    await anonymous.send_to(text_data=json.dumps({"message": "hi", "to": "bob"}))
    reply = await receive_json(anonymous, "an anonymous sender should get an error event")
    assert reply.get("error") == "bad_recipient" and reply.get("detail"), (
        f"an anonymous socket's direct message got {reply}: it has no group for answers, so it gets "
        '{"error": "bad_recipient", "detail": <why, in your words>}'
    )
    assert await frames_within(bob) == [], "bob got a direct message from an anonymous socket"


# ---------------------------------------------------------------- in process: the origin check


@pytest.mark.regression("AllowedHostsOriginValidator refuses it from step 02 on; with a login it matters most")
async def test_a_foreign_page_cannot_ride_the_session_cookie_into_a_room(connect, django_user_model):
    from asgiref.sync import sync_to_async

    _, cookie = await sync_to_async(user_cookie)(django_user_model, "alice")
    before = layer_groups()
    rider = await connect("/ws/chat/members_lobby/", origin="http://evil.example", headers=[(b"cookie", cookie)],
                          accepted=False)
    assert not rider.accepted, (
        "a handshake from another site's page, carrying alice's session cookie (browsers send it), was accepted: "
        "keep AllowedHostsOriginValidator outermost in mysite/asgi.py, so that the cookie is never even read"
    )
    joined = joined_since(before)
    assert joined == [], f"the refused handshake joined {joined}"


# ---------------------------------------------------------------- live: one server, then two on Redis


def make_live_users(live_orm, *names):
    """Users `names` in the live servers' database, with the password PASSWORD, hashed as the
    servers' settings check it (tutorial/checks/live_settings.py, as the in-process checks)."""
    from django.contrib.auth import get_user_model

    def make(alias):
        users = get_user_model().objects.db_manager(alias)
        for name in names:
            users.filter(username=name).exists() or users.create_user(name, password=PASSWORD)

    live_orm(make)


@pytest.fixture(scope="session")
def live_user(live_orm):
    """A user "alice" in the live servers' database, with the password PASSWORD."""
    make_live_users(live_orm, "alice")
    return "alice"


def log_in(live, username):
    """Log in through the real login page, as a browser does; return the requests Session with its cookies."""
    import requests

    session = requests.Session()
    page = session.get(f"{live.url}/accounts/login/", timeout=LIVE_TIMEOUT)
    if page.status_code != 200 or "csrftoken" not in session.cookies:
        pytest.fail(f"GET /accounts/login/ answered {page.status_code}, with no login form: add Django's own views, "
                    'path("accounts/", include("django.contrib.auth.urls")), to mysite/urls.py')
    answer = session.post(f"{live.url}/accounts/login/", timeout=LIVE_TIMEOUT, allow_redirects=False, data={
        "username": username, "password": PASSWORD, "next": "/chat/",
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
    })
    assert answer.status_code == 302 and "sessionid" in session.cookies, (
        f"logging in at /accounts/login/ answered {answer.status_code}: LoginView (mysite/urls.py) with "
        "registration/login.html's form should log alice in"
    )
    return session


def log_out(live, session):
    answer = session.post(f"{live.url}/accounts/logout/", timeout=LIVE_TIMEOUT, allow_redirects=False,
                          data={"csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert answer.status_code == 302, f"POST /accounts/logout/ answered {answer.status_code}"


def cookie_of(session):
    return {"Cookie": f"sessionid={session.cookies['sessionid']}"}


async def test_live_a_members_room_refuses_anonymous_with_4401(server):
    async with ws_open(server, "/ws/chat/members_live/", hello=False) as ws:
        first = await recv_json(ws, 'an anonymous socket in a members_ room should be told {"error": "login_required"}')
        assert first.get("error") == "login_required", first
        close = await recv_close(ws, "then the server should close it with 4401")
    assert close is not None and close.code == LOGIN_REQUIRED, (
        f"the close was {close}: daphne passes the consumer's code on, so 4401 should reach the client"
    )
    server.assert_no_traceback()


async def test_live_a_foreign_origin_with_the_cookie_gets_403(server, live_user):
    import websockets

    session = log_in(server, live_user)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with ws_open(server, "/ws/chat/members_live/", origin="http://evil.example",
                           additional_headers=cookie_of(session)):
            pass
    assert refused.value.response.status_code == 403, (
        "another site's handshake, with alice's valid session cookie, should be refused with 403 before any "
        "consumer runs (AllowedHostsOriginValidator, mysite/asgi.py)"
    )


@pytest.mark.beside
async def test_logout_on_one_process_closes_the_socket_on_another(two_on_redis, live_user):
    import websockets

    import chat.consumers

    every = getattr(chat.consumers, "SESSION_CHECK_SECONDS", 5)
    first, second = two_on_redis
    session, phone = log_in(first, live_user), log_in(first, live_user)  # alice, in two browsers
    async with ws_open(second, "/ws/chat/members_far/", additional_headers=cookie_of(session)) as ws, \
            ws_open(second, "/ws/chat/members_far/", additional_headers=cookie_of(phone)) as other:
        opened = time.monotonic()
        assert ws.user == "alice", f"the socket on the second process was named {ws.user!r}, not alice"
        log_out(first, session)
        ended = await recv_json(ws, "a logout on the first process should reach alice's socket on the second: the "
                                    "signal's group_send goes through Redis to the session's group")
        assert ended.get("error") == "session_ended", ended
        close = await recv_close(ws, "after session_ended the server should close the socket")
        # The socket's own session check first asks SESSION_CHECK_SECONDS after it opened: an end
        # before that came from the logout's event, one after it may have come from the check.
        took = time.monotonic() - opened
        assert took < every, (
            f"alice's socket closed {took:.1f} s after it opened, when its own session check (every {every} s) "
            "may have found the session gone: the logout's event never reached it. Is chat/signals.py "
            "imported in ChatConfig.ready() (chat/apps.py), and does its receiver send to the session's group?"
        )
        with contextlib.suppress(websockets.ConnectionClosed):  # closed: recv_json says so, with the hint
            await other.send(json.dumps({"message": "the phone chats on"}))
        heard = await recv_json(other, "alice's other session should stay open and chat after one logout")
        assert heard.get("message") == "the phone chats on", (
            f"alice's socket in her other browser got {heard}: a logout ends that session's sockets only"
        )
    assert close is not None and close.code == LOGIN_REQUIRED, f"the close was {close}, where 4401 belongs"
    for live in two_on_redis:
        live.assert_no_traceback()


@pytest.fixture(scope="module")
def live_enders(live_orm):
    """One user for each way a session ends without a logout, in the live servers' database."""
    names = {"password change": "dora", "deactivation": "erin", "session deleted": "finn",
             "session expired": "gail"}
    make_live_users(live_orm, *names.values(), "hank")
    return names


def end_live_sessions(live_orm, sessions):
    """Deactivate erin, delete finn's session row, expire gail's: what an admin or a cron job does."""
    import datetime

    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    key = {how: session.cookies["sessionid"] for how, session in sessions.items()}

    def end(alias):
        get_user_model().objects.using(alias).filter(username="erin").update(is_active=False)
        Session.objects.using(alias).filter(session_key=key["session deleted"]).delete()
        Session.objects.using(alias).filter(session_key=key["session expired"]).update(
            expire_date=timezone.now() - datetime.timedelta(seconds=1))

    live_orm(end)


# It waits out the step's own SESSION_CHECK_SECONDS, 5 s, and a check more for hank: `make test`
# runs it. The checklist proves the same four ends in process (a check of 0.05 s), and the
# logout's event across two processes above.
@pytest.mark.long
async def test_live_every_other_end_of_a_session_closes_its_socket_in_seconds(two_on_redis, live_enders,
                                                                             live_orm):
    import chat.consumers

    # The step's own bound, as the learner wrote it; the live servers use it as it is.
    every = getattr(chat.consumers, "SESSION_CHECK_SECONDS", 5)
    first, second = two_on_redis
    sessions = {how: log_in(first, name) for how, name in live_enders.items()}
    # Slack for a busy machine: the bound is the step's; the check's wait is a little longer.
    bound = every + 5
    async with contextlib.AsyncExitStack() as stack:
        sockets = {how: await stack.enter_async_context(
            ws_open(second, "/ws/chat/members_ends/", additional_headers=cookie_of(session)))
            for how, session in sessions.items()}
        hank = await stack.enter_async_context(
            ws_open(second, "/ws/chat/members_ends/", additional_headers=cookie_of(log_in(first, "hank"))))
        hank_opened = time.monotonic()
        # dora changes her password on Django's own page, in another browser, on the first process.
        elsewhere = log_in(first, "dora")
        page = f"{first.url}/accounts/password_change/"
        elsewhere.get(page, timeout=LIVE_TIMEOUT)
        answer = elsewhere.post(page, timeout=LIVE_TIMEOUT, allow_redirects=False, data={
            "old_password": PASSWORD, "new_password1": "a-new-one-2026", "new_password2": "a-new-one-2026",
            "csrfmiddlewaretoken": elsewhere.cookies["csrftoken"]})
        assert answer.status_code == 302, f"the password change page answered {answer.status_code}"
        changed = {"password change": time.monotonic()}
        await sync_to_async(end_live_sessions)(live_orm, sessions)
        changed.update(dict.fromkeys(["deactivation", "session deleted", "session expired"], time.monotonic()))

        async def ends(how):
            ws = sockets[how]
            hint = (f"after {ENDINGS[how]}, the socket should get session_ended within SESSION_CHECK_SECONDS "
                    f"({every} s), from its own session check (check_the_session in "
                    "chat/consumers.py), on whichever process it lives")
            ended = await recv_json(ws, hint, timeout=bound)
            assert ended.get("error") == "session_ended", f"{hint}; it got {ended}"
            close = await recv_close(ws, f"after session_ended the server should close the socket ({how})")
            assert close is not None and close.code == LOGIN_REQUIRED, f"the close was {close}, where 4401 belongs"
            return time.monotonic() - changed[how]

        took = await asyncio.gather(*(ends(how) for how in sockets))
        # hank's session never ended: once his socket has been through a check, it chats on.
        await asyncio.sleep(max(0, hank_opened + every + 1 - time.monotonic()))
        await hank.send(json.dumps({"message": "hank stays"}))
        heard = await recv_json(hank, "hank's session is as good as ever: his socket should chat on")
        assert heard.get("message") == "hank stays", (
            f"hank's socket got {heard} where his own message belonged, while his session is as good as ever: the "
            "session check should find a live session live (aget_user() on the settings' own SessionStore)"
        )
    late = {how: round(seconds, 1) for how, seconds in zip(sockets, took) if seconds > bound}
    assert not late, f"these sockets closed later than {bound} s after their session ended: {late}"
    for live in two_on_redis:
        live.assert_no_traceback()


async def live_frames_within(ws, seconds=0.5):
    """Every frame a live WebSocket gets within `seconds`, as JSON: one deadline for them all, so
    that a socket that keeps receiving cannot hold the check past it."""
    frames, deadline = [], time.monotonic() + seconds
    with contextlib.suppress(asyncio.TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
    return frames


@pytest.fixture(scope="module")
def live_users(live_orm):
    """alice, bob and carol in the live servers' database, with PASSWORD."""
    make_live_users(live_orm, "alice", "bob", "carol")


@pytest.mark.beside
async def test_with_redis_a_direct_message_reaches_every_tab_in_both_processes(two_on_redis, live_users):
    one, two = two_on_redis
    alice, bob, carol = (log_in(one, name) for name in ("alice", "bob", "carol"))

    def tab(server, session):
        return ws_open(server, "/ws/chat/lobby/", additional_headers=cookie_of(session))

    async with tab(one, alice) as alice_one, tab(two, alice) as alice_two, tab(one, bob) as bob_one, \
            tab(two, bob) as bob_two, tab(two, carol) as carol_two:
        await alice_one.send(json.dumps({"message": "across", "to": "bob"}))
        for name, ws, own in (("bob's tab on the other process", bob_two, False), ("bob's tab here", bob_one, False),
                              ("alice's tab on the other process", alice_two, True), ("alice's own tab", alice_one, True)):
            got = await recv_json(ws, f"{name} should get the direct message: user_<id> groups live in Redis")
            assert got == {"message": "across", "user": "alice", "direct": True, "own": own}, f"{name} got {got}"
        assert await live_frames_within(carol_two) == [], "carol, a third user, got alice's direct message"
    for live in two_on_redis:
        live.assert_no_traceback()


# ---------------------------------------------------------------- in the browser


def close_code_after(page, error, hint):
    """The code of the close the page logged after the error event `error`.

    4401, or now and then on a busy machine 1006: daphne waits under a second for the browser's
    answer to its close, then resets the connection, as step 02's browser check of 4400 explains.
    The 4401 itself is checked over daphne by the live checks above, whose client answers at once.
    """
    page.wait_for_event(error, hint)
    page.wait_for_event("close code=", f"{hint}, then a close")
    close = next(event for event in page.events() if event.startswith("close code="))
    return int(close.split()[1].removeprefix("code="))


def notice_shown(page):
    """#login-notice: (is it shown, its text, the hrefs of the links inside it)."""
    return page.run(
        "const n = document.getElementById('login-notice');"
        "if (!n) return [false, '', []];"
        "return [n.checkVisibility(), n.textContent.trim(), [...n.querySelectorAll('a')].map(a => a.getAttribute('href'))];"
    )


def log_in_on_the_page(page, username):
    """Fill in the login page (registration/login.html, given) that the browser is on, and send it."""
    page.find("id_username").send_keys(username)
    page.find("id_password").send_keys(PASSWORD)
    page.find("id_password").submit()


@pytest.mark.browser
def test_the_page_explains_a_refusal_and_hides_the_notice_once_allowed(open_page, live_user):
    room = open_page("/chat/members_page/")
    room.driver.delete_all_cookies()  # anonymous, whatever an earlier check left logged in
    room.driver.refresh()
    code = close_code_after(room, "login_required", "an anonymous page in a members_ room should get login_required")
    assert code in (LOGIN_REQUIRED, 1006), f"the refusal should close with 4401 (1006 on a busy machine), not {code}"
    shown, text, links = notice_shown(room)
    assert shown and text, (
        "on a login_required error event the page should show #login-notice, with the reason in its text "
        f"(chat/templates/chat/room.html): it is {'shown, but empty' if shown else 'missing or hidden'}"
    )
    login = "/accounts/login/?next=/chat/members_page/"
    assert login in links, (
        f"#login-notice should hold a link to the login page that comes back to the room, {login} "
        "({% url 'login' %}?next={{ request.path|urlencode }}); its links are " + repr(links)
    )
    room.driver.get(room.driver.current_url.split("/chat/")[0] + login)
    log_in_on_the_page(room, live_user)
    room.wait_for(lambda: room.driver.current_url.endswith("/chat/members_page/"),
                  "after logging in, ?next= should bring the browser back to the room")
    room.wait_for(lambda: room.text("user-name") == "alice", "back in the room, the page should be alice's")
    shown, text, _ = notice_shown(room)
    assert not shown, (
        f"#login-notice is shown to alice, whom the room let in ({text!r}): keep it hidden until a "
        "login_required or session_ended error event arrives"
    )
    assert room.console_errors() == [], f"the page logged errors: {room.console_errors()}"


@pytest.mark.browser
def test_the_page_explains_a_logout_in_another_tab(open_page, live_user):
    room = open_page("/accounts/login/?next=/chat/members_tab/")
    log_in_on_the_page(room, live_user)
    room.wait_for(lambda: room.text("user-name") == "alice", "logged in, the room page should be alice's")
    other = open_page("/chat/lobby/")
    other.find("logout").click()  # base.html's account bar, given: a POST form with its CSRF token
    code = close_code_after(room, "session_ended", "a logout in another tab should close this tab's socket too")
    assert code in (LOGIN_REQUIRED, 1006), f"session_ended should close with 4401 (1006 on a busy machine), not {code}"
    shown, text, _ = notice_shown(room)
    assert shown and text, (
        "on a session_ended error event the page should show #login-notice with the reason in its text "
        f"(chat/templates/chat/room.html): it is {'shown, but empty' if shown else 'missing or hidden'}"
    )
    disabled = room.run("return ['chat-message-input', 'chat-message-submit']"
                        ".map(id => document.getElementById(id).disabled)")
    assert disabled == [True, True], (
        f"after the close, #chat-message-input and #chat-message-submit have disabled = {disabled}: a closed "
        "socket sends nothing, so socket.onclose (room.html) should set `disabled` on them"
    )
    assert room.console_errors() == [], f"the page logged errors: {room.console_errors()}"
