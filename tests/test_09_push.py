"""Step 09, push: the rest of Django (a view, a signal, a management command) talks to the sockets.

Each push is checked end to end, to a real socket: in process (a communicator on the step's
application, with Django's test client in the same process and the same in-memory layer), live
(daphne and the `websockets` client), and across processes, where only Redis carries it.
"""

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from conftest import QUIET, STEP_DIR, TIMEOUT, frames_within, receive_json, recv_json, ws_open
from test_08_login import live_frames_within

COMMAND_TIMEOUT = 30  # a cold Django start on a busy machine; the command itself takes well under 1 s


def manage(*args, env=None):
    """`python manage.py ...` in the step's folder, in a process of its own, as a learner types it."""
    environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=STEP_DIR, env=environment,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def save_in_a_shell(room, text, env):
    """`manage.py shell` saves a Message: a process that loads only what Django loads at start-up
    (the receiver must be connected in ready(), not by a module that only the URLconf imports)."""
    return manage("shell", "-c", "from chat.models import Message; "
                  f"Message.objects.create(room={room!r}, author='shell', text={text!r})", env=env)


def answer(response):
    """A response in a few words: "302 to /somewhere/", "404"."""
    where = getattr(response, "url", "")
    return f"{response.status_code} to {where}" if where else str(response.status_code)


@pytest.fixture
def staff_client(transactional_db, client, django_user_model):
    """Django's test client, logged in as a staff member (is_staff, as the admin requires)."""
    staff = django_user_model.objects.create_user("editor", password="not-used", is_staff=True)
    client.force_login(staff)
    return client


# ---------------------------------------------------------------- in process: the staff view


async def test_a_staff_announcement_reaches_the_sockets_of_its_room(connect, staff_client):
    listener = await connect("/ws/chat/news/")
    elsewhere = await connect("/ws/chat/other/")
    response = await sync_to_async(staff_client.post)("/chat/news/announce/", {"text": "  doors close at six  "})
    assert response.status_code == 302 and response.url == "/chat/news/announce/", (
        f"a staff POST of text=... to /chat/news/announce/ answered {answer(response)}: the form's one field is "
        "named text, and a valid POST should send, then "
        "redirect (302) back to /chat/news/announce/ (Post/Redirect/Get, chat/staff.py)"
    )
    frame = await receive_json(listener, "a socket in the room should hear the announcement the view sent: "
                                         "async_to_sync(get_channel_layer().group_send)(\"chat_news\", ...) "
                                         "in chat/push.py, and chat_announcement() in chat/consumers.py")
    assert frame == {"announcement": "doors close at six"}, (
        f'the socket got {frame}: an announcement should reach the browser as {{"announcement": text}}, '
        "stripped, and nothing else"
    )
    assert await frames_within(elsewhere) == [], "an announcement to one room reached another room's socket"


async def test_only_staff_may_announce_and_the_form_needs_its_csrf_token(connect, transactional_db,
                                                                       django_user_model):
    from django.test import Client

    listener = await connect("/ws/chat/guarded/")
    anonymous = await sync_to_async(Client().post)("/chat/guarded/announce/", {"text": "hello?"})
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.url, (
        f"an anonymous POST answered {answer(anonymous)}: it should be "
        "redirected (302) to the admin's login page, /admin/login/, which @staff_member_required does"
    )

    def logged_in(is_staff, csrf):
        user = django_user_model.objects.create_user(f"user{int(is_staff)}", password="x", is_staff=is_staff)
        client = Client(enforce_csrf_checks=csrf)
        client.force_login(user)
        return client

    member = await sync_to_async(logged_in)(False, False)
    refused = await sync_to_async(member.post)("/chat/guarded/announce/", {"text": "hello?"})
    assert refused.status_code == 302, (
        f"a logged-in user who is not staff answered {refused.status_code}: @staff_member_required should "
        "redirect (302) them to the admin's login page too"
    )
    forged = await sync_to_async(logged_in)(True, True)
    no_token = await sync_to_async(forged.post)("/chat/guarded/announce/", {"text": "hello?"})
    assert no_token.status_code == 403, (
        f"a staff POST without the CSRF token got {no_token.status_code}, where CsrfViewMiddleware answers 403: "
        "another site's page must not be able to announce in a staff member's name"
    )
    assert await frames_within(listener) == [], "a refused announcement reached the room anyway"


# ---------------------------------------------------------------- in process: the post_save signal


async def test_a_message_saved_outside_any_consumer_reaches_the_room(connect):
    from chat.models import Message

    listener = await connect("/ws/chat/admin_said/")
    # As the admin or the shell make one: a plain save, no socket anywhere.
    await sync_to_async(Message.objects.create)(room="admin_said", author="staff", text="from the admin")
    frame = await receive_json(listener, "a Message saved outside any consumer should reach its room: a "
                                         "post_save receiver (chat/signals.py, connected in chat/apps.py ready())")
    assert (frame.get("user"), frame.get("message"), frame.get("own")) == ("staff", "from the admin", False), (
        f"the room got {frame}: the pushed message should read like any other, its author as the user, "
        "and be nobody's own"
    )


@pytest.mark.regression("step 07 sends each message once; the post_save push must not add a second copy")
async def test_a_message_said_in_the_room_reaches_each_member_once(connect):
    room = [await connect("/ws/chat/once/") for _ in range(3)]
    await room[0].send_to(text_data=json.dumps({"message": "only once"}))
    # A second copy, pushed by the post_save receiver, would come within milliseconds: QUIET.
    heard = await asyncio.gather(*(frames_within(member) for member in room))
    counts = [sum(frame.get("message") == "only once" for frame in frames) for frames in heard]
    assert counts == [1, 1, 1], (
        f"each member got the message {counts} times: the consumer sends what it stored itself, so the "
        "post_save receiver must skip that row (the consumer marks it, sent_by_consumer, before asave())"
    )


def test_a_message_added_in_the_admin_is_signed_by_the_staff_member(transactional_db, client, django_user_model):
    from chat.models import Message

    client.force_login(django_user_model.objects.create_superuser("boss", password="not-used"))
    client.raise_request_exception = False
    response = client.post("/admin/chat/message/add/", {"room": "lobby", "author": "alice", "text": "signed"})
    stored = Message.objects.filter(text="signed").first()
    assert response.status_code == 302 and stored and stored.author == "boss", (
        f"a staff member, boss, added a Message in the admin with author=alice: the admin answered "
        f"{answer(response)} and stored {stored.author if stored else 'nothing'!r} as its author. In chat/admin.py "
        "make `author` read-only (readonly_fields) and set it to request.user's username in save_model(), so that "
        "nobody posts live as someone else"
    )


def test_a_message_rolled_back_is_never_pushed(transactional_db):
    """Sync: the transaction is the admin's kind, and the receiver waits for its commit (on_commit)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.db import transaction

    from chat.models import Message

    layer = get_channel_layer()

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add("chat_undone", channel)
        return channel

    async def received(channel, seconds):
        with contextlib.suppress(asyncio.TimeoutError):
            return await asyncio.wait_for(layer.receive(channel), seconds)

    channel = async_to_sync(listen)()
    try:
        with contextlib.suppress(RuntimeError):
            with transaction.atomic():
                Message.objects.create(room="undone", author="staff", text="never happened")
                raise RuntimeError("the admin's save failed after the INSERT")
        assert async_to_sync(received)(channel, QUIET) is None, (
            "a message whose transaction rolled back was pushed to the room: push it in "
            "transaction.on_commit(...), so that only stored messages are sent (chat/signals.py)"
        )
        Message.objects.create(room="undone", author="staff", text="this one stays")
        event = async_to_sync(received)(channel, TIMEOUT)
        assert event and event.get("message") == "this one stays", "a committed message should be pushed"
    finally:
        # The in-process layer lives as long as the test process: later checks count its groups.
        async_to_sync(layer.group_discard)("chat_undone", channel)


# ---------------------------------------------------------------- the command


def announce_status(*args):
    """Run `manage.py announce` in this process (call_command): (exit status, what it said).
    CommandError(..., returncode=N) is what manage.py turns into exit status N and one line."""
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        # print() too, as manage.py would show it, not only self.stdout.write().
        with contextlib.redirect_stdout(out):
            call_command("announce", *args, stdout=out)
    except CommandError as error:
        return getattr(error, "returncode", 1), str(error)
    return 0, out.getvalue()


def test_the_command_refuses_a_bad_room_and_the_in_memory_layer():
    status, said = announce_status("my room", "hello")
    assert status == 2 and "room" in said, (
        f"`announce \"my room\" ...` exited {status} ({said}): a bad room name should fail with chat/rooms.py's "
        "rule and exit status 2 (CommandError(..., returncode=2))"
    )
    status, said = announce_status("lobby", "hello")
    assert status == 3 and "in-memory" in said, (
        f"with no REDIS_URL the command exited {status} ({said}): on the in-memory layer it can reach no "
        "server's sockets, so it should say so and exit 3, not succeed silently"
    )


def layer_at(settings, url, **options):
    """Point the step's channel layer at the Redis at `url`, as REDIS_URL=url would
    (mysite/settings.py); channels makes its layer anew when CHANNEL_LAYERS changes."""
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [{"address": url, **options}]}}}


@pytest.fixture
def layer_down(settings):
    """The channel layer on a Redis that is not there: a loopback port nobody listens on."""
    from tutorial.core.wire import free_port

    layer_at(settings, f"redis://127.0.0.1:{free_port()}/0")


def test_the_command_says_when_redis_cannot_be_reached(layer_down):
    try:
        status, said = announce_status("lobby", "hello")
    except Exception as error:  # what manage.py would print as a traceback
        pytest.fail(f"with REDIS_URL pointing at no Redis the command raised {type(error).__name__}: {error}\n"
                    "it should catch the connection error and exit 4, saying why in a sentence "
                    "(CommandError(..., returncode=4)), with no traceback")
    assert status == 4 and said, (
        f"with REDIS_URL pointing at no Redis the command exited {status} and said: {said}\n"
        "it should catch the connection error and exit 4, saying why in a sentence (CommandError)"
    )


# ---------------------------------------------------------------- when the layer is down


def logged_once(caplog, what):
    """The log of a push that failed: one line from the chat app, and no traceback anywhere."""
    lines = [r for r in caplog.records if r.name.startswith("chat") and r.levelname in ("WARNING", "ERROR")]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(lines) == 1 and not tracebacks, (
        f"{what}, the log should have one line saying the push did not go out, with its cause, and no "
        f"traceback (send_to_group in chat/push.py: logger.warning, no exc_info); it has {len(lines)} line(s) "
        f"from the chat app{' and a traceback from ' + tracebacks[0].name if tracebacks else ''}: "
        + "; ".join(r.getMessage()[:200] for r in lines)
    )


def test_with_the_layer_down_the_form_says_the_announcement_did_not_go_out(layer_down, staff_client, caplog):
    from django.contrib.messages import constants

    staff_client.raise_request_exception = False  # a crash is a 500 here, as in the browser
    response = staff_client.post("/chat/news/announce/", {"text": "doors close at six"})
    errors = [m for m in (response.context or {}).get("messages", []) if m.level == constants.ERROR]
    assert response.status_code == 503 and errors, (
        f"with the channel layer unreachable, a staff POST to /chat/news/announce/ answered {answer(response)}"
        f"{' with no error message' if not errors else ''}: catch PushFailed around announce() (chat/staff.py), "
        "say it with messages.error(...) and answer the form again with status 503"
    )
    logged_once(caplog, "after an announcement the layer did not take")


def test_with_the_layer_down_the_admin_stores_a_message_once(layer_down, transactional_db, client,
                                                             django_user_model, caplog):
    from chat.models import Message

    admin = django_user_model.objects.create_superuser("boss", password="not-used")
    client.force_login(admin)
    client.raise_request_exception = False
    response = client.post("/admin/chat/message/add/", {"room": "lobby", "author": "boss", "text": "stored anyway"})
    stored = Message.objects.filter(text="stored anyway").count()
    assert response.status_code == 302 and stored == 1, (
        f"with the channel layer unreachable, adding a Message in the admin answered {answer(response)} and "
        f"stored it {stored} time(s), where a redirect and one row are right: push_message() (chat/push.py) "
        "should catch PushFailed, so that the save succeeds and a retry makes no duplicate"
    )
    logged_once(caplog, "after a save whose push the layer did not take")


def test_with_the_layer_down_logout_still_ends_the_session(layer_down, transactional_db, client,
                                                           django_user_model, caplog):
    from django.contrib.sessions.models import Session

    client.force_login(django_user_model.objects.create_user("dora", password="not-used"))
    key = client.session.session_key
    client.raise_request_exception = False
    response = client.post("/accounts/logout/")
    still = Session.objects.filter(session_key=key).exists()
    assert response.status_code == 302 and not still, (
        f"with the channel layer unreachable, logging out answered {answer(response)}"
        f"{' and left the session in place (still logged in)' if still else ''}: Django flushes the session "
        "after user_logged_out, so the receiver (chat/signals.py) should send through send_to_group() and catch "
        "PushFailed"
    )
    logged_once(caplog, "after a logout whose push the layer did not take")


@pytest.mark.live  # a hung "Redis" that the push must give up on: after the in-process verdict
def test_a_hung_layer_holds_a_logout_for_two_seconds_at_most(settings, transactional_db, client,
                                                            django_user_model, monkeypatch):
    import socket
    import time

    try:
        import chat.push
    except ModuleNotFoundError as missing:
        if missing.name != "chat.push":
            raise
        pytest.fail("there is no chat/push.py: write send_to_group() there, with PUSH_TIMEOUT = 2 (seconds)")
    bound = getattr(chat.push, "PUSH_TIMEOUT", None)
    if not isinstance(bound, (int, float)) or not 0 < bound <= 5:
        found = "has no PUSH_TIMEOUT" if bound is None else f"has PUSH_TIMEOUT = {bound!r}"
        pytest.fail(f"chat/push.py {found}: a module constant, 2 (seconds), that send_to_group() gives "
                    "the layer at each push (asyncio.wait_for), so that a hung Redis holds a request that long at most")
    # The bound's mechanism, proven in a tenth of its time: send_to_group() reads PUSH_TIMEOUT at
    # each push, so the check can give the layer 0.2 s.
    monkeypatch.setattr(chat.push, "PUSH_TIMEOUT", 0.2)
    # A "Redis" that takes the connection and never answers: a hung server, a full network.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        layer_at(settings, f"redis://127.0.0.1:{hung.getsockname()[1]}/0", socket_timeout=15)
        client.force_login(django_user_model.objects.create_user("eve", password="not-used"))
        client.raise_request_exception = False
        started = time.monotonic()
        response = client.post("/accounts/logout/")
        took = time.monotonic() - started
    # 0.2 s here (2 s in the step), and room for a busy machine. Without a bound, redis-py waits 15 s.
    assert response.status_code == 302 and took < 4, (
        f"with a channel layer that never answers, logging out took {took:.1f} s and answered "
        f"{answer(response)}: send_to_group() (chat/push.py) should give the layer PUSH_TIMEOUT (2 s; "
        "here made 0.2 s: read it at each push) with asyncio.wait_for, then give up and let the logout finish"
    )


@pytest.mark.regression("the lesson behind exit 3: on the in-memory layer no other process reaches a socket, "
                        "with or without the push")
async def test_on_the_in_memory_layer_a_shell_reaches_nobody(server, live_database):
    async with ws_open(server, "/ws/chat/lonely/") as listener:
        shell = await asyncio.to_thread(save_in_a_shell, "lonely", "hi", live_database)
        heard = await live_frames_within(listener)
    assert shell.returncode == 0, f"the shell could not save a Message: {shell.stderr[-1500:]}"
    # The lesson, not a wish: the shell's process has a layer of its own, with nobody in the group.
    assert heard == [], (
        f"the server's socket heard {heard} from another process on the in-memory layer, which should be "
        "impossible: is REDIS_URL set in the checks' environment?"
    )


async def test_with_redis_the_command_and_the_shell_reach_both_processes(two_on_redis, redis_server, live_database,
                                                                         settings):
    # A shell of its own saves a Message, and this process runs the command meanwhile (call_command):
    # each another process than either server, on the same Redis, as REDIS_URL=... would make them.
    layer_at(settings, redis_server.url)
    async with ws_open(two_on_redis[0], "/ws/chat/everyone/") as first, \
            ws_open(two_on_redis[1], "/ws/chat/everyone/") as second:
        shell = asyncio.create_task(asyncio.to_thread(save_in_a_shell, "everyone", "saved",
                                                      {**live_database, "REDIS_URL": redis_server.url}))
        try:
            status, said = await asyncio.to_thread(announce_status, "everyone", "server restarts at noon")
        except Exception as error:  # what manage.py would print as a traceback
            pytest.fail(f"with REDIS_URL set the command raised {type(error).__name__}: {error}\n"
                        "it should send the announcement, say \"sent to chat_everyone\" and exit 0")
        finally:
            shell = await shell
        assert status == 0 and "sent to chat_everyone" in said, (
            f"with REDIS_URL set the command should send, say so (\"sent to chat_everyone\") and exit 0: it "
            f"exited {status} and said {said!r}"
        )
        assert shell.returncode == 0, f"the shell could not save a Message: {shell.stderr[-1500:]}"
        for name, ws in (("first", first), ("second", second)):
            frames = [await recv_json(ws, f"the {name} process's socket should hear the command's announcement and "
                                          "a Message saved in a shell: the command, the shell and both servers "
                                          "share Redis (chat/signals.py)") for _ in range(2)]
            assert {"announcement": "server restarts at noon"} in frames, f"the {name} socket got {frames}"
            assert [(f.get("user"), f.get("message")) for f in frames if "user" in f] == [("shell", "saved")], (
                f"a Message saved in a shell should reach the {name} process's socket once: it got {frames}"
            )
    for live in two_on_redis:
        live.assert_no_traceback()


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def staff_login(live_orm):
    """A staff user in the live servers' database, as `createsuperuser` makes one."""
    from django.contrib.auth import get_user_model

    def make(alias):
        users = get_user_model().objects.db_manager(alias)
        users.filter(username="staff").exists() or users.create_superuser("staff", "staff@example.com",
                                                                         "tutorial-staff-pw")

    live_orm(make)
    return "staff", "tutorial-staff-pw"


@pytest.mark.browser
def test_the_staff_form_announces_to_an_open_room_page_and_a_socket(open_page, server, staff_login):
    try:
        announced_in_the_browser(open_page, server, staff_login)
    finally:
        # The browser is shared by every check of the session: log out (a POST, from the account
        # bar), so that later pages are anonymous again.
        page = open_page("/chat/")
        if page.run("return !!document.getElementById('logout')"):
            page.find("logout").click()
            page.wait_for(lambda: page.run("return !document.getElementById('logout')"),
                          "the account bar's Log out should end the staff session")


def announced_in_the_browser(open_page, server, staff_login):
    from selenium.webdriver.common.by import By

    room = open_page("/chat/town_hall/")
    room.wait_for_event("open", "the room page should open its socket")
    staff = open_page("/admin/login/?next=/chat/town_hall/announce/")
    staff.find("id_username").send_keys(staff_login[0])
    staff.find("id_password").send_keys(staff_login[1])
    staff.driver.find_element(By.CSS_SELECTOR, "[type=submit]").click()
    staff.find("id_text").send_keys("<b>fire drill</b> at 3")

    async def listen_while_posting():
        async with ws_open(server, "/ws/chat/town_hall/") as ws:
            await asyncio.to_thread(staff.find("id_text").submit)
            return await recv_json(ws, "a live socket should hear the form's announcement")

    heard = asyncio.run(listen_while_posting())
    assert heard == {"announcement": "<b>fire drill</b> at 3"}, f"the live socket got {heard}"
    room.wait_for(lambda: any(row["user"] == "[announcement]" for row in room.chat_rows()),
                  'the room page should draw {"announcement": ...} as a line of its own in #chat-log, '
                  'showMessage with the user "[announcement]": "12:03 [announcement]: ..." '
                  "(chat/templates/chat/room.html)")
    row = room.chat_rows()[-1]
    assert (row["user"], row["text"]) == ("[announcement]", "<b>fire drill</b> at 3"), row
    assert room.run("return document.querySelectorAll('b').length") == 0, (
        "the announcement became HTML on the page: draw it with showMessage, which adds it to #chat-log's "
        "value as text"
    )
    # Django's admin pages ask for /favicon.ico, which no step serves; the chat pages do not.
    errors = [error for error in room.console_errors() if "/favicon.ico" not in error]
    assert errors == [], f"the pages logged errors: {errors}"
