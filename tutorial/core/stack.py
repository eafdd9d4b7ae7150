"""A step served as production serves it, on this machine: Redis, two daphne (or uvicorn)
processes sharing it, nginx with TLS in front of them (tutorial/core/services.py's PROXY) and,
where asked, a PostgreSQL cluster for the database. Every part is a process of our own on
loopback, on a free port; the servers start side by side, and all stop together.

The checks start one to talk to it as browsers would, through nginx; `make run STACK=1`
starts one and prints its https address.
"""

import contextlib
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import serve, services
from .wire import free_port


@dataclass
class Stack:
    url: str  # https://127.0.0.1:<port>, nginx's
    ca: Path  # the test CA's certificate: what a client must trust
    servers: list  # the daphne (or uvicorn) processes, serve.Server each, in nginx's upstream order
    nginx: services.Nginx
    redis: services.Redis
    postgres: services.Postgres | None
    env: dict  # the daphnes' environment: DATABASE_URL, REDIS_URL, the host and origin to trust
    folder: Path  # the servers' logs and the certificates
    exits: contextlib.ExitStack
    project: Path  # the step's folder, which the servers serve
    server: str  # "daphne" or "uvicorn"

    @property
    def port(self):
        return self.nginx.port

    def ws_url(self, path):
        return f"wss://127.0.0.1:{self.port}{path}"

    def tls(self):
        """A client's TLS context that trusts the stack's test CA, and nothing else."""
        return ssl.create_default_context(cafile=str(self.ca))

    def restart(self, index, timeout=30):
        """Stop server `index` (SIGTERM, as a deploy does) and start it again on its port, as a
        rolling restart does one server at a time; return once it serves again."""
        old = self.servers[index]
        old.stop()
        new = serve.start(self.project, self.server, port=old.port, env=self.env, args=SERVER_ARGS[self.server],
                          log_path=self.folder / f"{self.server}-{index}.log", wait=0)
        self.exits.callback(new.stop)
        self.servers[index] = new
        serve.wait_until_serving(new, self.server, timeout)
        return new

    def stop(self):
        self.exits.close()


# What each server needs to read nginx's X-Forwarded-Proto and -For, and to run Channels' router.
SERVER_ARGS = {
    "daphne": ["--proxy-headers"],
    # uvicorn reads the headers from 127.0.0.1 by default (said here all the same). Lifespan off:
    # ASGI's start-up and shut-down messages, for which Channels' ProtocolTypeRouter has no route.
    # On SIGTERM it closes each socket with 1012, then waits for every task of the application to
    # end, with no bound: in 4 stops of 10 here, a consumer's task kept it up past 8 s ("Waiting
    # for background tasks to complete"). A restart must not wait on that: 3 s, then it exits.
    "uvicorn": ["--proxy-headers", "--lifespan", "off", "--timeout-graceful-shutdown", "3"],
}


def start_stack(folder, processes=2, postgres=False, port=None, config=services.PROXY, timeout=30,
                server="daphne", settings=None):
    """Serve the project in `folder` behind nginx on https://127.0.0.1:<port> (default: a free one).
    server: "daphne" or "uvicorn". postgres: give it a PostgreSQL cluster of its own, as
    DATABASE_URL, which only settings that read it use (steps up to 10 read SQLITE_PATH, a file in
    the stack's folder, whatever happens). settings: (a folder, a settings module in it) to serve
    the step with instead of its own, e.g. its own with a change. Returns a running Stack;
    whatever fails to start stops what did."""
    with contextlib.ExitStack() as exits:
        scratch = tempfile.TemporaryDirectory(prefix="tutorial-stack-")
        exits.callback(scratch.cleanup)
        logs = Path(scratch.name)
        redis = services.start_redis()
        exits.callback(redis.stop)
        cluster = services.start_postgres() if postgres else None
        if cluster:
            exits.callback(cluster.stop)
        port = port or free_port()
        url = f"https://127.0.0.1:{port}"
        env = serve.environment(
            REDIS_URL=redis.url,
            DATABASE_URL=cluster.url if cluster else None,
            SQLITE_PATH=logs / "db.sqlite3",
            # What a production settings.py reads from its environment; a step before it ignores them.
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_CSRF_TRUSTED_ORIGINS=url,
        )
        if settings:
            env.update(DJANGO_SETTINGS_MODULE=settings[1], PYTHONPATH=f"{settings[0]}{os.pathsep}{folder}")
        done = serve.migrate(folder, env)
        if done.returncode:
            raise RuntimeError(f"manage.py migrate failed:\n{(done.stdout + done.stderr)[-3000:]}")
        servers = [serve.start(folder, server, env=env, log_path=logs / f"{server}-{index}.log", wait=0,
                               args=SERVER_ARGS[server]) for index in range(processes)]
        for process in servers:
            exits.callback(process.stop)
        for process in servers:  # started side by side, then each waited for
            serve.wait_until_serving(process, server, timeout)
        nginx, ca = services.start_proxy(logs, [process.port for process in servers], config, port)
        exits.callback(nginx.stop)
        return Stack(url, ca, servers, nginx, redis, cluster, env, logs, exits.pop_all(), Path(folder), server)
