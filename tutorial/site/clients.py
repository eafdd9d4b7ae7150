"""The client's part in a captured session (sessions.py): a Chat that opens the room and makes
its moves (Send, Quiet, LogOut, ChangePasswordElsewhere, Rejoin), or a Command that listens while `manage.py` runs.

Each writes what it sees into a Visit, normalised (normalise()) so that two runs read the same.
A step whose lesson needs a client to do something new adds a move or a client here.
"""

import contextlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core import serve

HELLO = '{"message": "hello"}'
ORIGIN = "http://127.0.0.1:8000"  # the room page's origin when a learner runs the step
PASSWORD = "through-the-looking-glass"  # every user a session makes has this one


@dataclass
class Visit:
    """A client's session as it is played: the servers, the room's path, the copy and its
    environment; the open socket and the logged-in browser, once there are; and what was seen."""

    servers: list
    path: str
    folder: Path
    env: dict
    origin: str = ORIGIN
    user: str = ""
    web: object = None  # a requests.Session holding the user's cookies
    ws: object = None
    seen: list = field(default_factory=list)

    def say(self, line):
        self.seen.append(line)

    def hear(self, ws=None, timeout=1.5, prefix=""):
        """Wait for the next frame on `ws` (the client's own by default) and note it down."""
        self.say(normalise(f"{prefix}received: {(ws or self.ws).recv(timeout=timeout)}"))

    def wait_for_quiet_console(self, quiet=0.3, timeout=5):
        """Wait until the first server's console has written nothing new for `quiet` seconds."""
        deadline, said, since = time.monotonic() + timeout, self.servers[0].log(), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.servers[0].log()
            if now != said:
                said, since = now, time.monotonic()


# The moves a Chat client makes once its socket is open, in the order it lists them.


def shown(frame):
    """A frame as a capture notes it: a long one by its start and its length, a blank one by name."""
    if not frame.strip():
        return f"{frame!r} (a blank frame)"
    return frame if len(frame) <= 80 else f"{frame[:24]}… ({len(frame):,} characters)"


class Send:
    """Send each frame, then note every frame back until none comes for 1.5 s."""

    def __init__(self, *frames):
        self.frames = frames

    def __call__(self, visit):
        for frame in self.frames:
            visit.ws.send(frame)
            visit.say(f"sent: {shown(frame)}")
        try:
            while True:
                visit.hear()
        except TimeoutError:
            visit.say("received: nothing more (waited 1.5 s)")


class Quiet:
    """Read the room's hello, then stay connected and silent for `seconds`: does the socket live?"""

    def __init__(self, seconds):
        self.seconds = seconds

    def __call__(self, visit):
        visit.hear()
        visit.say(f"(quiet for {self.seconds:g} s)")
        with contextlib.suppress(TimeoutError):
            visit.hear(timeout=self.seconds)


class LogOut:
    """The client's user logs out (as from another tab), and the client tries once more."""

    def __call__(self, visit):
        visit.web.post(f"{visit.servers[0].url}/accounts/logout/", allow_redirects=False, timeout=5,
                       data={"csrfmiddlewaretoken": visit.web.cookies["csrftoken"]})
        visit.say(f"# {visit.user} logs out in another tab: POST /accounts/logout/")
        try:
            visit.hear()
        except TimeoutError:
            visit.say("received: nothing (waited 1.5 s)")
        frame = '{"message": "still here?"}'
        visit.ws.send(frame)
        visit.say(f"sent: {frame}")
        visit.hear()


class ChangePasswordElsewhere:
    """The client's user changes their password on Django's own page, in another browser; the
    client's socket waits for its session check (step 08) to notice."""

    def __call__(self, visit):
        url, page = visit.servers[0].url, f"{visit.servers[0].url}/accounts/password_change/"
        other = log_in(url, visit.user)
        other.get(page, timeout=5)
        answer = other.post(page, allow_redirects=False, timeout=5, data={
            "old_password": PASSWORD, "new_password1": "a-new-one-2026", "new_password2": "a-new-one-2026",
            "csrfmiddlewaretoken": other.cookies["csrftoken"]})
        visit.say(f"# in another browser, {visit.user} changes her password: HTTP {answer.status_code}")
        visit.say("# (no signal tells the socket; its own session check asks within SESSION_CHECK_SECONDS)")
        visit.hear(timeout=10)
        visit.hear()  # the close, which Chat notes


class Rejoin:
    """The client leaves, a second one joins the room, and its first frame is noted."""

    def __call__(self, visit):
        from websockets.sync.client import connect

        visit.ws.close()
        # The server logs the first client's disconnect a moment after the close: wait for it,
        # so that the console shows the two clients one after the other, the same every run.
        visit.wait_for_quiet_console()
        with connect(visit.servers[0].ws_url(visit.path), origin=visit.origin, open_timeout=5) as ws:
            visit.say("# a second client joins the room")
            visit.say("handshake: 101 Switching Protocols")
            visit.hear(ws)


@dataclass(frozen=True)
class Chat:
    """A client in the room page's place: it opens `path` (the step's room when empty) as a page
    on `origin` would, as `user` (made and logged in first) or anonymous, then makes its `moves`."""

    path: str = ""
    origin: str = ORIGIN
    user: str = ""
    moves: tuple = (Send(HELLO),)

    def run(self, visit):
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        visit.origin, headers = self.origin, {}
        if self.user:
            make_user(visit.folder, self.user)
            visit.user, visit.web = self.user, log_in(visit.servers[0].url, self.user)
            visit.say(f"# {self.user} logs in at /accounts/login/; the handshake carries the session cookie")
            headers = {"Cookie": f"sessionid={visit.web.cookies['sessionid']}"}
        if hasattr(visit.servers[0], "tls"):  # through nginx: the page's own https origin, and TLS
            visit.origin = visit.servers[0].url
        try:
            with connect(visit.servers[0].ws_url(visit.path), origin=visit.origin, open_timeout=5,
                         additional_headers=headers, ssl=getattr(visit.servers[0], "tls", None)) as visit.ws:
                visit.say("handshake: 101 Switching Protocols")
                for move in self.moves:
                    move(visit)
        except InvalidStatus as refused:
            visit.say(f"handshake refused: HTTP {refused.response.status_code}")
        except ConnectionClosed as closed:
            visit.say(f"connection closed: code {closed.rcvd.code if closed.rcvd else 1006}")


@dataclass(frozen=True)
class Browse:
    """A browser's first request: GET `path` over https through nginx, following redirects as a
    browser does (at most MOST_REDIRECTS), and with `socket`, then the room's WebSocket."""

    page: str = "/chat/"
    socket: bool = False
    path = ""  # the socket's: the step's room
    seer = "a browser"
    MOST_REDIRECTS = 3

    def run(self, visit):
        import requests

        front = visit.servers[0]
        url = front.url + self.page
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
            ca.write(front.running.ca.read_text())
            ca.flush()
            for _ in range(self.MOST_REDIRECTS + 1):
                answer = requests.get(url, verify=ca.name, allow_redirects=False, timeout=5)
                moved = answer.headers.get("Location")
                visit.say(normalise(f"GET {url}: HTTP {answer.status_code}" + (f", Location: {moved}" if moved else "")))
                if not moved:
                    break
                url = requests.compat.urljoin(url, moved)
            else:
                visit.say(f"(the browser gives up after {self.MOST_REDIRECTS} redirects: too many redirects)")
        if self.socket:
            Chat(moves=(Send(HELLO),)).run(visit)


class Command:
    """A client in the room on each server, listening while `manage.py *args` runs in a process
    of its own (another terminal, as a cron job would): what the command says, what each hears."""

    path = ""

    def __init__(self, *args):
        self.args = args

    def run(self, visit):
        from websockets.sync.client import connect

        several = len(visit.servers) > 1
        with contextlib.ExitStack() as stack:
            clients = []
            for number, server in enumerate(visit.servers, 1):
                ws = stack.enter_context(connect(server.ws_url(visit.path), origin=ORIGIN, open_timeout=5))
                visit.say(f"# a client on server {number}" if several else "# a client in the room")
                visit.say("handshake: 101 Switching Protocols")
                visit.hear(ws)  # the room's hello
                clients.append((f"server {number}'s client " if several else "", ws))
            quoted = " ".join(f'"{arg}"' if " " in arg else arg for arg in self.args)
            visit.say(f"# in another terminal: python manage.py {quoted}")
            done = subprocess.run([sys.executable, "manage.py", *self.args], cwd=visit.folder, env=visit.env,
                                  capture_output=True, text=True, timeout=60)
            visit.seen += [normalise(line) for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            visit.say(f"exit status {done.returncode}")
            for prefix, ws in clients:
                try:
                    visit.hear(ws, prefix=prefix)
                except TimeoutError:
                    visit.say(f"{prefix}received: nothing (waited 1.5 s)")


class LogOutWithRedisDown:
    """alice logs in; the Redis of REDIS_URL stops, as a crashed Redis would; alice logs out. What
    the logout answers, and whether the session really ended (the room list, asked once more)."""

    path = ""
    seer = "alice's browser"  # no WebSocket here: her HTTP requests

    def run(self, visit):
        import redis

        url = visit.servers[0].url
        make_user(visit.folder, "alice")
        visit.user, visit.web = "alice", log_in(url, "alice")
        visit.say("# alice logs in at /accounts/login/")
        with contextlib.suppress(redis.exceptions.RedisError):
            redis.Redis.from_url(visit.env["REDIS_URL"]).shutdown(nosave=True)
        visit.say("# Redis stops")
        answer = visit.web.post(f"{url}/accounts/logout/", allow_redirects=False, timeout=30,
                                data={"csrfmiddlewaretoken": visit.web.cookies["csrftoken"]})
        visit.say(f"POST /accounts/logout/: HTTP {answer.status_code}")
        page = visit.web.get(f"{url}/chat/", timeout=5).text
        visit.say("GET /chat/ after it: " + ("still logged in as alice" if 'id="logout"' in page else "logged out"))


def make_user(folder, username):
    """Make `username` (with PASSWORD) in the database of the copy in `folder`."""
    code = (f"from django.contrib.auth.models import User; "
            f"User.objects.create_user({username!r}, password={PASSWORD!r})")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=folder, env=serve.environment(),
                   check=True, capture_output=True)


def log_in(url, username):
    """Log `username` in through the step's own login page at `url`; the requests Session holds its cookies."""
    import requests

    web = requests.Session()
    web.get(f"{url}/accounts/login/", timeout=5)
    web.post(f"{url}/accounts/login/", allow_redirects=False, timeout=5, data={
        "username": username, "password": PASSWORD, "csrfmiddlewaretoken": web.cookies["csrftoken"]})
    return web


def normalise(line):
    """Take out what changes from run to run: ports, dates, the random part of channel names and of anonymous names."""
    line = re.sub(r"\[127\.0\.0\.1:\d+\]", "[127.0.0.1:PORT]", line)
    line = re.sub(r"127\.0\.0\.1:\d{4,5}\b", "127.0.0.1:PORT", line)  # e.g. a Redis of its own
    line = re.sub(r"\('127\.0\.0\.1', \d{4,5}\)", "('127.0.0.1', PORT)", line)  # the same, as asyncio says it
    line = re.sub(r"specific\.[0-9a-f]{32}!", "specific.PROCESS!", line)  # the Redis layer's per-process part
    line = re.sub(r"\[\d\d/\w{3}/\d{4} [\d:]{8}\]", "[DATE]", line)
    line = re.sub(r"\[\d\d/\w{3}/\d{4}:[\d:]{8}\]", "[DATE]", line)  # daphne's own access log
    line = re.sub(r"\[\d+\.\d+, 127\.0\.0\.1", "[SECONDS, 127.0.0.1", line)  # how long a request took
    line = re.sub(r"\banonymous-[0-9a-f]{4}\b", "anonymous-RANDOM", line)  # a name drawn per connection
    line = re.sub(r"\bsession_[0-9a-f]{64}\b", "session_SHA256", line)  # a group named by a session key
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", "TIME", line)  # a stored message's sent_at
    return re.sub(r"(specific\.[\w.]*!)\w+", r"\1RANDOM", line)
