"""The outside services a step needs, each a scratch server of our own on loopback: a
redis-server for step 06 on, and for a production set-up a PostgreSQL cluster and nginx, with
TLS on certificates from a test certificate authority.

`make run STEP=06`, the checks and the benchmark each start their own on a free port, keep
nothing on disk once it stops, and stop it when they are done.
"""

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .wire import dies_with_parent, free_port, stop, wait_for_port

HOW_TO_GET_REDIS = (
    "install Debian's redis-server (sudo apt-get install redis-server), "
    "or set REDIS_URL=redis://HOST:PORT/0 to use a Redis you already run"
)
HOW_TO_GET_POSTGRES = (
    "install Debian's postgresql (sudo apt-get install postgresql): its server programs, initdb "
    "and postgres, go to /usr/lib/postgresql/<major>/bin"
)
HOW_TO_GET_NGINX = "install Debian's nginx (sudo apt-get install nginx)"


class Service:
    """A server process of our own on a loopback `port`, and the temporary folder that holds its
    files and its console."""

    def __init__(self, port, process, folder, log_path):
        self.port = port
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
        said = self.log().strip()
        self.stop()
        return RuntimeError(f"{what}" + (f"; its log:\n{said}" if said else ""))


def wait_until(answer, service, what, timeout):
    """Call answer() until it returns something true, and return that. Once the service's process
    has died, or past `timeout` seconds, raise service.failed(what), saying which."""
    deadline = time.monotonic() + timeout
    while True:
        found = answer()
        if found:
            return found
        if service.process.poll() is not None:
            raise service.failed(f"{what}: it exited with code {service.process.returncode}")
        if time.monotonic() > deadline:
            raise service.failed(f"{what} within {timeout} s")
        time.sleep(0.05)


class Redis(Service):
    """A redis-server of our own: `url` to hand to REDIS_URL, `stop()` when done."""

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

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


# The app's role and database: what a step's DATABASE_URL names.
APP = "tutorial"


class Postgres(Service):
    """A PostgreSQL cluster of our own: `url` to hand to dj-database-url or psycopg, `stop()` when done."""

    password = None  # the app role's, and the superuser's: made afresh by start_postgres()

    @property
    def url(self):
        return f"postgres://{APP}:{self.password}@127.0.0.1:{self.port}/{APP}"

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown, which ends the sessions still open. SIGTERM,
            # which stop() sends next, asks for a "smart" one, which waits for every client to hang
            # up; the server ignores it once a fast one is under way.
            self.process.send_signal(signal.SIGINT)
        super().stop()


def postgres_binaries():
    """The folder of PostgreSQL's initdb and postgres, or None. Debian keeps them off PATH, in a
    folder per major version, since several may be installed side by side: the newest is used."""
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
             if path.parent.parent.name.isdigit()]
    if found:
        return max(found, key=lambda folder: int(folder.parent.name))
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def postgres_user():
    """Popen's arguments that run PostgreSQL's programs as the right user: as ourselves, or as
    root, as the postgres system user, since initdb and postgres refuse to run as root (a hole in
    the server would give its finder the whole machine)."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(f"running as root, and no postgres user to run PostgreSQL as: {HOW_TO_GET_POSTGRES}") \
            from None
    # extra_groups=[]: none of root's groups either.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def start_postgres(timeout=30):
    """Make a cluster in a temporary folder, start it on a free loopback port, and wait until it
    lets us in; then make the app's role and database (both named APP)."""
    import psycopg
    from psycopg import sql

    binaries = postgres_binaries()
    if not binaries:
        raise RuntimeError(f"no PostgreSQL server programs: {HOW_TO_GET_POSTGRES}")
    as_user = postgres_user()
    port = free_port()
    folder = tempfile.TemporaryDirectory(prefix="tutorial-postgres-")
    if as_user:
        # initdb wants a data folder its user owns, and makes it inside this one.
        os.chown(folder.name, as_user["user"], as_user["group"])
    data = f"{folder.name}/data"
    log_path = f"{folder.name}/postgres.log"
    postgres = Postgres(port, None, folder, log_path)
    # A password, made afresh, for the superuser and the app's role: loopback is open to every user
    # of the machine, and a superuser can run programs as the cluster's owner (COPY ... PROGRAM).
    postgres.password = secrets.token_urlsafe(18)
    password_file = Path(folder.name) / "password"
    password_file.write_text(postgres.password)
    if as_user:
        os.chown(password_file, as_user["user"], as_user["group"])
    run = {"cwd": folder.name, "preexec_fn": dies_with_parent, **as_user}
    try:
        # scram-sha-256: every login needs that password. --no-sync: a scratch cluster need not
        # survive a power cut. UTF-8 and the C locale: the same cluster whatever the shell's locale is.
        made = subprocess.run([binaries / "initdb", "--pgdata", data, "--username", "postgres",
                               "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-sync", "--encoding=UTF8",
                               "--locale=C"], timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **run)
    except subprocess.TimeoutExpired:
        raise postgres.failed(f"initdb did not make a cluster within {timeout} s") from None
    if made.returncode != 0:
        raise postgres.failed(f"initdb could not make a cluster (exit code {made.returncode}):\n{made.stdout}")
    with open(log_path, "w") as log:
        # postgres itself, not pg_ctl: pg_ctl would start it in the background and return, so it
        # would not die with us. fsync=off, for speed: again, nothing here needs to survive a crash.
        # The unix socket goes in our folder, where the postgres user may write (Debian's default,
        # /var/run/postgresql, may not be there).
        postgres.process = subprocess.Popen(
            [binaries / "postgres", "-D", data, "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={folder.name}", "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT, **run)

    def superuser():
        try:
            return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                   password=postgres.password, autocommit=True, connect_timeout=2)
        except psycopg.OperationalError:  # refused, or "the database system is starting up"
            return None

    with wait_until(superuser, postgres, f"postgres did not let us in on port {port}", timeout) as connection:
        try:
            # CREATEDB: Django's test runner makes a test_ database beside the app's, and drops it after.
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(APP), postgres.password))
            connection.execute(f"CREATE DATABASE {APP} OWNER {APP}")
        except psycopg.Error as error:  # stopped, not left running until we exit
            raise postgres.failed(f"postgres would not make the {APP} role and database ({error})") from None
    return postgres


def make_test_ca(folder):
    """A certificate authority for the checks alone, made afresh each time, so that no key is ever
    committed. Writes its certificate to `folder`/ca.pem, for a client to trust (and nothing else),
    and a certificate it signed for 127.0.0.1 and localhost, with its key, to `folder`/server.pem,
    for nginx. Returns the two paths."""
    import trustme

    folder = Path(folder)
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    authority.cert_pem.write_to_path(folder / "ca.pem")
    # Key and certificate in one file: nginx's ssl_certificate and ssl_certificate_key may both name it.
    server.private_key_and_cert_chain_pem.write_to_path(folder / "server.pem")
    (folder / "server.pem").chmod(0o600)  # a private key: for its owner's eyes only
    return folder / "ca.pem", folder / "server.pem"


class Nginx(Service):
    """nginx of our own: `port`, `log()` (its error log, which is its console), `stop()`."""


def nginx_binary():
    # Debian puts it in /usr/sbin, which a user's PATH may leave out.
    return shutil.which("nginx", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")


# What every nginx of ours needs around the caller's servers: nginx's built-in paths (/run/nginx.pid,
# /var/lib/nginx/...) are root's, so the pid file, the logs and the folders where it buffers
# request and response bodies go in our folder instead.
# daemon off: it stays our child process. master_process off: one process that does everything,
# with no workers. A master's workers outlive a master killed with SIGKILL, still serving its port,
# whereas this one process dies with us (dies_with_parent). nginx's docs keep this mode for
# development, which a check is. With no workers there is no switch to `user nobody` when we are
# root, either, so our folder need not be opened to nobody.
NGINX_CONF = """\
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log stderr notice;
# A proxied WebSocket is two connections, the client's and daphne's: 2,000 serve 1,000 clients.
# Each is a file descriptor, past the usual 1,024 a process may open.
worker_rlimit_nofile 4096;
events {{
    worker_connections 2048;
}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{servers}
}}
"""


def start_nginx(servers, port, timeout=10):
    """Start nginx with `servers` (the text of its http block: upstream and server blocks), and
    wait until it accepts connections on the loopback `port`, which one of them listens on."""
    binary = nginx_binary()
    if not binary:
        raise RuntimeError(f"no nginx: {HOW_TO_GET_NGINX}")
    folder = tempfile.TemporaryDirectory(prefix="tutorial-nginx-")
    config = Path(folder.name) / "nginx.conf"
    config.write_text(NGINX_CONF.format(folder=folder.name, servers=servers))
    # error_log stderr: its errors, from the first (a config it cannot read) on, reach this one file.
    log_path = f"{folder.name}/error.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([binary, "-p", folder.name, "-c", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=dies_with_parent)
    nginx = Nginx(port, process, folder, log_path)
    # wait_for_port(timeout=0): one try a call; wait_until() does the waiting and says why it stopped.
    wait_until(lambda: wait_for_port(port, process, timeout=0), nginx, f"nginx did not listen on port {port}",
               timeout)
    return nginx


# nginx as a production site puts it in front of daphne. The same headers go with every request,
# set in one place: a location that sets any proxy_set_header of its own drops all of these.
# Host with its port and the scheme the browser used: Django compares a form's Origin with
# them (CSRF), and without the port or with "http" it refuses the login form. daphne reads
# X-Forwarded-Proto (and -For) with --proxy-headers. Upgrade and Connection: without them
# nginx passes a WebSocket handshake on as a plain GET (Django answers 404); `map` sends
# "Connection: upgrade" only with an Upgrade header, and "close" otherwise, as a proxy should.
# No proxy_read_timeout: nginx's 60 s is well above daphne's ping of a quiet socket, every 20 s.
# tests/test_services.py checks what the Upgrade, Connection, Host and X-Forwarded-Proto lines
# and the read timeout are for; the benchmark measures the proxy's cost. An upstream of one
# server or several: nginx spreads new connections over them in turn (see proxy_config()).
PROXY = """
    map $http_upgrade $connection_upgrade {
        default upgrade;
        "" close;
    }
    upstream daphne {
UPSTREAM
    }
    server {
        listen 127.0.0.1:PORT ssl;
        ssl_certificate PEM;
        ssl_certificate_key PEM;
        location / {
            proxy_pass http://daphne;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }
    }
"""


def proxy_config(port, pem, upstream, config=PROXY):
    """`config` (PROXY, or PROXY with a change) for an nginx listening on the loopback `port`, with
    TLS on `pem` (make_test_ca's server.pem), in front of the servers on the loopback ports
    `upstream` (one port, or a list)."""
    ports = upstream if isinstance(upstream, (list, tuple)) else [upstream]
    # When one refuses to connect (stopped, restarting), nginx tries the next, and counts that one
    # as down for fail_timeout, 10 s unless set: restart two, one after the other, within 10 s,
    # and every reconnect gets 502 until the first one's time is up. At 1 s, the rolling restart
    # in tests/test_stack.py took 7.1 s, where it took 26.5 s with the default.
    servers = "\n".join(f"        server 127.0.0.1:{server} fail_timeout=1s;" for server in ports)
    return config.replace("UPSTREAM", servers).replace("PORT", str(port)).replace("PEM", str(pem))


def start_proxy(folder, upstream, config=PROXY, port=None, timeout=10):
    """nginx with `config` on https://127.0.0.1:<port> (default: a free port) in front of the
    servers on the loopback ports `upstream`, its certificate from a test CA made in `folder`.
    Returns (nginx, the CA's certificate, for a client to trust)."""
    ca, pem = make_test_ca(folder)
    port = port or free_port()
    return start_nginx(proxy_config(port, pem, upstream, config), port, timeout), ca
