"""The one outside service a step needs: a redis-server on loopback, for step 06.

`make run STEP=06`, the checks and the benchmark each start their own on a
free port, keep nothing on disk, and stop it when they are done.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .wire import dies_with_parent, free_port, stop

HOW_TO_GET_REDIS = (
    "install Debian's redis-server (sudo apt-get install redis-server), "
    "or set REDIS_URL=redis://HOST:PORT/0 to use a Redis you already run"
)


class Service:
    """A server process of our own, and the temporary folder that holds its files and its console."""

    def __init__(self, process, folder, log_path):
        self.process = process
        self._folder = folder
        self.folder = Path(folder.name)
        self.log_path = Path(log_path)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def stop(self):
        if self.process is not None:
            stop(self.process)
        self._folder.cleanup()

    def failed(self, what):
        """Stop, and return the error to raise: `what` did not happen, and what the service said."""
        said = self.log()
        self.stop()
        return RuntimeError(f"{what}:\n{said}")


def wait_until(answer, service, what, timeout):
    """Call answer() until it returns something true, and return that. Past `timeout` seconds, or
    once the service's process has died, raise service.failed(what)."""
    deadline = time.monotonic() + timeout
    while True:
        found = answer()
        if found:
            return found
        if service.process.poll() is not None or time.monotonic() > deadline:
            raise service.failed(what)
        time.sleep(0.05)


class Redis(Service):
    """A redis-server of our own: `url` to hand to REDIS_URL, `stop()` when done."""

    def __init__(self, port, process, folder, log_path):
        super().__init__(process, folder, log_path)
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def client(self):
        """A plain (sync) redis-py client, to look at what the channel layer keeps in Redis."""
        import redis

        return redis.Redis.from_url(self.url)


def redis_binary():
    return shutil.which("redis-server")


def start_redis(timeout=10):
    """Start redis-server on a free loopback port and wait until it answers PING."""
    binary = redis_binary()
    if not binary:
        raise RuntimeError(f"no redis-server on PATH: {HOW_TO_GET_REDIS}")
    port = free_port()
    folder = tempfile.TemporaryDirectory(prefix="tutorial-redis-")
    log_path = f"{folder.name}/redis.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            # --save "" and --appendonly no: a scratch server that never writes its data to disk.
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", folder.name, "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=dies_with_parent,
        )
    redis = Redis(port, process, folder, log_path)

    def pong():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    wait_until(pong, redis, f"redis-server did not start on port {port}", timeout)
    return redis
