"""Captured sessions: what a WebSocket client and the runserver console show, with a copy of a step.

A session is four things: the step; the one mistake made in its copy on purpose (or none); how
the copy is served; and what the client does (clients.py). `capture(session)` plays it and
returns the text of docs/generated/sessions/SLUG.txt. A step whose lesson needs the client to do
something new adds a move or a client in clients.py, not a field to Session.
"""

import contextlib
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..core import serve, services
from ..core.steps import find
from .clients import (HELLO, Browse, ChangePasswordElsewhere, Chat, Command, LogOut, LogOutWithRedisDown, Quiet, Rejoin,
                      Send, Visit, normalise)


@dataclass(frozen=True)
class Mistake:
    """The one edit made on purpose in a copy of the step: the first `old` in `file` becomes `new`."""

    file: str
    old: str
    new: str

    def fits(self, folder):
        """Whether the step in `folder` still holds `old`, so that the mistake can be made in it."""
        return self.old in (Path(folder) / self.file).read_text()

    def make(self, folder):
        target = Path(folder) / self.file
        target.write_text(target.read_text().replace(self.old, self.new, 1))


@dataclass(frozen=True)
class Served:
    """How the copy is served: `servers` runservers in a clean environment (core/serve.py) with
    `env`'s (name, value) pairs on top; with `redis`, a redis-server of its own in REDIS_URL; with
    `production`, as production serves it (core/stack.py: nginx, two daphnes, Redis, PostgreSQL),
    its own deploy/nginx.conf included, and the client goes through nginx."""

    env: tuple = ()
    redis: bool = False
    servers: int = 1
    production: bool = False

    def start(self, folder, stack):
        """Migrate the copy in `folder` when it has tables, start the servers, and have `stack`
        stop them; return (the servers, their environment)."""
        if self.production:
            from ..core.stack import start_stack

            running = start_stack(folder, env=dict(self.env))
            stack.callback(running.stop)
            front = Front(running)
            stack.callback(front.keep)  # first, while the logs are still there
            return [front], running.env
        env = dict(self.env)
        if (folder / "chat" / "migrations").is_dir():
            # From step 07 on the chat has a table: a fresh database, migrated, as `make run` does.
            migrated = serve.migrate(folder)
            if migrated.returncode:
                raise SystemExit(f"migrate failed in {folder}:\n{migrated.stdout}{migrated.stderr}")
        if self.redis:
            redis = services.start_redis()
            stack.callback(redis.stop)
            env["REDIS_URL"] = redis.url
        env = serve.environment(**env)
        servers = []
        for number in range(1, self.servers + 1):
            server = serve.start(folder, env=env, log_path=folder.parent / f"runserver-{number}.log")
            stack.callback(server.stop)
            servers.append(server)
        return servers, env


class Front:
    """A production stack as a client meets it, through nginx: its https `url`, `ws_url(path)`
    (wss://), the TLS context that trusts its test CA, and `log()`: what nginx and both daphnes
    wrote, each line marked with who wrote it."""

    def __init__(self, running):
        self.running = running
        self.url = running.url
        self.tls = running.tls()

    def ws_url(self, path):
        return self.running.ws_url(path)

    def keep(self):
        self.kept = self.log()

    def log(self):
        if hasattr(self, "kept"):
            return self.kept
        lines = [f"nginx: {line.split(': ', 1)[-1]}" for line in self.running.nginx.log().splitlines()
                 if "[notice]" not in line]
        for number, server in enumerate(self.running.servers, 1):
            lines += [f"daphne {number}: {DAPHNE_TIME.sub('', line)}" for line in server.log().splitlines()
                      if line.strip() and not DAPHNE_BANNER.search(line)]
        return "\n".join(lines)


# What daphne prints as it starts, whatever happens after; and the time it puts before each line.
DAPHNE_BANNER = re.compile(r"(Starting server at|HTTP/2 support not enabled|Configuring endpoint|Listening on)")
DAPHNE_TIME = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ ")


@dataclass(frozen=True)
class Session:
    """A captured session: a copy of step `step` with `mistake` made in it (None: the step as it
    is), served as `served` says, and a `client` (a Chat or a Command) that plays its part."""

    slug: str
    step: str
    mistake: Mistake | None = None
    served: Served = Served()
    client: object = Chat()


MEMBERS_ROOM = "/ws/chat/members_lobby/"
PRODUCTION = Served(production=True)
QUIET = Chat(moves=(Quiet(8), Send(HELLO)))
ALICE_LOGS_OUT = Chat(path=MEMBERS_ROOM, user="alice", moves=(Send(HELLO), LogOut()))
ANNOUNCE = Command("announce", "lobby", "doors close at six")
DEEP_JSON = "[" * 2000 + "]" * 2000
LONE_SURROGATE = '{"message": "\\ud800"}'

SESSIONS = [
    Session("working-00", "00"),
    Session("working-01", "01"),
    Session("working-02", "02"),
    Session("working-03", "03"),
    Session("working-04", "04"),
    Session("daphne-not-installed", "01", Mistake("mysite/settings.py", '    "daphne",\n', "")),
    Session("as-asgi-forgotten", "01", Mistake(
        "mysite/asgi.py", '"websocket": ChatConsumer.as_asgi(),', '"websocket": ChatConsumer,')),
    Session("dict-sent-as-text", "01", Mistake(
        "chat/consumers.py", 'self.send(text_data=json.dumps({"message": data["message"]}))',
        'self.send(text_data={"message": data["message"]})')),
    Session("close-instead-of-accept", "01", Mistake(
        "chat/consumers.py", '        self.accept()\n        logger.info("connect: %s accepted", self.scope["path"])\n',
        "        self.close()\n")),
    Session("foreign-origin", "02", client=Chat(origin="http://evil.example")),
    Session("as-asgi-forgotten-in-routing", "02", Mistake(
        "chat/routing.py", "consumers.ChatConsumer.as_asgi()),", "consumers.ChatConsumer),")),
    Session("route-with-leading-slash", "02", Mistake(
        "chat/routing.py", r're_path(r"^ws/chat/', r're_path(r"^/ws/chat/')),
    Session("route-without-anchors", "02", Mistake(
        "chat/routing.py", r're_path(r"^ws/chat/(?P<room_name>[^/]+)/$"', r're_path(r"ws/chat/(?P<room_name>[^/]+)/"'),
        client=Chat(path="/ws/chat/lobby/typo/")),
    # Step 02 has no catch-all route (step 10 adds it): a path that matches nothing fails its handshake.
    Session("no-catch-all-route", "02", client=Chat(path="/ws/nowhere/")),
    Session("auth-middleware-forgotten", "02", Mistake(
        "mysite/asgi.py", "AuthMiddlewareStack(URLRouter(websocket_urlpatterns))", "URLRouter(websocket_urlpatterns)")),
    # A typo in the setting's name is as good as no setting: Channels reads CHANNEL_LAYERS only.
    Session("no-channel-layers", "03", Mistake("mysite/settings.py", "CHANNEL_LAYERS = {", "CHANNEL_LAYER = {")),
    Session("async-to-sync-forgotten", "03", Mistake(
        "chat/consumers.py", "async_to_sync(self.channel_layer.send)(self.channel_name, event)",
        "self.channel_layer.send(self.channel_name, event)")),
    Session("type-with-no-handler", "03", Mistake(
        "chat/consumers.py", '"type": "chat.message",', '"type": "chat.messages",')),
    Session("room-not-checked", "04", Mistake(
        "chat/consumers.py", "            protocol.check_room_name(self.room_name)\n",
        "            pass  # the room check, left out\n"), client=Chat(path="/ws/chat/café/")),
    Session("group-send-without-async-to-sync", "04", Mistake(
        "chat/consumers.py", "async_to_sync(self.channel_layer.group_send)(self.group_name, event)",
        "self.channel_layer.group_send(self.group_name, event)")),
    Session("working-05", "05"),
    Session("group-send-without-await", "05", Mistake(
        "chat/consumers.py", "await self.channel_layer.group_send(self.group_name, event)",
        "self.channel_layer.group_send(self.group_name, event)")),
    # Step 04's call kept in an async consumer (imported where it is used, so that one edit makes the mistake).
    Session("async-to-sync-in-async-consumer", "05", Mistake(
        "chat/consumers.py", "        await self.channel_layer.group_send(self.group_name, event)\n",
        "        from asgiref.sync import async_to_sync\n\n"
        "        async_to_sync(self.channel_layer.group_send)(self.group_name, event)\n")),
    # A database query made straight from a coroutine, without database_sync_to_async.
    Session("orm-in-async-consumer", "05", Mistake(
        "chat/consumers.py", "        self.username = username(self.scope)\n",
        "        from django.contrib.auth.models import User\n\n"
        "        self.username = username(self.scope)\n"
        "        self.users = User.objects.count()\n")),
    # REDIS_URL names a port where no Redis listens: port 1, fixed so that the capture is the same every time.
    Session("redis-not-running", "06", served=Served(env=(("REDIS_URL", "redis://127.0.0.1:1/0"),))),
    # The layer is made at the first connection, before any Redis is asked: no server needed.
    Session("redis-hosts-not-a-list", "06", Mistake(
        "mysite/settings.py", '"hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 15}],',
        '"hosts": REDIS_URL,'), served=Served(env=(("REDIS_URL", "redis://127.0.0.1:6379/0"),))),
    # A room left open and quiet for 8 s, on a real Redis: as it is, and with redis-py 8's
    # default socket_timeout (5 s), which is what every project gets that does not set one.
    Session("working-06-quiet", "06", served=Served(redis=True), client=QUIET),
    Session("redis-socket-timeout-default", "06", Mistake(
        "mysite/settings.py", '"max_connections": 1000, "socket_timeout": 15}', '"max_connections": 1000}'),
        served=Served(redis=True), client=QUIET),
    # Step 07: the lobby with two messages stored, as a newcomer's first frame shows them; then
    # the mistake the step is about, create() where acreate() belongs: a query in a coroutine.
    Session("working-07", "07", client=Chat(
        moves=(Send('{"message": "first"}', '{"message": "<b>second</b>"}'), Rejoin()))),
    Session("sync-orm-in-async-consumer", "07", Mistake(
        "chat/consumers.py", "stored = await Message.objects.acreate(", "stored = Message.objects.create(")),
    # Step 09: the announce command, a process of its own, as the lesson goes: on the in-memory
    # layer it refuses (exit 3); with the check taken out it "sends" and nobody hears; on Redis
    # the sockets of two server processes both hear it.
    Session("announce-in-memory", "09", client=ANNOUNCE),
    Session("announce-in-memory-unchecked", "09", Mistake(
        "chat/management/commands/announce.py", "        if layer_is_in_memory():\n",
        "        if False:  # the in-memory check, taken out\n"), client=ANNOUNCE),
    Session("announce-on-redis", "09", served=Served(redis=True, servers=2), client=ANNOUNCE),
    # A push rides on a request: with Redis gone, step 08's logout fails with it; step 09's does not.
    Session("logout-redis-down-08", "08", served=Served(redis=True), client=LogOutWithRedisDown()),
    Session("logout-redis-down-09", "09", served=Served(redis=True), client=LogOutWithRedisDown()),
    # Step 08: an anonymous socket in a members_ room; alice in it, who logs out elsewhere, or whose
    # password changes in another browser; and the mistake the step is about, the logout signal's
    # receiver never connected: the socket lives on until its session check notices.
    Session("anonymous-in-members-room", "08", client=Chat(path=MEMBERS_ROOM, moves=(Send(),))),
    Session("working-08", "08", client=ALICE_LOGS_OUT),
    Session("password-changed-08", "08", client=Chat(path=MEMBERS_ROOM, user="alice",
                                                     moves=(Send(HELLO), ChangePasswordElsewhere()))),
    Session("logout-signal-not-connected", "08", Mistake(
        "chat/apps.py", "        from . import signals  # noqa: F401\n", "        pass\n"), client=ALICE_LOGS_OUT),
    # Step 10 starts from what step 09 does with a hostile client, then shows the answers.
    Session("deep-json-09", "09", client=Chat(moves=(Send(DEEP_JSON),))),
    Session("surrogate-09", "09", client=Chat(moves=(Send(LONE_SURROGATE),))),
    Session("no-route-09", "09", client=Chat(path="/ws/nowhere/")),
    Session("limits-10", "10", client=Chat(moves=(Send(DEEP_JSON, LONE_SURROGATE, " ", '{"message": "' + "x" * 5000 + '"}'),))),
    Session("no-route-10", "10", client=Chat(path="/ws/nowhere/", moves=(Send(),))),
    # Step 11, through nginx: the stack as it is, and the four mistakes on its page, each one
    # change to deploy/nginx.conf or the environment.
    Session("working-11", "11", served=PRODUCTION, client=Browse(page="/chat/lobby/", socket=True)),
    Session("no-upgrade-headers-11", "11", Mistake(
        "deploy/nginx.conf", "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n", ""), served=PRODUCTION),
    Session("no-forwarded-proto-11", "11", Mistake(
        "deploy/nginx.conf", "        proxy_set_header X-Forwarded-Proto $scheme;\n", ""), served=PRODUCTION,
        client=Browse(page="/chat/lobby/")),
    Session("short-read-timeout-11", "11", Mistake(
        "deploy/nginx.conf", "proxy_read_timeout 60s;", "proxy_read_timeout 5s;"), served=PRODUCTION,
        client=Chat(moves=(Quiet(8),))),
    Session("host-not-allowed-11", "11", served=Served(production=True, env=(
        ("DJANGO_ALLOWED_HOSTS", "chat.example.com"),)), client=Browse(page="/chat/lobby/", socket=True)),
]


def capture(session):
    """Play `session` with a copy of its step; return what the client saw and what the console showed."""
    step = find(session.step)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / step.name
        shutil.copytree(step.folder, folder, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__"))
        if session.mistake:
            assert session.mistake.fits(folder), (
                f"session {session.slug}: {session.mistake.old!r} is no longer in {session.mistake.file}")
            session.mistake.make(folder)
        with contextlib.ExitStack() as stack:
            servers, env = session.served.start(folder, stack)
            visit = Visit(servers, session.client.path or step.ws_path, folder, env)
            session.client.run(visit)
            time.sleep(0.5)  # let the console catch up with the last event
        console = server_says(servers[0].log())
    seer = getattr(session.client, "seer", "a WebSocket client")
    consoles = "nginx's error log and the daphnes' consoles show" if session.served.production else \
        "the runserver console shows"
    return (f"# {seer} sees\n" + "\n".join(visit.seen)
            + f"\n# {consoles}\n" + "\n".join(console) + "\n")


# Lines of the runserver console that every run prints, whatever happens.
BANNER = re.compile(
    r"^(Watching for|Performing system checks|System check identified|You have \d+ unapplied|"
    r"Run 'python manage.py migrate'|[A-Z][a-z]+ \d+, \d{4} - |Django version|Starting |Quit the server|$)"
)


def server_says(log_text):
    """The console lines worth reading: what is not the banner, and of a traceback its first and last line."""
    keep, in_traceback = [], False
    for line in log_text.splitlines():
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
