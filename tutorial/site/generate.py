"""Outputs shown on the docs site that need something to run: `make generate` writes them.

    docs/generated/handshake.txt       a real opening handshake with step 01's daphne
    docs/generated/check-NN.txt        what `make check STEP=NN` prints when the step passes
    docs/generated/watch-02.txt        `make watch` on step 02 started from step 01: the
                                       untouched start, a save that does one task, then the rest
    docs/generated/sessions/NAME.txt   what a client and the server console show in a session
                                       with a step, as it is or with a common mistake made on purpose
    docs/generated/finished-chat.png   two browser windows in step 06's lobby, each 1280 px
                                       wide, one above the other, for the home page and step 04
    docs/generated/pages/NN-name.png   the first screen of each step page at 1280 x 800

They are committed; tests/test_docs.py fails when they no longer match the
steps (run `make generate` then). Diffs and trees need no such care: the
mkdocs hook in tutorial/site/hooks.py makes them while the site builds.
"""

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..core import services
from ..core.steps import ROOT, STEPS, find
from ..core.wire import free_port, raw_handshake, stop, wait_for_port

GENERATED = ROOT / "docs" / "generated"
def serve(folder, log, env=()):
    """Start `manage.py runserver` for the project in `folder`; return (process, port).

    `env`: (name, value) pairs set for the server on top of this process's environment."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        # A REDIS_URL in the caller's shell must not change what a capture shows.
        env={**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "PYTHONUNBUFFERED": "1", **dict(env)},
    )
    if not wait_for_port(port, process):
        stop(process)
        raise SystemExit(f"runserver did not start in {folder}")
    return process, port


def capture_handshake():
    step = find("01")
    process, port = serve(step.folder, subprocess.DEVNULL)
    try:
        request, response = raw_handshake(port, step.ws_path)
    finally:
        stop(process)
    text = "# the browser sends\n" + request.replace("\r\n", "\n")
    text += "# daphne answers\n" + response.replace("\r\n", "\n")
    return text.rstrip("\n") + "\n"


@dataclass(frozen=True)
class Session:
    """A client session with a copy of a step, where `old` becomes `new` in `file` (a mistake made
    on purpose), or with the step as it is when `old` is empty."""

    slug: str
    step: str
    file: str
    old: str
    new: str
    path: str = ""  # the WebSocket path the client opens; the step's room path when empty
    frames: tuple = ('{"message": "hello"}',)
    origin: str = "http://127.0.0.1:8000"
    env: tuple = ()  # (name, value) pairs for the server's environment, e.g. (("REDIS_URL", "..."),)
    redis: bool = False  # start a redis-server of its own and give the server its REDIS_URL
    quiet: float = 0  # seconds the client stays connected and silent before it sends its frames
    rejoin: bool = False  # then a second client joins the room, and its first frame is shown
    login: str = ""  # step 08 on: this user is made, logs in at /accounts/login/, and the socket carries the cookie
    logout: bool = False  # then that user logs out (as from another tab), and the client tries once more
    command: tuple = ()  # step 09: `manage.py` arguments run in a process of their own while the client listens
    both: bool = False  # with redis: a second server on the same Redis, with a client of its own


SESSIONS = [
    Session("working-00", "00", "", "", ""),
    Session("working-01", "01", "", "", ""),
    Session("working-02", "02", "", "", ""),
    Session("working-03", "03", "", "", ""),
    Session("working-04", "04", "", "", ""),
    Session("daphne-not-installed", "01", "mysite/settings.py", '    "daphne",\n', ""),
    Session("as-asgi-forgotten", "01", "mysite/asgi.py",
            '"websocket": ChatConsumer.as_asgi(),', '"websocket": ChatConsumer,'),
    Session("dict-sent-as-text", "01", "chat/consumers.py",
            'self.send(text_data=json.dumps({"message": data["message"]}))',
            'self.send(text_data={"message": data["message"]})'),
    Session("close-instead-of-accept", "01", "chat/consumers.py",
            '        self.accept()\n        logger.info("connect: %s accepted", self.scope["path"])\n',
            "        self.close()\n"),
    Session("foreign-origin", "02", "mysite/asgi.py", "", "", origin="http://evil.example"),
    Session("as-asgi-forgotten-in-routing", "02", "chat/routing.py",
            "consumers.ChatConsumer.as_asgi()),", "consumers.ChatConsumer),"),
    Session("route-with-leading-slash", "02", "chat/routing.py",
            r're_path(r"^ws/chat/', r're_path(r"^/ws/chat/'),
    Session("route-without-anchors", "02", "chat/routing.py",
            r're_path(r"^ws/chat/(?P<room_name>[^/]+)/$"', r're_path(r"ws/chat/(?P<room_name>[^/]+)/"',
            path="/ws/chat/lobby/typo/"),
    Session("no-catch-all-route", "02", "chat/routing.py",
            '    re_path(r"", consumers.NoRouteConsumer.as_asgi()),\n', "", path="/ws/nowhere/"),
    Session("auth-middleware-forgotten", "02", "mysite/asgi.py",
            "AuthMiddlewareStack(URLRouter(websocket_urlpatterns))", "URLRouter(websocket_urlpatterns)"),
    # A typo in the setting's name is as good as no setting: Channels reads CHANNEL_LAYERS only.
    Session("no-channel-layers", "03", "mysite/settings.py", "CHANNEL_LAYERS = {", "CHANNEL_LAYER = {"),
    Session("async-to-sync-forgotten", "03", "chat/consumers.py",
            "async_to_sync(self.channel_layer.send)(self.channel_name, event)",
            "self.channel_layer.send(self.channel_name, event)"),
    Session("type-with-no-handler", "03", "chat/consumers.py",
            '"type": "chat.message",', '"type": "chat.messages",'),
    Session("room-not-checked", "04", "chat/consumers.py",
            "            protocol.check_room_name(self.room_name)\n",
            "            pass  # the room check, left out\n", path="/ws/chat/café/"),
    Session("group-send-without-async-to-sync", "04", "chat/consumers.py",
            "async_to_sync(self.channel_layer.group_send)(self.group_name, event)",
            "self.channel_layer.group_send(self.group_name, event)"),
    Session("working-05", "05", "", "", ""),
    Session("group-send-without-await", "05", "chat/consumers.py",
            "await self.channel_layer.group_send(self.group_name, event)",
            "self.channel_layer.group_send(self.group_name, event)"),
    # Step 04's call kept in an async consumer (imported where it is used, so that one edit makes the mistake).
    Session("async-to-sync-in-async-consumer", "05", "chat/consumers.py",
            "            await self.channel_layer.group_send(self.group_name, event)\n",
            "            from asgiref.sync import async_to_sync\n\n"
            "            async_to_sync(self.channel_layer.group_send)(self.group_name, event)\n"),
    # A database query made straight from a coroutine, without database_sync_to_async.
    Session("orm-in-async-consumer", "05", "chat/consumers.py",
            "        self.username = username(self.scope)\n",
            "        from django.contrib.auth.models import User\n\n"
            "        self.username = username(self.scope)\n"
            "        self.users = User.objects.count()\n"),
    # REDIS_URL names a port where no Redis listens: port 1, fixed so that the capture is the same every time.
    Session("redis-not-running", "06", "", "", "", env=(("REDIS_URL", "redis://127.0.0.1:1/0"),)),
    # The layer is made at the first connection, before any Redis is asked: no server needed.
    Session("redis-hosts-not-a-list", "06", "mysite/settings.py",
            '"hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 15}],',
            '"hosts": REDIS_URL,', env=(("REDIS_URL", "redis://127.0.0.1:6379/0"),)),
    # A room left open and quiet for 8 s, on a real Redis: as it is, and with redis-py 8's
    # default socket_timeout (5 s), which is what every project gets that does not set one.
    Session("working-06-quiet", "06", "", "", "", redis=True, quiet=8),
    Session("redis-socket-timeout-default", "06", "mysite/settings.py",
            '"max_connections": 1000, "socket_timeout": 15}', '"max_connections": 1000}',
            redis=True, quiet=8),
    # Step 07: the lobby with two messages stored, as a newcomer's first frame shows them; then
    # the mistake the step is about, create() where acreate() belongs: a query in a coroutine.
    Session("working-07", "07", "", "", "", frames=('{"message": "first"}', '{"message": "<b>second</b>"}'),
            rejoin=True),
    Session("sync-orm-in-async-consumer", "07", "chat/consumers.py",
            "stored = await Message.objects.acreate(", "stored = Message.objects.create("),
    # Step 09: the announce command, a process of its own, as the lesson goes: on the in-memory
    # layer it refuses (exit 3); with the check taken out it "sends" and nobody hears; on Redis
    # the sockets of two server processes both hear it.
    Session("announce-in-memory", "09", "", "", "", frames=(), command=("announce", "lobby", "doors close at six")),
    Session("announce-in-memory-unchecked", "09", "chat/management/commands/announce.py",
            "        if layer_is_in_memory():\n", "        if False:  # the in-memory check, taken out\n",
            frames=(), command=("announce", "lobby", "doors close at six")),
    Session("announce-on-redis", "09", "", "", "", frames=(), redis=True, both=True,
            command=("announce", "lobby", "doors close at six")),
    # Step 08: an anonymous socket in a members_ room; alice in it, who logs out elsewhere; and the
    # mistake the step is about, the logout signal's receiver never connected: the socket lives on.
    Session("anonymous-in-members-room", "08", "", "", "", path="/ws/chat/members_lobby/", frames=()),
    Session("working-08", "08", "", "", "", path="/ws/chat/members_lobby/", login="alice", logout=True),
    Session("logout-signal-not-connected", "08", "chat/apps.py",
            "        from . import signals  # noqa: F401\n", "        pass\n",
            path="/ws/chat/members_lobby/", login="alice", logout=True),
]

# Lines of the runserver console that every run prints, whatever happens.
BANNER = re.compile(
    r"^(Watching for|Performing system checks|System check identified|You have \d+ unapplied|"
    r"Run 'python manage.py migrate'|[A-Z][a-z]+ \d+, \d{4} - |Django version|Starting |Quit the server|$)"
)


def client_sees(port, session, path, folder=None, env=(), second=None):
    """What a WebSocket client experiences: the handshake's answer, the frames back, the close.
    With a command, it runs in `folder` with `env` while the client (and one on `second`) listen."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    if session.command:
        return command_heard(port, session, path, folder, env, second)
    seen = []
    headers = {}
    if session.login:
        web = log_in(port, session.login)
        seen.append(f"# {session.login} logs in at /accounts/login/; the handshake carries the session cookie")
        headers = {"Cookie": f"sessionid={web.cookies['sessionid']}"}
    try:
        with connect(f"ws://127.0.0.1:{port}{path}", origin=session.origin, open_timeout=5,
                     additional_headers=headers) as ws:
            seen.append("handshake: 101 Switching Protocols")
            if session.quiet:
                seen.append(normalise(f"received: {ws.recv(timeout=1.5)}"))  # the room's hello
                seen.append(f"(quiet for {session.quiet:g} s)")
                with contextlib.suppress(TimeoutError):
                    seen.append(normalise(f"received: {ws.recv(timeout=session.quiet)}"))
            for frame in session.frames:
                ws.send(frame)
                seen.append(f"sent: {frame}")
            try:
                while True:
                    seen.append(normalise(f"received: {ws.recv(timeout=1.5)}"))
            except TimeoutError:
                seen.append("received: nothing more (waited 1.5 s)")
            if session.logout:
                web.post(f"http://127.0.0.1:{port}/accounts/logout/", allow_redirects=False, timeout=5,
                         data={"csrfmiddlewaretoken": web.cookies["csrftoken"]})
                seen.append(f"# {session.login} logs out in another tab: POST /accounts/logout/")
                try:
                    seen.append(normalise(f"received: {ws.recv(timeout=1.5)}"))
                except TimeoutError:
                    seen.append("received: nothing (waited 1.5 s)")
                frame = '{"message": "still here?"}'
                ws.send(frame)
                seen.append(f"sent: {frame}")
                seen.append(normalise(f"received: {ws.recv(timeout=1.5)}"))
        if session.rejoin:
            with connect(f"ws://127.0.0.1:{port}{path}", origin=session.origin, open_timeout=5) as ws:
                seen.append("# a second client joins the room")
                seen.append("handshake: 101 Switching Protocols")
                seen.append(normalise(f"received: {ws.recv(timeout=1.5)}"))
    except InvalidStatus as refused:
        seen.append(f"handshake refused: HTTP {refused.response.status_code}")
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else 1006
        seen.append(f"connection closed: code {code}")
    return seen


def command_heard(port, session, path, folder, env, second):
    """Clients in the room (one per server), a `manage.py` command in its own process, what each client hears."""
    from websockets.sync.client import connect

    seen = []
    with contextlib.ExitStack() as stack:
        clients = []
        for name, server_port in (("server 1", port), ("server 2", second)):
            if server_port is None:
                continue
            ws = stack.enter_context(connect(f"ws://127.0.0.1:{server_port}{path}", origin=session.origin,
                                             open_timeout=5))
            seen.append(f"# a client on {name}" if second else "# a client in the room")
            seen.append("handshake: 101 Switching Protocols")
            seen.append(normalise(f"received: {ws.recv(timeout=1.5)}"))  # the room's hello
            clients.append((name, ws))
        quoted = " ".join(f'"{arg}"' if " " in arg else arg for arg in session.command)
        seen.append(f"# in another terminal: python manage.py {quoted}")
        done = subprocess.run([sys.executable, "manage.py", *session.command], cwd=folder, capture_output=True,
                              text=True, timeout=60,
                              env={**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, **dict(env)})
        seen += [normalise(line) for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        seen.append(f"exit status {done.returncode}")
        for name, ws in clients:
            prefix = f"{name}'s client " if second else ""
            try:
                seen.append(normalise(f"{prefix}received: {ws.recv(timeout=1.5)}"))
            except TimeoutError:
                seen.append(f"{prefix}received: nothing (waited 1.5 s)")
    return seen


def log_in(port, username):
    """Log `username` in through the step's own login page; the requests Session holds its cookies."""
    import requests

    web = requests.Session()
    web.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
    web.post(f"http://127.0.0.1:{port}/accounts/login/", allow_redirects=False, timeout=5, data={
        "username": username, "password": SESSION_PASSWORD, "csrfmiddlewaretoken": web.cookies["csrftoken"]})
    return web


SESSION_PASSWORD = "through-the-looking-glass"


def server_says(log_text):
    """The console lines worth reading: what is not the banner, and of a traceback its first and last line."""
    keep, in_traceback = [], False
    lines = log_text.splitlines()
    for index, line in enumerate(lines):
        if BANNER.match(line):
            continue
        if line.startswith("Traceback"):
            in_traceback = True
            keep.append(line)
            keep.append("  ...")
            continue
        if in_traceback:
            if line.startswith(" ") or line.startswith("^") or not line.strip():
                continue
            in_traceback = False
        keep.append(line)
    return [normalise(line) for line in keep]


def normalise(line):
    """Take out what changes from run to run: ports, dates, the random part of channel names and of anonymous names."""
    line = re.sub(r"\[127\.0\.0\.1:\d+\]", "[127.0.0.1:PORT]", line)
    line = re.sub(r"127\.0\.0\.1:\d{4,5}\b", "127.0.0.1:PORT", line)  # e.g. a Redis of its own
    line = re.sub(r"specific\.[0-9a-f]{32}!", "specific.PROCESS!", line)  # the Redis layer's per-process part
    line = re.sub(r'("address": "specific\.[\w.]*!)[^"]+"', r'\1RANDOM:SIGNATURE"', line)
    line = re.sub(r"\[\d\d/\w{3}/\d{4} [\d:]{8}\]", "[DATE]", line)
    line = re.sub(r"\[\d+\.\d+, 127\.0\.0\.1", "[SECONDS, 127.0.0.1", line)  # how long a request took
    line = re.sub(r"\banonymous-[0-9a-f]{4}\b", "anonymous-RANDOM", line)  # a name drawn per connection
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", "TIME", line)  # a stored message's sent_at
    return re.sub(r"(specific\.[\w.]*!)\w+", r"\1RANDOM", line)


def capture_session(session):
    step = find(session.step)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / step.name
        shutil.copytree(step.folder, folder, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__"))
        if session.old:
            target = folder / session.file
            text = target.read_text()
            assert session.old in text, f"session {session.slug}: {session.old!r} is no longer in {session.file}"
            target.write_text(text.replace(session.old, session.new, 1))
        log_path = Path(tmp) / "runserver.log"
        with contextlib.ExitStack() as stack, open(log_path, "w") as log:
            env = dict(session.env)
            if (folder / "chat" / "migrations").is_dir():
                # From step 07 on the chat has a table: a fresh database, migrated, as `make run` does.
                subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                               cwd=folder, check=True, env={k: v for k, v in os.environ.items() if k != "SQLITE_PATH"})
            if session.login:
                make_user = (f"from django.contrib.auth.models import User; "
                             f"User.objects.create_user({session.login!r}, password={SESSION_PASSWORD!r})")
                subprocess.run([sys.executable, "manage.py", "shell", "-c", make_user], cwd=folder, check=True,
                               capture_output=True,
                               env={k: v for k, v in os.environ.items() if k != "SQLITE_PATH"})
            if session.redis:
                redis = services.start_redis()
                stack.callback(redis.stop)
                env["REDIS_URL"] = redis.url
            process, port = serve(folder, log, env.items())
            stack.callback(stop, process)
            second = None
            if session.both:
                second_log = stack.enter_context(open(Path(tmp) / "runserver-2.log", "w"))
                second_process, second = serve(folder, second_log, env.items())
                stack.callback(stop, second_process)
            seen = client_sees(port, session, session.path or step.ws_path, folder, env.items(), second)
            time.sleep(0.5)  # let the console catch up with the last event
        console = server_says(log_path.read_text(errors="replace"))
    return ("# a WebSocket client sees\n" + "\n".join(seen)
            + "\n# the runserver console shows\n" + "\n".join(console) + "\n")


# Two windows in one picture: each window's screenshot, one above the other on a local page that
# is then photographed at 1280 px. (Frames of the room would be simpler, but Django's
# XFrameOptionsMiddleware forbids framing its pages, as it should.)
ONE_ABOVE_THE_OTHER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><style>
  body {{ margin: 0; display: flex; flex-direction: column; gap: 4px; background: #8a93a6; }}
  img {{ display: block; width: {width}px; }}
</style></head>
<body><img src="data:image/png;base64,{first}"><img src="data:image/png;base64,{second}"></body></html>
"""


def viewport(driver, width, height):
    """Size the window so that the page itself (the viewport) is width x height, the size the
    screenshot shows: a window's own frame takes some of its height, even headless."""
    driver.set_window_size(width, height)
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    if frame:
        driver.set_window_size(width, height + frame)


def screenshot_finished_chat(path, width=1280, height=800):
    """Two windows chat in step 06's lobby, each 1280 px wide as a learner's would be, one
    above the other in one picture: Alice (first) and Bob (second) talk to the room, Bob sends
    Alice a direct message, and a frame that is not JSON gets an error event."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    # The page as steps 04 to 06 show it; step 07 adds the room's history above new messages,
    # and a database whose contents would change the picture from run to run.
    step = find("06")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.set_page_load_timeout(10)
    process, port = serve(step.folder, subprocess.DEVNULL)
    harness = Path(tempfile.mkdtemp()) / "one-above-the-other.html"
    try:
        url = f"http://127.0.0.1:{port}/chat/lobby/"
        viewport(driver, width, height)
        driver.get(url)
        alice = driver.current_window_handle
        driver.switch_to.new_window("window")
        viewport(driver, width, height)
        driver.get(url)
        bob = driver.current_window_handle

        def run(window, script):
            driver.switch_to.window(window)
            return driver.execute_script(script)

        def wait(window, script):
            deadline = time.monotonic() + 10
            while not run(window, script):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the two-window screenshot waited in vain for: {script}")
                time.sleep(0.05)

        def say(window, text, to=""):
            run(window, f"document.getElementById('chat-message-to').value = {to!r};"
                        f"document.getElementById('chat-message-input').value = {text!r};"
                        "document.getElementById('chat-message-submit').click();")

        def arrived(count):
            return f"return document.querySelectorAll('#chat-log li').length >= {count}"

        for window in (alice, bob):
            wait(window, "return document.getElementById('address').textContent.includes(':')")
        say(alice, "Hi! Is anyone else in the lobby?")
        wait(bob, arrived(1))
        say(bob, "Hello Alice, Bob here. One moment: a word for you only.")
        wait(alice, arrived(2))
        address = run(alice, "return document.getElementById('address').textContent")
        say(bob, "psst: the secret word is 'websocket'", to=address)
        wait(alice, arrived(3))
        say(alice, "Got it, thanks!")
        wait(bob, arrived(4))
        run(bob, "socket.send('this is not JSON')")
        wait(bob, "return document.querySelector('#event-log li.error') !== null")
        shots = {}
        for name, window in (("first", alice), ("second", bob)):
            driver.switch_to.window(window)
            run(window, "document.activeElement.blur()")  # no caret blinking in the picture
            shots[name] = driver.get_screenshot_as_base64()
        harness.write_text(ONE_ABOVE_THE_OTHER.format(width=width, **shots))
        viewport(driver, width, 2 * height + 4)
        driver.get(harness.as_uri())
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
        stop(process)
        shutil.rmtree(harness.parent, ignore_errors=True)


# The checklist wraps to the terminal's width (COLUMNS); the docs' content column holds about
# 75 characters of code at 1280 px, so the captures are made that wide.
NARROW = {"TERM": "dumb", "COLUMNS": "76"}


def capture_check(step):
    """A real `make check STEP=NN` run: the checklist of our step, every task done."""
    done = subprocess.run(
        [sys.executable, "-m", "tutorial", "check", step.number],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **NARROW},
    )
    if done.returncode != 0:
        raise SystemExit(f"step {step.name} does not pass its checks:\n{done.stdout}{done.stderr}")
    return f"$ make check STEP={step.number}\n" + done.stdout.rstrip() + "\n"


TASK_LINE = re.compile(r"^  \S (\d+)\. (.*)$", re.MULTILINE)


def task_lines(text):
    """(number, first line) of each task in a captured checklist."""
    return [(int(number), line.rstrip()) for number, line in TASK_LINE.findall(text)]


def capture_watch(step_number="02", port=None):
    """A real `make watch` on step 02 started from our step 01: a run on the untouched start,
    then one after our step's files are saved over it."""
    step = find(step_number)
    port = port or free_port()
    runs = []
    with tempfile.TemporaryDirectory(prefix="tutorial-watch-") as work:
        env = {**os.environ, "TUTORIAL_WORK": work, "PYTHONUNBUFFERED": "1", **NARROW}
        subprocess.run([sys.executable, "-m", "tutorial", "start", step.number], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        mine = Path(work) / step.name
        watcher = subprocess.Popen([sys.executable, "-m", "tutorial", "watch", "--port", str(port)], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        saves = [None]  # None: every file of our step
        try:
            text = ""
            while True:
                line = watcher.stdout.readline()
                if not line:
                    raise SystemExit("make watch stopped before it was done:\n" + text)
                text += line
                if line.startswith("Waiting for you to save"):
                    runs.append(text)
                    text = ""
                    if not saves:
                        break
                    names = saves.pop(0)
                    for name in names or [n for n in (p.relative_to(step.folder).as_posix()
                                                      for p in step.folder.rglob("*") if p.is_file())
                                          if "__pycache__" not in n and not n.startswith("db.sqlite3")]:
                        (mine / name).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(step.folder / name, mine / name)
        finally:
            watcher.terminate()
            watcher.wait()
    said = [f"$ make start STEP={step.number}   # then:\n$ make watch\n" + runs[0],
            f"# ... the learner does the tasks (here: our step {step.number}'s files saved)\n"
            + runs[1]]
    text = "\n".join(said).replace(f":{port}/", ":8000/").replace(work, "work")
    return re.sub(r"tutorial-watch-\w+", "work", text)


def screenshot_step_pages(folder):
    """The first screen of every step page, as a learner with a 1280 x 800 window sees it:
    the site is built and served as `make docs` would, then photographed in headless Chromium."""
    from . import browser as docs_browser

    folder.mkdir(parents=True, exist_ok=True)
    for step in STEPS:
        # A new step's picture does not exist before its first run, and the home page links to
        # it, so the strict build would fail: another step's stands in until it is taken.
        picture = folder / f"{step.name}.png"
        if not picture.exists():
            shutil.copy(next(folder.glob("*.png")), picture)
    with tempfile.TemporaryDirectory(prefix="tutorial-site-") as tmp:
        site = Path(tmp) / "site"
        failed = docs_browser.build(site)
        if failed:
            raise SystemExit("mkdocs build --strict failed:\n" + failed)
        with docs_browser.serve(site) as url, docs_browser.chromium(Path(tmp) / "chromium") as driver:
            for step in STEPS:
                page = step.docs_page.removesuffix(".md") + "/"
                if not docs_browser.open_page(driver, f"{url}/{page}"):
                    raise SystemExit(f"{page}: its diagrams were not drawn within {docs_browser.TIMEOUT} s")
                driver.save_screenshot(str(folder / f"{step.name}.png"))
                yield folder / f"{step.name}.png"


def main(argv=None):
    argparse.ArgumentParser(prog="python -m tutorial generate", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / "handshake.txt").write_text(capture_handshake())
    print("wrote docs/generated/handshake.txt")
    screenshot_finished_chat(GENERATED / "finished-chat.png")
    print("wrote docs/generated/finished-chat.png")
    (GENERATED / "sessions").mkdir(exist_ok=True)
    for session in SESSIONS:
        (GENERATED / "sessions" / f"{session.slug}.txt").write_text(capture_session(session))
        print(f"wrote docs/generated/sessions/{session.slug}.txt")
    for step in STEPS:
        (GENERATED / f"check-{step.number}.txt").write_text(capture_check(step))
        print(f"wrote docs/generated/check-{step.number}.txt")
    (GENERATED / "watch-02.txt").write_text(capture_watch())
    print("wrote docs/generated/watch-02.txt")
    for written in screenshot_step_pages(GENERATED / "pages"):
        print(f"wrote {written.relative_to(ROOT)}")

