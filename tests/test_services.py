"""The services a production set-up stands on, started for real by tutorial/core/services.py: a
PostgreSQL cluster of our own, and nginx with TLS, on a test certificate authority's certificate,
in front of a real daphne serving step 10; and what goes wrong with a proxy that is one line off
(the handshake refused, the login form refused, quiet sockets dropped), each answer checked.

Run by `make test` with the repository checks. A service that is not installed skips its checks,
saying how to get it, unless TUTORIAL_REQUIRE_POSTGRES or TUTORIAL_REQUIRE_NGINX says that they
must run (CI sets both).
"""

import asyncio
import contextlib
import functools
import http.cookiejar
import json
import re
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import LIVE_TIMEOUT, START_SECONDS, need, recv_json
from tutorial.core import serve, services
from tutorial.core.stack import SERVER_ARGS
from tutorial.core.steps import find
from tutorial.core.wire import port_in_use


@pytest.fixture
def postgres():
    need("postgres")
    cluster = services.start_postgres()
    yield cluster
    cluster.stop()  # a second stop() after the check's own does nothing


def test_postgres_is_a_scratch_cluster_that_keeps_nothing(postgres):
    import dj_database_url
    import psycopg

    assert dj_database_url.parse(postgres.url)["ENGINE"] == "django.db.backends.postgresql", (
        f"dj-database-url should read {postgres.url} as a PostgreSQL database")
    with psycopg.connect(postgres.url, connect_timeout=LIVE_TIMEOUT) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,), "SELECT 1 should answer 1"
        connection.execute("CREATE TABLE message (id serial PRIMARY KEY, text text NOT NULL)")
        connection.execute("INSERT INTO message (text) VALUES ('hi')")
        assert connection.execute("SELECT text FROM message").fetchall() == [("hi",)], (
            "the app's role should write and read a table of its own database")
    # Every login needs the cluster's password: loopback is open to every user of the machine.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres",
                        password="not-it", connect_timeout=LIVE_TIMEOUT)
    # Django's test runner makes a test_ database beside the app's: the role may.
    with psycopg.connect(postgres.url, connect_timeout=LIVE_TIMEOUT, autocommit=True) as connection:
        connection.execute("CREATE DATABASE test_tutorial")
    postgres.stop()
    assert not postgres.folder.exists(), f"stop() should remove the cluster's folder, {postgres.folder}"
    assert not port_in_use(postgres.port), f"nothing should listen on port {postgres.port} after stop()"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Step 10's tables in a SQLite file, and the environment that serves it: (folder, env)."""
    need("nginx")
    folder = tmp_path_factory.mktemp("proxied")
    env = serve.environment(SQLITE_PATH=folder / "db.sqlite3")
    done = serve.migrate(find("10").folder, env)
    assert done.returncode == 0, f"manage.py migrate should make step 10's tables:\n{done.stdout}{done.stderr}"
    return folder, env


def behind_nginx(site, stack, config=services.PROXY, daphne_args=()):
    """Step 10 served by a daphne of its own behind an nginx of its own with `config`, each stopped
    by `stack`: (nginx, the test CA's certificate), on https://127.0.0.1:<nginx.port>."""
    folder, env = site
    own = Path(tempfile.mkdtemp(dir=folder))  # its own CA: another nginx of the module may still run
    daphne = serve.start(find("10").folder, "daphne", env=env, log_path=own / "daphne.log",
                         args=[*SERVER_ARGS["daphne"], *daphne_args], wait=START_SECONDS)
    stack.callback(daphne.stop)
    nginx, ca = services.start_proxy(own, [daphne.port], config)
    stack.callback(nginx.stop)
    return nginx, ca


@pytest.fixture(scope="module")
def proxied(site):
    """Step 10 behind nginx as services.PROXY has it, for the module: (nginx, the test CA's certificate)."""
    with contextlib.ExitStack() as stack:
        yield behind_nginx(site, stack)


@pytest.fixture
def proxy(site):
    """start(config, daphne_args=()): step 10 behind nginx with `config`, for one check."""
    with contextlib.ExitStack() as stack:
        yield functools.partial(behind_nginx, site, stack)


def mistake(old, new):
    """services.PROXY with one thing wrong: `old`, which must be in it, replaced by `new`."""
    assert old in services.PROXY, f"services.PROXY no longer has {old!r}"
    return services.PROXY.replace(old, new)


def trusting(ca):
    """A client's TLS context that trusts the test CA and nothing else."""
    return ssl.create_default_context(cafile=str(ca))


def test_nginx_serves_the_step_over_https_to_whoever_trusts_the_test_ca(proxied):
    nginx, ca = proxied
    url = f"https://127.0.0.1:{nginx.port}/chat/"
    with urllib.request.urlopen(url, context=trusting(ca), timeout=LIVE_TIMEOUT) as page:
        assert page.status == 200, f"GET {url} through nginx should answer 200, not {page.status}"
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        # The machine's own trusted CAs never signed it: the certificate is the test CA's.
        urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=LIVE_TIMEOUT)


def login_through(nginx, ca):
    """Post the login form through nginx as a browser on its https address would: (status, page)."""
    origin = f"https://127.0.0.1:{nginx.port}"
    browser = urllib.request.build_opener(urllib.request.HTTPSHandler(context=trusting(ca)),
                                          urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(f"{origin}/accounts/login/", timeout=LIVE_TIMEOUT) as page:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    assert token, "the login page should carry a CSRF token"
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token[1], "username": "nobody", "password": "wrong"})
    try:
        with browser.open(urllib.request.Request(f"{origin}/accounts/login/", data=form.encode(),
                                                 headers={"Origin": origin}), timeout=LIVE_TIMEOUT) as page:
            return page.status, page.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_a_login_form_through_nginx_passes_the_csrf_origin_check(proxied):
    """Django's CSRF check compares the form's Origin with the scheme and host it was asked for:
    what reaches it through nginx must be https://127.0.0.1:<port>, the browser's own."""
    status, page = login_through(*proxied)
    assert status == 200, f"the login form through nginx was refused with {status}: {page[:500]}"
    assert "do not match" in page, "a wrong password should get the login page back, saying so"


async def test_a_wss_connection_through_nginx_reaches_the_consumer(proxied):
    import websockets

    nginx, ca = proxied
    try:
        ws = await websockets.connect(f"wss://127.0.0.1:{nginx.port}/ws/chat/lobby/", ssl=trusting(ca),
                                      origin=f"https://127.0.0.1:{nginx.port}", open_timeout=LIVE_TIMEOUT)
    except websockets.InvalidStatus as refused:
        pytest.fail(f"the handshake through nginx was answered with {refused.response.status_code}, not 101: "
                    "nginx should pass it on with its Upgrade header and Connection: upgrade")
    async with ws:
        await recv_json(ws, 'connect() should first send {"user": ..., "channel_name": ..., "history": [...]}')
        await ws.send(json.dumps({"message": "hi"}))
        heard = []

        async def until_the_echo():
            while not heard or heard[-1].get("message") != "hi":
                heard.append(json.loads(await ws.recv()))

        try:
            await asyncio.wait_for(until_the_echo(), LIVE_TIMEOUT)
        except asyncio.TimeoutError:
            pytest.fail(f'the room should send {{"message": "hi", ...}} back through nginx within {LIVE_TIMEOUT} s; '
                        f"it sent {heard}")


# The mistakes that the Channels and daphne trackers are full of, each one change away from
# services.PROXY, and what it costs. A browser's page says no more than "failed" or a bare code; these
# are the answers behind that.
# Each is (the line as services.PROXY has it, what the mistake makes of it).
NO_UPGRADE = ("            proxy_set_header Upgrade $http_upgrade;\n"
              "            proxy_set_header Connection $connection_upgrade;\n", "")
NO_CONNECTION_UPGRADE = ("            proxy_set_header Connection $connection_upgrade;\n", "")


async def handshake_answer(nginx, ca, path="/ws/chat/lobby/"):
    """The status of nginx's answer to a wss:// handshake: 101 when it went through."""
    import websockets

    try:
        async with websockets.connect(f"wss://127.0.0.1:{nginx.port}{path}", ssl=trusting(ca),
                                      origin=f"https://127.0.0.1:{nginx.port}", open_timeout=LIVE_TIMEOUT):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("change, answer, why", [
    (NO_UPGRADE, 404, "without Upgrade and Connection, nginx passes the handshake on as a plain GET, "
                      "which reaches Django's URLs, where /ws/chat/lobby/ is no page"),
    (NO_CONNECTION_UPGRADE, 400, "with Upgrade but nginx's own Connection: close, daphne refuses the handshake"),
], ids=["no-upgrade-headers", "no-connection-upgrade"])
async def test_a_proxy_that_drops_the_upgrade_headers_fails_the_handshake(proxy, change, answer, why):
    got = await handshake_answer(*proxy(mistake(*change)))
    assert got == answer, f"{why}: expected {answer}, got {got}"


@pytest.mark.parametrize("change", [
    ("            proxy_set_header X-Forwarded-Proto $scheme;\n", ""),
    ("proxy_set_header Host $http_host;", "proxy_set_header Host $host;"),
], ids=["no-x-forwarded-proto", "host-without-port"])
def test_a_proxy_that_hides_the_browsers_scheme_or_port_fails_the_csrf_origin_check(proxy, change):
    status, page = login_through(*proxy(mistake(*change)))
    assert status == 403 and "Origin checking failed" in page, (
        "Django compares the form's Origin, https://127.0.0.1:<port>, with the scheme and host the request "
        f"reached it with: expected 403 and 'Origin checking failed', got {status}: {page[:300]}")


@pytest.mark.parametrize("read_timeout, stays", [("500ms", False), ("5s", True)])
async def test_a_quiet_socket_lives_only_if_daphne_pings_within_nginxs_read_timeout(proxy, read_timeout, stays):
    """nginx closes a proxied connection once the server has sent nothing for proxy_read_timeout
    (60 s unless set); daphne pings a quiet socket after --ping-interval seconds (20 s unless set),
    looking every 2 s. Here scaled down: with --ping-interval 1, a ping every 1 to 3 s."""
    import websockets

    config = mistake("            proxy_http_version 1.1;\n",
                     f"            proxy_http_version 1.1;\n            proxy_read_timeout {read_timeout};\n")
    nginx, ca = proxy(config, daphne_args=["--ping-interval", "1"])
    async with websockets.connect(f"wss://127.0.0.1:{nginx.port}/ws/chat/quiet/", ssl=trusting(ca),
                                  origin=f"https://127.0.0.1:{nginx.port}", open_timeout=LIVE_TIMEOUT,
                                  ping_interval=None) as ws:
        await recv_json(ws, "connect() should first send its hello")
        closed = None
        with contextlib.suppress(asyncio.TimeoutError):
            try:
                await asyncio.wait_for(ws.recv(), 6)  # nobody speaks in the room: only pings come
            except websockets.ConnectionClosed as end:
                closed = end.rcvd.code if end.rcvd else 1006  # 1006: closed with no close frame
    if stays:
        assert closed is None, (f"with a ping every 1 to 3 s inside a read timeout of {read_timeout}, a quiet "
                                f"socket should stay open for 6 s: it closed with {closed}")
    else:
        assert closed == 1006, (f"with a read timeout of {read_timeout} under daphne's pings, nginx should "
                                f"drop the quiet socket without a close frame (1006): got {closed}")
