"""The one way to serve a step: migrate it, give it a clean environment, start it on a
loopback port, wait until it answers, and stop it.

`make run`, `make watch`, the live checks, the docs captures and the benchmark all serve a
step through `start()`, so a step behaves the same wherever it runs.
"""

import os
import subprocess
import sys
from pathlib import Path

from .wire import dies_with_parent, free_port, stop, wait_for_port

# Variables in the caller's shell that would change what a step does: the settings module (each
# step's manage.py names its own), the Redis to use (step 06 on) and the SQLite file (07 on). A
# server gets them only when its caller passes them on purpose.
STEP_VARIABLES = ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "SQLITE_PATH")
# What daphne and uvicorn serve: every step's ASGI application, in its mysite/asgi.py.
APPLICATION = "mysite.asgi:application"


def environment(**env):
    """This process's environment without STEP_VARIABLES, with `env` on top (None unsets a name)."""
    result = {name: value for name, value in os.environ.items() if name not in STEP_VARIABLES}
    result["PYTHONUNBUFFERED"] = "1"  # the server's console reaches its log as it is written
    for name, value in env.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = str(value)
    return result


def migrate(folder, env=None, output=None):
    """`manage.py migrate` for the project in `folder`: the admin's, the sessions' and (step 07 on)
    the chat's tables. Quick when there is nothing to do. Returns the CompletedProcess; with no
    `output` (a file) it is captured in it."""
    capture = output is None
    return subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                          cwd=folder, env=env if env is not None else environment(),
                          stdout=subprocess.PIPE if capture else output,
                          stderr=subprocess.PIPE if capture else subprocess.STDOUT, text=True)


def command(how, port, backlog=None, args=(), reload=False, application=APPLICATION):
    """The command line that serves the project in the current folder on 127.0.0.1:`port`.

    runserver: `manage.py runserver`, daphne's from step 01 on (Django's own in step 00), as a
        learner runs it; with no reloader unless `reload` (`make run`'s), so that stopping the
        process stops the whole server.
    daphne: `daphne mysite.asgi:application`, as production runs it; `backlog` sets its listen queue.
    uvicorn: the same application served by uvicorn (the benchmark's lever).
    application: what daphne and uvicorn serve (the benchmark names its own, which wraps the step's).
    """
    if how == "runserver":
        return [sys.executable, "manage.py", "runserver", *([] if reload else ["--noreload"]),
                f"127.0.0.1:{port}", *args]
    if how == "daphne":
        endpoint = f"tcp:port={port}:interface=127.0.0.1" + (f":backlog={backlog}" if backlog else "")
        return [sys.executable, "-m", "daphne", "-e", endpoint, *args, application]
    if how == "uvicorn":
        extra = ["--backlog", str(backlog)] if backlog else []
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), *extra, *args,
                application]
    raise ValueError(f"no way to serve a step called {how!r}")


class Server:
    """A step served in a process of its own: `url`, `ws_url(path)`, `log()`, `stop()`."""

    def __init__(self, folder, port, process, log_path):
        self.folder = Path(folder)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.pid = process.pid
        self.log_path = Path(log_path) if log_path else None
        self.log_start = 0  # log() reads from this byte on

    def ws_url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def log(self):
        """What the server has written to its log since `log_start`."""
        if self.log_path is None:
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    @property
    def running(self):
        return self.process.poll() is None

    def stop(self, grace=3):
        stop(self.process, grace)


class NotServing(RuntimeError):
    """The server died, or did not answer on its port in time; `.server` holds its log."""

    def __init__(self, message, server):
        super().__init__(message)
        self.server = server


def start(folder, how="runserver", port=None, env=None, log_path=None, backlog=None, args=(),
          wait=30, server_class=Server, application=APPLICATION):
    """Serve the project in `folder` (see command()) and return a running `server_class`.

    env: the server's whole environment (default: environment()). log_path: its console (default:
    thrown away). wait: seconds to wait until it accepts connections (0: do not wait); past them,
    or when it dies first, it is stopped and NotServing raised with its log.
    """
    port = port or free_port()
    with open(log_path, "a") if log_path else open(os.devnull, "w") as log:
        process = subprocess.Popen(command(how, port, backlog, args, application=application), cwd=folder,
                                   env=env if env is not None else environment(),
                                   stdout=log, stderr=subprocess.STDOUT, preexec_fn=dies_with_parent)
    server = server_class(folder, port, process, log_path)
    if wait:
        wait_until_serving(server, how, wait)
    return server


def wait_until_serving(server, how, wait):
    """Wait until `server` (start()ed with wait=0) accepts connections; past `wait` seconds, or
    when it dies first, stop it and raise NotServing with its log. Servers started with wait=0
    and then waited for one by one start side by side: each spends its second of imports at once."""
    if not wait_for_port(server.port, server.process, timeout=wait):
        server.stop()
        said = server.log().strip()
        raise NotServing(f"{how} did not start in {server.folder} within {wait} s"
                         + (f"; its console:\n{said[-3000:]}" if said else ""), server)

