"""Step 10 run as production runs it, on this machine (tutorial/core/stack.py): what a restart
(SIGTERM, SIGKILL, both processes in turn) does to its sockets, a channel layer over two Redis
servers, the history on PostgreSQL, where ids can commit out of order, `make run STACK=1`, and
the page in a browser through nginx. The production step's page and client build on these.

Run by `make test` with the repository checks; skipped without nginx, Redis, PostgreSQL,
uvicorn or Chromium, saying how to get them, unless TUTORIAL_REQUIRE_* says they must run (CI
sets them).
"""

import asyncio
import contextlib
import importlib.util
import json
import random
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import LIVE_TIMEOUT, START_SECONDS, Page, missing, need, recv_json, start_browser, ws_open
from tutorial.core import serve, services
from tutorial.core.stack import start_production_proxy, start_stack
from tutorial.core.steps import ROOT, find
from tutorial.core.wire import free_port, port_in_use


# What a client sees when the server it is connected to is stopped (SIGTERM): daphne stops without
# a close frame, so its clients see 1006, as after a crash, and cannot tell a restart from one;
# uvicorn closes each socket with 1012, "service restart". Either way the client must connect again.
STOPPED = {"daphne": 1006, "uvicorn": 1012}


@pytest.fixture(params=sorted(STOPPED))
def two_behind_nginx(request):
    """Step 10 as production runs it, on one machine (tutorial/core/stack.py): two daphne (or
    uvicorn) processes sharing a Redis channel layer and one SQLite file, behind one nginx with TLS."""
    need("nginx", "redis")
    if request.param == "uvicorn" and not importlib.util.find_spec("uvicorn"):
        # Where CI requires nginx, it has run `make bench-setup` too: uvicorn must be there.
        missing("no uvicorn: `make bench-setup` installs it (the bench extra)", "TUTORIAL_REQUIRE_NGINX")
    stack = start_stack(find("10").folder, timeout=START_SECONDS, server=request.param)
    yield stack
    stack.stop()


def texts(events):
    return [event.get("message") for event in events]


async def join(stack, room, **options):
    """A WebSocket to `room` through the stack's nginx, and the hello it was first sent. `options`
    go to websockets.connect (ping_interval=None: no pings of the client's own)."""
    import websockets

    ws = await websockets.connect(stack.ws_url(f"/ws/chat/{room}/"), ssl=stack.tls(), origin=stack.url,
                                  open_timeout=LIVE_TIMEOUT, **options)
    return ws, await recv_json(ws, "connect() should first send its hello, with the room's history")


async def until(condition, seconds):
    """Ask condition() every 50 ms, for `seconds` at most, without holding up the event loop;
    return whether it came true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def exits(server, seconds=START_SECONDS):
    """Wait until a stopped server's process has exited."""
    if not await until(lambda: server.process.poll() is not None, seconds):
        pytest.fail(f"the stopped server was still running {seconds} s later; its console:\n{server.log()[-2000:]}")


async def closes(members, expected, seconds=LIVE_TIMEOUT):
    """{index: close code} of the members' sockets that close: once `expected` have (within
    `seconds`; fewer, and the caller's assert says which), half a second more, for one that should not."""
    await until(lambda: sum(ws.close_code is not None for ws in members) >= expected, seconds)
    await asyncio.sleep(0.5)
    return {index: ws.close_code for index, ws in enumerate(members) if ws.close_code is not None}


async def heard_until(ws, text, seconds=LIVE_TIMEOUT):
    """The messages ws hears until one says `text` (that one included); fail if it does not come."""
    heard = []

    async def until_it_comes():
        while not heard or heard[-1].get("message") != text:
            heard.append(json.loads(await ws.recv()))

    try:
        await asyncio.wait_for(until_it_comes(), seconds)
    except asyncio.TimeoutError:
        pytest.fail(f"{text!r} should reach every member within {seconds} s; this one heard {heard}")
    return heard


async def test_a_restart_behind_nginx_closes_one_processes_sockets_and_their_reconnects_miss_nothing(
        two_behind_nginx):
    """One of two processes gets SIGTERM, as a deploy restarts it. Its sockets close (STOPPED); their clients
    connect again at the same address, and nginx sends them to the process still running. A
    message sent meanwhile is in the room's history, which each connection is first told."""
    stack = two_behind_nginx
    servers = stack.servers
    members = [(await join(stack, "restart"))[0] for _ in range(4)]  # nginx takes turns: two on each process
    await members[0].send(json.dumps({"message": "before"}))
    for ws in members:
        await heard_until(ws, "before")
    servers[0].process.terminate()
    codes = await closes(members, 2)
    await exits(servers[0])
    assert len(codes) == 2, f"the two sockets of the stopped process should close, the two others stay: {codes}"
    expected = STOPPED[stack.server]
    assert set(codes.values()) == {expected}, (
        f"{stack.server}'s sockets, on SIGTERM, should close with {expected}: they closed with {codes}")
    staying = [ws for index, ws in enumerate(members) if index not in codes]
    await staying[0].send(json.dumps({"message": "while away"}))
    for ws in staying:
        await heard_until(ws, "while away")
    back = [await join(stack, "restart") for _ in codes]
    for ws, hello in back:
        said = texts(hello.get("history", []))
        assert said[-2:] == ["before", "while away"], (
            f"a member back after the restart should find what it missed in the room's history: {said}")
    await back[0][0].send(json.dumps({"message": "after"}))
    for ws in staying + [ws for ws, _ in back]:
        await heard_until(ws, "after")
    for ws in staying + [ws for ws, _ in back]:
        await ws.close()


# Past one Redis: channels_redis spreads the layer over every address in "hosts", each channel and
# each group on the host its name hashes to. Every process must list the same hosts, in the same
# order, or they would look for a group on different servers.
SHARDED = """\
import os

from mysite.settings import *  # noqa: F401,F403 - step 10's settings, with two Redis hosts instead of one
from mysite.settings import CHANNEL_LAYERS

one = CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{**one, "address": url} for url in os.environ["REDIS_URLS"].split()]
"""


async def test_two_processes_on_a_layer_spread_over_two_redis_servers_share_every_room(tmp_path):
    need("redis")
    step = find("10").folder
    (tmp_path / "sharded_settings.py").write_text(SHARDED)
    # Names unlike each other: the hash keeps 12 bits of a CRC32, and room0 to room7 all hash to one host.
    rooms = ["lobby", "news", "general", "random", "help", "games", "music", "books"]
    with contextlib.ExitStack() as stack:
        redises = [services.start_redis() for _ in range(2)]
        for redis in redises:
            stack.callback(redis.stop)
        env = serve.environment(SQLITE_PATH=tmp_path / "db.sqlite3", REDIS_URL=redises[0].url,
                                REDIS_URLS=" ".join(redis.url for redis in redises),
                                DJANGO_SETTINGS_MODULE="sharded_settings", PYTHONPATH=f"{tmp_path}:{step}")
        done = serve.migrate(step, env)
        assert done.returncode == 0, f"manage.py migrate should make step 10's tables:\n{done.stdout}{done.stderr}"
        daphnes = [serve.start(step, "daphne", env=env, log_path=tmp_path / f"daphne-{index}.log", wait=0)
                   for index in range(2)]
        for daphne in daphnes:
            stack.callback(daphne.stop)
        for daphne in daphnes:
            serve.wait_until_serving(daphne, "daphne", START_SECONDS)
        async with contextlib.AsyncExitStack() as sockets:
            pairs = []
            for room in rooms:  # in each room, one member on each process
                pair = [await sockets.enter_async_context(ws_open(daphne, f"/ws/chat/{room}/")) for daphne in daphnes]
                pairs.append(pair)
            for room, (first, second) in zip(rooms, pairs):
                await first.send(json.dumps({"message": f"hello {room}"}))
                await heard_until(second, f"hello {room}")
            groups = [sorted(key.decode() for key in redis.client().keys("asgi:group:chat_*")) for redis in redises]
    assert all(groups) and not set(groups[0]) & set(groups[1]), (
        f"the rooms' groups should be spread over both Redis servers, each on one: {groups}")
    assert len(groups[0]) + len(groups[1]) == len(rooms), f"each room's group should be in Redis once: {groups}"


# Step 10's settings, with the database that DATABASE_URL names, as a production settings.py has it.
ON_POSTGRES = """\
import os

import dj_database_url

from mysite.settings import *  # noqa: F401,F403 - step 10's settings, on PostgreSQL instead of SQLite

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
"""

# A message saved in a transaction that stays open until told to commit: PostgreSQL gives it its
# id at the INSERT, so a message stored after it, and committed first, has a higher id.
SLOW_SAVE = """\
import sys

from django.db import transaction

from chat.models import Message

with transaction.atomic():
    message = Message.objects.create(room="order", author="slow", text="saved first")
    print(message.id, flush=True)
    sys.stdin.readline()
print("committed", flush=True)
"""


async def test_on_postgres_a_message_committed_out_of_id_order_is_neither_lost_nor_shown_twice(tmp_path):
    """Ids are given out at INSERT and become visible at COMMIT: a newcomer's history can hold id 2
    and not yet id 1. Step 10 reads the history after it joins the group and drops a live message
    whose id its history held, so id 1 still comes, live, once. (A client that asked for "every
    message after the last id it saw", as a reconnecting one might, would never get id 1.)"""
    need("postgres", "redis", "nginx")
    import psycopg

    (tmp_path / "on_postgres.py").write_text(ON_POSTGRES)
    stack = start_stack(find("10").folder, processes=1, postgres=True, settings=(tmp_path, "on_postgres"),
                        timeout=START_SECONDS)
    tls = {"ssl": stack.tls()}
    shell = None
    try:
        shell = await asyncio.create_subprocess_exec(
            sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", SLOW_SAVE, cwd=stack.project,
            env=stack.env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        # A cold Python with Django and psycopg to import, then a connection: a busy machine's seconds.
        first_id = (await asyncio.wait_for(shell.stdout.readline(), START_SECONDS)).decode().strip()
        assert first_id.isdigit(), f"the shell should print the id of its message, not {first_id!r}"
        async with ws_open(stack, "/ws/chat/order/", **tls) as early:
            await early.send(json.dumps({"message": "said second"}))
            await recv_json(early, "the room should send its own message back")
            async with ws_open(stack, "/ws/chat/order/", hello=False, **tls) as newcomer:
                hello = await recv_json(newcomer, "connect() should first send its hello, with the history")
                assert texts(hello["history"]) == ["said second"], (
                    f"the history should hold the committed message only: {hello['history']}")
                shell.stdin.write(b"commit\n")
                await shell.stdin.drain()
                late = await recv_json(newcomer, f"message {first_id}, once committed, should reach the room live")
                assert late.get("message") == "saved first", f"expected the slow message, live: {late}"
                with contextlib.suppress(asyncio.TimeoutError):
                    extra = await asyncio.wait_for(newcomer.recv(), 1)
                    pytest.fail(f"nothing more should come: {extra}")
            async with ws_open(stack, "/ws/chat/order/", hello=False, **tls) as later:
                hello = await recv_json(later, "connect() should first send its hello, with the history")
                assert texts(hello["history"]) == ["saved first", "said second"], (
                    f"a later history is in id order, not in the order of the commits: {hello['history']}")
        code = await asyncio.wait_for(shell.wait(), LIVE_TIMEOUT)
        said = (await shell.stdout.read()).decode()
        assert code == 0, f"the shell should commit and exit 0, not {code}: {said[-1500:]}"
        with psycopg.connect(stack.postgres.url, connect_timeout=LIVE_TIMEOUT) as database:
            stored = database.execute("SELECT id, text FROM chat_message ORDER BY id").fetchall()
        assert [text for _, text in stored] == ["saved first", "said second"], (
            f"both messages should be rows in PostgreSQL, in id order: {stored}")
    finally:
        if shell is not None and shell.returncode is None:
            shell.kill()
            await shell.wait()
        stack.stop()


@pytest.mark.parametrize("two_behind_nginx", ["daphne"], indirect=True)
async def test_a_killed_process_leaves_its_channels_in_the_rooms_group_and_the_room_goes_on(two_behind_nginx):
    """SIGKILL, or a machine that dies: no disconnect() runs, so no group_discard. The dead channels
    stay in the room's group in Redis until group_expiry (a day by default); messages sent to them
    wait in Redis until their expiry (60 s), then go. The room goes on for everyone else."""
    stack = two_behind_nginx
    group = "asgi:group:chat_killed"
    members = [(await join(stack, "killed"))[0] for _ in range(4)]  # two on each process
    stack.servers[0].process.kill()
    dropped = list((await closes(members, 2)).values())
    assert dropped == [1006, 1006], f"the killed process's two sockets should drop with 1006: {dropped}"
    members_in_redis = stack.redis.client().zcard(group)
    assert members_in_redis == 4, f"the killed process's two channels should still be in the group: {members_in_redis}"
    staying = [ws for ws in members if ws.close_code is None]
    await staying[0].send(json.dumps({"message": "after the kill"}))
    for ws in staying:
        await heard_until(ws, "after the kill")
    back = [await join(stack, "killed") for _ in dropped]
    for _, hello in back:
        assert texts(hello["history"])[-1:] == ["after the kill"], f"the history should hold it: {hello['history']}"
    members_in_redis = stack.redis.client().zcard(group)
    assert members_in_redis == 6, f"two dead channels, two that stayed, two that came back, not {members_in_redis}"
    for ws in staying + [ws for ws, _ in back]:
        await ws.close()


def children(pid):
    """The pids of a process's children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("step, flags, stop", [
    ("10", ["--stack"], signal.SIGINT), ("10", ["--stack"], signal.SIGTERM), ("11", [], signal.SIGINT),
], ids=["10-stack-ctrl-c", "10-stack-kill", "11-ctrl-c"])
def test_make_run_with_stack_serves_https_and_stops_it_all(step, flags, stop):
    """`make run STEP=10 STACK=1`, and `make run STEP=11` with no STACK (a production step is served
    so by default): the step at an https address, through nginx; Ctrl-C (or a kill) stops nginx,
    both daphnes, Redis (and PostgreSQL), and frees the port."""
    need("nginx", "redis", *(["postgres"] if step == "11" else []))
    port = free_port()
    # As from a terminal, where Ctrl-C interrupts: a shell that runs these checks in the background
    # starts them with SIGINT ignored, which every child would inherit, and then ignore the SIGINT.
    run = subprocess.Popen([sys.executable, "-m", "tutorial", "run", step, *flags, "--port", str(port)],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=serve.environment(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Its lines, read by a thread: a readline() here could wait past any deadline.
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in run.stdout], daemon=True).start()
        said = []
        deadline = time.monotonic() + START_SECONDS
        while not any("Ctrl-C stops it all" in line for line in said):
            try:
                said.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        url = f"https://127.0.0.1:{port}/chat/"
        assert any(f"Open {url} " in line for line in said), (
            f"make run STACK=1 should say where to go:\n{''.join(said)}")
        ca = re.search(r"or trust (\S+ca\.pem)\.", "".join(said))
        assert ca, f"it should name the test CA's certificate, to trust:\n{''.join(said)}"
        trusting = ssl.create_default_context(cafile=ca[1])
        with urllib.request.urlopen(url, context=trusting, timeout=LIVE_TIMEOUT) as page:
            assert page.status == 200, f"GET {url} should answer 200"
        started = children(run.pid)
        assert len(started) >= 4, f"nginx, two daphnes and Redis should be its children: {started}"
        run.send_signal(stop)
        try:  # nginx, two daphnes (3 s each at most) and Redis, one after the other, on a busy machine
            code = run.wait(START_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make run STACK=1 was still running {START_SECONDS} s after {stop.name}")
        assert code == 0, f"it should stop cleanly, with 0: it ended with {code}"
        alive = [pid for pid in started if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        assert not alive, f"every process of the stack should have stopped: {alive} still run"
        assert not port_in_use(port), f"port {port} should be free again"
    finally:
        if run.poll() is None:  # failed before its stop: stop it as a learner would, so it cleans up
            run.terminate()
            try:
                run.wait(LIVE_TIMEOUT)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()


class Member:
    """A client as a production page should be: when its socket closes it connects again, after a
    delay that doubles from 0.1 s up to 2 s, with jitter, and merges the room's history (which
    each connection is first told) into what it has shown, so that it shows each message once.
    Step 10's events carry no id: here a message's text, unique in the check, stands for one."""

    def __init__(self, stack, room):
        self.stack, self.room = stack, room
        self.shown = []  # texts, each once, in the order they came
        self.live = set()  # texts that came as live events: their group_send ran
        self.received = 0  # every message and history entry, a repeat included
        self.connects = 0
        self.ws = None
        self.open = asyncio.Event()

    def show(self, text):
        self.received += 1
        if text not in self.shown:
            self.shown.append(text)

    async def run(self):
        import websockets

        delay = 0.1
        while True:
            try:
                self.ws = await websockets.connect(self.stack.ws_url(f"/ws/chat/{self.room}/"), ssl=self.stack.tls(),
                                                   origin=self.stack.url, open_timeout=LIVE_TIMEOUT)
                hello = json.loads(await asyncio.wait_for(self.ws.recv(), LIVE_TIMEOUT))
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                # Refused (a restart in progress), or 502 from nginx while it counts a server as down.
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(2.0, delay * 2)
                continue
            self.connects += 1
            delay = 0.1
            for event in hello.get("history", []):
                self.show(event["message"])
            self.open.set()
            with contextlib.suppress(websockets.ConnectionClosed):
                async for frame in self.ws:
                    event = json.loads(frame)
                    if "message" in event:
                        self.show(event["message"])
                        self.live.add(event["message"])
            self.open.clear()


@pytest.mark.parametrize("two_behind_nginx", ["daphne"], indirect=True)
async def test_a_rolling_restart_loses_no_message_for_a_client_that_reconnects_and_merges_the_history(
        two_behind_nginx):
    """Both processes restart, one after the other, while a member keeps talking: every message
    it saw through (its own echo, or the history after a reconnect) that was sent to the room's
    group reaches every member once. A message whose process stopped after storing it and before
    its group_send is in the history only (step 11's page says so): the members that reconnect
    after it show it, and it is counted apart."""
    stack = two_behind_nginx
    members = [Member(stack, "rolling") for _ in range(4)]
    tasks = [asyncio.create_task(member.run()) for member in members]
    sender, sent = members[0], []
    try:
        if not await until(lambda: all(member.open.is_set() for member in members), LIVE_TIMEOUT):
            pytest.fail(f"the four members should connect through nginx within {LIVE_TIMEOUT} s")

        async def say(text):
            # Sent means seen through: its echo came back, or a later history holds it. A socket
            # that closes first may or may not have stored it: after the reconnect, say it again.
            while text not in sender.shown:
                await asyncio.wait_for(sender.open.wait(), 3 * LIVE_TIMEOUT)
                with contextlib.suppress(Exception):
                    await sender.ws.send(json.dumps({"message": text}))
                for _ in range(20):
                    if text in sender.shown:
                        break
                    await asyncio.sleep(0.05)
            sent.append(text)

        async def talk():
            number = 0
            while True:
                await say(f"m{number}")
                number += 1
                await asyncio.sleep(0.05)

        talking = asyncio.create_task(talk())
        await asyncio.sleep(1)
        for index in range(len(stack.servers)):
            await asyncio.to_thread(stack.restart, index, START_SECONDS)
            await asyncio.sleep(1)
        talking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await talking
        # Until every member is connected again and shows every message sent (the asserts say which not).
        await until(lambda: not any(set(sent) - set(member.shown) or not member.open.is_set()
                                    for member in members), 3 * LIVE_TIMEOUT)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for member in members:
            if member.ws is not None:
                await member.ws.close()
    # Sent to the group: some member heard it live. The others only ever reached the history.
    broadcast = [text for text in sent if any(text in member.live for member in members)]
    counts = [(len(set(broadcast) - set(member.shown)), member.received - len(member.shown), member.connects)
              for member in members]
    assert len(sent) >= 10, (
        f"only {len(sent)} messages got through the restarts: (lost, repeats, connections) = {counts}")
    assert all(connects >= 2 for *_, connects in counts), (
        f"every member should have been cut off at least once and come back: (lost, repeats merged away, "
        f"connections) = {counts}")
    assert all(lost == 0 for lost, *_ in counts), (
        f"of {len(broadcast)} messages sent to the room's group ({len(sent)} in all), each member should show "
        f"every one: (lost, repeats merged away, connections) = {counts}")
    print(f"sent {len(sent)}, {len(sent) - len(broadcast)} of them stored but never sent to the group; per member "
          f"(lost, repeats merged away, connections): {counts}")


def open_windows(driver, stack, room, count=2):
    """`count` windows of `driver` on the stack's page of `room`, each once its socket is open."""
    pages = []
    for _ in range(count):
        if pages:
            driver.switch_to.new_window("window")
        driver.get(f"{stack.url}/chat/{room}/")
        pages.append(Page(driver, driver.current_window_handle))
        pages[-1].wait_for_event("open", "the page's socket should open, at wss:// through nginx")
    return pages


def pinned(stack):
    """Chromium's flag that makes it trust the stack's server certificate, by its public key (and
    only that): the test CA is in no store a browser reads."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = (stack.folder / "server.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
    key = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"--ignore-certificate-errors-spki-list={base64.b64encode(hashlib.sha256(key).digest()).decode()}"


@pytest.mark.browser
def test_two_windows_chat_over_wss_through_nginx_in_a_browser(tmp_path):
    """The room page at https://, its socket at wss://, in headless Chromium: two windows, which
    nginx sends to the two processes in turn, each see what the other says."""
    need("browser", "nginx", "redis")
    stack = start_stack(find("10").folder, timeout=START_SECONDS)
    driver = None
    try:
        driver = start_browser(tmp_path, pinned(stack))
        pages = open_windows(driver, stack, "lobby")
        assert pages[0].run("return location.protocol") == "https:", "the page should be served over https"
        pages[0].send("hello over wss")
        pages[1].send("and back")
        for page in pages:
            page.wait_for(lambda page=page: "hello over wss" in page.chat_log() and "and back" in page.chat_log(),
                          "both windows should show both messages, through nginx and Redis")
        assert not pages[0].console_errors(), "the pages should log no error to the console"
    finally:
        if driver is not None:
            driver.quit()
        stack.stop()


# The mistakes on step 11's page, each one change to its deploy/nginx.conf, and what a client then
# meets through it. With the file as it is, a client meets nothing wrong. (A read timeout of 1 s
# holds for pages too: on a busy machine the login form may take longer, and get 504 as well.)
PRODUCTION_MISTAKES = {
    "no upgrade headers": ([("        proxy_set_header Upgrade $http_upgrade;\n", ""),
                            ("        proxy_set_header Connection $connection_upgrade;\n", "")],
                           "handshake refused with 404"),
    "no X-Forwarded-Proto": ([("        proxy_set_header X-Forwarded-Proto $scheme;\n", "")],
                             "pages redirected to themselves with 301"),
    "$host for $http_host": ([("proxy_set_header Host $http_host;", "proxy_set_header Host $host;")],
                             "login refused with 403"),
    "a read timeout under daphne's ping": ([("proxy_read_timeout 60s;", "proxy_read_timeout 1s;")],
                                           "a quiet socket closed"),
}
ALSO_MET = {"a read timeout under daphne's ping": {"login refused with 504"}}


@dataclass
class Front:
    """Another nginx in front of a running stack's servers: what what_a_client_meets() needs."""

    url: str
    nginx: services.Nginx
    ca: Path

    def ws_url(self, path):
        return f"wss://127.0.0.1:{self.nginx.port}{path}"

    def tls(self):
        return ssl.create_default_context(cafile=str(self.ca))


async def what_a_client_meets(front):
    """What goes wrong for a browser through `front`: its socket, quiet for a while, and the login
    form; [] when nothing does."""
    import websockets

    from test_services import login_through

    met = []
    try:
        ws = await websockets.connect(front.ws_url("/ws/chat/lobby/"), ssl=front.tls(), origin=front.url,
                                      open_timeout=LIVE_TIMEOUT, ping_interval=None)
    except websockets.InvalidStatus as refused:
        met.append(f"handshake refused with {refused.response.status_code}")
    else:
        await asyncio.sleep(2.5)  # quiet, past the mistaken timeout of 1 s
        if ws.close_code is not None:
            met.append("a quiet socket closed")
        await ws.close()
    try:
        status, _ = await asyncio.to_thread(login_through, front.nginx, front.ca)
    except urllib.error.HTTPError as looped:  # urllib gives up on a redirect to the same address
        met.append(f"pages redirected to themselves with {looped.code}")
    else:
        if status != 200:
            met.append(f"login refused with {status}")
    return met


@pytest.fixture(scope="module")
def production_stack():
    """Step 11 as make run serves it, whose servers the mistaken nginx configs below front in turn."""
    need("nginx", "redis", "postgres")
    stack = start_stack(find("11").folder, timeout=START_SECONDS)
    yield stack
    stack.stop()


@pytest.mark.parametrize("mistake", [None, *PRODUCTION_MISTAKES])
async def test_each_mistake_on_the_production_page_breaks_what_it_says(mistake, production_stack, tmp_path):
    stack = production_stack
    config = (stack.project / "deploy" / "nginx.conf").read_text()
    expected = []
    if mistake:
        changes, meets = PRODUCTION_MISTAKES[mistake]
        for old, new in changes:
            assert old in config, f"steps/11-production/deploy/nginx.conf no longer has {old.strip()!r}"
            config = config.replace(old, new)
        expected = [meets]
    port = free_port()
    nginx, ca, _ = await asyncio.to_thread(start_production_proxy, tmp_path, [server.port for server in stack.servers],
                                           config, port, stack.env["DJANGO_STATIC_ROOT"])
    try:
        met = await what_a_client_meets(Front(f"https://127.0.0.1:{port}", nginx, ca))
    finally:
        nginx.stop()
    met = [what for what in met if what not in ALSO_MET.get(mistake, set())]
    assert met == expected, (
        f"with {mistake or 'deploy/nginx.conf as it is'}, a client should meet {expected or 'nothing wrong'} "
        f"through nginx, as step 11's page says; it met {met or 'nothing wrong'}")


def test_make_run_of_the_production_step_says_what_to_install(monkeypatch):
    """Without nginx or PostgreSQL, `make run STEP=11` names what to install (and serves the step
    with runserver instead); `make run STEP=11 STACK=1` stops with the same words."""
    from tutorial.learner import commands

    monkeypatch.setattr(services, "nginx_binary", lambda: None)
    monkeypatch.setattr(services, "postgres_binaries", lambda: None)
    wanting = commands.stack_wanting(find("11"), find("11").folder)
    assert [what.split(":")[0] for what in wanting] == ["nginx", "PostgreSQL"] and all(
        "apt-get install" in what for what in wanting), f"it should say how to get nginx and PostgreSQL: {wanting}"
