"""A variant's servers: the step's settings and application as the benchmark changes them, a
fresh database, and its server processes, started side by side and stopped."""

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from ..core import serve, services
from ..core.steps import ROOT, find
from ..core.wire import free_port, wait_for_port


def fresh_database(variant, env, logs):
    """A new SQLite file with the step's tables, so that no run reads rows of an earlier one."""
    path = Path(logs) / f"{variant.key}.sqlite3"
    for old in Path(logs).glob(f"{path.name}*"):  # the file, and its -wal and -shm
        old.unlink()
    env["SQLITE_PATH"] = str(path)
    done = serve.migrate(find(variant.step).folder, env)
    if done.returncode:
        raise RuntimeError(f"manage.py migrate failed for {variant.label}:\n{(done.stdout + done.stderr)[-2000:]}")
    return path


def stored_rows(database, room):
    """How many messages the room has in the database: one row for each message it was sent."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute("SELECT COUNT(*) FROM chat_message WHERE room = ?", [room]).fetchone()[0]


def bench_modules(variant, logs):
    """bench_settings.py and bench_asgi.py in the logs folder: the step's own settings and
    application, with what the benchmark (and the variant's levers) change."""
    settings = ["from mysite.settings import *  # noqa",
                # The per-connection frame budget is lifted: the bursts measure the server's
                # fan-out, not the flood control.
                "CHAT_FRAME_BUDGET = None",
                # Every variant's layer holds 1000 messages a channel, as step 10 (and step 06's
                # Redis layer) set it; steps 03-09 keep the in-memory layer's default of 100, which
                # a burst to a room of 100 overflows.
                'CHANNEL_LAYERS["default"].setdefault("CONFIG", {}).setdefault("capacity", 1000)']
    if variant.layer == "pubsub":
        settings += ['CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",',
                     '                              "CONFIG": {"hosts": [REDIS_URL]}}}']
    application = ["import django", "", "django.setup()", ""]
    if variant.skip_trip:
        application += ["from chat import consumers",
                        "from tutorial.bench.levers import SkipTheTrip",
                        "",
                        "consumers.ChatConsumer = type('ChatConsumer', (SkipTheTrip, consumers.ChatConsumer), {})",
                        ""]
    application += ["from mysite.asgi import application  # noqa: E402,F401"]
    if variant.freeze:
        application += ["from tutorial.bench.levers import freeze_start_up  # noqa: E402", "", "freeze_start_up()"]
    (Path(logs) / "bench_settings.py").write_text("\n".join(settings) + "\n")
    (Path(logs) / "bench_asgi.py").write_text("\n".join(application) + "\n")


def start_server(variant, env, log_path, backlog):
    """One of the variant's server processes, not waited for yet: the step served by serve.start()
    on the benchmark's settings and application, or the bare server."""
    if variant.step is None:
        port = free_port()
        with open(log_path, "w") as log:
            process = subprocess.Popen([sys.executable, "-m", "tutorial", "bare-chat", str(port), str(backlog)],
                                       cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return serve.Server(ROOT, port, process, log_path)
    if variant.server == "uvicorn":
        # Plain asyncio and h11, as daphne has (no uvloop, no httptools); no lifespan,
        # which Channels' router does not speak.
        args = ["--loop", "asyncio", "--http", "h11", "--ws", "websockets-sansio", "--lifespan", "off"]
    else:
        # daphne drops a handshake that takes over 5 s (--websocket_connect_timeout).
        # On a busy machine, 500 joins at once can take longer; the benchmark waits
        # as long as its client does (60 s) and reports the time instead of dying.
        # The backlog goes into daphne's endpoint: its default (Twisted's) is 50.
        args = ["--websocket_connect_timeout", "60"] + (["--proxy-headers"] if variant.proxy else [])
    return serve.start(find(variant.step).folder, variant.server, env=env, log_path=log_path, backlog=backlog,
                       args=args, wait=0, application="bench_asgi:application")


@contextlib.contextmanager
def serving(variant, redis, logs, backlog):
    """Start the variant's server processes; yield (ports, pids whose CPU counts, database or None,
    the test CA's certificate for the clients to trust, or None); stop them. Behind nginx (proxy),
    the one port is nginx's, in front of them all."""
    servers, nginx = [], None
    if variant.step is None:
        env = serve.environment(PYTHONPATH=ROOT)
    else:
        bench_modules(variant, logs)
        env = serve.environment(DJANGO_SETTINGS_MODULE="bench_settings",
                                PYTHONPATH=os.pathsep.join([str(logs), str(find(variant.step).folder), str(ROOT)]),
                                REDIS_URL=redis.url if variant.redis else None)
    database = fresh_database(variant, env, logs) if variant.database else None
    try:
        for index in range(variant.processes):
            servers.append(start_server(variant, env, Path(logs) / f"{variant.key}-{index}.log", backlog))
        # All of a variant's processes start side by side; then each must be listening.
        for server in servers:
            if not wait_for_port(server.port, server.process):
                raise serve.NotServing(f"{variant.label} did not start:\n{server.log()[-2000:]}", server)
        pids = [server.pid for server in servers] + ([redis.process.pid] if variant.redis else [])
        if not variant.proxy:
            yield [server.port for server in servers], pids, database, None
            return
        nginx, ca = services.start_proxy(logs, [server.port for server in servers])
        yield [nginx.port], pids + [nginx.process.pid], database, ca
    finally:
        if nginx:
            nginx.stop()
        for server in servers:
            server.stop()
