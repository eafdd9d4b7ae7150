"""Fixtures shared by every step's checks, one for each layer of testing.

`python -m tutorial check` (behind `make check`) runs one pytest process per
step, with TUTORIAL_STEP (which step's checks) and TUTORIAL_STEP_DIR (which
folder: ours, or a learner's copy) set, and that folder on PYTHONPATH, so
that `import mysite` imports that step and nothing else.

The three layers:
- `connect`: in process, a channels WebsocketCommunicator on the step's real
  `mysite.asgi.application`, its routing and middleware included.
- `server` + `ws_connect`: the step served by a real `manage.py runserver`
  (daphne's, from step 01 on) on a free loopback port, driven by the
  `websockets` client.
- `browser` + `open_page`: headless Chromium (Debian's chromium and
  chromedriver) on that server's pages.

From step 06 on, `redis_server` starts a real redis-server (Debian's) and
`start_server` more daphne processes of the step, so that two of them can
share one Redis channel layer.
"""

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from tutorial.core import serve
from tutorial.core.steps import find
from tutorial.core.wire import raw_handshake

STEP = find(os.environ.get("TUTORIAL_STEP", "latest"))
STEP_DIR = Path(os.environ.get("TUTORIAL_STEP_DIR", STEP.folder))
# Browsers send the page's origin with every handshake; from step 02 on, the
# origin validator refuses handshakes from any origin not in ALLOWED_HOSTS.
# In process, Django's test set-up (as for its test client) turns DEBUG off
# and allows the host "testserver", so that is where in-process pages live.
ORIGIN = "http://testserver"
# How long to wait for something that should happen. Such a wait ends as soon as the thing
# happens, so only a failing check waits a bound out. In process there is no network and no
# other process: 3 s is ages. Over a live daphne, a browser or Redis, several processes share
# the machine's cores with whatever else runs there (two suites side by side, a browser
# starting, 100 clients joining at once): the slowest such wait measured on a 2-core machine
# with two suites and two busy loops running took 0.13 s, so 10 s leaves a wide margin for a
# busier machine and is still a failure a learner sees quickly. A wait for nothing to arrive
# ("nothing within 0.3 s") always runs to its end, so those stay short.
TIMEOUT = 3
LIVE_TIMEOUT = 10
# The checklist (`make watch`, `make check`, `make hint`) and the replay of a step on the step
# before, where most checks fail by waiting, set 1 s: in process, an answer that comes at all
# comes within milliseconds, and 3 s per failing check made a learner's first run of step 02
# take 52 s. The live bound stays: a busy machine does slow daphne and the browser down.
TIMEOUT = float(os.environ.get("TUTORIAL_TIMEOUT", TIMEOUT))
# How long an in-process check waits for nothing to arrive: a frame that would come at all comes
# within milliseconds. The checklist waits half as long as `make test`, which would still see a
# frame that the checklist, on a busy machine, let pass.
QUIET = 0.3 if TIMEOUT >= 3 else 0.15
# A crowd (a hundred clients joining at once) on a machine with no core to spare may take this
# long; the live server waits as long for a handshake (see `server`), and a check that waits so
# long says, when it fails, how busy the machine was (machine_or_server).
CROWD_TIMEOUT = 40
HANDSHAKE_SECONDS = 60
# How long the `long` checks keep a room quiet: past every timer an idle
# connection meets. Channels' Redis layer waits for a message in blocking
# pops of 5 s, under redis-py's socket_timeout (15 s in step 06's settings);
# daphne pings a quiet client after 20 s and waits 30 s more for its pong.
IDLE_SECONDS = 55
# From step 03 on, a room connection's first message tells it its channel name.
SENDS_CHANNEL_NAME = STEP.number >= "03"
# One line of the room page's #chat-log, as showMessage (chat/templates/chat/base.html) writes
# it: the time (and the date, for another day's message), then from step 02 the sender and what
# the message is to this window, e.g. "12:05 alice (you, direct, sent): psst", then the text.
# A sender is one word (a username or anonymous-3f2a); steps 00 and 01 know none, so there a
# line is "12:03 text", whatever the text looks like.
SENDER = r"(?:(?P<user>[^\s():]+)(?: \((?P<tags>[^()]*)\))?: )?" if STEP.number >= "02" else ""
CHAT_LINE = re.compile(r"(?:\d{4}-\d{2}-\d{2} )?\d{2}:\d{2} " + SENDER + r"(?P<text>.*)")
# From step 02 on, nobody logged in is "anonymous-" and 4 hex digits, drawn per connection.
ANONYMOUS = re.compile(r"anonymous-[0-9a-f]{4}")


def pytest_collection_modifyitems(config, items):
    """Leave out checks marked until("NN") when checking a later step.

    They describe a limitation that a later step removes on purpose, such as
    step 00's page failing to open its WebSocket.

    A check marked regression("why") must say why: marked so, a check of step N must pass
    on step N-1, where the others must fail (tutorial/proof/replay.py, run by `make test`).
    """
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("until")
        (drop if marker and STEP.number > marker.args[0] else keep).append(item)
        regression = item.get_closest_marker("regression")
        if regression:
            if not regression.args:
                raise pytest.UsageError(f'{item.nodeid}: say why it holds on both steps: regression("...")')
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return f"checking {STEP_DIR} as step {STEP.name}"


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing(django_test_environment):
    """Users made in process hash their passwords with MD5, as Django's own test settings advise:
    the real hasher takes a third of a second a user, on purpose. Only in this process: the live
    servers keep the step's settings."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# ---------------------------------------------------------------- in process


@pytest.fixture
async def connect(transactional_db):
    """Open WebSocket connections on the step's real ASGI application.

    Consumers reach the database from threads of their own (to load the
    session's user, and to tidy connections), so each check gets a real test
    database that every thread can see: transactional_db, as Channels' docs advise.

    `await connect(path)` returns a connected WebsocketCommunicator; with
    accepted=False it returns it whatever the handshake's outcome, for the
    checks that expect a refusal. From step 03 on it reads the room's first
    message into `communicator.channel_name` (hello=False leaves it unread).
    """
    from channels.testing import WebsocketCommunicator

    from mysite.asgi import application

    opened = []

    async def _connect(path=STEP.ws_path, origin=ORIGIN, headers=(), accepted=True, hello=True, timeout=None):
        # timeout: for the handshake and the first frame; TIMEOUT unless the check asks for more.
        timeout = timeout or TIMEOUT
        all_headers = [(b"origin", origin.encode())] if origin else []
        communicator = WebsocketCommunicator(application, path, headers=all_headers + list(headers))
        try:
            connected, _ = await communicator.connect(timeout=timeout)
        except asyncio.TimeoutError:
            crash = f"no answer within {timeout} s"
        except Exception as error:  # noqa: BLE001 - any of them: the learner's application raised
            crash = f"{type(error).__name__}: {error}{where_in_step(error)}"
        else:
            crash = None
        if crash:
            pytest.fail(
                f"the handshake to {path} raised {crash.rstrip('.')}. mysite/asgi.py's application should send "
                '"websocket" connections to a consumer (ProtocolTypeRouter, with ChatConsumer.as_asgi(), '
                "as as_view() makes a view), and its connect() should accept without raising"
            )
        communicator.accepted = connected
        opened.append(communicator)
        if accepted:
            assert connected, (
                f"the handshake to {path} was refused: connect() should call self.accept() "
                f"(and, from step 02, chat/routing.py should have a route for this path)"
            )
        if connected and hello and SENDS_CHANNEL_NAME:
            first = await receive_json(communicator, 'connect() should first send {"user": self.username, '
                                       '"channel_name": self.channel_name} (chat/consumers.py)',
                                       timeout=timeout)
            communicator.channel_name = first.get("channel_name")
            communicator.user = first.get("user")  # its own name, e.g. "anonymous-3f2a"
        return communicator

    yield _connect
    for communicator in opened:
        if communicator.future.cancelled():
            continue  # a receive that timed out stopped it, and that check has failed already
        try:
            await communicator.disconnect()
        except Exception:
            # A check that made the consumer fail on purpose says so; anything else is a real error.
            if not getattr(communicator, "expected_crash", False):
                raise
    # A consumer's last database work (step 08's session check, say) may still run in asgiref's
    # thread after its task has ended: let it finish before the test database is flushed, or the
    # flush finds a table locked.
    from asgiref.sync import sync_to_async

    await sync_to_async(lambda: None)()


def where_in_step(error):
    """Where an exception passed through the step's own files, for a message: " (at file:line)"."""
    import traceback

    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(STEP_DIR.resolve()):
            return f" (at {path.relative_to(STEP_DIR.resolve())}:{frame.lineno}: {frame.line})"
    return ""


async def receive_json(communicator, hint="the consumer should answer every frame", timeout=None):
    """The next JSON message the consumer sends, with a hint if none comes."""
    timeout = timeout or TIMEOUT
    try:
        text = await communicator.receive_from(timeout=timeout)
    except asyncio.TimeoutError:
        why = f"nothing came back within {timeout} s"
    except AssertionError as error:  # the communicator's own checks of what came
        why = (f"what the consumer sent was no text frame ({error}); self.send(text_data=...) takes a "
               "str, so turn a dict into JSON with json.dumps(...) first")
    except Exception as error:  # noqa: BLE001 - the consumer raised, and the communicator passes it on
        why = (f"the consumer raised {type(error).__name__}: {error}{where_in_step(error)}, which ends "
               "the connection with 1011")
    else:
        try:
            return json.loads(text)
        except ValueError:
            why = f"the consumer sent {text[:200]!r}, which is not JSON: send json.dumps(...) of a dict"
    # Failed outside the except, so that the report shows the hint, not asyncio's insides.
    pytest.fail(f"{why}: {hint}")


async def frames_within(communicator, seconds=None):
    """Every frame the consumer sends within `seconds` (QUIET unless given), as JSON (in process)."""
    seconds = QUIET if seconds is None else seconds
    frames = []
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            frames.append(json.loads(await communicator.receive_from(timeout=seconds)))
    return frames


async def receive_close(communicator, hint="the consumer should close the connection"):
    """Wait for the consumer to close the connection; return its close code."""
    # One deadline for the whole wait: a consumer that keeps sending, and never closes, fails too.
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            output = await communicator.receive_output(timeout=max(0, deadline - time.monotonic()))
            if output["type"] == "websocket.close":
                return output.get("code", 1000)
    except asyncio.TimeoutError:
        pass
    pytest.fail(f"the connection stayed open for {TIMEOUT} s: {hint}")


# ---------------------------------------------------------------- live server


# Every live server started so far (the session's, start_server's), so that before each check
# pytest_runtest_setup can note where their logs stand.
LIVE_SERVERS = []


@pytest.fixture
def alice_cookie(transactional_db, client, django_user_model):
    """The session cookie of a logged-in user, as the browser would send it with the handshake."""
    alice = django_user_model.objects.create_user("alice", password="not-used")
    client.force_login(alice)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a check and its fixtures start, note where each running server's log ends: its
    log() then reads only what this check made the server write, and a traceback that an
    earlier check caused is not blamed on this one. A server that starts during the check
    is read from its beginning."""
    for live in LIVE_SERVERS:
        live.log_start = live.log_path.stat().st_size


class Server(serve.Server):
    """A live server whose log() reads only what the current check made it write."""

    def __init__(self, *args):
        super().__init__(*args)
        LIVE_SERVERS.append(self)

    def wait_for_log(self, text, hint):
        deadline = time.monotonic() + LIVE_TIMEOUT
        while text not in self.log():
            if time.monotonic() > deadline:
                pytest.fail(f"{hint}\nThe server's log, since this check started:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def assert_no_traceback(self):
        log = self.log()
        assert "Traceback" not in log, (
            "the server logged a traceback: a client's bad input must get an error event "
            "or a close code, never an exception. The log, since this check started:\n" + log[-3000:]
        )
        assert self.running, "the server process died:\n" + log[-3000:]


def start_live(how, log_path, env, args=(), wait=True):
    """Serve the step as `how` (runserver or daphne, core/serve.py) and wait until it listens
    (wait=False: don't, and wait_live() for it)."""
    server = serve.start(STEP_DIR, how, env=env, log_path=log_path, args=args, server_class=Server, wait=0)
    if wait:
        wait_live(server, how)
    return server


# How long a live server may take to listen. Alone it takes about a second; with two `make test`
# runs side by side (load 12), a runserver of step 10's long job once took over 30 s.
START_SECONDS = 60


def wait_live(server, how):
    try:
        serve.wait_until_serving(server, how, START_SECONDS)
    except serve.NotServing as error:
        pytest.fail(f"the server did not start: {error}")


@pytest.fixture(scope="session")
def live_database(tmp_path_factory):
    """From step 07 on, a fresh SQLite file with the step's tables, migrated once, that every live
    server of the session uses (SQLITE_PATH), as two processes of one site share one database.

    Returns the environment that points a server at it, with the step's settings and a fast
    password hasher (tutorial/checks/live_settings.py)."""
    path = tmp_path_factory.mktemp("database") / "db.sqlite3"
    env = {"SQLITE_PATH": str(path), "DJANGO_SETTINGS_MODULE": "tutorial.checks.live_settings"}
    if (STEP_DIR / "chat" / "migrations").is_dir():
        migrated = migrated_copy()
        if migrated and migrated.exists():
            shutil.copy(migrated, path)
            return env
        done = serve.migrate(STEP_DIR, {**os.environ, **env})
        if done.returncode:
            pytest.fail("python manage.py migrate failed, so the live checks have no tables: chat/models.py "
                        "and chat/migrations/ (python manage.py makemigrations chat) should agree\n"
                        + done.stdout[-1500:] + done.stderr[-1500:])
        if migrated and not Path(f"{path}-wal").exists():  # every change is in the file itself: keep a copy
            keep = migrated.with_suffix(f".{os.getpid()}")
            shutil.copy(path, keep)
            os.replace(keep, migrated)
    return env


@pytest.fixture(scope="session")
def live_orm(live_database, django_db_blocker):
    """`live_orm(work)` calls work(alias) with Django's ORM in this process on the live servers'
    SQLite file, named `alias`: what a `manage.py shell` beside the servers does (an admin's or a
    cron job's change), without the second of CPU that starting one takes. Sync code only."""
    from django.db import connections

    connections.settings["live"] = {**connections.settings["default"], "NAME": live_database["SQLITE_PATH"]}

    def run(work):
        with django_db_blocker.unblock():
            try:
                return work("live")
            finally:
                connections["live"].close()

    return run


def migrated_copy():
    """Where a freshly migrated database of the step, as it is now, is kept between runs.

    `migrate` on an empty file depends only on the migrations, the settings and Django, so a copy
    of its result, named by their contents, serves every later run until one of them changes:
    about a second and a half saved on each run of the live checks."""
    import hashlib

    import django

    digest = hashlib.sha256(f"{django.__version__} {sys.executable}".encode())
    sources = sorted(STEP_DIR.glob("*/migrations/*.py")) + [STEP_DIR / "mysite" / "settings.py",
                                                            Path(__file__).parents[1] / "tutorial" / "checks" / "live_settings.py"]
    for source in sources:
        digest.update(str(source.relative_to(STEP_DIR) if source.is_relative_to(STEP_DIR) else source.name).encode())
        digest.update(source.read_bytes())
    # In the virtualenv, which is the learner's own, rather than in a /tmp that others may write to.
    folder = Path(sys.prefix) / "tutorial-migrated"
    try:
        folder.mkdir(exist_ok=True)
    except OSError:  # a Python that is not ours to write to: migrate every time
        return None
    return folder / f"{digest.hexdigest()[:32]}.sqlite3"


_starting_server = []  # the runserver that head_start began, until `server` takes it


def start_runserver(tmp_path_factory, live_database):
    """`manage.py runserver` of the step on a free loopback port, not yet waited for (wait_live)."""
    from django.conf import settings

    log_path = tmp_path_factory.mktemp("server") / "runserver.log"
    # daphne drops a WebSocket whose opening handshake takes over 5 s. On a machine with no core
    # to spare (two suites, a browser and a hundred clients joining at once), that is the
    # machine's limit, not the step's: the checks' own bounds decide instead. Only daphne's
    # runserver knows the option; Django's own (step 00, or "daphne" not yet installed) does not.
    args = ["--websocket_handshake_timeout", str(HANDSHAKE_SECONDS)] if "daphne" in settings.INSTALLED_APPS else []
    return start_live("runserver", log_path, {**os.environ, "PYTHONUNBUFFERED": "1", **live_database}, args,
                      wait=False)


@pytest.fixture(scope="session")
def server(tmp_path_factory, live_database):
    """The step served by `manage.py runserver` on a free loopback port, as `make run` serves it.

    From step 01 on, daphne's place at the top of INSTALLED_APPS makes this
    daphne's runserver; in step 00 it is Django's own, which speaks HTTP only.
    """
    live = _starting_server.pop() if _starting_server else start_runserver(tmp_path_factory, live_database)
    wait_live(live, "runserver")
    yield live
    live.stop()


def handshake(server, path):
    """Send a WebSocket opening handshake by hand; return the key, the request and the response head."""
    key = base64.b64encode(os.urandom(16)).decode()
    request, response = raw_handshake(server.port, path, key=key, origin=server.url)
    return key, request, response


@pytest.fixture
def ws_connect(server):
    """`async with ws_connect(path) as ws:` opens a real WebSocket to the live server.

    Like `connect`, it reads a room's first message into `ws.channel_name`
    from step 03 on, unless hello=False.
    """

    def _connect(path=STEP.ws_path, origin=None, hello=True, **options):
        return ws_open(server, path, origin=origin, hello=hello, **options)

    return _connect


@contextlib.asynccontextmanager
async def ws_open(live, path=STEP.ws_path, origin=None, hello=True, **options):
    """What ws_connect does, on any live server: `server`, or one that start_server started.
    open_timeout (LIVE_TIMEOUT unless given) bounds the handshake and the first frame alike."""
    import websockets

    try:
        timeout = options.setdefault("open_timeout", LIVE_TIMEOUT)
        async with websockets.connect(live.ws_url(path), origin=origin or live.url, **options) as ws:
            if hello and SENDS_CHANNEL_NAME:
                first = await recv_json(ws, 'connect() should first send {"user": self.username, "channel_name": '
                                        'self.channel_name} (chat/consumers.py)', timeout)
                ws.channel_name = first.get("channel_name")
                ws.user = first.get("user")
            yield ws
            return
    except websockets.InvalidStatus as refused:
        if refused.response.status_code != 404:
            raise  # a refusal some check expects, such as 403 for a foreign origin
    # Failed outside the except, so that the report shows the hint, not the client's insides.
    pytest.fail(f"the server answered the handshake to {path} with 404, as to an unknown page: that is "
                "Django's own runserver, which speaks HTTP only. Put \"daphne\" first in INSTALLED_APPS "
                "(mysite/settings.py), so that runserver is daphne's, which speaks WebSocket")


def cpu_ticks():
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat's first line."""
    user, nice, system, idle, iowait, *rest = map(int, Path("/proc/stat").read_text().split("\n")[0].split()[1:])
    return user + nice + system + sum(rest), user + nice + system + idle + iowait + sum(rest)


class MachineLoad:
    """How busy the whole machine was during a `with` block, for the message of a check that
    loads it (a hundred clients at once, a burst): a failure on a machine with no core to spare
    is then told from a server that could not keep up."""

    def __init__(self, what):
        self.what = what
        self.busy = None

    def __enter__(self):
        self.before = cpu_ticks()
        return self

    def __exit__(self, *_):
        (busy_before, total_before), (busy_after, total_after) = self.before, cpu_ticks()
        self.busy = (busy_after - busy_before) / max(1, total_after - total_before)

    def __str__(self):
        limit = ("so the machine had no core to spare and may have been the limit rather than the server: "
                 "try again on a quieter machine" if self.busy >= 0.85 else
                 "so the machine had room to spare: the server was the limit")
        return (f"{self.what}: {self.busy:.0%} of the machine's {os.cpu_count()} cores were busy meanwhile "
                f"(load average {os.getloadavg()[0]:.1f}), {limit}")


@contextlib.contextmanager
def machine_or_server(what):
    """Around a check whose every failure may be the machine's (a hundred clients joining at
    once): a failure is reported once, with what the check said and how busy the machine was."""
    load = MachineLoad(what)
    try:
        with load:
            yield
    except (Exception, pytest.fail.Exception) as error:  # what the check said, or what the client raised
        said = str(error).strip() or type(error).__name__
        pytest.fail(f"{said}\n{load}")


async def recv_json(ws, hint, timeout=None):
    """The next JSON message on a live WebSocket; if none comes in time (LIVE_TIMEOUT unless
    `timeout`), fail with `hint`.

    `hint` is for the learner: what should have sent it, and where (e.g. "group_send in
    receive(), chat/consumers.py"). A bare ws.recv() would wait forever instead.
    """
    import websockets

    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout or LIVE_TIMEOUT))
    except asyncio.TimeoutError:
        why = f"nothing came over the WebSocket within {timeout or LIVE_TIMEOUT} s"
    except websockets.ConnectionClosed as closed:
        why = f"the server closed the WebSocket ({closed}) before it sent anything"
    # Failed outside the except, so that the report shows the hint, not asyncio's insides.
    pytest.fail(f"{why}: {hint}")


async def recv_close(ws, hint):
    """Wait until the server closes a live WebSocket; return the close frame it sent (None: none,
    the client sees 1006). If a message comes instead, or nothing in time, fail with `hint`."""
    import websockets

    try:
        message = await asyncio.wait_for(ws.recv(), LIVE_TIMEOUT)
        why = f"the server sent {message!r} instead of closing the WebSocket"
    except websockets.ConnectionClosed as closed:
        return closed.rcvd
    except asyncio.TimeoutError:
        why = f"the WebSocket stayed open for {LIVE_TIMEOUT} s"
    pytest.fail(f"{why}: {hint}")


# ---------------------------------------------------------------- browser


def browser_missing():
    """Why the browser checks cannot run here, or None."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "no browser: install Debian's chromium and chromium-driver to run the browser checks"
    return None


def missing(reason, variable):
    """Skip a check for want of a program, saying how to get it; fail it instead where the
    environment variable `variable` is set (CI sets them all: there nothing may skip)."""
    if os.environ.get(variable):
        pytest.fail(reason)
    pytest.skip(reason)


def need(*parts):
    """Skip a check for want of what it starts ("nginx", "redis", "postgres", "browser"), saying how
    to get each, or fail it where TUTORIAL_REQUIRE_* says it must run (missing())."""
    from tutorial.core import services

    found = {
        "nginx": (services.nginx_binary, f"no nginx: {services.HOW_TO_GET_NGINX}", "TUTORIAL_REQUIRE_NGINX"),
        # A check that starts a redis-server of its own: a Redis of the learner's (REDIS_URL) is no way out.
        "redis": (services.redis_binary, f"no redis-server: {services.HOW_TO_GET_REDIS.split(', or')[0]}",
                  "TUTORIAL_REQUIRE_REDIS"),
        "postgres": (services.postgres_binaries, f"no PostgreSQL: {services.HOW_TO_GET_POSTGRES}",
                     "TUTORIAL_REQUIRE_POSTGRES"),
        "browser": (lambda: not browser_missing(), browser_missing(), "TUTORIAL_REQUIRE_BROWSER"),
    }
    for part in parts:
        present, reason, variable = found[part]
        if not present():
            missing(reason, variable)


def start_browser(profile, *flags):
    """Headless Chromium, driven by Selenium through Debian's chromedriver; `flags`: more of its own."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1000,900",
        f"--user-data-dir={profile}", *flags,
    ):
        options.add_argument(flag)
    # Keep the console's lines, so that a check can ask for them (Page.console_errors).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    # Selenium would wait 300 s for a page that never finishes loading.
    driver.set_page_load_timeout(LIVE_TIMEOUT)
    return driver


_starting_browser = []  # the Future of the Chromium that head_start began, until `browser` takes it


@pytest.fixture(autouse=True, scope="session")
def head_start(request, tmp_path_factory):
    """Start Chromium and the step's runserver in the background as the session begins, when a
    check of it will need them: their seconds of start-up then overlap the checks before theirs."""
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    pool = None
    # Where a learner waits, the step's in-process checks run in a process beside this one, and
    # Chromium's start-up (more CPU than any server's) slowed that verdict by a second and a half
    # on two cores: tutorial/checks/verdict.py then names a file it makes once they are done.
    after = os.environ.get("TUTORIAL_BROWSER_AFTER")

    def start(folder):
        deadline = time.monotonic() + 30
        while after and not Path(after).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return start_browser(folder)

    if wanted & {"browser", "open_page"} and not browser_missing():
        # Selenium imports its modules lazily, as the driver first needs them: import them here,
        # so that the thread imports next to nothing. An import there changes sys.modules while
        # this thread may be going through it: once, under load 12, a check's set-up failed with
        # "dictionary changed size during iteration" while Chromium started, most likely so.
        import encodings.idna  # noqa: F401 - the driver's HTTP client asks for it (and stringprep)
        import selenium.webdriver.common.driver_finder  # noqa: F401
        import selenium.webdriver.common.selenium_manager  # noqa: F401
        from selenium.webdriver import Chrome, ChromeOptions, ChromeService  # noqa: F401

        pool = concurrent.futures.ThreadPoolExecutor(1)
        _starting_browser.append(pool.submit(start, tmp_path_factory.mktemp("chromium")))
    # The session's runserver too: its second of imports overlaps the checks before its first;
    # not where the in-process checks come first in this pytest (`beside`, see report.py).
    if "server" in wanted and "in-process" not in os.environ.get("TUTORIAL_LAYERS", "live"):
        try:
            database = request.getfixturevalue("live_database")
        except (Exception, pytest.fail.Exception):
            pass  # no tables: the checks that need the server fail on it, with its hint
        else:
            _starting_server.append(start_runserver(tmp_path_factory, database))
    yield
    if _starting_browser:  # started, and no check took it (they were skipped): stop it all the same
        with contextlib.suppress(Exception):
            _starting_browser.pop().result().quit()
    if _starting_server:
        _starting_server.pop().stop()
    if pool:
        pool.shutdown()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium (start_browser), one for the whole session."""
    reason = browser_missing()
    if reason:
        missing(reason, "TUTORIAL_REQUIRE_BROWSER")
    if _starting_browser:
        driver = _starting_browser.pop().result()
    else:
        driver = start_browser(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


class Page:
    """One browser window on one of the step's pages."""

    def __init__(self, driver, handle):
        self.driver = driver
        self.handle = handle

    def _focus(self):
        if self.driver.current_window_handle != self.handle:
            self.driver.switch_to.window(self.handle)

    def find(self, element_id):
        from selenium.common.exceptions import NoSuchElementException
        from selenium.webdriver.common.by import By

        self._focus()
        try:
            return self.driver.find_element(By.ID, element_id)
        except NoSuchElementException:
            pass
        # Failed outside the except, so that the report shows the hint, not Selenium's insides.
        pytest.fail(f"the page has no element with id {element_id!r}: chat/templates/chat/room.html "
                    "should have it (see the task's hints)")

    def run(self, script):
        self._focus()
        return self.driver.execute_script(script)

    def events(self):
        return self.run(
            "return [...document.querySelectorAll('#event-log li')].map(li => li.textContent)"
        )

    def chat_log(self):
        """#chat-log's text: the value of the <textarea>, a line a message (see chat_rows)."""
        value = self.run("return document.getElementById('chat-log')?.value ?? null")
        if value is None:
            pytest.fail("#chat-log has no value: it should be a <textarea id=\"chat-log\" readonly>, as in the "
                        "official Channels tutorial, that showMessage (chat/templates/chat/base.html) adds a "
                        "line to for each message (chat/templates/chat/room.html)")
        return value

    def chat_rows(self):
        """#chat-log's lines, each as {"user", "text", "own", "direct"}: a line such as
        "12:04 bob (direct, to you): psst" (drawn by chat/templates/chat/base.html's showMessage)."""
        rows = []
        for line in filter(None, self.chat_log().split("\n")):
            found = CHAT_LINE.fullmatch(line)
            if not found:  # not the format: the whole line is the text, and no check will match it
                rows.append({"user": None, "text": line, "own": False, "direct": False})
                continue
            said = found.groupdict()
            tags = (said.get("tags") or "").split(", ")
            rows.append({"user": said.get("user"), "text": said["text"],
                         "own": "you" in tags, "direct": "direct" in tags})
        return rows

    def console_errors(self):
        """The browser console's SEVERE lines logged since the last call (every window's)."""
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def text(self, element_id):
        return self.find(element_id).text

    def focused(self):
        """The element that has the keyboard focus in this window: where a person's typing goes."""
        self._focus()
        return self.driver.switch_to.active_element

    def send(self, message, to=None):
        if to is not None:
            self.find("chat-message-to").send_keys(to)
        self.find("chat-message-input").send_keys(message)
        self.find("chat-message-submit").click()

    def wait_for(self, condition, hint, timeout=LIVE_TIMEOUT):
        """Wait until condition() is true. Before step 11 the page never reopens its socket, so
        once its event log shows the close, nothing more can arrive: then fail at once, not at the
        deadline. A page that reconnects (step 11's, with #reconnect-state) is waited for in full."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Read "closed" before the condition: all the page received before it closed is shown by then.
            closed = self.run(
                "const rows = [...document.querySelectorAll('#event-log li')].map(li => li.textContent);"
                "return document.getElementById('reconnect-state') === null"
                "       && rows.some(row => row.startsWith('close '));")
            if condition():
                return
            if closed:
                break
            time.sleep(0.05)
        errors = self.console_errors()
        pytest.fail(f"{hint}.\nThe page's event log: {self.events()}"
                    + (f"\nThe browser console's errors: {errors}" if errors else ""))

    def wait_for_event(self, text, hint):
        self.wait_for(lambda: any(text in event for event in self.events()), hint)


@pytest.fixture(scope="session")
def spare_windows(browser):
    """Browser windows a check is done with, left on about:blank for the next check's page:
    opening a window and closing it again costs a quarter of a second."""
    return []


@pytest.fixture
def open_page(browser, server, spare_windows):
    """`open_page("/chat/lobby/")` opens the page in a browser window of its own (on=: from another server)."""
    opened = []

    def _open(path, on=None):
        from selenium.common.exceptions import TimeoutException

        if spare_windows:
            browser.switch_to.window(spare_windows.pop())
        else:
            browser.switch_to.new_window("window")
        try:
            browser.get((on or server).url + path)
        except TimeoutException:
            pytest.fail(f"the page {path} did not load within {LIVE_TIMEOUT} s: "
                        "chat/urls.py and chat/views.py serve it")
        page = Page(browser, browser.current_window_handle)
        opened.append(page)
        return page

    yield _open
    for page in opened:
        browser.switch_to.window(page.handle)
        # Leaving the page closes its socket, as closing the window would.
        browser.get("about:blank")
        spare_windows.append(page.handle)
    if opened:
        browser.switch_to.window(browser.window_handles[0])


# ---------------------------------------------------------------- more processes, and Redis


@pytest.fixture(scope="session")
def start_server(tmp_path_factory, live_database):
    """`start_server(REDIS_URL=url)` serves the step with `daphne mysite.asgi:application`
    in a process of its own, on a free loopback port; all are stopped when the session ends.
    `start_server(2, ...)` starts two such at once, and returns both.

    Keyword arguments set environment variables for that process (None unsets one),
    so that two of them can share a Redis, or each keep its own in-memory layer.
    """
    started = []

    def _start(count=None, **env):
        """One server; or, with `count`, a list of that many, started side by side."""
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **live_database}
        for name, value in env.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        # As for the runserver (start_runserver): the checks' bounds, not daphne's 5 s, limit a handshake.
        args = ["--websocket_connect_timeout", str(HANDSHAKE_SECONDS)]
        servers = [start_live("daphne", tmp_path_factory.mktemp("daphne") / "daphne.log", environment, args,
                              wait=False) for _ in range(count or 1)]
        started.extend(servers)
        for live in servers:
            wait_live(live, "daphne")
        return servers if count else servers[0]

    yield _start
    for live in started:
        live.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server (Debian's) on a free loopback port, that keeps nothing on disk.

    `redis_server.url` is what REDIS_URL takes; `redis_server.client()` looks inside.
    """
    from tutorial.core.services import HOW_TO_GET_REDIS, redis_binary, start_redis

    if not redis_binary():
        missing(f"no Redis: {HOW_TO_GET_REDIS.split(', or')[0]} to run the Redis checks", "TUTORIAL_REQUIRE_REDIS")
    try:
        redis = start_redis()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def two_on_redis(redis_server, start_server):
    """Two daphne processes of the step on one Redis (and, from step 07, one SQLite file, sessions
    included), as two machines behind a load balancer would be."""
    return tuple(start_server(2, REDIS_URL=redis_server.url))


async def chat_burst(room, senders, each):
    """The first `senders` WebSockets of `room` send `each` messages apiece, all at once.

    Returns the set of messages sent and, for each member of the room, a Counter
    of the burst's messages it received: counted one by one, never assumed. A
    member stops counting once it has them all, or once the whole room has heard
    nothing for LIVE_TIMEOUT s: while others still receive, the burst is still
    going, and a machine with no core to spare can starve one member for seconds.
    Run it inside machine_or_server(), which then says how busy the machine was.
    """
    sent = {f"burst {s}.{n}" for s in range(senders) for n in range(each)}
    heard = [time.monotonic()]  # when any member of the room last received a frame

    async def count(ws):
        seen = collections.Counter()
        while sum(seen.values()) < len(sent):
            quiet_until = heard[0] + LIVE_TIMEOUT
            try:
                frame = await asyncio.wait_for(ws.recv(), max(0.05, quiet_until - time.monotonic()))
            except asyncio.TimeoutError:
                if time.monotonic() - heard[0] >= LIVE_TIMEOUT:
                    break  # the whole room has been quiet that long: the burst is over
                continue
            heard[0] = time.monotonic()
            message = json.loads(frame).get("message")
            if message in sent:
                seen[message] += 1
        return seen

    counting = [asyncio.create_task(count(ws)) for ws in room]

    async def send(sender, ws):
        for n in range(each):
            await ws.send(json.dumps({"message": f"burst {sender}.{n}"}))

    await asyncio.gather(*(send(s, ws) for s, ws in enumerate(room[:senders])))
    return sent, await asyncio.gather(*counting)


async def chat_both_ways(alice, bob, line):
    """alice and bob (live WebSockets in one room) each say `line`; both must hear both."""
    said = {f"{line} from {who}" for who in ("alice", "bob")}
    await alice.send(json.dumps({"message": f"{line} from alice"}))
    await bob.send(json.dumps({"message": f"{line} from bob"}))
    for name, listener in (("alice", alice), ("bob", bob)):
        heard = set()
        with contextlib.suppress(asyncio.TimeoutError):
            while heard != said:
                heard.add(json.loads(await asyncio.wait_for(listener.recv(), LIVE_TIMEOUT)).get("message"))
        assert heard == said, f"{name} heard {heard or 'nothing'} of {said}: the room should reach every member"
