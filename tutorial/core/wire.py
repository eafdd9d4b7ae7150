"""Small tools for serving a step and talking to it over a bare socket, shared by the checks,
the docs generator, the benchmark and `make run`."""

import ctypes
import errno
import signal
import socket
import subprocess
import sys
import time

# The key from RFC 6455's own example: its Sec-WebSocket-Accept is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


_handed_out = set()  # the ports free_port() has given this process


def free_port():
    """A loopback port nobody listens on right now, and not given out before by this process:
    two servers started side by side (the checks' two daphnes) ask before either has bound its
    port, and the system may offer the same one twice in a row."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_in_use(port):
    """Whether something already listens on the loopback `port`, so that a server could not start there."""
    with socket.socket() as probe:
        # SO_REUSEADDR, as daphne and Django's runserver set it: a port that a server which has just
        # stopped leaves in TIME_WAIT is free for them, so it counts as free here too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def wait_for_port(port, process, timeout=30):
    """Wait until `process` accepts connections on `port`: True, or False if it died or took too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


# Looked up once, here: dies_with_parent() runs in the child between fork and exec, where as
# little as possible should happen.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def dies_with_parent():
    """For Popen's preexec_fn: the child is killed when the process that started it dies, however
    it dies. A check killed in the middle (a timeout, kill -9) then leaves no server or
    redis-server behind: with its parent gone, nobody reads it any more, so SIGKILL, which a
    server busy shutting down cannot delay. Linux only (prctl); elsewhere the usual clean-up is
    all there is."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def stop(process, grace=3):
    """Ask a server process to stop, and kill it if it has not within `grace` seconds.

    daphne can hang on SIGTERM while a sync consumer's worker thread is still busy.
    """
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def raw_handshake(port, path, key=SAMPLE_KEY, origin="http://127.0.0.1:8000"):
    """Send the opening handshake a browser on `origin` would send; return (request, response head)."""
    host = origin.split("//", 1)[1]
    request = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = raw.recv(4096)
            if not chunk:
                break
            response += chunk
    return request, response.split(b"\r\n\r\n")[0].decode("latin-1") + "\r\n\r\n"
