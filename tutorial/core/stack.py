"""A step served as production serves it, on this machine: Redis, two daphne (or uvicorn)
processes sharing it, nginx with TLS in front of them (tutorial/core/services.py's PROXY) and,
where asked, a PostgreSQL cluster for the database. Every part is a process of our own on
loopback, on a free port; the servers start side by side, and all stop together.

A step with production settings of its own (step 11: mysite/production.py and deploy/nginx.conf)
is served with them: on PostgreSQL, its static files collected for nginx, and its own nginx
config, whose ${...} are filled in here (production_config()).

The checks start one to talk to it as browsers would, through nginx; `make run STACK=1`
starts one and prints its https address.
"""

import contextlib
import os
import re
import secrets
import ssl
import string
import subprocess
import sys
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
    http_url: str = ""  # a production step's plain http://127.0.0.1:<port>, which redirects to url

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
    # daphne closes every WebSocket after 24 hours, with 1000, a close the room page (step 11) takes
    # as chosen and does not retry: -1 lets a tab stay as long as it is open.
    "daphne": ["--proxy-headers", "--websocket_timeout", "-1"],
    # uvicorn reads the headers from 127.0.0.1 by default (said here all the same). Lifespan off:
    # ASGI's start-up and shut-down messages, for which Channels' ProtocolTypeRouter has no route.
    # On SIGTERM it closes each socket with 1012, then waits for every task of the application to
    # end, with no bound: in 4 stops of 10 here, a consumer's task kept it up past 8 s ("Waiting
    # for background tasks to complete"). A restart must not wait on that: 3 s, then it exits.
    "uvicorn": ["--proxy-headers", "--lifespan", "off", "--timeout-graceful-shutdown", "3"],
}


# What makes a step a production one, read from its folder.
PRODUCTION_SETTINGS = Path("mysite") / "production.py"
NGINX_CONFIG = Path("deploy") / "nginx.conf"


def is_production(folder):
    return (Path(folder) / PRODUCTION_SETTINGS).is_file()


def production_config(template, values):
    """deploy/nginx.conf's text with its ${...} filled in from `values`; nginx's own $variables
    stay. A ${NAME} left unknown is an error, said before nginx would say something vaguer."""
    filled = string.Template(template).safe_substitute(values)
    left = sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", filled)))  # nginx's own are lower case: ${host}
    if left:
        raise RuntimeError(f"{NGINX_CONFIG} names ${{{left[0]}}}, which the stack does not fill in; it fills in "
                           + ", ".join(sorted(values)))
    return filled


def start_stack(folder, processes=2, postgres=None, port=None, config=None, timeout=30,
                server="daphne", settings=None, env=None):
    """Serve the project in `folder` behind nginx on https://127.0.0.1:<port> (default: a free one).
    server: "daphne" or "uvicorn". postgres: give it a PostgreSQL cluster of its own, as
    DATABASE_URL, which only settings that read it use (steps up to 10 read SQLITE_PATH, a file in
    the stack's folder, whatever happens); by default, only a production step gets one. config:
    the nginx config (default: a production step's deploy/nginx.conf, else PROXY). settings: (a
    folder, a settings module in it) to serve the step with instead of its own, e.g. its own with
    a change. env: variables to set on top of the stack's own (e.g. a mistake in one). Returns a
    running Stack; whatever fails to start stops what did."""
    production = is_production(folder)
    extra = {name: str(value) for name, value in (env or {}).items()}
    if postgres is None:
        postgres = production
    if config is None and production:
        if not (Path(folder) / NGINX_CONFIG).is_file():
            raise RuntimeError(f"{NGINX_CONFIG} is missing: the stack starts nginx with it (step 11's third task)")
        config = (Path(folder) / NGINX_CONFIG).read_text()
    if config is None:
        config = services.PROXY
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
            DJANGO_STATIC_ROOT=logs / "static",
        )
        if production:
            env["DJANGO_SETTINGS_MODULE"] = "mysite.production"
            # Django's CSRF check needs no list: nginx passes the browser's Host and scheme on.
            env.pop("DJANGO_CSRF_TRUSTED_ORIGINS")
            # No HSTS: a browser that met it on https://localhost:<port> would send every
            # http://localhost server (an earlier step's `make run`) to https, for as long.
            env["DJANGO_HSTS_SECONDS"] = "0"
        env.update(extra)
        if settings:
            env.update(DJANGO_SETTINGS_MODULE=settings[1], PYTHONPATH=f"{settings[0]}{os.pathsep}{folder}")
        collecting = None
        if production:  # the admin's CSS and the like, into STATIC_ROOT, for nginx to serve; beside migrate
            collecting = subprocess.Popen([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                                          cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            exits.callback(lambda: collecting.poll() is None and collecting.kill())
        done = serve.migrate(folder, env)
        if done.returncode:
            raise RuntimeError(f"manage.py migrate failed:\n{(done.stdout + done.stderr)[-3000:]}")
        if collecting:
            try:
                said, _ = collecting.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                raise RuntimeError("manage.py collectstatic did not finish within 120 s") from None
            if collecting.returncode:
                raise RuntimeError(f"manage.py collectstatic failed:\n{said[-3000:]}")
        servers = [serve.start(folder, server, env=env, log_path=logs / f"{server}-{index}.log", wait=0,
                               args=SERVER_ARGS[server]) for index in range(processes)]
        for process in servers:
            exits.callback(process.stop)
        for process in servers:  # started side by side, then each waited for
            serve.wait_until_serving(process, server, timeout)
        upstream = [process.port for process in servers]
        http_url = ""
        if production:
            nginx, ca, http_port = start_production_proxy(logs, upstream, config, port, env["DJANGO_STATIC_ROOT"])
            http_url = f"http://127.0.0.1:{http_port}"
        else:
            nginx, ca = services.start_proxy(logs, upstream, config, port)
        exits.callback(nginx.stop)
        return Stack(url, ca, servers, nginx, redis, cluster, env, logs, exits.pop_all(), Path(folder), server,
                     http_url)


def start_production_proxy(folder, upstream, template, port, static_root):
    """nginx with a production step's own config: https on `port`, its plain-http redirect on
    another free port, the two application processes of `upstream`, and `static_root`. Returns
    (nginx, the CA's certificate, the http port)."""
    ca, pem = services.make_test_ca(folder)
    values = {"HTTPS_PORT": port, "HTTP_PORT": free_port(), "CERTIFICATE": pem, "CERTIFICATE_KEY": pem,
              "STATIC_ROOT": static_root}
    values.update({f"APP_PORT_{index}": server for index, server in enumerate(upstream, start=1)})
    return services.start_nginx(production_config(template, values), port), ca, values["HTTP_PORT"]
