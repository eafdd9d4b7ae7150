"""The one outside service a step needs: a redis-server on loopback, for step 06.

`make run STEP=06`, the checks and the benchmark each start their own on a
free port, keep nothing on disk, and stop it when they are done.
"""

import shutil
import socket
import subprocess
import tempfile
import time

from .wire import dies_with_parent, free_port, stop

HOW_TO_GET_REDIS = (
    "install Debian's redis-server (sudo apt-get install redis-server), "
    "or set REDIS_URL=redis://HOST:PORT/0 to use a Redis you already run"
)


class Redis:
    """A redis-server of our own: `url` to hand to REDIS_URL, `stop()` when done."""

    def __init__(self, port, process, folder):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = process
        self._folder = folder

    def client(self):
        """A plain (sync) redis-py client, to look at what the channel layer keeps in Redis."""
        import redis

        return redis.Redis.from_url(self.url)

    def stop(self):
        stop(self.process)
        self._folder.cleanup()


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
    redis = Redis(port, process, folder)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(64).startswith(b"+PONG"):
                    return redis
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            with open(log_path) as log:
                output = log.read()
            redis.stop()
            raise RuntimeError(f"redis-server did not start on port {port}:\n{output}")
        time.sleep(0.05)
