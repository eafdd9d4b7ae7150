"""Step 11, in production: the same chat served as a server serves it, and a page that rides out a restart.

The settings come from the environment (mysite/production.py), checked in processes of their own.
/healthz answers for the database and the channel layer, in process. The rest goes through the
stack that `make run STEP=11` starts (tutorial/core/stack.py): nginx with TLS from a test
certificate authority, in front of two daphne processes on Redis and PostgreSQL, with the step's
own deploy/nginx.conf. Those checks are skipped without nginx, Redis or PostgreSQL, saying how to
get them, unless TUTORIAL_REQUIRE_* says they must run (CI sets them).
"""

import asyncio
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import LIVE_TIMEOUT, START_SECONDS, STEP_DIR, need, receive_json, recv_json, start_browser
from test_06_scale_out import channel_layers
from test_services import login_through
from test_stack import join, open_windows, pinned

from tutorial.core import serve
from tutorial.core.stack import start_stack
from tutorial.core.wire import free_port

# What a server's environment holds: made-up values, for the checks that only read the settings.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "mysite.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "chat.example.com, www.chat.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "DATABASE_URL": "postgres://chat:secret@db.example.com:5433/chatdb",
    "REDIS_URL": "redis://redis.example.com:6379/0",
    "DJANGO_STATIC_ROOT": "/srv/chat/static",
}

NO_PRODUCTION_SETTINGS = ("there is no mysite/production.py: write it, starting with `from .settings import *`, "
                          "then what a server changes (task 1)")


def production_run(*args, **env):
    """Run `args` (after python) in the step's folder with PRODUCTION_ENV, `env` on top (None
    unsets a name); return the finished process, its output as text."""
    if not (STEP_DIR / "mysite" / "production.py").is_file():
        pytest.fail(NO_PRODUCTION_SETTINGS)
    return subprocess.run([sys.executable, *args], cwd=STEP_DIR, env=serve.environment(**{**PRODUCTION_ENV, **env}),
                          capture_output=True, text=True, timeout=START_SECONDS)


READ_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
database = s.DATABASES["default"]
print(json.dumps({
    "DEBUG": s.DEBUG, "SECRET_KEY": s.SECRET_KEY, "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS, "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "database": [database.get(key) for key in ("ENGINE", "NAME", "USER", "HOST", "PORT")],
    "layer": s.CHANNEL_LAYERS["default"]["BACKEND"], "STATIC_ROOT": str(s.STATIC_ROOT),
}))
"""


# ---------------------------------------------------------------- task 1: settings from the environment


@pytest.mark.live
@pytest.mark.beside
def test_production_settings_come_from_the_environment():
    done = production_run("-c", READ_SETTINGS)
    assert done.returncode == 0, (
        f"DJANGO_SETTINGS_MODULE=mysite.production should load with every variable set; it failed with "
        f"{(done.stderr.strip().splitlines() or ['no error'])[-1]}\n{done.stderr[-2000:]}")
    read = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {
        "DEBUG": False,
        "SECRET_KEY": PRODUCTION_ENV["DJANGO_SECRET_KEY"],
        "ALLOWED_HOSTS": ["chat.example.com", "www.chat.example.com"],
        "CSRF_TRUSTED_ORIGINS": ["https://chat.example.com"],
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "database": ["django.db.backends.postgresql", "chatdb", "chat", "db.example.com", 5433],
        "layer": "channels_redis.core.RedisChannelLayer",
        "STATIC_ROOT": "/srv/chat/static",
    }
    wrong = {name: read.get(name) for name, value in expected.items() if read.get(name) != value}
    assert not wrong, (
        "mysite/production.py should read DEBUG = False, then from the environment DJANGO_SECRET_KEY, "
        "DJANGO_ALLOWED_HOSTS and DJANGO_CSRF_TRUSTED_ORIGINS (comma-separated, spaces stripped), DATABASE_URL "
        "(dj_database_url.parse), REDIS_URL and DJANGO_STATIC_ROOT, with SECURE_PROXY_SSL_HEADER = "
        f"(\"HTTP_X_FORWARDED_PROTO\", \"https\"). With {PRODUCTION_ENV} these differ: {wrong}; expected "
        + str({name: expected[name] for name in wrong}))


# What a server cannot do without: the settings must stop it, naming the variable.
REQUIRED = ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "DJANGO_STATIC_ROOT"]


@pytest.mark.live
@pytest.mark.beside
def test_a_missing_variable_stops_the_server_and_names_it():
    if not (STEP_DIR / "mysite" / "production.py").is_file():
        pytest.fail(NO_PRODUCTION_SETTINGS)
    # One process a variable, side by side: each starts Django with that one unset.
    runs = {name: subprocess.Popen([sys.executable, "-c", READ_SETTINGS], cwd=STEP_DIR, text=True,
                                   env=serve.environment(**{**PRODUCTION_ENV, name: None}),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name in REQUIRED}
    quiet = []
    try:
        for name, process in runs.items():
            _, errors = process.communicate(timeout=START_SECONDS)
            # The traceback's last line is the exception and its message (the lines above it show
            # the source, which names the variable whatever the message says).
            said = (errors.strip().splitlines() or ["no error"])[-1]
            if process.returncode == 0 or not said.startswith("django.core.exceptions.ImproperlyConfigured") \
                    or name not in said:
                quiet.append(f"{name}: exit {process.returncode}, {said}")
    finally:
        for process in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    assert not quiet, (
        "with one variable unset, mysite/production.py should raise ImproperlyConfigured with its name, so that "
        "a server stops at once instead of running on a development value. Not so for:\n" + "\n".join(quiet))


@pytest.mark.live
@pytest.mark.beside
def test_check_deploy_finds_nothing_to_fix():
    done = production_run("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and "no issues" in said, (
        "DJANGO_SETTINGS_MODULE=mysite.production python manage.py check --deploy should find no issues; set what "
        "each warning names in mysite/production.py (and silence security.W021, HSTS preload, in "
        f"SILENCED_SYSTEM_CHECKS). It said:\n{said[-3000:]}")


ASK_AS_HOSTS = """
import django
django.setup()
from django.test import Client
for host in ("chat.example.com", "elsewhere.example.com"):
    print(host, Client().get("/chat/", HTTP_HOST=host, secure=True).status_code)
"""


@pytest.mark.live
@pytest.mark.beside
def test_a_host_not_in_allowed_hosts_gets_400():
    done = production_run("-c", ASK_AS_HOSTS)
    answers = dict(line.split() for line in done.stdout.splitlines() if line.count(" ") == 1)
    assert answers == {"chat.example.com": "200", "elsewhere.example.com": "400"}, (
        "with DJANGO_ALLOWED_HOSTS=chat.example.com, www.chat.example.com, an https request for /chat/ should get "
        "200 as chat.example.com and 400 as elsewhere.example.com: ALLOWED_HOSTS (mysite/production.py) is "
        f"what Django checks each request's Host against once DEBUG is off. They got {answers or done.stderr[-1500:]}")


# ---------------------------------------------------------------- task 2: /healthz


def health(client):
    response = client.get("/healthz")
    assert response.status_code != 404, (
        '/healthz is not found: add path("healthz", health, name="health") to mysite/urls.py, with '
        "health(request) in chat/health.py")
    try:
        return response.status_code, response.json()
    except ValueError:
        pytest.fail(f"/healthz should answer JSON (JsonResponse); it answered {response.content[:200]!r}")


def test_healthz_reports_the_database_and_the_channel_layer(client, transactional_db):
    status, report = health(client)
    assert (status, report) == (200, {"database": "ok", "channel_layer": "ok"}), (
        'with the database and the channel layer up, /healthz (chat/health.py) should answer 200 and '
        f'{{"database": "ok", "channel_layer": "ok"}}; it answered {status} and {report}')


def test_healthz_says_503_and_what_failed_when_redis_is_down(client, transactional_db, monkeypatch, settings):
    # A Redis address where nothing listens: the layer's first connection is refused.
    settings.CHANNEL_LAYERS = channel_layers(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    status, report = health(client)
    assert status == 503 and report.get("database") == "ok" and report.get("channel_layer") not in (None, "ok"), (
        "with Redis down and the database up, /healthz should answer 503 with \"database\": \"ok\" and, for "
        "\"channel_layer\", the name of the exception (type(error).__name__): a load balancer then stops "
        f"sending users to this process. It answered {status} and {report}")


# ---------------------------------------------------------------- task 3: nginx in front


def start_production_stack():
    need("nginx", "redis", "postgres")
    if not (STEP_DIR / "mysite" / "production.py").is_file():
        pytest.fail(NO_PRODUCTION_SETTINGS)
    if not (STEP_DIR / "deploy" / "nginx.conf").is_file():
        pytest.fail("there is no deploy/nginx.conf: the stack starts nginx with it (task 3)")
    try:
        return start_stack(STEP_DIR, timeout=START_SECONDS)
    except (RuntimeError, serve.NotServing) as failed:
        pytest.fail(f"the stack (nginx with deploy/nginx.conf, two daphnes on mysite.production) did not start: "
                    f"{failed}")


@pytest.fixture(scope="module")
def stack():
    running = start_production_stack()
    yield running
    running.stop()


def fetch(stack, path):
    """GET `path` through nginx, trusting the stack's test CA only: (status, headers, body)."""
    try:
        with urllib.request.urlopen(stack.url + path, context=stack.tls(), timeout=LIVE_TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, refused.read()


@pytest.mark.live
async def test_the_chat_is_served_over_https_and_wss_through_nginx(stack):
    import websockets

    status, _, page = fetch(stack, "/chat/lobby/")
    assert status == 200 and b"chat-log" in page, (
        f"https://.../chat/lobby/ through nginx should be the room page; it answered {status}: {page[:300]!r}. "
        "deploy/nginx.conf's location / should proxy_pass http://chat")
    try:
        alice, _ = await join(stack, "overwss")
    except websockets.InvalidStatus as refused:
        pytest.fail(f"the wss:// handshake through nginx was answered with {refused.response.status_code}: "
                    "deploy/nginx.conf should pass it on with proxy_http_version 1.1, proxy_set_header Upgrade "
                    "$http_upgrade and proxy_set_header Connection $connection_upgrade")
    bob, _ = await join(stack, "overwss")
    await alice.send(json.dumps({"message": "through nginx"}))
    heard = await recv_json(bob, "a message sent over wss:// should reach the room's other socket through nginx")
    assert heard.get("message") == "through nginx", f"the other socket should hear the message: {heard}"
    await alice.close()
    await bob.close()


@pytest.mark.live
def test_plain_http_is_sent_to_https(stack):
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None  # see the redirect itself

    try:
        with urllib.request.build_opener(Stay).open(f"{stack.http_url}/chat/?room=1", timeout=LIVE_TIMEOUT) as got:
            status, location = got.status, got.headers.get("Location")
    except urllib.error.HTTPError as redirect:
        status, location = redirect.code, redirect.headers.get("Location")
    # Which redirect is a choice (301 is permanent, 302 and 307 are not): any, to the same path over https.
    assert status in (301, 302, 307, 308) and location == f"{stack.url}/chat/?room=1", (
        f"http://...:${{HTTP_PORT}}/chat/?room=1 should redirect to {stack.url}/chat/?room=1 (deploy/nginx.conf: "
        f"return 301 https://$host:${{HTTPS_PORT}}$request_uri); it answered {status}, Location {location}")


@pytest.mark.live
def test_nginx_serves_the_static_files_itself(stack):
    status, headers, body = fetch(stack, "/static/admin/css/base.css")
    assert status == 200 and b"DJANGO Admin styles" in body, (
        f"/static/admin/css/base.css should be the admin's CSS from STATIC_ROOT, served by nginx (location "
        f"/static/ {{ alias ${{STATIC_ROOT}}/; }}): with DEBUG off Django serves none. It answered {status}")


@pytest.mark.live
def test_login_through_nginx_passes_the_csrf_check(stack):
    status, page = login_through(stack.nginx, stack.ca)
    assert status == 200 and "do not match" in page, (
        "a login form posted through nginx should pass Django's CSRF check and get the login page back with "
        "\"do not match\" (a wrong password): deploy/nginx.conf should say proxy_set_header Host $http_host (the "
        f"port too) and proxy_set_header X-Forwarded-Proto $scheme. It answered {status}: {page[:300]}")


# Past nginx's proxy_read_timeout (60 s), which only daphne's pings (every 20 s) hold off.
QUIET_SECONDS = 70


@pytest.mark.live
@pytest.mark.long
@pytest.mark.timeout(QUIET_SECONDS + 2 * START_SECONDS)  # and a stack to start, on a busy machine
async def test_a_quiet_socket_stays_open_through_nginx(stack):
    """Quiet for 70 s, past nginx's proxy_read_timeout of 60 s: daphne's pings, every 20 s, keep it open."""
    alice, _ = await join(stack, "quiet", ping_interval=None)  # the client's own pings would keep it open too
    await asyncio.sleep(QUIET_SECONDS)
    assert alice.close_code is None, (
        f"a quiet socket through nginx closed with {alice.close_code} within {QUIET_SECONDS} s: deploy/nginx.conf's "
        "proxy_read_timeout should be above daphne's ping interval of 20 s (nginx's default, 60s, is)")
    await alice.send(json.dumps({"message": "still here"}))
    heard = await recv_json(alice, "after 70 quiet seconds, the socket should still carry the room's messages")
    assert heard.get("message") == "still here", f"the socket should hear its own message: {heard}"
    await alice.close()


# ---------------------------------------------------------------- task 4: ids, and a page that reconnects


async def test_messages_carry_their_id_live_and_in_the_history(connect):
    alice = await connect("/ws/chat/ids/")
    await alice.send_to(text_data=json.dumps({"message": "number me"}))
    live = await receive_json(alice, "the room should hear the message")
    assert isinstance(live.get("id"), int), (
        f'a stored message should reach the room with its id, "id": event["id"] in chat_message() '
        f"(chat/consumers.py); it came as {live}")
    bob = await connect("/ws/chat/ids/", hello=False)
    hello = await receive_json(bob, "connect() should first send its hello, with the room's history")
    ids = [said.get("id") for said in hello.get("history", [])]
    assert ids == [live["id"]], (
        f'each history entry should carry its message\'s id, "id": self.id in as_event() (chat/models.py), the same '
        f"as the live message's ({live['id']}); the history's ids are {ids}")


async def join_again(stack, room):
    """join(), tried again as the page does while nginx answers 502: a process that has just been
    stopped, or started, is skipped for fail_timeout (1 s), and so for a moment both may be."""
    import websockets

    deadline = time.monotonic() + LIVE_TIMEOUT
    while True:
        try:
            return (await join(stack, room))[0]
        except websockets.InvalidStatus as refused:
            if refused.response.status_code != 502 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.25)


@pytest.mark.browser
def test_the_page_reconnects_after_a_restart_and_a_kill_and_shows_each_message_once(tmp_path, stack):
    """Two windows through nginx. One process is stopped (SIGTERM) and started again, then the other
    is killed (SIGKILL) and started again, while a third client talks: each window reconnects by
    itself, and every message shows in it exactly once. Both processes run again at the end."""
    need("browser")
    driver = None
    room = f"restarts{secrets.token_hex(3)}"
    said = {}  # text: the id it was stored with

    def say(text):
        # A client of its own, through nginx: to whichever process is up, once it has stored the message.
        async def send():
            ws = await join_again(stack, room)
            await ws.send(json.dumps({"message": text}))
            echo = await recv_json(ws, f"{text!r} should come back to its sender")
            await ws.close()
            return echo.get("id")
        said[text] = asyncio.run(send())

    try:
        driver = start_browser(tmp_path, pinned(stack))
        pages = open_windows(driver, stack, room)
        at_first = [page.text("reconnect-state") for page in pages]
        say("before")
        stack.servers[0].process.terminate()  # as a deploy stops a process
        stack.servers[0].process.wait(START_SECONDS)
        say("while one was stopped")
        stack.restart(0, START_SECONDS)
        say("after the restart")
        stack.servers[1].process.kill()  # as the kernel's OOM killer would
        stack.servers[1].process.wait(START_SECONDS)
        say("while one was killed")
        for number, page in enumerate(pages):
            page.wait_for(lambda page=page: page.run("return socket.readyState") == 1,
                          f"window {number + 1} should be open again after the kill: room.html's onclose should "
                          "open a new socket after its wait")
        stack.restart(1, START_SECONDS)
        say("after both")
        for number, page in enumerate(pages):
            page.wait_for(lambda page=page: all(text in page.chat_log() for text in said),
                          f"window {number + 1} should show every message, those said while its socket was down "
                          "too (from the history of its new socket)")
            lines = page.chat_log()
            twice = {text: lines.count(text) for text in said if lines.count(text) != 1}
            assert not twice, (
                f"window {number + 1} should show each message once; it shows these more often: {twice}. "
                "room.html should keep the ids it has shown and skip them in a new socket's history")
            # The page's own record, by id: the Set of ids it has shown.
            ids = page.run("return typeof shown === 'undefined' ? null : [...shown]")
            assert ids is None or sorted(ids) == sorted(said.values()), (
                f"window {number + 1} should have shown ids {sorted(said.values())}, each once; its shown set "
                f"holds {ids}")
            events = page.events()
            print(f"window {number + 1}: sent {len(said)}, shown {sum(lines.count(text) for text in said)}, "
                  f"lost 0, twice 0; closes {sum(e.startswith('close ') for e in events)}, "
                  f"opens {events.count('open')}, ids {ids}")
            state = page.text("reconnect-state")
            assert state != at_first[number], (
                f"window {number + 1}'s #reconnect-state should say that it connected again; it still says {state!r}")
            assert page.run("return document.getElementById('chat-message-input').disabled") is False, (
                f"window {number + 1}'s message input should be enabled again once its new socket is open "
                "(step 10's onclose disables it)")
    finally:
        if driver is not None:
            driver.quit()
        for index, server in enumerate(stack.servers):  # whatever failed, the next check finds both up
            if not server.running:
                stack.restart(index, START_SECONDS)


@pytest.mark.browser
@pytest.mark.regression("step 10's page never opens a second socket; a page that reconnects must still not, after a refusal")
def test_a_refusal_is_not_retried(open_page):
    """A room the server refuses (login_required, then 4401: a members_ room, for an anonymous page)
    would refuse a new socket too: the page opens none."""
    page = open_page("/chat/members_lobby/")
    page.wait_for_event("login_required", "an anonymous page in a members_ room should get the login_required error")
    page.wait_for_event("close code=", "then the server should close the socket")
    time.sleep(2)  # past the first waits of a page that would try again (0.25 to 0.5 s, then 0.5 to 1 s)
    # The close may say 1006 rather than 4401 (daphne gives the browser under a second to answer its
    # close): the login_required event before it is the refusal either way.
    events = page.events()
    after = events[next(index for index, event in enumerate(events) if event.startswith("close code=")) + 1:]
    assert "open" not in after, (
        "after a refusal (an error event such as login_required, then the close), room.html should open no new "
        f"socket, whatever the close code: the server would refuse it again. After the close the page's event "
        f"log shows {after}")
