"""A variant's servers: the step's settings and application as the benchmark changes them, a
fresh database, and its server processes, started side by side and stopped."""

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from ..core.steps import ROOT, find
from ..core.wire import free_port, stop, wait_for_port


def fresh_database(variant, env, logs):
    """A new SQLite file with the step's tables, so that no run reads rows of an earlier one."""
    path = Path(logs) / f"{variant.key}.sqlite3"
    for old in Path(logs).glob(f"{path.name}*"):  # the file, and its -wal and -shm
        old.unlink()
    env["SQLITE_PATH"] = str(path)
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                          cwd=find(variant.step).folder, env=env, capture_output=True, text=True)
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
                "CHAT_FRAME_BUDGET = None"]
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


@contextlib.contextmanager
def serving(variant, redis, logs, backlog):
    """Start the variant's server processes; yield (ports, pids whose CPU counts, database or None);
    stop them."""
    processes, ports = [], []
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "SQLITE_PATH")}
    if variant.step is None:
        env["PYTHONPATH"] = str(ROOT)
    else:
        bench_modules(variant, logs)
        env.update(DJANGO_SETTINGS_MODULE="bench_settings",
                   PYTHONPATH=os.pathsep.join([str(logs), str(find(variant.step).folder), str(ROOT)]))
        if variant.redis:
            env["REDIS_URL"] = redis.url
    database = fresh_database(variant, env, logs) if variant.database else None
    try:
        for index in range(variant.processes):
            port = free_port()
            if variant.step is None:
                command, cwd = [sys.executable, "-m", "tutorial", "bare-chat", str(port), str(backlog)], ROOT
            elif variant.server == "uvicorn":
                # Plain asyncio and h11, as daphne has (no uvloop, no httptools); no lifespan,
                # which Channels' router does not speak.
                command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--backlog",
                           str(backlog),
                           "--loop", "asyncio", "--http", "h11", "--ws", "websockets-sansio",
                           "--lifespan", "off", "bench_asgi:application"]
                cwd = find(variant.step).folder
            else:
                # daphne drops a handshake that takes over 5 s (--websocket_connect_timeout).
                # On a busy machine, 500 joins at once can take longer; the benchmark waits
                # as long as its client does (60 s) and reports the time instead of dying.
                # The endpoint sets the listen backlog: daphne's default (Twisted's) is 50.
                command = [sys.executable, "-m", "daphne", "-e",
                           f"tcp:port={port}:interface=127.0.0.1:backlog={backlog}",
                           "--websocket_connect_timeout", "60", "bench_asgi:application"]
                cwd = find(variant.step).folder
            log_path = Path(logs) / f"{variant.key}-{index}.log"
            with open(log_path, "w") as log:
                process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
            processes.append(process)
            ports.append(port)
        # All of a variant's processes start side by side; then each must be listening.
        for index, (port, process) in enumerate(zip(ports, processes)):
            if not wait_for_port(port, process):
                log_path = Path(logs) / f"{variant.key}-{index}.log"
                raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-2000:]}")
        pids = [process.pid for process in processes] + ([redis.process.pid] if variant.redis else [])
        yield ports, pids, database
    finally:
        for process in processes:
            stop(process)
